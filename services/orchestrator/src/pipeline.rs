//! The fix pipeline: plan → policy(plan) → patch → policy(patch) → scans → validate → PR → persist, one
//! span per stage (the parent of the gRPC client span it makes), stage durations into the seed's histogram.

use std::future::Future;
use std::time::Instant;

use sre_proto::{
    CheckPatchRequest, CheckPlanRequest, CreatePullRequestRequest, FailureInfo, GeneratePatchRequest,
    GeneratePlanRequest, RunContext, RunScansRequest, ValidateRequest,
};
use sre_store::{RunRecord, RunUpdate, StageResult, Store};
use tonic::{Code, Status};
use tracing::Instrument;
use tracing::field::Empty;

use crate::clients::Clients;
use crate::metrics::{Outcome, PipelineMetrics, Stage};

/// Why a run could not conclude.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Worth retrying: a service was unreachable or overloaded.
    #[error("{stage}: {message}")]
    Transient { stage: &'static str, message: String },
}

/// A stage that ended the run early.
enum Stop {
    Transient(&'static str, String),
    Failed(String),
}

/// What a concluded run found.
pub struct Concluded {
    pub outcome: Outcome,
    pub update: RunUpdate,
}

fn is_transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Cancelled
    )
}

#[derive(Clone)]
pub struct Pipeline {
    clients: Clients,
    metrics: PipelineMetrics,
    /// Where each finished stage is recorded as progress (and heartbeat).
    store: sre_store::StoreCell,
    validate_timeout_seconds: u32,
}

impl Pipeline {
    pub fn new(
        clients: Clients,
        metrics: PipelineMetrics,
        store: sre_store::StoreCell,
        validate_timeout: std::time::Duration,
    ) -> Self {
        let validate_timeout_seconds = validate_timeout.as_secs().min(u64::from(u32::MAX)) as u32;
        Self { clients, metrics, store, validate_timeout_seconds }
    }

    pub fn metrics(&self) -> &PipelineMetrics {
        &self.metrics
    }

