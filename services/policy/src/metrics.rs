//! `sre_agent_policy_violations_total{type}` and `sre_agent_danger_score` (whose `_bucket` series is the
//! seed's `sre_agent_danger_score_bucket`; its `le` bounds are the seed's 0_10 .. 100_plus buckets).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use sre_telemetry::SharedRegistry;
use sre_telemetry::metrics::TraceExemplar;

use crate::rules::VIOLATION_FAMILIES;

/// The seed's danger buckets: 0_10, 10_20, 20_40, 40_60, 60_80, 80_100, 100_plus.
pub const DANGER_BUCKETS: [f64; 6] = [10.0, 20.0, 40.0, 60.0, 80.0, 100.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViolationLabels {
    r#type: String,
}

#[derive(Clone)]
pub struct PolicyMetrics {
    violations: Family<ViolationLabels, Counter>,
    danger: HistogramWithExemplars<TraceExemplar>,
}

impl PolicyMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this =
            Self { violations: Family::default(), danger: HistogramWithExemplars::new(DANGER_BUCKETS.into_iter()) };
        registry.register("sre_agent_policy_violations", "Policy violations by code family", this.violations.clone());
        registry.register("sre_agent_danger_score", "Danger score of checked patches", this.danger.clone());
        this
    }

    /// Counts one violation under its family (the part of the code before the dot).
    pub fn violation(&self, code: &str) {
        let family = code.split('.').next().unwrap_or_default();
        let family = VIOLATION_FAMILIES.iter().find(|f| **f == family).copied().unwrap_or("other");
        self.violations.get_or_create(&ViolationLabels { r#type: family.to_owned() }).inc();
    }

    pub fn danger_score(&self, score: f64) {
        self.danger.observe(score, TraceExemplar::current(), None);
    }
}
