//! What the policy service logs and counts: `sre_agent_policy_violations_total{type}` and
//! `sre_agent_danger_score` (a histogram whose `le` bounds are the seed's `bucket` ranges: 0_10 → le=10,
//! 10_20 → le=20, 20_40 → le=40, 40_60 → le=60, 60_80 → le=80, 80_100 → le=100, 100_plus → le=+Inf; a
//! range's count is the difference of two cumulative buckets).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use sre_domain::{Label, PrLabel, ViolationType};
use sre_telemetry::metrics::TraceExemplar;
use sre_telemetry::{InternalEvent, SharedRegistry};

/// The seed's danger buckets as `le` bounds: 0_10, 10_20, 20_40, 40_60, 60_80, 80_100 (100_plus is +Inf).
pub const DANGER_BUCKETS: [f64; 6] = [10.0, 20.0, 40.0, 60.0, 80.0, 100.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViolationLabels {
    r#type: &'static str,
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
        for t in ViolationType::ALL {
            let _ = this.violations.get_or_create(&ViolationLabels { r#type: t.as_str() });
        }
        this
    }
}

/// One violation found in a plan or a patch.
pub struct ViolationFound<'a> {
    pub r#type: ViolationType,
    pub code: &'a str,
    pub path: &'a str,
    pub blocking: bool,
}

impl InternalEvent<PolicyMetrics> for ViolationFound<'_> {
    fn emit(self, m: &PolicyMetrics) {
        let r#type = self.r#type.as_str();
        tracing::info!(r#type, code = self.code, path = self.path, blocking = self.blocking, "policy violation");
        m.violations.get_or_create(&ViolationLabels { r#type }).inc();
    }
}

/// A patch was scored.
pub struct PatchScored {
    pub danger_score: f64,
    pub label: PrLabel,
    pub allowed: bool,
    pub violations: usize,
}

impl InternalEvent<PolicyMetrics> for PatchScored {
    fn emit(self, m: &PolicyMetrics) {
        tracing::info!(
            danger_score = self.danger_score,
            pr_label = self.label.as_str(),
            allowed = self.allowed,
            violations = self.violations,
            "patch scored"
        );
        m.danger.observe(self.danger_score, TraceExemplar::current(), None);
    }
}

#[cfg(test)]
mod tests {
    use sre_telemetry::Emit;
    use sre_telemetry::testing::assert_event_agrees;

    use super::*;

    #[test]
    fn every_event_logs_what_it_counts() {
        let registry = SharedRegistry::default();
        let m = PolicyMetrics::register(&registry);
        for t in ViolationType::ALL {
            let code = format!("{}.x", t.as_str());
            assert_event_agrees(&registry, || {
                m.emit(ViolationFound { r#type: *t, code: &code, path: "a", blocking: true })
            });
        }
        let changed = assert_event_agrees(&registry, || {
            m.emit(PatchScored { danger_score: 35.0, label: PrLabel::NeedsReview, allowed: true, violations: 0 })
        });
        // 35 falls in the seed's 20_40 range: le=40 and above moved, le=20 did not.
        let moved = |le: &str| {
            changed.iter().any(|(n, l)| n.ends_with("_bucket") && l.get("le").map(String::as_str) == Some(le))
        };
        assert!(moved("40") && moved("+Inf") && !moved("20"), "{changed:?}");
    }
}
