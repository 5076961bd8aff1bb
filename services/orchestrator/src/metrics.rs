//! The pipeline's metric families, with the seed's names and bounded label sets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use sre_telemetry::SharedRegistry;
use sre_telemetry::metrics::{STAGE_BUCKETS, TraceExemplar};

/// Pipeline stages: the span name and the seed's `stage` label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Plan,
    PolicyPlan,
    Patch,
    PolicyPatch,
    Scans,
    Validate,
    PrCreate,
    PersistArtifact,
}

impl Stage {
    /// The span name (seed's span list).
    pub fn span_name(self) -> &'static str {
        match self {
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

    /// The metric label (seed's stage enum).
    pub fn label(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::PolicyPlan => "policy_plan",
            Self::Patch => "patch",
            Self::PolicyPatch => "policy_patch",
            Self::Scans => "scans",
            Self::Validate => "validate",
            Self::PrCreate => "pr_create",
            Self::PersistArtifact => "persist_artifact",
        }
    }
}

/// How a run ended: the seed's outcome enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Fail,
    Blocked,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Fail => "fail",
            Self::Blocked => "blocked",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: &'static str,
    status: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

/// The one task family of the job queue (the seed's Celery task names).
pub const TASK: &str = "run_fix_pipeline";

#[derive(Clone)]
pub struct PipelineMetrics {
    runs: Family<OutcomeLabels, Counter>,
    stage_duration: Family<StageLabels, HistogramWithExemplars<TraceExemplar>>,
    retries: Family<ReasonLabels, Counter>,
    loop_blocked: Family<ReasonLabels, Counter>,
    tasks: Family<TaskLabels, Counter>,
    depth: Family<QueueLabels, Gauge>,
    pending: Family<QueueLabels, Gauge>,
}

impl PipelineMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self {
            runs: Family::default(),
            stage_duration: Family::new_with_constructor(|| HistogramWithExemplars::new(STAGE_BUCKETS.into_iter())),
            retries: Family::default(),
            loop_blocked: Family::default(),
            tasks: Family::default(),
            depth: Family::default(),
            pending: Family::default(),
        };
        registry.register("sre_agent_pipeline_runs", "Pipeline runs by outcome", this.runs.clone());
        registry.register(
            "sre_agent_pipeline_stage_duration_seconds",
            "Pipeline stage duration",
            this.stage_duration.clone(),
        );
        registry.register("sre_agent_pipeline_retry", "Pipeline retries by reason", this.retries.clone());
        registry.register(
            "sre_agent_pipeline_loop_blocked",
            "Runs stopped by the loop guard",
            this.loop_blocked.clone(),
        );
        registry.register(
            "sre_agent_celery_tasks",
            "Job-queue tasks by status (\"celery\" names the job-queue task family)",
            this.tasks.clone(),
        );
        registry.register(
            "sre_agent_queue_depth",
            "Jobs waiting in the queue: not yet delivered plus delivered and unacknowledged",
            this.depth.clone(),
        );
        registry.register(
            "sre_agent_queue_pending",
            "Jobs delivered to a worker and not yet acknowledged",
            this.pending.clone(),
        );
        // Known series start at zero so rates and ratios exist before the first event.
        for outcome in [Outcome::Success, Outcome::Fail, Outcome::Blocked, Outcome::Skipped] {
            let _ = this.runs.get_or_create(&OutcomeLabels { outcome: outcome.as_str() });
        }
        for status in ["started", "success", "fail", "retry"] {
            let _ = this.tasks.get_or_create(&TaskLabels { task: TASK, status });
        }
        this
    }

    pub fn outcome(&self, outcome: Outcome) {
        self.runs.get_or_create(&OutcomeLabels { outcome: outcome.as_str() }).inc();
    }

    pub fn stage(&self, stage: Stage, seconds: f64) {
        self.stage_duration.get_or_create(&StageLabels { stage: stage.label() }).observe(
            seconds,
            TraceExemplar::current(),
            None,
        );
    }

    /// `reason` ∈ cooldown, repo_throttled, transient_error, celery_retry.
    pub fn retry(&self, reason: &'static str) {
        self.retries.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// `reason` ∈ max_attempts, blocked_reason_other.
    pub fn loop_blocked(&self, reason: &'static str) {
        self.loop_blocked.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// `status` ∈ started, success, fail, retry.
    pub fn task(&self, status: &'static str) {
        self.tasks.get_or_create(&TaskLabels { task: TASK, status }).inc();
    }

    pub fn queue(&self, depth: sre_queue::Depth) {
        let labels = QueueLabels { queue: "pipeline" };
        self.depth.get_or_create(&labels).set((depth.lag + depth.pending) as i64);
        self.pending.get_or_create(&labels).set(depth.pending as i64);
    }
}
