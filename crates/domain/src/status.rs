//! Where a run and its stages stand, and how a run ended.

use crate::label_enum;

label_enum! {
    /// A run's status. `queued` and `running` are live; the rest are terminal and equal an [`Outcome`].
    pub enum RunStatus {
        /// Stored and waiting for a worker (also while a delayed retry is due: see `Run::retry_at_ms`).
        Queued => "queued",
        /// Claimed by a worker.
        Running => "running",
        Success => "success",
        Fail => "fail",
        Blocked => "blocked",
        Skipped => "skipped",
    }
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        self.outcome().is_some()
    }

    /// The outcome a terminal status stands for.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            Self::Queued | Self::Running => None,
            Self::Success => Some(Outcome::Success),
            Self::Fail => Some(Outcome::Fail),
            Self::Blocked => Some(Outcome::Blocked),
            Self::Skipped => Some(Outcome::Skipped),
        }
    }
}

label_enum! {
    /// How a run ended: the seed's `outcome` of `sre_agent_pipeline_runs_total` and of the spans.
    pub enum Outcome {
        /// A PR was opened (or updated) for the fix.
        Success => "success",
        /// A stage failed for good (not worth a retry).
        Fail => "fail",
        /// Refused: policy, a scanner, the loop guard or a hygiene rule.
        Blocked => "blocked",
        /// Nothing to do: no rule or model fixes it, or the fix is empty.
        Skipped => "skipped",
    }
}

impl From<Outcome> for RunStatus {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Success => Self::Success,
            Outcome::Fail => Self::Fail,
            Outcome::Blocked => Self::Blocked,
            Outcome::Skipped => Self::Skipped,
        }
    }
}

label_enum! {
    /// How one stage ended (the `outcome` attribute of a stage span).
    pub enum StageStatus {
        Ok => "ok",
        /// Failed for good; the run ends `fail`.
        Failed => "failed",
        /// The stage's decision ended the run `blocked`.
        Blocked => "blocked",
        /// The stage's result ended the run `skipped`.
        Skipped => "skipped",
        /// Failed transiently; the run was scheduled again.
        Retry => "retry",
    }
}

label_enum! {
    /// The pipeline's stages, in order: the seed's `stage` label of `sre_agent_pipeline_stage_duration_seconds`.
    pub enum Stage {
        /// The gateway's webhook ingest.
        Ingest => "ingest",
        Plan => "plan",
        PolicyPlan => "policy_plan",
        Patch => "patch",
        PolicyPatch => "policy_patch",
        Scans => "scans",
        Validate => "validate",
        PrCreate => "pr_create",
        PersistArtifact => "persist_artifact",
    }
}

impl Stage {
    /// The seed's span name for the stage.
    pub fn span_name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest_webhook",
            Self::Plan => "generate_plan",
            Self::PolicyPlan => "policy_check_plan",
            Self::Patch => "generate_patch",
            Self::PolicyPatch => "policy_check_patch",
            Self::Scans => "run_scans",
            Self::Validate => "sandbox_validate",
            Self::PrCreate => "create_pr",
            Self::PersistArtifact => "persist_artifact",
        }
    }
}
