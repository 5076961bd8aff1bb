//! W3C trace context across process boundaries: HTTP/gRPC headers and queue message fields.
//! The only place in the workspace that injects or extracts.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Installs tracecontext + baggage as the global propagator. Idempotent.
pub fn install_global_propagator() {
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes `span`'s context as `traceparent`/`tracestate`/`baggage` headers.
pub fn inject_headers(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
}

/// Reads the remote parent from request headers (empty context when absent or malformed).
pub fn extract_headers(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// `span`'s context as string fields, for a queue message.
pub fn inject_map(span: &tracing::Span) -> HashMap<String, String> {
    let cx = span.context();
    let mut map = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut map));
    map
}

/// The remote parent carried by a queue message's fields.
pub fn extract_map(fields: &HashMap<String, String>) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(fields))
}

/// Makes `span` a child of the remote `parent`. Must run before the span is first entered.
pub fn set_remote_parent(span: &tracing::Span, parent: opentelemetry::Context) {
    if let Err(err) = span.set_parent(parent) {
        tracing::debug!(error = ?err, "could not set remote parent");
    }
}

/// Hex trace ID of `span`, when it is sampled into a real trace.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The W3C `traceparent` of `span` (empty when the span is not part of a valid trace).
pub fn traceparent(span: &tracing::Span) -> String {
    inject_map(span).remove("traceparent").unwrap_or_default()
}

/// Adds an OpenTelemetry link from `span` to the span a `traceparent` names: a re-enqueue or a retry that
/// starts a new trace still points at the delivery's original story. Ignored when `traceparent` is invalid.
pub fn add_link(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::trace::TraceContextExt;
    if traceparent.is_empty() {
        return;
    }
    let fields = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let sc = extract_map(&fields).span().span_context().clone();
    if sc.is_valid() {
        span.add_link(sc);
    }
}

/// The trace ID a `traceparent` names, if valid.
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.split('-');
    let (_, trace) = (parts.next()?, parts.next()?);
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()) && trace != "0".repeat(32))
        .then(|| trace.to_owned())
}
