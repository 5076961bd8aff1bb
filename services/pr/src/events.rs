//! What the pr service logs and counts: `sre_agent_pr_created_total{label}`, label ∈ {safe, needs-review,
//! unknown}, every series present from the first scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sre_domain::{Label, PrLabel};
use sre_telemetry::{InternalEvent, SharedRegistry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LabelLabels {
    label: &'static str,
}

#[derive(Clone)]
pub struct PrMetrics {
    created: Family<LabelLabels, Counter>,
}

impl PrMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self { created: Family::default() };
        registry.register("sre_agent_pr_created", "Pull requests opened, by label", this.created.clone());
        for l in PrLabel::ALL {
            let _ = this.created.get_or_create(&LabelLabels { label: l.as_str() });
        }
        this
    }
}

/// A pull request was opened. (Its URL is never logged.)
pub struct PrCreated<'a> {
    pub label: PrLabel,
    pub number: u64,
    pub branch: &'a str,
    pub commit_sha: &'a str,
    pub backend: &'static str,
}

impl InternalEvent<PrMetrics> for PrCreated<'_> {
    fn emit(self, m: &PrMetrics) {
        let label = self.label.as_str();
        tracing::info!(
            label,
            number = self.number,
            branch = self.branch,
            commit_sha = self.commit_sha,
            backend = self.backend,
            "pull request created"
        );
        m.created.get_or_create(&LabelLabels { label }).inc();
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
        let m = PrMetrics::register(&registry);
        for label in PrLabel::ALL {
            assert_event_agrees(&registry, || {
                m.emit(PrCreated { label: *label, number: 1, branch: "b", commit_sha: "c", backend: "local" })
            });
        }
    }
}
