//! JSON log lines on stdout: `timestamp`, `level`, `service`, `target`, `message`, the event's fields,
//! `trace_id`/`span_id` of the active span, and the business IDs recorded on any enclosing span.
//!
//! Every line passes [`crate::redact::redact`] before it is written (or captured).
//!
//! tracing-subscriber's JSON formatter knows nothing of OpenTelemetry, hence this small layer.

use std::io::Write;
use std::sync::OnceLock;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::ids::BUSINESS_ID_FIELDS;

/// The business IDs recorded on one span (span extension).
#[derive(Default, Clone)]
struct SpanIds([Option<String>; 5]);

impl Visit for SpanIds {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(i) = BUSINESS_ID_FIELDS.iter().position(|f| *f == field.name()) {
            self.0[i] = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if BUSINESS_ID_FIELDS.contains(&field.name()) {
            self.record_str(field, format!("{value:?}").trim_matches('"'));
        }
    }
}

struct JsonFields<'a>(&'a mut Map<String, Value>);

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().to_owned(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// Every JSON line a process wrote, kept in memory as well (for tests; see `Config::log_capture`).
#[derive(Clone, Debug, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl LogCapture {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// The layer. Add it after the OpenTelemetry layer so span contexts exist when events arrive.
pub struct JsonLogLayer {
    service: String,
    dispatch: OnceLock<WeakDispatch>,
    capture: Option<LogCapture>,
}

impl JsonLogLayer {
    pub fn new(service: String) -> Self {
        Self { service, dispatch: OnceLock::new(), capture: None }
    }

    pub fn with_capture(mut self, capture: Option<LogCapture>) -> Self {
        self.capture = capture;
        self
    }

    /// Renders one event as a JSON line (without the newline).
    fn render<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>) -> String
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::from(rfc3339_now()));
        line.insert("level".into(), Value::from(meta.level().as_str()));
        line.insert("service".into(), Value::from(self.service.as_str()));
        line.insert("target".into(), Value::from(meta.target()));

        let mut fields = Map::new();
        event.record(&mut JsonFields(&mut fields));
        line.insert("message".into(), fields.remove("message").unwrap_or(Value::from("")));

        if let Some(scope) = ctx.event_scope(event) {
            let mut leaf = None;
            let mut ids = SpanIds::default();
            for span in scope.from_root() {
                if let Some(span_ids) = span.extensions().get::<SpanIds>() {
                    for (slot, value) in ids.0.iter_mut().zip(span_ids.0.iter()) {
                        if value.is_some() {
                            slot.clone_from(value);
                        }
                    }
                }
                leaf = Some(span.id());
            }
            if let (Some(id), Some(dispatch)) = (leaf, self.dispatch.get().and_then(WeakDispatch::upgrade))
                && let Some(cx) = tracing_opentelemetry::get_otel_context(&id, &dispatch)
            {
                let sc = cx.span().span_context().clone();
                if sc.is_valid() {
                    line.insert("trace_id".into(), Value::from(sc.trace_id().to_string()));
                    line.insert("span_id".into(), Value::from(sc.span_id().to_string()));
                }
            }
            for (name, value) in BUSINESS_ID_FIELDS.iter().zip(ids.0) {
                if let Some(v) = value {
                    line.insert((*name).to_owned(), Value::from(v));
                }
            }
        }
        for (k, v) in fields {
            line.entry(k).or_insert(v);
        }
        Value::Object(line).to_string()
    }
}

impl<S> tracing_subscriber::Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut ids = SpanIds::default();
        attrs.record(&mut ids);
        if ids.0.iter().any(Option::is_some)
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(ids);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(ids) = ext.get_mut::<SpanIds>() {
            values.record(ids);
        } else {
            let mut ids = SpanIds::default();
            values.record(&mut ids);
            if ids.0.iter().any(Option::is_some) {
                ext.insert(ids);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Last line of defence: a credential that reached a log line anyway is written redacted.
        let mut line = crate::redact::redact_log_line(&self.render(event, &ctx)).into_owned();
        if let Some(capture) = &self.capture
            && let Ok(mut lines) = capture.0.lock()
        {
            lines.push(line.clone());
        }
        line.push('\n');
        // One write per line keeps lines whole when several threads log at once.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

/// UTC timestamp with microseconds, e.g. `2026-11-27T07:14:40.123456Z`.
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        now.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_419), (2025, 11, 27));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
