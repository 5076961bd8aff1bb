//! The orchestrator's notable occurrences. Each is one type whose `emit` writes the log line and moves the
//! seed metric with the same bounded label values, so logs and metrics never disagree.
//!
//! Families (docs/observability.md): `sre_agent_pipeline_runs_total{outcome}`,
//! `sre_agent_pipeline_stage_duration_seconds{stage}`, `sre_agent_pipeline_retry_total{reason}`,
//! `sre_agent_pipeline_loop_blocked_total{reason}`, `sre_agent_pipeline_throttled_total{scope}`,
//! `sre_agent_celery_tasks_total{task,status}`, `sre_agent_queue_depth{queue}`,
//! `sre_agent_queue_pending{queue}`, `sre_agent_queue_delayed{queue}`. Every bounded series exists from the
//! first scrape.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use sre_domain::{Label, LoopBlockedReason, Outcome, RetryReason, Stage, StageStatus, Task, TaskStatus, ThrottleScope};
use sre_telemetry::metrics::{STAGE_BUCKETS, TraceExemplar};
use sre_telemetry::{InternalEvent, SharedRegistry};

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
struct ScopeLabels {
    scope: &'static str,
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

/// The one job queue (the `queue` label).
const QUEUE: &str = "pipeline";

/// The orchestrator's metric families.
#[derive(Clone)]
pub struct PipelineMetrics {
    runs: Family<OutcomeLabels, Counter>,
    stage_duration: Family<StageLabels, HistogramWithExemplars<TraceExemplar>>,
    retries: Family<ReasonLabels, Counter>,
    loop_blocked: Family<ReasonLabels, Counter>,
    throttled: Family<ScopeLabels, Counter>,
    tasks: Family<TaskLabels, Counter>,
    depth: Family<QueueLabels, Gauge>,
    pending: Family<QueueLabels, Gauge>,
    delayed: Family<QueueLabels, Gauge>,
}

impl PipelineMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self {
            runs: Family::default(),
            stage_duration: Family::new_with_constructor(|| HistogramWithExemplars::new(STAGE_BUCKETS.into_iter())),
            retries: Family::default(),
            loop_blocked: Family::default(),
            throttled: Family::default(),
            tasks: Family::default(),
            depth: Family::default(),
            pending: Family::default(),
            delayed: Family::default(),
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
            "sre_agent_pipeline_throttled",
            "Runs deferred or refused by a limit, by scope",
            this.throttled.clone(),
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
        registry.register("sre_agent_queue_delayed", "Jobs scheduled for a later retry", this.delayed.clone());
        // Every bounded series starts at zero so rates, ratios and absent() alerts mean something at once.
        for o in Outcome::ALL {
            let _ = this.runs.get_or_create(&OutcomeLabels { outcome: o.as_str() });
        }
        for s in Stage::ALL.iter().filter(|s| **s != Stage::Ingest) {
            let _ = this.stage_duration.get_or_create(&StageLabels { stage: s.as_str() });
        }
        for r in RetryReason::ALL {
            let _ = this.retries.get_or_create(&ReasonLabels { reason: r.as_str() });
        }
        for r in LoopBlockedReason::ALL {
            let _ = this.loop_blocked.get_or_create(&ReasonLabels { reason: r.as_str() });
        }
        for s in ThrottleScope::ALL {
            let _ = this.throttled.get_or_create(&ScopeLabels { scope: s.as_str() });
        }
        for task in Task::ALL {
            for status in TaskStatus::ALL {
                let _ = this.tasks.get_or_create(&TaskLabels { task: task.as_str(), status: status.as_str() });
            }
        }
        for g in [&this.depth, &this.pending, &this.delayed] {
            let _ = g.get_or_create(&QueueLabels { queue: QUEUE });
        }
        this
    }

    /// Queue gauges (not events: a sample of state, read every few seconds).
    pub fn queue(&self, depth: sre_queue::Depth, delayed: u64) {
        let labels = QueueLabels { queue: QUEUE };
        self.depth.get_or_create(&labels).set((depth.lag + depth.pending) as i64);
        self.pending.get_or_create(&labels).set(depth.pending as i64);
        self.delayed.get_or_create(&labels).set(delayed as i64);
    }
}

/// A job-queue task changed status (started, success, fail, retry).
pub struct TaskStatusChanged<'a> {
    pub task: Task,
    pub status: TaskStatus,
    /// Why, for fail and retry; empty otherwise.
    pub reason: &'a str,
}

impl InternalEvent<PipelineMetrics> for TaskStatusChanged<'_> {
    fn emit(self, m: &PipelineMetrics) {
        let (task, status) = (self.task.as_str(), self.status.as_str());
        match self.status {
            TaskStatus::Started | TaskStatus::Success => tracing::debug!(task, status, "task {status}"),
            TaskStatus::Fail | TaskStatus::Retry => {
                tracing::info!(task, status, reason = self.reason, "task {status}");
            }
        }
        m.tasks.get_or_create(&TaskLabels { task, status }).inc();
    }
}

