//! JSON log lines on stdout: `timestamp`, `level`, `service`, `target`, `message`, `trace_id`/`span_id` of the
//! active span, the business IDs recorded on any enclosing span, then the event's own fields (an event field
//! named like a key already on the line is dropped).
//!
//! Every line passes [`crate::redact::redact`] before it is written (or captured).
//!
//! tracing-subscriber's JSON formatter knows nothing of OpenTelemetry, hence this small layer. It renders
//! straight into a per-thread buffer (no `serde_json::Map`/`Value` per line, no allocation once the buffers
//! have grown), escaping strings exactly as serde_json does; numbers go through serde_json's own formatter.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TraceContextExt;
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

/// One event field, rendered: its name and where its JSON value is in [`Buffers::values`].
struct Rendered {
    name: &'static str,
    value: Range<usize>,
}

/// What rendering a line needs, reused per thread: the line itself, the JSON values of the event's fields and
/// the span IDs (rendered before the line's order is known), and the fields in line order.
#[derive(Default)]
struct Buffers {
    line: String,
    values: String,
    fields: Vec<Rendered>,
}

impl Buffers {
    /// Above this a buffer is not kept for the next line (one huge line must not pin its memory to a thread).
    const KEEP: usize = 64 * 1024;

    fn clear(&mut self) {
        self.line.clear();
        self.values.clear();
        self.fields.clear();
    }

    fn release_if_large(&mut self) {
        if self.line.capacity() > Self::KEEP || self.values.capacity() > Self::KEEP {
            *self = Self::default();
        }
    }
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::default();
}

/// Renders each field's value as JSON into `values`. A field recorded twice keeps its first place and its
/// last value (what inserting into an insertion-ordered map did).
struct FieldWriter<'a> {
    values: &'a mut String,
    fields: &'a mut Vec<Rendered>,
}

impl FieldWriter<'_> {
    fn rendered(&mut self, field: &Field, start: usize) {
        let (name, value) = (field.name(), start..self.values.len());
        match self.fields.iter_mut().find(|f| f.name == name) {
            Some(seen) => seen.value = value,
            None => self.fields.push(Rendered { name, value }),
        }
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let start = self.values.len();
        push_json_str(self.values, value);
        self.rendered(field, start);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        let start = self.values.len();
        push_json_number(self.values, |w| serde_json::to_writer(w, &value));
        self.rendered(field, start);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let start = self.values.len();
        push_json_number(self.values, |w| serde_json::to_writer(w, &value));
        self.rendered(field, start);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        let start = self.values.len();
        // serde_json writes `null` for NaN and the infinities.
        push_json_number(self.values, |w| serde_json::to_writer(w, &value));
        self.rendered(field, start);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        let start = self.values.len();
        self.values.push_str(if value { "true" } else { "false" });
        self.rendered(field, start);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let start = self.values.len();
        push_json_display(self.values, format_args!("{value}"));
        self.rendered(field, start);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let start = self.values.len();
        push_json_display(self.values, format_args!("{value:?}"));
        self.rendered(field, start);
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
    /// The service name as a JSON string, quotes included.
    service: String,
    dispatch: OnceLock<WeakDispatch>,
    capture: Option<LogCapture>,
}

impl JsonLogLayer {
    pub fn new(service: String) -> Self {
        let mut json = String::with_capacity(service.len() + 2);
        push_json_str(&mut json, &service);
        Self { service: json, dispatch: OnceLock::new(), capture: None }
    }

    pub fn with_capture(mut self, capture: Option<LogCapture>) -> Self {
        self.capture = capture;
        self
    }

