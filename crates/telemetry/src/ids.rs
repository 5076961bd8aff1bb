//! The business identifiers that travel with a run and appear on spans and log lines.

/// Span fields that the JSON log layer copies onto every log line inside the span.
pub const BUSINESS_ID_FIELDS: [&str; 5] = ["delivery_id", "run_key", "failure_id", "run_id", "correlation_id"];

/// Borrowed view of a run's IDs, for recording onto a span declared with these fields as `Empty`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BusinessIds<'a> {
    pub delivery_id: &'a str,
    pub run_key: &'a str,
    pub failure_id: &'a str,
    pub run_id: &'a str,
    pub correlation_id: &'a str,
}

impl BusinessIds<'_> {
    /// Records every non-empty ID on `span` (the span must declare the fields).
    pub fn record_on(&self, span: &tracing::Span) {
        for (field, value) in [
            ("delivery_id", self.delivery_id),
            ("run_key", self.run_key),
            ("failure_id", self.failure_id),
            ("run_id", self.run_id),
            ("correlation_id", self.correlation_id),
        ] {
            if !value.is_empty() {
                span.record(field, value);
            }
        }
    }
}
