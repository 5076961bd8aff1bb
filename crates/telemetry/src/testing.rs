//! Test support (feature `testing`): capture what a piece of code records in spans and events (to assert that
//! secrets never reach them, and that an event's log line agrees with the metric it moves), and read a
//! metrics exposition back as samples.

use std::collections::BTreeMap;

/// One captured log event: its fields as strings (`message` included) and its level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapturedEvent {
    pub level: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Inner {
    lines: Vec<String>,
    events: Vec<CapturedEvent>,
}

/// Every span field and event field recorded on this thread, as `name=value` strings, and every event with
/// its fields. Every test of a binary installs one: tracing caches callsite interest process-wide, and a
/// thread without a subscriber racing a capturing one can leave callsites disabled there.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Inner>>);

impl Captured {
    /// Captures on the current thread (the `#[tokio::test]` runtime runs server and client here) until the
    /// guard drops.
    pub fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        use tracing_subscriber::layer::SubscriberExt;
        let captured = Self::default();
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(captured.clone()));
        (captured, guard)
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().lines.clone()
    }

    /// The log events, in order.
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.0.lock().unwrap().events.clone()
    }

    /// Forgets what was captured so far.
    pub fn clear(&self) {
        let mut inner = self.0.lock().unwrap();
        inner.lines.clear();
        inner.events.clear();
    }
}

struct Lines<'a>(&'a Captured);

impl tracing::field::Visit for Lines<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.0.lock().unwrap().lines.push(format!("{}={value:?}", field.name()));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.0.lock().unwrap().lines.push(format!("{}={value}", field.name()));
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        attrs.record(&mut Lines(self));
    }
    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        values.record(&mut Lines(self));
    }
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        event.record(&mut Lines(self));
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let level = event.metadata().level().to_string();
        self.0.lock().unwrap().events.push(CapturedEvent { level, fields });
    }
}

/// A sample of a Prometheus text exposition: metric name (with `_total`, `_bucket`, ... suffix) and labels.
pub type SampleKey = (String, BTreeMap<String, String>);

/// Parses a Prometheus text (or OpenMetrics) exposition into its samples. Exemplars and comments are
/// ignored; `le` and `quantile` stay labels.
pub fn parse_exposition(text: &str) -> BTreeMap<SampleKey, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        // Drop an OpenMetrics exemplar (" # {...} value").
        let line = line.split(" # ").next().unwrap_or(line);
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let Some(close) = line.rfind('}') else { continue };
                (&line[..open], parse_labels(&line[open + 1..close]), &line[close + 1..])
            }
            None => {
                let Some((name, rest)) = line.split_once(' ') else { continue };
                (name, BTreeMap::new(), rest)
            }
        };
        if let Some(value) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
            out.insert((name.to_owned(), labels), value);
        }
    }
    out
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches(',').trim().to_owned();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = eq + 2 + i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        rest = &rest[end.min(rest.len())..];
    }
    labels
}

/// The samples whose value changed between two expositions (`_bucket`, `_sum`, `_created` and gauge
/// samples included; compare by family name as needed).
pub fn changed_samples(before: &str, after: &str) -> Vec<SampleKey> {
    let before = parse_exposition(before);
    parse_exposition(after)
        .into_iter()
        .filter(|(key, value)| before.get(key) != Some(value) && !key.0.ends_with("_created"))
        .map(|(key, _)| key)
        .collect()
}

/// Runs `emit` and asserts that its log line and the metric it moved agree: at least one counter or
/// histogram sample of the registry changed, exactly one log event was written, and every label of every
/// changed sample (but `le`) appears on that log event with the same value. Returns the changed samples.
pub fn assert_event_agrees(registry: &crate::SharedRegistry, emit: impl FnOnce()) -> Vec<SampleKey> {
    let (captured, guard) = Captured::install();
    let before = registry.encode(false);
    emit();
    let after = registry.encode(false);
    drop(guard);
    let changed = changed_samples(&before, &after);
    assert!(!changed.is_empty(), "the event moved no metric");
    let events = captured.events();
    assert_eq!(events.len(), 1, "the event must write exactly one log line, wrote {events:?}");
    let fields = &events[0].fields;
    assert!(fields.get("message").is_some_and(|m| !m.is_empty()), "the log line has no message: {fields:?}");
    for (name, labels) in &changed {
        for (label, value) in labels {
            if label == "le" {
                continue;
            }
            assert_eq!(
                fields.get(label),
                Some(value),
                "{name}{{{label}=\"{value}\"}} moved but the log line says {label}={:?} ({fields:?})",
                fields.get(label)
            );
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_openmetrics() {
        let text = "# HELP x_total help\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"uote\"} 3\n\
                    y 2.5\nh_bucket{le=\"+Inf\",stage=\"plan\"} 4 # {trace_id=\"abc\"} 0.1 1.0\n";
        let samples = parse_exposition(text);
        let key = |n: &str, l: &[(&str, &str)]| {
            (n.to_owned(), l.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>())
        };
        assert_eq!(samples[&key("x_total", &[("a", "1"), ("b", "q\"uote")])], 3.0);
        assert_eq!(samples[&key("y", &[])], 2.5);
        assert_eq!(samples[&key("h_bucket", &[("le", "+Inf"), ("stage", "plan")])], 4.0);
        assert_eq!(changed_samples("y 1\n", "y 2\nz 0\n").len(), 2);
    }
}
