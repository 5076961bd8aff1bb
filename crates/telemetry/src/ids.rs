//! The business identifiers that travel with a run and appear on spans and log lines.

use sre_domain::RunIds;

/// Span fields that the JSON log layer copies onto every log line inside the span.
pub const BUSINESS_ID_FIELDS: [&str; 5] = ["delivery_id", "run_key", "failure_id", "run_id", "correlation_id"];

/// Records every non-empty ID on `span` (the span must declare the fields, as `Empty` until known).
pub fn record_ids(span: &tracing::Span, ids: RunIds<'_>) {
    for (field, value) in ids.fields() {
        if !value.is_empty() {
            span.record(field, value);
        }
    }
}
