//! What the pr service logs and counts, every series present from the first scrape:
//! - `sre_agent_pr_created_total{label}`, label ∈ {safe, needs-review, unknown}: pull requests opened (only
//!   `created` counts here);
//! - `sre_agent_pr_updates_total{action}`, action ∈ {created, updated, unchanged, refused}: every answered
//!   call by what it did to the run_key's branch and pull request.
//!
//! The GitHub client's families (`sre_agent_github_*`) are registered beside them by [`crate::build`]. No
//! PR URL, diff or refusal reason (it names people) is logged.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sre_domain::{Label, PrLabel, label_enum};
use sre_proto::PrAction;
use sre_telemetry::{InternalEvent, SharedRegistry};

label_enum! {
    /// `action` of `sre_agent_pr_updates_total`: what a call did (`PrAction` without UNSPECIFIED).
    pub enum PrOutcome {
        Created => "created",
        Updated => "updated",
        Unchanged => "unchanged",
        Refused => "refused",
    }
}

impl PrOutcome {
    pub fn action(self) -> PrAction {
        match self {
            Self::Created => PrAction::Created,
            Self::Updated => PrAction::Updated,
            Self::Unchanged => PrAction::Unchanged,
            Self::Refused => PrAction::Refused,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LabelLabels {
    label: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Clone)]
pub struct PrMetrics {
    created: Family<LabelLabels, Counter>,
    updates: Family<ActionLabels, Counter>,
}

impl PrMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self { created: Family::default(), updates: Family::default() };
        registry.register("sre_agent_pr_created", "Pull requests opened, by label", this.created.clone());
        registry.register(
            "sre_agent_pr_updates",
            "Pull request calls by what they did to the failure's branch and pull request",
            this.updates.clone(),
        );
        for l in PrLabel::ALL {
            let _ = this.created.get_or_create(&LabelLabels { label: l.as_str() });
        }
        for a in PrOutcome::ALL {
            let _ = this.updates.get_or_create(&ActionLabels { action: a.as_str() });
        }
        this
    }
}

/// A call was answered: a pull request created, updated, left unchanged, or its branch refused.
pub struct PullRequestDone<'a> {
    pub action: PrOutcome,
    pub label: PrLabel,
    pub number: u64,
    pub branch: &'a str,
    pub commit_sha: &'a str,
    pub backend: &'static str,
}

impl InternalEvent<PrMetrics> for PullRequestDone<'_> {
    fn emit(self, m: &PrMetrics) {
        let (label, action) = (self.label.as_str(), self.action.as_str());
        let (number, branch, commit_sha, backend) = (self.number, self.branch, self.commit_sha, self.backend);
        match self.action {
            PrOutcome::Created => {
                tracing::info!(action, label, number, branch, commit_sha, backend, "pull request created");
            }
            PrOutcome::Updated => {
                tracing::info!(action, label, number, branch, commit_sha, backend, "pull request updated");
            }
            PrOutcome::Unchanged => {
                tracing::info!(action, label, number, branch, commit_sha, backend, "pull request already up to date");
            }
            PrOutcome::Refused => tracing::warn!(
                action,
                label,
                number,
                branch,
                commit_sha,
                backend,
                "branch holds someone else's commits; nothing pushed"
            ),
        }
        m.updates.get_or_create(&ActionLabels { action }).inc();
        if self.action == PrOutcome::Created {
            m.created.get_or_create(&LabelLabels { label }).inc();
        }
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
        let text = registry.encode(false);
        for a in PrOutcome::ALL {
            assert!(text.contains(&format!("sre_agent_pr_updates_total{{action=\"{}\"}} 0", a.as_str())), "{text}");
        }
        for label in PrLabel::ALL {
            for action in PrOutcome::ALL {
                let changed = assert_event_agrees(&registry, || {
                    m.emit(PullRequestDone {
                        action: *action,
                        label: *label,
                        number: 1,
                        branch: "b",
                        commit_sha: "c",
                        backend: "local",
                    })
                });
                let created = changed.iter().any(|(name, _)| name == "sre_agent_pr_created_total");
                assert_eq!(created, *action == PrOutcome::Created, "{action}: {changed:?}");
            }
        }
    }

    #[test]
    fn outcomes_map_to_actions() {
        let actions: Vec<PrAction> = PrOutcome::ALL.iter().map(|o| o.action()).collect();
        assert_eq!(actions, [PrAction::Created, PrAction::Updated, PrAction::Unchanged, PrAction::Refused]);
    }
}