    /// Renders one event as a JSON line (without the newline) into `bufs.line`, stamped `now` (since the Unix
    /// epoch).
    fn render<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, now: Duration, bufs: &mut Buffers)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        bufs.clear();
        let Buffers { line, values, fields } = bufs;
        event.record(&mut FieldWriter { values, fields });
        // Removing `message` moves the last field into its place (what `swap_remove`, serde_json's
        // `Map::remove` with `preserve_order`, did): the line keeps that order.
        let message = fields.iter().position(|f| f.name == "message").map(|i| fields.swap_remove(i).value);

        let meta = event.metadata();
        line.push_str("{\"timestamp\":\"");
        push_rfc3339(line, now);
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push_str("\",\"service\":");
        line.push_str(&self.service);
        line.push_str(",\"target\":");
        push_json_str(line, meta.target());
        line.push_str(",\"message\":");
        match message {
            Some(range) => line.push_str(&values[range]),
            None => line.push_str("\"\""),
        }

        // Innermost first: the closest span that recorded an ID wins.
        let mut leaf = None;
        let mut ids: [Option<Range<usize>>; 5] = Default::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if leaf.is_none() {
                    leaf = Some(span.id());
                }
                if let Some(span_ids) = span.extensions().get::<SpanIds>() {
                    for (slot, value) in ids.iter_mut().zip(&span_ids.0) {
                        if let (None, Some(value)) = (&slot, value) {
                            let start = values.len();
                            push_json_str(values, value);
                            *slot = Some(start..values.len());
                        }
                    }
                }
                if ids.iter().all(Option::is_some) {
                    break;
                }
            }
        }
        let mut has_trace = false;
        if let (Some(id), Some(dispatch)) = (leaf, self.dispatch.get().and_then(WeakDispatch::upgrade))
            && let Some(cx) = tracing_opentelemetry::get_otel_context(&id, &dispatch)
        {
            let span = cx.span();
            let sc = span.span_context();
            if sc.is_valid() {
                has_trace = true;
                line.push_str(",\"trace_id\":\"");
                push_hex(line, &sc.trace_id().to_bytes());
                line.push_str("\",\"span_id\":\"");
                push_hex(line, &sc.span_id().to_bytes());
                line.push('"');
            }
        }
        for (name, value) in BUSINESS_ID_FIELDS.iter().zip(&ids) {
            if let Some(range) = value {
                line.push_str(",\"");
                line.push_str(name);
                line.push_str("\":");
                line.push_str(&values[range.clone()]);
            }
        }

        // An event field named like a key already on the line is dropped.
        for field in fields.iter() {
            let taken = match field.name {
                "timestamp" | "level" | "service" | "target" | "message" => true,
                "trace_id" | "span_id" => has_trace,
                name => BUSINESS_ID_FIELDS.iter().zip(&ids).any(|(id, v)| *id == name && v.is_some()),
            };
            if !taken {
                line.push(',');
                push_json_str(line, field.name);
                line.push(':');
                line.push_str(&values[field.value.clone()]);
            }
        }
        line.push('}');
    }

    fn write_line<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, bufs: &mut Buffers)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.render(event, ctx, now, bufs);
        // Last line of defence: a credential that reached a log line anyway is written redacted.
        let redacted = match crate::redact::redact_log_line(&bufs.line) {
            Cow::Borrowed(_) => None,
            Cow::Owned(redacted) => Some(redacted),
        };
        let line = redacted.as_ref().unwrap_or(&bufs.line);
        if let Some(capture) = &self.capture
            && let Ok(mut lines) = capture.0.lock()
        {
            lines.push(line.clone());
        }
        let line = match redacted {
            Some(mut redacted) => {
                redacted.push('\n');
                Cow::Owned(redacted)
            }
            None => {
                bufs.line.push('\n');
                Cow::Borrowed(&bufs.line)
            }
        };
        // One write per line keeps lines whole when several threads log at once.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
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
        // The thread's buffers; fresh ones for this line should they be in use (tracing does not re-enter a
        // subscriber from its own callback, but nothing here has to rely on that) or already gone (a line from
        // a thread-local destructor).
        let done = BUFFERS
            .try_with(|bufs| match bufs.try_borrow_mut() {
                Ok(mut bufs) => {
                    self.write_line(event, &ctx, &mut bufs);
                    bufs.release_if_large();
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        if !done {
            self.write_line(event, &ctx, &mut Buffers::default());
        }
    }
}

/// `value` as a JSON string, quotes included, escaped as serde_json escapes: `"`, `\` and the control
/// characters below U+0020 (`\b \t \n \f \r` short, the others `\u00XX`); everything else as is.
fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    push_escaped(out, value);
    out.push('"');
}

/// `value`'s `Display` as a JSON string, escaped while it is formatted (no intermediate `String`).
fn push_json_display(out: &mut String, value: std::fmt::Arguments<'_>) {
    struct Escaping<'a>(&'a mut String);
    impl std::fmt::Write for Escaping<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            push_escaped(self.0, s);
            Ok(())
        }
    }
    out.push('"');
    match value.as_str() {
        Some(literal) => push_escaped(out, literal),
        None => {
            let _ = Escaping(out).write_fmt(value);
        }
    }
    out.push('"');
}

