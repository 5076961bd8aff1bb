//! The process metrics registry and its exposition.
//!
//! Families are registered once at start-up by the component that owns them (a struct of families with a
//! `register` constructor) and updated lock-free afterwards. The registry itself sits behind an `RwLock` only
//! so registration and scraping can share it.

use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::registry::{Metric, Registry};

/// OpenMetrics content type (carries exemplars).
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Prometheus text 0.0.4 content type (no exemplars), for curl, promtool and older scrapers.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Latency buckets (seconds) for request and RPC histograms: 1 ms .. 10 s.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0];
/// Buckets (seconds) for pipeline stages, which run tests and scanners: 10 ms .. 10 min.
pub const STAGE_BUCKETS: [f64; 14] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0];

/// The exemplar label set: the trace that produced an observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: String,
}

impl TraceExemplar {
    /// The exemplar for the current span, if it belongs to a sampled trace.
    pub fn current() -> Option<Self> {
        crate::propagation::trace_id(&tracing::Span::current()).map(|trace_id| Self { trace_id })
    }
}

/// A cloneable handle on the process registry.
#[derive(Clone, Default)]
pub struct SharedRegistry(Arc<RwLock<Registry>>);

impl SharedRegistry {
    /// Registers a metric family. `name` has no `_total` suffix for counters (the encoder adds it).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).register(name, help, metric);
    }

    /// Renders the registry. `openmetrics` selects the OpenMetrics format (with exemplars and `# EOF`);
    /// otherwise the Prometheus 0.0.4 text format.
    pub fn encode(&self, openmetrics: bool) -> String {
        let registry = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(16 * 1024);
        let result = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        };
        if let Err(err) = result {
            tracing::error!(error = %err, "metrics encoding failed");
        }
        out
    }
}

/// True when an `Accept` header asks for OpenMetrics (Prometheus does so when exemplar storage is on).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}