    /// Runs one stage in its own span, timing it and recording its result.
    async fn stage<T>(
        &self,
        run_id: &str,
        stages: &mut Vec<StageResult>,
        stage: Stage,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Stop> {
        let span = tracing::info_span!(
            "pipeline_stage",
            otel.name = stage.span_name(),
            stage = stage.label(),
            outcome = Empty,
            otel.status_code = Empty,
        );
        let start = Instant::now();
        let result = call.instrument(span.clone()).await;
        let elapsed = start.elapsed();
        span.in_scope(|| self.metrics.stage(stage, elapsed.as_secs_f64()));
        let (status, out) = match result {
            Ok(resp) => ("ok", Ok(resp.into_inner())),
            Err(status) => {
                span.record("otel.status_code", "ERROR");
                let message = format!("{}: {}", sre_telemetry::grpc::code_name(status.code() as i32), status.message());
                span.in_scope(|| tracing::warn!(stage = stage.span_name(), error = %message, "stage failed"));
                if is_transient(&status) {
                    ("retry", Err(Stop::Transient(stage.span_name(), message)))
                } else {
                    ("failed", Err(Stop::Failed(format!("{} failed: {message}", stage.span_name()))))
                }
            }
        };
        span.record("outcome", status);
        stages.push(StageResult {
            stage: stage.span_name().to_owned(),
            status: status.to_owned(),
            duration_ms: elapsed.as_millis() as u64,
            detail: String::new(),
        });
        // Progress for the runs API and the heartbeat of the stale-run sweep; never fatal.
        if let Some(store) = self.store.get()
            && let Err(err) = store.record_progress(run_id, stages).await
        {
            tracing::debug!(error = %err, "could not record progress");
        }
        out
    }

    /// Marks the last stage with the decision that ended the run.
    fn conclude(stages: &mut [StageResult], status: &str, detail: String) {
        if let Some(last) = stages.last_mut() {
            last.status = status.to_owned();
            last.detail = detail;
        }
    }

    /// Runs the stages for `run`. `Ok` means the run concluded (any outcome); `Err` means retry later.
    pub async fn run(&self, run: &RunRecord) -> Result<Concluded, PipelineError> {
        let mut stages = Vec::new();
        let mut update = RunUpdate::default();
        let result = self.stages(run, &mut stages, &mut update).await;
        let span = tracing::Span::current();
        let (outcome, reason) = match result {
            Ok(done) => done,
            Err(Stop::Failed(reason)) => (Outcome::Fail, reason),
            Err(Stop::Transient(stage, message)) => return Err(PipelineError::Transient { stage, message }),
        };
        span.record("outcome", outcome.as_str());
        update.status = outcome.as_str().to_owned();
        update.reason = reason;
        update.stages = stages;
        Ok(Concluded { outcome, update })
    }

    async fn stages(
        &self,
        run: &RunRecord,
        stages: &mut Vec<StageResult>,
        update: &mut RunUpdate,
    ) -> Result<(Outcome, String), Stop> {
        let mut ctx = RunContext {
            delivery_id: run.delivery_id.clone(),
            run_key: run.run_key.clone(),
            failure_id: run.failure_id.clone(),
            run_id: run.run_id.clone(),
            correlation_id: run.correlation_id.clone(),
            repo: run.repo.clone(),
            head_sha: run.head_sha.clone(),
            language: String::new(),
            category: String::new(),
            tool: String::new(),
            attempt: run.attempts.max(1) as u32,
        };
        let failure = FailureInfo {
            event: run.failure_id.split(':').next().unwrap_or_default().to_owned(),
            job_name: run.failure_name.clone(),
            conclusion: "failure".into(),
            head_branch: run.head_branch.clone(),
            run_attempt: 1,
            ..FailureInfo::default()
        };
        let span = tracing::Span::current();

        let planned = self
            .stage(
                &run.run_id,
                stages,
                Stage::Plan,
                self.clients
                    .planner
                    .clone()
                    .generate_plan(GeneratePlanRequest { context: Some(ctx.clone()), failure: Some(failure) }),
            )
            .await?;
        if let Some(planned_ctx) = planned.context {
            ctx.language = planned_ctx.language;
            ctx.category = planned_ctx.category;
        }
        update.language.clone_from(&ctx.language);
        update.category.clone_from(&ctx.category);
        span.record("language", ctx.language.as_str());
        span.record("category", ctx.category.as_str());
        let plan = planned.plan.unwrap_or_default();
        if plan.steps.is_empty() {
            Self::conclude(stages, "skipped", plan.summary.clone());
            return Ok((Outcome::Skipped, plan.summary));
        }

        let decision = self
            .stage(
                &run.run_id,
                stages,
                Stage::PolicyPlan,
                self.clients
                    .policy
                    .clone()
                    .check_plan(CheckPlanRequest { context: Some(ctx.clone()), plan: Some(plan.clone()) }),
            )
            .await?;
        if !decision.allowed {
            let codes = violation_codes(&decision.violations);
            Self::conclude(stages, "blocked", codes.clone());
            return Ok((Outcome::Blocked, format!("plan blocked by policy: {codes}")));
        }

        let patch = self
            .stage(
                &run.run_id,
                stages,
                Stage::Patch,
                self.clients
                    .planner
                    .clone()
                    .generate_patch(GeneratePatchRequest { context: Some(ctx.clone()), plan: Some(plan.clone()) }),
            )
            .await?;
        if patch.diff.trim().is_empty() {
            Self::conclude(stages, "skipped", "the plan produced no change".into());
            return Ok((Outcome::Skipped, "the plan produced no change".into()));
        }
        update.diff = Some(patch.diff.clone());

        let decision = self
            .stage(
                &run.run_id,
                stages,
                Stage::PolicyPatch,
                self.clients
                    .policy
                    .clone()
                    .check_patch(CheckPatchRequest { context: Some(ctx.clone()), diff: patch.diff.clone() }),
            )
            .await?;
        update.danger_score = Some(decision.danger_score);
        update.label.clone_from(&decision.label);
        span.record("pr_label", decision.label.as_str());
        if !decision.allowed {
            let codes = violation_codes(&decision.violations);
            Self::conclude(stages, "blocked", codes.clone());
            return Ok((Outcome::Blocked, format!("patch blocked by policy: {codes}")));
        }

        let scans = self
            .stage(
                &run.run_id,
                stages,
                Stage::Scans,
                self.clients
                    .scanner
                    .clone()
                    .run_scans(RunScansRequest { context: Some(ctx.clone()), diff: patch.diff.clone() }),
            )
            .await?;
        if scans.blocking {
            let detail = format!("{} finding(s)", scans.findings.len());
            Self::conclude(stages, "blocked", detail.clone());
            return Ok((Outcome::Blocked, format!("security scan blocked the patch: {detail}")));
        }

        let validation = self
            .stage(
                &run.run_id,
                stages,
                Stage::Validate,
                self.clients.validator.clone().validate(ValidateRequest {
                    context: Some(ctx.clone()),
                    diff: patch.diff.clone(),
                    timeout_seconds: self.validate_timeout_seconds,
                }),
            )
            .await?;
        if !validation.passed {
            let detail = if !validation.patch_applied {
                "patch did not apply".to_owned()
            } else if validation.timed_out {
                format!("`{}` timed out", validation.command)
            } else {
                format!("`{}` exited {}", validation.command, validation.exit_code)
            };
            Self::conclude(stages, "failed", detail.clone());
            return Ok((Outcome::Fail, format!("validation failed: {detail}")));
        }

        let title = format!("sre-agent: {}", plan.summary);
        let body = format!(
            "Automated fix for the failed `{}` check on {}.\n\nPlan ({}):\n{}\n\nDanger score: {:.1} ({}).\nValidated with `{}` (exit {}).\nRun: {}",
            run.failure_name,
            run.head_sha,
            plan.strategy,
            plan.steps
                .iter()
                .map(|s| format!("- {} `{}`: {}", s.action, s.path, s.rationale))
                .collect::<Vec<_>>()
                .join("\n"),
            decision.danger_score,
            decision.label,
            validation.command,
            validation.exit_code,
            run.run_id,
        );
        let pr = self
            .stage(
                &run.run_id,
                stages,
                Stage::PrCreate,
                self.clients.pr.clone().create_pull_request(CreatePullRequestRequest {
                    context: Some(ctx.clone()),
                    diff: patch.diff.clone(),
                    title,
                    body,
                    label: decision.label.clone(),
                    base_branch: run.head_branch.clone(),
                }),
            )
            .await?;
        update.pr_number = Some(pr.number as i64);
        update.pr_branch = pr.branch;
        update.label = pr.label;
        Ok((Outcome::Success, String::new()))
    }

    /// `persist_artifact`: writes the run's record, patch and PR to the store. (Not itself in the stored
    /// stage list, which it writes; its duration is in the stage histogram.)
    pub async fn persist(
        &self,
        store: &Store,
        run_id: &str,
        update: &mut RunUpdate,
    ) -> Result<(), sre_store::StoreError> {
        let span = tracing::info_span!(
            "pipeline_stage",
            otel.name = Stage::PersistArtifact.span_name(),
            stage = Stage::PersistArtifact.label(),
            outcome = Empty,
        );
        update.trace_id = sre_telemetry::propagation::trace_id(&span).unwrap_or_default();
        let start = Instant::now();
        let result = store.update_run(run_id, update).instrument(span.clone()).await;
        span.in_scope(|| self.metrics.stage(Stage::PersistArtifact, start.elapsed().as_secs_f64()));
        span.record("outcome", if result.is_ok() { "ok" } else { "failed" });
        result
    }
}

fn violation_codes(violations: &[sre_proto::Violation]) -> String {
    violations.iter().filter(|v| v.blocking).map(|v| v.code.as_str()).collect::<Vec<_>>().join(", ")
}