fn push_escaped(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.as_bytes();
    let word = |at: usize| bytes.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()).map(u64::from_le_bytes);
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        // Eight bytes at a time while none needs an escape (most of a line); the last word overlaps the one
        // before, so the tail does not go byte by byte either.
        match word(i) {
            Some(w) if !needs_escape(w) => {
                i += 8;
                continue;
            }
            None if bytes.len() >= 8 && word(bytes.len() - 8).is_some_and(|w| !needs_escape(w)) => break,
            _ => {}
        }
        let b = bytes[i];
        i += 1;
        if !ESCAPED[usize::from(b)] {
            continue;
        }
        // Escapes are ASCII, so `i - 1` is on a char boundary.
        out.push_str(&value[start..i - 1]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\x08' => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\x0c' => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i;
    }
    out.push_str(&value[start..]);
}

/// The bytes a JSON string escapes: the control characters, `"` and `\`.
static ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Whether any byte of `word` is below 0x20, `"` or `\` (exact for "any", the bytes are not located).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    // A byte below 0x20: the `haszero` trick with 0x20 subtracted (exact for thresholds up to 0x80).
    word.wrapping_sub(ONES * 0x20) & !word & HIGH != 0
        || has_zero(word ^ (ONES * u64::from(b'"')))
        || has_zero(word ^ (ONES * u64::from(b'\\')))
}

/// A number as serde_json writes it (`null` for a non-finite float): `write` serializes it into a stack buffer
/// (the longest, an `f64` like `-1.2345678901234567e-308`, takes 24 bytes).
fn push_json_number(out: &mut String, write: impl FnOnce(&mut &mut [u8]) -> serde_json::Result<()>) {
    let mut buf = [0u8; 40];
    let mut rest = &mut buf[..];
    let written = match write(&mut rest) {
        Ok(()) => 40 - rest.len(),
        Err(_) => 0,
    };
    debug_assert!(written > 0, "a JSON number fits 40 bytes");
    out.push_str(std::str::from_utf8(&buf[..written]).ok().filter(|n| !n.is_empty()).unwrap_or("null"));
}

/// Lowercase hex, two digits a byte (`TraceId`/`SpanId` display their big-endian bytes this way).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// UTC timestamp with microseconds, e.g. `2026-11-27T07:14:40.123456Z`, of `since_epoch`.
fn push_rfc3339(out: &mut String, since_epoch: Duration) {
    let secs = since_epoch.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let micros = since_epoch.subsec_micros();
    if !(0..=9999).contains(&y) {
        let _ =
            write!(out, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, (rem % 3600) / 60, rem % 60);
        return;
    }
    let mut s = *b"0000-00-00T00:00:00.000000Z";
    let mut digits = |at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            s[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    digits(0, 4, y as u32);
    digits(5, 2, m);
    digits(8, 2, d);
    digits(11, 2, (rem / 3600) as u32);
    digits(14, 2, ((rem % 3600) / 60) as u32);
    digits(17, 2, (rem % 60) as u32);
    digits(20, 6, micros);
    out.push_str(std::str::from_utf8(&s).unwrap_or("1970-01-01T00:00:00.000000Z"));
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
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use serde_json::{Map, Value};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// The renderer this module had before the per-thread writer (a `serde_json::Map` per line): the oracle.
    mod reference {
        use super::*;

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

        pub(super) fn rfc3339(now: Duration) -> String {
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

        pub(super) fn render<S>(
            service: &str,
            dispatch: &OnceLock<WeakDispatch>,
            event: &Event<'_>,
            ctx: &Context<'_, S>,
            now: Duration,
        ) -> String
        where
            S: Subscriber + for<'a> LookupSpan<'a>,
        {
            let meta = event.metadata();
            let mut line = Map::new();
            line.insert("timestamp".into(), Value::from(rfc3339(now)));
            line.insert("level".into(), Value::from(meta.level().as_str()));
            line.insert("service".into(), Value::from(service));
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
                if let (Some(id), Some(dispatch)) = (leaf, dispatch.get().and_then(WeakDispatch::upgrade))
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

    const SERVICE: &str = "gate\"way\\ é";

    /// Renders every event with both renderers, at the same instant: `(new, reference)` pairs.
    struct Oracle {
        layer: JsonLogLayer,
        pairs: Arc<Mutex<Vec<(String, String)>>>,
    }

    impl<S> tracing_subscriber::Layer<S> for Oracle
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
            tracing_subscriber::Layer::<S>::on_register_dispatch(&self.layer, subscriber);
        }
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            self.layer.on_new_span(attrs, id, ctx);
        }
        fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
            self.layer.on_record(id, values, ctx);
        }
        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            let now = Duration::new(1_764_226_480, 123_456_789);
            let mut bufs = Buffers::default();
            self.layer.render(event, &ctx, now, &mut bufs);
            let reference = reference::render(SERVICE, &self.layer.dispatch, event, &ctx, now);
            self.pairs.lock().unwrap().push((bufs.line, reference));
        }
    }

    /// Runs `f` under a subscriber like `init`'s (OpenTelemetry layer first, every span sampled), with
    /// the oracle in place of the JSON layer; returns the pairs.
    fn oracle(otel: bool, f: impl FnOnce()) -> Vec<(String, String)> {
        let pairs = Arc::default();
        let oracle = Oracle { layer: JsonLogLayer::new(SERVICE.to_owned()), pairs: Arc::clone(&pairs) };
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let otel_layer = otel.then(|| tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let subscriber = tracing_subscriber::registry().with(otel_layer).with(oracle);
        tracing::subscriber::with_default(subscriber, f);
        Arc::try_unwrap(pairs).unwrap().into_inner().unwrap()
    }

    /// Byte for byte what the reference wrote: the same keys, values and order.
    fn assert_same(pairs: &[(String, String)], expected_lines: usize) {
        assert_eq!(pairs.len(), expected_lines);
        for (new, reference) in pairs {
            assert_eq!(new, reference);
            let parsed: Value = serde_json::from_str(new).unwrap_or_else(|e| panic!("{e}: {new}"));
            assert_eq!(parsed, serde_json::from_str::<Value>(reference).unwrap());
        }
    }

    fn keys(line: &str) -> Vec<String> {
        let Value::Object(map) = serde_json::from_str(line).unwrap() else { panic!("{line}") };
        map.keys().cloned().collect()
    }

    #[derive(Debug)]
    #[allow(dead_code)] // read through Debug
    struct Nested {
        name: &'static str,
        list: Vec<Option<f64>>,
    }

    #[derive(Debug)]
    struct Failure(&'static str);

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failed: {}\n\t\"quoted\" \\ \u{1}", self.0)
        }
    }

    impl std::error::Error for Failure {}

    const TRICKY: &str =
        "q\"uote b\\ack /slash \u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f} é ß 中文 😀 \u{2028}\u{2029}\u{feff}";

    #[test]
    fn strings_numbers_and_debug_fields_render_as_serde_json_did() {
        let pairs = oracle(true, || {
            tracing::info!(s = TRICKY, "message with {TRICKY} {}", 42);
            tracing::warn!(a = i64::MIN, b = i64::MAX, c = u64::MAX, d = 0_u64, e = -1_i64, "ints");
            tracing::error!(
                f1 = 0.1,
                f2 = -0.0,
                f3 = 1e300,
                f4 = 1e-300,
                f5 = f64::MIN_POSITIVE,
                f6 = 1.0,
                f7 = 123_456_789.0,
                f8 = f64::MAX,
                f9 = 5e-324,
                "floats"
            );
            tracing::info!(nan = f64::NAN, inf = f64::INFINITY, ninf = f64::NEG_INFINITY, "non-finite");
            tracing::debug!(t = true, f = false, big = i128::MIN, ubig = u128::MAX, "bools and wide ints");
            let nested = Nested { name: "x\"y", list: vec![Some(1.5), None, Some(f64::NAN)] };
            tracing::info!(dbg = ?nested, opt = ?Some(TRICKY), disp = %TRICKY, "debug and display");
            let err = Failure(TRICKY);
            tracing::error!(error = &err as &(dyn std::error::Error + 'static), "an error field");
            tracing::info!(bytes = &b"ab\"c\x00\xff"[..], "bytes");
            tracing::info!(target: "weird\"target\\x", "a target to escape");
            tracing::trace!(TRICKY);
            tracing::info!(only = 1);
            tracing::info!("");
            tracing::info!(message = TRICKY, other = "x");
            tracing::info!(message = 7_u64);
            tracing::info!(r#"quoted "key""# = "v", "escaped key");
        });
        assert_same(&pairs, 15);
        for key in ["nan", "inf", "ninf"] {
            assert!(pairs[3].0.contains(&format!(r#""{key}":null"#)), "{}", pairs[3].0);
        }
    }

    #[test]
    fn fields_named_like_keys_are_dropped_and_the_order_is_kept() {
        let pairs = oracle(true, || {
            tracing::info!(a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, "six fields");
            tracing::info!(a = 1, a = 2, b = 3, "a field twice");
            tracing::info!(
                timestamp = "t",
                level = "l",
                service = "s",
                target = "x",
                trace_id = "no span: kept",
                span_id = "kept too",
                delivery_id = "kept",
                "outside any span"
            );
            let span = tracing::info_span!("s", delivery_id = "d-1", run_key = tracing::field::Empty);
            span.in_scope(|| {
                tracing::info!(
                    trace_id = "dropped",
                    span_id = "dropped",
                    delivery_id = "dropped",
                    run_key = "kept: the span has none",
                    message = "explicit",
                    "and a message"
                )
            });
        });
        assert_same(&pairs, 4);
        assert_eq!(
            keys(&pairs[0].0),
            ["timestamp", "level", "service", "target", "message", "f", "a", "b", "c", "d", "e"]
        );
        assert_eq!(
            keys(&pairs[3].0),
            ["timestamp", "level", "service", "target", "message", "trace_id", "span_id", "delivery_id", "run_key"]
        );
        assert!(pairs[3].0.contains(r#""run_key":"kept: the span has none""#), "{}", pairs[3].0);
    }

    #[test]
    fn nested_spans_carry_ids_innermost_first() {
        let pairs = oracle(true, || {
            let outer = tracing::info_span!(
                "outer",
                delivery_id = "d\"1",
                run_key = "acme/app@0123/lint",
                failure_id = tracing::field::Empty,
                correlation_id = ?"c-dbg",
            );
            let _o = outer.enter();
            tracing::info!(x = 1, "in outer");
            let middle = tracing::info_span!("middle", run_key = "inner/key", run_id = tracing::field::Empty);
            let _m = middle.enter();
            middle.record("run_id", "r-1");
            outer.record("failure_id", "f-1");
            tracing::info!("in middle");
            let plain = tracing::info_span!("plain", other = 1);
            let _p = plain.enter();
            let inner = tracing::info_span!("inner", delivery_id = TRICKY);
            inner.in_scope(|| tracing::warn!(y = "z", "in inner"));
            tracing::info!(parent: &outer, "explicit parent");
            tracing::info!(parent: None, "no parent");
        });
        assert_same(&pairs, 5);
        let middle: Value = serde_json::from_str(&pairs[1].0).unwrap();
        assert_eq!(middle["run_key"], "inner/key");
        assert_eq!(middle["failure_id"], "f-1");
        assert_eq!(middle["correlation_id"], "c-dbg");
        assert_eq!(middle["trace_id"].as_str().map(str::len), Some(32));
        assert_eq!(middle["span_id"].as_str().map(str::len), Some(16));
        let inner: Value = serde_json::from_str(&pairs[2].0).unwrap();
        assert_eq!(inner["delivery_id"], TRICKY);
        assert_eq!(inner["run_id"], "r-1");
        assert!(pairs[4].0.find("trace_id").is_none(), "{}", pairs[4].0);
    }

    #[test]
    fn without_the_opentelemetry_layer_there_are_no_trace_ids() {
        let pairs = oracle(false, || {
            tracing::info_span!("s", run_id = "r-2").in_scope(|| tracing::info!(k = "v", "no otel"));
        });
        assert_same(&pairs, 1);
        assert_eq!(keys(&pairs[0].0), ["timestamp", "level", "service", "target", "message", "run_id", "k"]);
    }

    #[test]
    fn escaping_matches_serde_json_for_every_ascii_and_some_unicode() {
        let mut text: String = (0u8..=0x7f).map(char::from).collect();
        text.push_str("é中😀\u{2028}\u{10ffff}");
        for c in text.chars().chain(std::iter::once('x')) {
            let s = format!("a{c}b{c}");
            let mut out = String::new();
            push_json_str(&mut out, &s);
            assert_eq!(out, serde_json::to_string(&s).unwrap(), "{:?}", c);
        }
        // At every offset of a string long enough for the eight-byte path.
        for c in text.chars() {
            for at in 0..24 {
                let mut s = "0123456789abcdefghijklmn".to_owned();
                s.replace_range(at..=at, c.encode_utf8(&mut [0; 4]));
                let mut out = String::new();
                push_json_str(&mut out, &s);
                assert_eq!(out, serde_json::to_string(&s).unwrap(), "{c:?} at {at}");
            }
        }
        let mut out = String::new();
        push_json_str(&mut out, &text);
        assert_eq!(out, serde_json::to_string(&text).unwrap());
        let mut out = String::new();
        push_json_display(&mut out, format_args!("{text:?} {}", text));
        assert_eq!(out, serde_json::to_string(&format!("{text:?} {}", text)).unwrap());
    }

    #[test]
    fn numbers_match_serde_json() {
        for f in [0.0, -0.0, 0.1, 1.0, -1.5, 1e16, 1e-7, 1e300, f64::MAX, f64::MIN, 5e-324, f64::NAN, f64::INFINITY] {
            let mut out = String::new();
            push_json_number(&mut out, |w| serde_json::to_writer(w, &f));
            assert_eq!(out, Value::from(f).to_string(), "{f}");
        }
        for i in [0, 1, -1, 9, 10, i64::MIN, i64::MAX] {
            let mut out = String::new();
            push_json_number(&mut out, |w| serde_json::to_writer(w, &i));
            assert_eq!(out, i.to_string());
        }
        let mut out = String::new();
        push_json_number(&mut out, |w| serde_json::to_writer(w, &u64::MAX));
        assert_eq!(out, u64::MAX.to_string());
    }

    #[test]
    fn timestamps_and_ids_match_the_formatted_ones() {
        for (secs, nanos) in [
            (0, 0),
            (951_782_400, 999_999_999), // 2000-02-29
            (1_764_226_480, 123_456_789),
            (1_767_225_599, 1_000),   // 2025-12-31T23:59:59
            (253_402_300_799, 0),     // 9999-12-31T23:59:59
            (253_402_300_800, 5_000), // year 10000: the slow path
        ] {
            let now = Duration::new(secs, nanos);
            let mut out = String::new();
            push_rfc3339(&mut out, now);
            assert_eq!(out, reference::rfc3339(now));
        }
        for id in [0_u128, 1, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736, u128::MAX] {
            let mut out = String::new();
            push_hex(&mut out, &opentelemetry::trace::TraceId::from(id).to_bytes());
            assert_eq!(out, opentelemetry::trace::TraceId::from(id).to_string());
            let id = id as u64;
            let mut out = String::new();
            push_hex(&mut out, &opentelemetry::trace::SpanId::from(id).to_bytes());
            assert_eq!(out, opentelemetry::trace::SpanId::from(id).to_string());
        }
    }

    /// Logs from inside a field's `Debug`, i.e. while this thread's buffers are in use (tracing drops an event
    /// raised inside a subscriber's callback, so the layer is not re-entered; nothing may panic either way).
    struct Logs;

    impl std::fmt::Debug for Logs {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            tracing::info!(inner = "x", "logged while formatting");
            f.write_str("formatted")
        }
    }

    #[test]
    fn written_lines_are_captured_redacted_and_whole() {
        let capture = LogCapture::default();
        let layer = JsonLogLayer::new("svc".to_owned()).with_capture(Some(capture.clone()));
        let subscriber = tracing_subscriber::registry().with(layer);
        let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(field = ?Logs, "outer line");
            tracing::warn!(error = format!("bad credential {token}"), "leak caught");
            tracing::info!(n = 3, text = "multi\nline", "after");
        });
        let lines = capture.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        let parsed: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(parsed[0]["message"], "outer line");
        assert_eq!(parsed[0]["field"], "formatted");
        assert_eq!(parsed[1]["error"], "bad credential [REDACTED]");
        assert!(!lines[1].contains(token));
        assert_eq!(parsed[2]["n"], 3);
        assert_eq!(parsed[2]["text"], "multi\nline");
        assert!(lines.iter().all(|l| !l.contains('\n')));
        assert!(parsed.iter().all(|l| l["service"] == "svc"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_419), (2025, 11, 27));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
