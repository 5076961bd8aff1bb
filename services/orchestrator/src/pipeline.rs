//! The fix pipeline: plan → policy(plan) → patch → policy(patch) → scans → validate → PR → persist, one
//! span per stage (the parent of the gRPC client span it makes) carrying the seed's attributes as soon as
//! they are known, stage durations into the seed's histogram, every stage recorded on the run.

use std::future::Future;
use std::time::Instant;

use serde_json::json;
use sre_domain::{
    ArtifactKind, Category, Label, Language, Outcome, PrLabel, PullRequestRef, Run, RunContextExt, RunPatch, Stage,
    StageRecord, StageStatus, Task, TaskStatus, Tool, ValidationResult, decision_label,
};
use sre_proto::{
    CheckPatchRequest, CheckPlanRequest, CreatePullRequestRequest, FailureInfo, GeneratePatchRequest,
    GeneratePlanRequest, PrAction, RunScansRequest, ValidateRequest,
};
use sre_store::Store;
use sre_telemetry::{Emit, record_ids};
use tonic::{Code, Status};
use tracing::Instrument;
use tracing::field::Empty;

use crate::clients::Clients;
use crate::events::{PipelineMetrics, StageFinished, TaskStatusChanged};

/// A run that could not conclude now and is worth trying again.
#[derive(Debug)]
pub struct Transient {
    /// The stage that stopped (none: a step before the stages, e.g. reading the job's log from GitHub).
    pub stage: Option<Stage>,
    pub message: String,
    /// Every stage so far, the failed one marked `retry`.
    pub stages: Vec<StageRecord>,
}

/// A stage that ended the run early.
enum Stop {
    Transient(Stage, String),
    Failed(String),
}

/// What a concluded run found: its outcome, the record update and the artifacts to store.
pub struct Concluded {
    pub outcome: Outcome,
    /// A new pull request was opened (not an existing one updated): it counts against the hourly limit.
    pub opened_pr: bool,
    pub patch: RunPatch,
    pub artifacts: Vec<(ArtifactKind, String)>,
}

fn is_transient(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Cancelled => true,
        // UNKNOWN with a local source is tonic's own "transport error" (the service died mid-call: its
        // connection reset), not an answer of the service, which never carries a source.
        Code::Unknown => std::error::Error::source(status).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod transient_tests {
    use super::*;

    #[test]
    fn a_transport_failure_is_transient_and_a_services_unknown_is_not() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        let transport = Status::from_error(Box::new(reset));
        assert_eq!(transport.code(), Code::Unknown);
        assert!(is_transient(&transport));
        assert!(!is_transient(&Status::unknown("the service said so")));
        assert!(!is_transient(&Status::invalid_argument("bad")));
        assert!(is_transient(&Status::unavailable("tcp connect error")));
    }
}

/// What the stages learn as they go: the seed's span attributes, the record update and artifacts.
struct Progress<'a> {
    run: &'a Run,
    stages: Vec<StageRecord>,
    patch: RunPatch,
    artifacts: Vec<(ArtifactKind, String)>,
    opened_pr: bool,
    /// Where the finished stages go as progress, off the stages' path.
    recorder: Option<ProgressRecorder>,
}

/// Records a run's finished stages in the store (progress for the runs API, and the heartbeat of the
/// stale-run sweep) from a task of its own, so no stage waits for a durable commit: each stage hands the
/// records so far over as it starts, the task writes the newest it has (a hand-over made while it writes
/// replaces an older one that was not written yet). The record a run concludes with (the last stage
/// included) is written by the run's final update; a progress write that lands after it changes nothing
/// (`record_progress` only touches a run that is still `running`).
struct ProgressRecorder {
    tx: tokio::sync::watch::Sender<Option<Vec<StageRecord>>>,
    task: tokio::task::JoinHandle<()>,
    /// How many stage records the store has been handed (those of earlier attempts are there already).
    handed: usize,
}

