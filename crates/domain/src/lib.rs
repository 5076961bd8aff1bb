//! The typed run domain shared by every process.
//!
//! - [`label`]: bounded enums with exactly one spelling each ([`Label::as_str`]), used for metric labels,
//!   span attributes, database columns and wire fields alike;
//! - [`status`]: run and stage statuses, outcomes, the pipeline's stages;
//! - [`failure`]: GitHub's events and conclusions, and the diagnosis vocabulary (category, language, tool,
//!   PR label);
//! - [`signals`]: the remaining bounded label sets of the seed's metrics (retry, loop guard, throttling, task,
//!   scanner, severity, scan failure, violation type, validation result) and the artifact kinds;
//! - [`run`]: the run record ([`Run`], [`Failure`], [`StageRecord`]) and its partial update ([`RunPatch`]);
//! - [`wire`]: the one mapping between these types and the sre.v1 protobuf messages.

pub mod failure;
pub mod label;
pub mod run;
pub mod signals;
pub mod status;
pub mod wire;

pub use failure::{Category, Conclusion, EventKind, Language, PrLabel, Tool};
pub use label::{Label, UnknownLabel};
pub use run::{
    AGENT_BRANCH_PREFIX, Failure, PullRequestRef, Run, RunIds, RunPatch, StageRecord, agent_branch, short_key,
    short_sha,
};
pub use signals::{
    ArtifactKind, LoopBlockedReason, RetryReason, ScanFailReason, Scanner, Severity, Task, TaskStatus, ThrottleScope,
    ValidationResult, ViolationType,
};
pub use status::{Outcome, RunStatus, Stage, StageStatus};
pub use wire::{RunContextExt, decision_label};

#[cfg(test)]
mod tests {
    use super::*;

    fn unique<L: Label>() {
        let mut seen = std::collections::BTreeSet::new();
        for v in L::ALL {
            assert!(seen.insert(v.as_str()), "{} spelled twice", v.as_str());
            assert_eq!(L::parse(v.as_str()), Some(*v));
        }
    }

    #[test]
    fn every_enum_has_one_spelling_per_value() {
        unique::<RunStatus>();
        unique::<Outcome>();
        unique::<StageStatus>();
        unique::<Stage>();
        unique::<EventKind>();
        unique::<Conclusion>();
        unique::<Category>();
        unique::<Language>();
        unique::<Tool>();
        unique::<PrLabel>();
        unique::<RetryReason>();
        unique::<LoopBlockedReason>();
        unique::<ThrottleScope>();
        unique::<Task>();
        unique::<TaskStatus>();
        unique::<Scanner>();
        unique::<Severity>();
        unique::<ScanFailReason>();
        unique::<ViolationType>();
        unique::<ValidationResult>();
        unique::<ArtifactKind>();
    }

    #[test]
    fn statuses_and_outcomes_agree() {
        for o in Outcome::ALL {
            let s = RunStatus::from(*o);
            assert_eq!(s.as_str(), o.as_str());
            assert_eq!(s.outcome(), Some(*o));
        }
        assert!(!RunStatus::Queued.is_terminal() && !RunStatus::Running.is_terminal());
    }

    #[test]
    fn the_strictest_label_wins() {
        assert_eq!(PrLabel::NeedsReview.strictest(PrLabel::Safe), PrLabel::NeedsReview);
        assert_eq!(PrLabel::Safe.strictest(PrLabel::NeedsReview), PrLabel::NeedsReview);
        assert_eq!(PrLabel::Safe.strictest(PrLabel::Unknown), PrLabel::Unknown);
        assert_eq!(PrLabel::Unknown.strictest(PrLabel::NeedsReview), PrLabel::NeedsReview);
        assert_eq!(PrLabel::Safe.strictest(PrLabel::Safe), PrLabel::Safe);
    }

    #[test]
    fn serde_uses_the_spelling() {
        assert_eq!(serde_json::to_string(&PrLabel::NeedsReview).unwrap(), "\"needs-review\"");
        assert_eq!(serde_json::from_str::<Stage>("\"policy_plan\"").unwrap(), Stage::PolicyPlan);
        assert!(serde_json::from_str::<Stage>("\"nope\"").is_err());
        assert_eq!("fail".parse::<RunStatus>().unwrap(), RunStatus::Fail);
        assert_eq!("failed".parse::<RunStatus>().unwrap_err().to_string(), "unknown RunStatus \"failed\"");
    }

    #[test]
    fn event_headers() {
        assert_eq!(EventKind::from_header("workflow_job"), EventKind::WorkflowJob);
        assert_eq!(EventKind::from_header("local"), EventKind::Other);
        assert_eq!(EventKind::from_header("push"), EventKind::Other);
    }

    fn failure() -> Failure {
        Failure {
            repo: "acme/app".into(),
            head_sha: "0123456789abcdef0123".into(),
            head_branch: "main".into(),
            event: Some(EventKind::WorkflowJob),
            conclusion: Some(Conclusion::Failure),
            run_attempt: 2,
            workflow_name: "CI".into(),
            workflow_run_id: Some(77),
            job_name: "lint".into(),
            job_id: Some(901),
            check_suite_id: None,
            installation_id: Some(5),
        }
    }

    #[test]
    fn a_new_run_keeps_every_fact_and_maps_to_the_wire() {
        let run = Run::new("r-1".into(), "d-1".into(), failure(), 10);
        assert_eq!(run.failure_id, "workflow_job:901");
        assert_eq!(run.correlation_id, "r-1");
        let ctx = run.context();
        assert_eq!((ctx.repo.as_str(), ctx.language.as_str()), ("acme/app", ""));
        assert_eq!(ctx.language().unwrap(), None);
        let info = sre_proto::FailureInfo::from(&run.failure);
        assert_eq!((info.run_attempt, info.job_id, info.installation_id), (2, 901, 5));
        assert_eq!(info.event, "workflow_job");
        let mut bad = ctx.clone();
        bad.category = "build".into();
        assert_eq!(bad.category().unwrap_err().to_string(), "unknown Category \"build\"");
    }

    #[test]
    fn patches_change_only_what_they_name() {
        let mut run = Run::new("r".into(), "d".into(), failure(), 0);
        run.label = Some(PrLabel::Safe);
        run.stages.push(StageRecord {
            stage: Stage::Plan,
            status: StageStatus::Ok,
            attempt: 1,
            duration_ms: 3,
            detail: String::new(),
        });
        RunPatch { status: Some(RunStatus::Queued), retry_at_ms: Some(Some(99)), ..RunPatch::default() }
            .apply(&mut run);
        assert_eq!((run.status, run.retry_at_ms, run.label), (RunStatus::Queued, Some(99), Some(PrLabel::Safe)));
        assert_eq!(run.stages.len(), 1);
        RunPatch::concluded(Outcome::Skipped, "nothing to fix").apply(&mut run);
        assert_eq!((run.status, run.retry_at_ms, run.reason.as_str()), (RunStatus::Skipped, None, "nothing to fix"));
    }
}