/// One stage ended (its span carries the same `stage` and `outcome`).
pub struct StageFinished {
    pub stage: Stage,
    pub status: StageStatus,
    pub elapsed: Duration,
}

impl InternalEvent<PipelineMetrics> for StageFinished {
    fn emit(self, m: &PipelineMetrics) {
        let stage = self.stage.as_str();
        tracing::info!(
            stage,
            span_name = self.stage.span_name(),
            outcome = self.status.as_str(),
            duration_ms = self.elapsed.as_millis() as u64,
            "stage finished"
        );
        m.stage_duration.get_or_create(&StageLabels { stage }).observe(
            self.elapsed.as_secs_f64(),
            TraceExemplar::current(),
            None,
        );
    }
}

/// A run concluded and was recorded.
pub struct RunFinished<'a> {
    pub outcome: Outcome,
    pub reason: &'a str,
    pub attempts: u32,
    pub danger_score: Option<f64>,
    pub pr_number: Option<u64>,
}

impl InternalEvent<PipelineMetrics> for RunFinished<'_> {
    fn emit(self, m: &PipelineMetrics) {
        let outcome = self.outcome.as_str();
        tracing::info!(
            outcome,
            reason = self.reason,
            attempts = self.attempts,
            danger_score = self.danger_score,
            pr_number = self.pr_number,
            "pipeline run finished"
        );
        m.runs.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

/// A run was scheduled to run again later (or its job was redelivered by the queue).
pub struct RetryScheduled<'a> {
    pub reason: RetryReason,
    pub attempt: u32,
    /// Zero for a redelivery (the job runs now).
    pub delay: Duration,
    pub detail: &'a str,
}

impl InternalEvent<PipelineMetrics> for RetryScheduled<'_> {
    fn emit(self, m: &PipelineMetrics) {
        let reason = self.reason.as_str();
        tracing::warn!(
            reason,
            attempt = self.attempt,
            delay_ms = self.delay.as_millis() as u64,
            detail = self.detail,
            "run retried"
        );
        m.retries.get_or_create(&ReasonLabels { reason }).inc();
    }
}

/// The loop guard stopped a run.
pub struct LoopBlocked<'a> {
    pub reason: LoopBlockedReason,
    pub attempts: u32,
    pub detail: &'a str,
}

impl InternalEvent<PipelineMetrics> for LoopBlocked<'_> {
    fn emit(self, m: &PipelineMetrics) {
        let reason = self.reason.as_str();
        tracing::warn!(reason, attempts = self.attempts, detail = self.detail, "loop guard blocked the run");
        m.loop_blocked.get_or_create(&ReasonLabels { reason }).inc();
    }
}

/// A limit deferred or refused a run.
pub struct Throttled<'a> {
    pub scope: ThrottleScope,
    pub detail: &'a str,
}

impl InternalEvent<PipelineMetrics> for Throttled<'_> {
    fn emit(self, m: &PipelineMetrics) {
        let scope = self.scope.as_str();
        tracing::warn!(scope, detail = self.detail, "run throttled");
        m.throttled.get_or_create(&ScopeLabels { scope }).inc();
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
        let m = PipelineMetrics::register(&registry);
        for task in Task::ALL {
            for status in TaskStatus::ALL {
                assert_event_agrees(&registry, || {
                    m.emit(TaskStatusChanged { task: *task, status: *status, reason: "r" });
                });
            }
        }
        for stage in Stage::ALL.iter().filter(|s| **s != Stage::Ingest) {
            for status in StageStatus::ALL {
                let elapsed = Duration::from_millis(5);
                assert_event_agrees(&registry, || m.emit(StageFinished { stage: *stage, status: *status, elapsed }));
            }
        }
        for outcome in Outcome::ALL {
            assert_event_agrees(&registry, || {
                m.emit(RunFinished { outcome: *outcome, reason: "", attempts: 1, danger_score: None, pr_number: None });
            });
        }
        for reason in RetryReason::ALL {
            assert_event_agrees(&registry, || {
                m.emit(RetryScheduled { reason: *reason, attempt: 1, delay: Duration::ZERO, detail: "d" });
            });
        }
        for reason in LoopBlockedReason::ALL {
            assert_event_agrees(&registry, || m.emit(LoopBlocked { reason: *reason, attempts: 4, detail: "d" }));
        }
        for scope in ThrottleScope::ALL {
            assert_event_agrees(&registry, || m.emit(Throttled { scope: *scope, detail: "d" }));
        }
    }

    #[test]
    fn every_bounded_series_exists_before_any_event() {
        let registry = SharedRegistry::default();
        let _m = PipelineMetrics::register(&registry);
        let text = registry.encode(false);
        for reason in ["cooldown", "repo_throttled", "transient_error", "celery_retry"] {
            assert!(text.contains(&format!("sre_agent_pipeline_retry_total{{reason=\"{reason}\"}} 0")), "{text}");
        }
        assert!(text.contains("sre_agent_pipeline_throttled_total{scope=\"repo_concurrency\"} 0"), "{text}");
        assert!(text.contains("sre_agent_celery_tasks_total{task=\"build_failure_context\",status=\"fail\"} 0"));
    }
}