impl ProgressRecorder {
    fn start(store: sre_store::StoreCell, run_id: String, handed: usize) -> Self {
        let (tx, mut rx) = tokio::sync::watch::channel(None::<Vec<StageRecord>>);
        let task = tokio::spawn(
            async move {
                while rx.changed().await.is_ok() {
                    let Some(stages) = rx.borrow_and_update().clone() else { return };
                    if let Some(store) = store.get()
                        && let Err(err) = store.record_progress(&run_id, &stages).await
                    {
                        // Never fatal: the run's final update carries every stage.
                        tracing::debug!(error = %err, "could not record progress");
                    }
                }
            }
            .in_current_span(),
        );
        Self { tx, task, handed }
    }

    /// Hands over the stage records so far, when there are new ones.
    fn hand_over(&mut self, stages: &[StageRecord]) {
        if stages.len() > self.handed {
            self.handed = stages.len();
            self.tx.send_replace(Some(stages.to_vec()));
        }
    }

    /// Stops the task once the write it may be in has ended (nothing newer is written: the run's final
    /// update, which follows, carries every stage).
    async fn finish(self) {
        self.tx.send_replace(None);
        let _ = self.task.await;
    }
}

impl Progress<'_> {
    /// Records the seed's attributes known so far on a stage (or the run's consumer) span.
    fn record_on(&self, span: &tracing::Span) {
        record_ids(span, self.run.ids());
        if let Some(language) = self.patch.language {
            span.record("language", language.as_str());
        }
        if let Some(category) = self.patch.category {
            span.record("category", category.as_str());
        }
        if let Some(label) = self.patch.label {
            span.record("pr_label", label.as_str());
        }
    }

    /// Marks the last stage with the decision that ended the run.
    fn conclude(&mut self, status: StageStatus, detail: &str) {
        if let Some(last) = self.stages.last_mut() {
            last.status = status;
            detail.clone_into(&mut last.detail);
        }
    }
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
        validate_timeout_seconds: u32,
    ) -> Self {
        Self { clients, metrics, store, validate_timeout_seconds }
    }

    pub fn metrics(&self) -> &PipelineMetrics {
        &self.metrics
    }

    /// The span of one stage, named after the seed, with the seed's attributes.
    fn stage_span(stage: Stage, progress: &Progress<'_>) -> tracing::Span {
        let span = tracing::info_span!(
            "pipeline_stage",
            otel.name = stage.span_name(),
            otel.status_code = Empty,
            stage = stage.as_str(),
            delivery_id = Empty,
            run_key = Empty,
            failure_id = Empty,
            run_id = Empty,
            correlation_id = Empty,
            language = Empty,
            category = Empty,
            pr_label = Empty,
            outcome = Empty,
        );
        progress.record_on(&span);
        span
    }

    /// Runs one stage in its own span, timing it and recording its result.
    async fn stage<T>(
        &self,
        progress: &mut Progress<'_>,
        stage: Stage,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Stop> {
        let span = Self::stage_span(stage, progress);
        if let Some(recorder) = &mut progress.recorder {
            recorder.hand_over(&progress.stages);
        }
        let start = Instant::now();
        let result = call.instrument(span.clone()).await;
        let elapsed = start.elapsed();
        let (status, out) = match result {
            Ok(resp) => (StageStatus::Ok, Ok(resp.into_inner())),
            Err(err) => {
                span.record("otel.status_code", "ERROR");
                let message = format!("{}: {}", sre_telemetry::grpc::code_name(err.code() as i32), err.message());
                if is_transient(&err) {
                    (StageStatus::Retry, Err(Stop::Transient(stage, message)))
                } else {
                    (StageStatus::Failed, Err(Stop::Failed(format!("{} failed: {message}", stage.span_name()))))
                }
            }
        };
        span.record("outcome", status.as_str());
        span.in_scope(|| self.metrics.emit(StageFinished { stage, status, elapsed }));
        let detail = match &out {
            Err(Stop::Transient(_, m)) => m.clone(),
            Err(Stop::Failed(m)) => m.clone(),
            Ok(_) => String::new(),
        };
        progress.stages.push(StageRecord {
            stage,
            status,
            attempt: progress.run.attempts,
            duration_ms: elapsed.as_millis() as u64,
            detail,
        });
        out
    }

    /// Runs the stages for `run` (claimed: its `attempts` is this attempt). `Ok` means the run concluded
    /// (any outcome); `Err` means it is worth trying again later.
    pub async fn run(&self, run: &Run) -> Result<Concluded, Transient> {
        let recorder = self
            .store
            .get()
            .is_some()
            .then(|| ProgressRecorder::start(self.store.clone(), run.run_id.clone(), run.stages.len()));
        let mut progress = Progress {
            run,
            stages: run.stages.clone(),
            patch: RunPatch::default(),
            artifacts: Vec::new(),
            opened_pr: false,
            recorder,
        };
        let result = self.stages(&mut progress).await;
        if let Some(recorder) = progress.recorder.take() {
            recorder.finish().await;
        }
        let (outcome, reason) = match result {
            Ok(done) => done,
            Err(Stop::Failed(reason)) => (Outcome::Fail, reason),
            Err(Stop::Transient(stage, message)) => {
                return Err(Transient { stage: Some(stage), message, stages: progress.stages });
            }
        };
        let span = tracing::Span::current();
        progress.record_on(&span);
        span.record("outcome", outcome.as_str());
        let mut patch = progress.patch;
        patch.status = Some(outcome.into());
        patch.reason = Some(reason);
        patch.retry_at_ms = Some(None);
        patch.stages = Some(progress.stages);
        Ok(Concluded { outcome, opened_pr: progress.opened_pr, patch, artifacts: progress.artifacts })
    }

    /// The seed's `build_failure_context`: the job log (stored with the run) read by the planner into the
    /// failure context and the diagnosis, stored as the run's `context` artifact. `None` when the run has
    /// no log.
    async fn build_failure_context(
        &self,
        p: &mut Progress<'_>,
        ctx: &mut sre_proto::RunContext,
    ) -> Result<Option<sre_proto::FailureContext>, Stop> {
        let Some(store) = self.store.get() else { return Ok(None) };
        let log = match store.artifact(&p.run.run_id, ArtifactKind::Log).await {
            Ok(Some(log)) => log,
            Ok(None) => return Ok(None),
            Err(err) => return Err(Stop::Transient(Stage::Plan, format!("reading the job log: {err}"))),
        };
        let task = Task::BuildFailureContext;
        let span = tracing::info_span!(
            "build_failure_context",
            otel.status_code = Empty,
            delivery_id = Empty,
            run_key = Empty,
            failure_id = Empty,
            run_id = Empty,
            correlation_id = Empty,
            language = Empty,
            category = Empty,
            outcome = Empty,
            log_bytes = log.len(),
        );
        p.record_on(&span);
        span.in_scope(|| self.metrics.emit(TaskStatusChanged { task, status: TaskStatus::Started, reason: "" }));
        let request = sre_proto::BuildFailureContextRequest {
            context: Some(ctx.clone()),
            failure: Some(FailureInfo::from(&p.run.failure)),
            log,
            log_truncated: false,
        };
        let result = self.clients.planner.clone().build_failure_context(request).instrument(span.clone()).await;
        let resp = match result {
            Ok(resp) => resp.into_inner(),
            Err(err) => {
                span.record("otel.status_code", "ERROR");
                let message = format!("{}: {}", sre_telemetry::grpc::code_name(err.code() as i32), err.message());
                let transient = is_transient(&err);
                let status = if transient { TaskStatus::Retry } else { TaskStatus::Fail };
                span.record("outcome", status.as_str());
                span.in_scope(|| self.metrics.emit(TaskStatusChanged { task, status, reason: &message }));
                return Err(if transient {
                    Stop::Transient(Stage::Plan, format!("build_failure_context: {message}"))
                } else {
                    Stop::Failed(format!("build_failure_context failed: {message}"))
                });
            }
        };
        if let Some(diagnosed) = &resp.context {
            p.patch.language = Some(diagnosed.language().ok().flatten().unwrap_or(Language::Unknown));
            p.patch.category = Some(diagnosed.category().ok().flatten().unwrap_or(Category::Unknown));
            p.patch.tool = Some(diagnosed.tool().ok().flatten().unwrap_or(Tool::Unknown));
            ctx.language.clone_from(&diagnosed.language);
            ctx.category.clone_from(&diagnosed.category);
            ctx.tool.clone_from(&diagnosed.tool);
        }
        p.record_on(&span);
        p.record_on(&tracing::Span::current());
        if let Some(fc) = &resp.failure_context {
            p.artifacts.push((ArtifactKind::Context, context_json(fc)));
        }
        span.record("outcome", StageStatus::Ok.as_str());
        span.in_scope(|| {
            self.metrics.emit(TaskStatusChanged { task, status: TaskStatus::Success, reason: "" });
        });
        Ok(resp.failure_context)
    }

    async fn stages(&self, p: &mut Progress<'_>) -> Result<(Outcome, String), Stop> {
        let run = p.run;
        let mut ctx = run.context();
        let failure = FailureInfo::from(&run.failure);
        let failure_context = self.build_failure_context(p, &mut ctx).await?;

        let planned = self
            .stage(
                p,
                Stage::Plan,
                self.clients.planner.clone().generate_plan(GeneratePlanRequest {
                    context: Some(ctx.clone()),
                    failure: Some(failure),
                    failure_context: failure_context.clone(),
                }),
            )
            .await?;
        if let Some(planned_ctx) = planned.context {
            // The planner's diagnosis; a spelling outside the domain is a planner bug, recorded as unknown.
            p.patch.language = Some(planned_ctx.language().ok().flatten().unwrap_or(Language::Unknown));
            p.patch.category = Some(planned_ctx.category().ok().flatten().unwrap_or(Category::Unknown));
            p.patch.tool = planned_ctx.tool().ok().flatten().or(Some(Tool::Unknown));
            ctx.language = planned_ctx.language;
            ctx.category = planned_ctx.category;
            ctx.tool = planned_ctx.tool;
        }
        p.record_on(&tracing::Span::current());
        let plan = planned.plan.unwrap_or_default();
        p.artifacts.push((ArtifactKind::Plan, plan_json(&plan)));
        if plan.steps.is_empty() {
            p.conclude(StageStatus::Skipped, &plan.summary);
            return Ok((Outcome::Skipped, plan.summary));
        }

        let decision = self
            .stage(
                p,
                Stage::PolicyPlan,
                self.clients
                    .policy
                    .clone()
                    .check_plan(CheckPlanRequest { context: Some(ctx.clone()), plan: Some(plan.clone()) }),
            )
            .await?;
        if !decision.allowed {
            let codes = violation_codes(&decision.violations);
            p.conclude(StageStatus::Blocked, &codes);
            return Ok((Outcome::Blocked, format!("plan blocked by policy: {codes}")));
        }
        // A plan the policy sends to review (an LLM plan's low confidence) stays in review whatever its patch.
        let plan_label = decision_label(&decision);

        let patch = self
            .stage(
                p,
                Stage::Patch,
                self.clients.planner.clone().generate_patch(GeneratePatchRequest {
                    context: Some(ctx.clone()),
                    plan: Some(plan.clone()),
                    failure_context: failure_context.clone(),
                }),
            )
            .await?;
        if patch.diff.trim().is_empty() {
            // The planner's reason when its fixer ran and the result was refused or could not be made.
            let reason =
                if patch.skipped_reason.is_empty() { "the plan produced no change" } else { &patch.skipped_reason };
            p.conclude(StageStatus::Skipped, reason);
            return Ok((Outcome::Skipped, reason.into()));
        }
        p.artifacts.push((ArtifactKind::Diff, patch.diff.clone()));

        let decision = self
            .stage(
                p,
                Stage::PolicyPatch,
                self.clients
                    .policy
                    .clone()
                    .check_patch(CheckPatchRequest { context: Some(ctx.clone()), diff: patch.diff.clone() }),
            )
            .await?;
        let label = plan_label.strictest(decision_label(&decision));
        p.patch.danger_score = Some(decision.danger_score);
        p.patch.label = Some(label);
        p.record_on(&tracing::Span::current());
        if !decision.allowed {
            let codes = violation_codes(&decision.violations);
            p.conclude(StageStatus::Blocked, &codes);
            return Ok((Outcome::Blocked, format!("patch blocked by policy: {codes}")));
        }

        let scans = self
            .stage(
                p,
                Stage::Scans,
                self.clients
                    .scanner
                    .clone()
                    .run_scans(RunScansRequest { context: Some(ctx.clone()), diff: patch.diff.clone() }),
            )
            .await?;
        p.artifacts.push((ArtifactKind::ScanReport, scan_json(&scans)));
        // Blocked: the patch introduces a secret, a HIGH/CRITICAL finding or a forbidden license, or a scanner
        // could not judge it (the scanner fails closed). Findings already at head_sha never block.
        if scans.blocking {
            let detail = if scans.blocking_reasons.is_empty() {
                format!("{} finding(s)", scans.findings.len())
            } else {
                scans.blocking_reasons.join("; ")
            };
            p.conclude(StageStatus::Blocked, &detail);
            return Ok((Outcome::Blocked, format!("security scan blocked the patch: {detail}")));
        }
        // Needs review: introduced findings below the blocking bar, or a scanner that could not run while
        // SRE_SCANNERS_OPTIONAL is on. The run goes on; the label the policy gave becomes needs-review, and the
        // validation verdict below decides the final label from it.
        let label = if scans.needs_review {
            p.conclude(StageStatus::Ok, &format!("needs review: {}", scans.review_reasons.join("; ")));
            p.patch.label = Some(PrLabel::NeedsReview);
            p.record_on(&tracing::Span::current());
            PrLabel::NeedsReview
        } else {
            label
        };

        let validation = self
            .stage(
                p,
                Stage::Validate,
                self.clients.validator.clone().validate(ValidateRequest {
                    context: Some(ctx.clone()),
                    diff: patch.diff.clone(),
                    timeout_seconds: self.validate_timeout_seconds,
                    failure: Some(FailureInfo::from(&run.failure)),
                    // The diagnosis names the failing step and its command once it finds them; until then the
                    // validator re-runs the job's last `run:` step.
                    failing_step: String::new(),
                    step_command: String::new(),
                    test_command: String::new(),
                }),
            )
            .await?;
        p.artifacts.push((ArtifactKind::Validation, validation_json(&validation)));
        // Proven fixes open a PR as the policy labelled them; an unproven one (not reproduced) still opens,
        // as a draft that needs review, never "safe"; a step the sandbox refuses to run blocks the run (nothing
        // was validated, and the step needs what the agent must not have: secrets, services, actions);
        // anything else that ran and failed ends it failed.
        let (label, draft) = match ValidationResult::parse(&validation.verdict) {
            Some(ValidationResult::ReproducedAndFixed) => (label, false),
            Some(ValidationResult::NotReproduced) => {
                p.patch.label = Some(PrLabel::NeedsReview);
                p.record_on(&tracing::Span::current());
                p.conclude(StageStatus::Ok, &format!("not reproduced: {}", validation.reason));
                (PrLabel::NeedsReview, true)
            }
            Some(ValidationResult::Refused) => {
                p.conclude(StageStatus::Blocked, &validation.refusal_reason);
                return Ok((Outcome::Blocked, format!("validation refused: {}", validation.refusal_reason)));
            }
            Some(ValidationResult::PatchFailed) => {
                p.conclude(StageStatus::Failed, "patch did not apply");
                return Ok((Outcome::Fail, "validation failed: patch did not apply".to_owned()));
            }
            Some(ValidationResult::StillFailing | ValidationResult::Timeout) => {
                let detail = if validation.timed_out {
                    format!("`{}` timed out", validation.command)
                } else {
                    validation.reason.clone()
                };
                p.conclude(StageStatus::Failed, &detail);
                return Ok((Outcome::Fail, format!("validation failed: {detail}")));
            }
            None => {
                let detail = format!("the validator answered an unknown verdict {:?}", validation.verdict);
                p.conclude(StageStatus::Failed, &detail);
                return Ok((Outcome::Fail, format!("validation failed: {detail}")));
            }
        };

        let title = format!("sre-agent: {}", plan.summary);
        let body = format!(
            "Automated fix for the failed `{}` check on {}.\n\nPlan ({}):\n{}{}\n\nDanger score: {:.1} ({}).\nValidated with `{}` (exit {}).\nRun: {}",
            run.failure.display_name(),
            run.failure.head_sha,
            plan.strategy,
            plan.steps
                .iter()
                .map(|s| format!("- {} `{}`: {}", s.action, s.path, s.rationale))
                .collect::<Vec<_>>()
                .join("\n"),
            if plan.command.is_empty() {
                String::new()
            } else {
                let notes: String = plan.notes.iter().map(|n| format!("\n- note: {n}")).collect();
                format!("\n\nMade by `{}` ({}) in the sandbox.{notes}", plan.command, plan.tool_version)
            },
            decision.danger_score,
            label.as_str(),
            validation.command,
            validation.exit_code,
            run.run_id,
        );
        let pr = self
            .stage(
                p,
                Stage::PrCreate,
                self.clients.pr.clone().create_pull_request(CreatePullRequestRequest {
                    context: Some(ctx.clone()),
                    diff: patch.diff.clone(),
                    title,
                    body,
                    label: label.as_str().to_owned(),
                    base_branch: run.failure.head_branch.clone(),
                    draft,
                    failure: Some(FailureInfo::from(&run.failure)),
                }),
            )
            .await?;
        let action = pr.action();
        if action == PrAction::Refused {
            // Nothing was pushed (someone else's commits on the branch, a closed pull request, a base that
            // moved on): the run ends without a fix, for that reason.
            p.conclude(StageStatus::Skipped, &pr.refused_reason);
            return Ok((Outcome::Skipped, format!("pull request refused: {}", pr.refused_reason)));
        }
        p.opened_pr = action == PrAction::Created;
        p.artifacts.push((
            ArtifactKind::PullRequest,
            json!({"number": pr.number, "branch": pr.branch, "url": pr.url, "label": pr.label,
                   "commit_sha": pr.commit_sha, "backend": pr.backend, "action": pr_action_name(action),
                   "draft": pr.draft})
            .to_string(),
        ));
        p.patch.label = Some(PrLabel::parse(&pr.label).unwrap_or(label));
        p.patch.pr = Some(PullRequestRef { number: pr.number, branch: pr.branch, url: pr.url });
        Ok((Outcome::Success, String::new()))
    }

    /// `persist_artifact`: writes the run's record and its artifacts to the store. (Not itself in the stored
    /// stage list, which it writes; its duration is in the stage histogram.)
    pub async fn persist(
        &self,
        store: &Store,
        run: &Run,
        patch: &RunPatch,
        artifacts: &[(ArtifactKind, String)],
    ) -> Result<(), sre_store::StoreError> {
        let progress = Progress {
            run,
            stages: Vec::new(),
            patch: patch.clone(),
            artifacts: Vec::new(),
            opened_pr: false,
            recorder: None,
        };
        let span = Self::stage_span(Stage::PersistArtifact, &progress);
        let start = Instant::now();
        let result = async {
            for (kind, body) in artifacts {
                store.put_artifact(&run.run_id, *kind, body).await?;
            }
            store.update_run(&run.run_id, patch).await
        }
        .instrument(span.clone())
        .await;
        let status = if result.is_ok() { StageStatus::Ok } else { StageStatus::Failed };
        span.record("outcome", status.as_str());
        if let Some(outcome) = patch.status.and_then(|s| s.outcome()) {
            span.record("outcome", outcome.as_str());
        }
        span.in_scope(|| {
            self.metrics.emit(StageFinished { stage: Stage::PersistArtifact, status, elapsed: start.elapsed() })
        });
        result
    }
}

fn pr_action_name(action: PrAction) -> &'static str {
    match action {
        PrAction::Created => "created",
        PrAction::Updated => "updated",
        PrAction::Unchanged => "unchanged",
        PrAction::Refused => "refused",
        PrAction::Unspecified => "unspecified",
    }
}

fn violation_codes(violations: &[sre_proto::Violation]) -> String {
    violations.iter().filter(|v| v.blocking).map(|v| v.code.as_str()).collect::<Vec<_>>().join(", ")
}

fn context_json(fc: &sre_proto::FailureContext) -> String {
    let refs: Vec<_> =
        fc.file_refs.iter().map(|r| json!({"path": r.path, "line": r.line, "column": r.column})).collect();
    json!({"step_name": fc.step_name, "command": fc.command, "exit_code": fc.exit_code, "lines": fc.lines,
           "file_refs": refs, "log_lines": fc.log_lines, "truncated": fc.truncated, "category": fc.category,
           "language": fc.language, "tool": fc.tool, "summary": fc.summary, "autofixable": fc.autofixable})
    .to_string()
}

fn plan_json(plan: &sre_proto::FixPlan) -> String {
    let steps: Vec<_> =
        plan.steps.iter().map(|s| json!({"action": s.action, "path": s.path, "rationale": s.rationale})).collect();
    json!({"strategy": plan.strategy, "summary": plan.summary, "confidence": plan.confidence, "steps": steps,
           "command": plan.command, "tool_version": plan.tool_version, "notes": plan.notes})
    .to_string()
}

fn scan_json(scans: &sre_proto::RunScansResponse) -> String {
    let findings: Vec<_> = scans
        .findings
        .iter()
        .map(|f| {
            let severity = sre_domain::Severity::from(f.severity());
            json!({"scanner": f.scanner, "severity": severity.as_str(), "rule_id": f.rule_id, "path": f.path,
                   "line": f.line, "title": f.title, "introduced": f.introduced})
        })
        .collect();
    let runs: Vec<_> = scans
        .runs
        .iter()
        .map(|r| {
            json!({"scanner": r.scanner, "target": r.target, "status": r.status, "detail": r.detail,
                   "duration_ms": r.duration_ms, "cached": r.cached, "version": r.version})
        })
        .collect();
    json!({"blocking": scans.blocking, "blocking_reasons": scans.blocking_reasons,
           "needs_review": scans.needs_review, "review_reasons": scans.review_reasons,
           "scanners_optional": scans.scanners_optional, "introduced": scans.introduced,
           "preexisting": scans.preexisting, "resolved": scans.resolved, "findings": findings, "runs": runs,
           "sbom_components": scans.sbom_components})
    .to_string()
}

fn validation_json(v: &sre_proto::ValidateResponse) -> String {
    let run = |r: &Option<sre_proto::CommandRun>| {
        r.as_ref().map(|r| {
            json!({"command": r.command, "shell": r.shell, "working_directory": r.working_directory,
                   "exit_code": r.exit_code, "timed_out": r.timed_out, "duration_ms": r.duration_ms,
                   "sandbox": r.sandbox, "patched": r.patched, "log_tail": r.log_tail})
        })
    };
    let step = v.step.as_ref().map(|s| {
        json!({"workflow": s.workflow, "job_id": s.job_id, "job_name": s.job_name, "step_name": s.step_name,
               "step_index": s.step_index, "matched_by": s.matched_by})
    });
    json!({"verdict": v.verdict, "reproduced": v.reproduced, "passed": v.passed, "patch_applied": v.patch_applied,
           "reason": v.reason, "refusal_reason": v.refusal_reason, "sandbox": v.sandbox, "step": step,
           "before": run(&v.before), "after": run(&v.after), "test": run(&v.test),
           "command": v.command, "exit_code": v.exit_code, "timed_out": v.timed_out, "duration_ms": v.duration_ms,
           "log_tail": v.log_tail})
    .to_string()
}
