//! The job loop: read or reclaim a job, continue its trace, claim its run (`process_pipeline_event`), run
//! the stages (`run_fix_pipeline`), persist, then ack. A transient failure schedules the job again with
//! exponential backoff and jitter in the queue's delayed set (no worker waits on it); housekeeping promotes
//! due retries, samples the queue gauges and re-enqueues runs whose job was lost.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use sre_domain::{
    LoopBlockedReason, Outcome, RetryReason, Run, RunPatch, RunStatus, Task, TaskStatus, ThrottleScope, short_sha,
};
use sre_queue::{Delivery, Hold, JobKind, Publish, Queue};
use sre_store::{Claim, Ingested, Store, StoreCell};
use sre_telemetry::{Emit, propagation, record_ids};
use tokio::sync::watch;
use tracing::Instrument;
use tracing::field::Empty;

use crate::config::Config;
use crate::events::{LoopBlocked, RetryScheduled, RunFinished, TaskStatusChanged, Throttled};
use crate::github::{GithubSource, Refusal};
use crate::guards::{Guards, Source, Verdict};
use crate::pipeline::{Concluded, Pipeline, Transient};

/// How long a worker waits for a new job before checking for shutdown and reclaimable jobs.
const READ_BLOCK: Duration = Duration::from_secs(2);
/// How often due retries are moved into the stream.
const PROMOTE_EVERY: Duration = Duration::from_millis(500);
/// How often the queue gauges are sampled and the outbox swept.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// A run stored but never enqueued is picked up by the sweep after this long.
const UNENQUEUED_GRACE_MS: i64 = 30_000;
/// A workflow-level event whose jobs GitHub cannot list now is tried again after this long...
const EVENT_RETRY: Duration = Duration::from_secs(30);
/// ...for at most this long after it arrived, then resolved into no runs, with the reason.
const EVENT_RETRY_FOR_MS: i64 = 3_600_000;

/// Own pending jobs read at start (more stay pending and are reclaimed by the idle timeout).
const OWN_PENDING_MAX: usize = 64;

/// Renews the hold on one in-flight job every `every` until aborted; tells `lost` when another consumer has
/// reclaimed it. A failed renewal (Redis down) is only logged: nobody can reclaim through a dead Redis.
async fn heartbeat(
    queue: Queue,
    consumer: String,
    id: String,
    every: Duration,
    lost: tokio::sync::oneshot::Sender<()>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is now: the delivery itself just reset the idle time
    loop {
        tick.tick().await;
        match queue.heartbeat(&consumer, &id).await {
            Ok(Hold::Renewed) => {}
            Ok(Hold::Done) => return,
            Ok(Hold::Lost) => {
                let _ = lost.send(());
                return;
            }
            Err(err) => tracing::debug!(error = %err, message_id = %id, "heartbeat failed; trying again"),
        }
    }
}

pub struct Worker {
    pub queue: Queue,
    pub store: StoreCell,
    pub pipeline: Pipeline,
    pub guards: Guards<Source>,
    /// The GitHub side of runs (`SRE_PR_BACKEND=github`).
    pub github: Option<Arc<GithubSource>>,
    pub config: Arc<Config>,
}

impl Worker {
    /// Runs `config.workers` consumer loops until `stop` flips; in-flight runs finish first.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let mut loops = Vec::new();
        let consumer = self.config.consumer();
        for i in 0..self.config.workers {
            loops.push(tokio::spawn(self.clone().consume(format!("{consumer}-{i}"), stop.clone())));
        }
        loops.push(tokio::spawn(self.clone().housekeeping(stop.clone())));
        for l in loops {
            let _ = l.await;
        }
    }

    fn metrics(&self) -> &crate::events::PipelineMetrics {
        self.pipeline.metrics()
    }

    fn task(&self, task: Task, status: TaskStatus, reason: &str) {
        self.metrics().emit(TaskStatusChanged { task, status, reason });
    }

    async fn consume(self: Arc<Self>, consumer: String, stop: watch::Receiver<bool>) {
        let mut reader = self.queue.reader(&consumer, READ_BLOCK);
        let mut backoff = Duration::from_millis(200);
        // What this consumer name held when its last process died, once, before anything else.
        let mut own_pending_read = false;
        while !*stop.borrow() {
            if self.store.get().is_none() {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            if !own_pending_read {
                match reader.read_pending(OWN_PENDING_MAX).await {
                    Ok(left) => {
                        own_pending_read = true;
                        if !left.is_empty() {
                            tracing::warn!(consumer = %consumer, jobs = left.len(),
                                "resuming the jobs this consumer name left unacknowledged");
                        }
                        for delivery in left {
                            self.handle_held(&consumer, delivery).await;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, consumer = %consumer, retry_in_ms = backoff.as_millis() as u64, "queue read failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        let _ = self.queue.ensure_group().await;
                    }
                }
                continue;
            }
            // Jobs a dead worker left behind come first, then new ones.
            let next = match self.queue.reclaim(&consumer, self.config.reclaim_idle(), 1).await {
                Ok(claimed) if !claimed.is_empty() => Ok(claimed.into_iter().next()),
                Ok(_) => reader.read(1).await.map(|v| v.into_iter().next()),
                Err(e) => Err(e),
            };
            match next {
                Ok(Some(delivery)) => {
                    backoff = Duration::from_millis(200);
                    self.handle_held(&consumer, delivery).await;
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(error = %err, consumer = %consumer, retry_in_ms = backoff.as_millis() as u64, "queue read failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    // The group may be gone if Redis restarted empty.
                    let _ = self.queue.ensure_group().await;
                }
            }
        }
    }

    /// One job while its heartbeat keeps it this consumer's: a live worker's job is never reclaimed, however
    /// slow its run, and a dead one's is reclaimed after `SRE_RECLAIM_IDLE_SECONDS`. When another consumer
    /// did reclaim it (this process stalled past the timeout), this one gives the run up at once, so only
    /// one worker goes on with it; the claim in the store and the pr service's one-PR-per-run_key make the
    /// overlap harmless.
    async fn handle_held(&self, consumer: &str, delivery: Delivery) {
        let id = delivery.id.clone();
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
        let beat = tokio::spawn(heartbeat(
            self.queue.clone(),
            consumer.to_owned(),
            id.clone(),
            self.config.heartbeat(),
            lost_tx,
        ));
        tokio::select! {
            () = self.handle(delivery) => {}
            Ok(()) = lost_rx => {
                tracing::warn!(consumer = %consumer, message_id = %id,
                    "another consumer reclaimed this job (this worker missed its heartbeats); giving the run up");
                self.task(Task::RunFixPipeline, TaskStatus::Retry, "job reclaimed by another consumer; given up here");
            }
        }
        beat.abort();
    }

    /// One job, inside the consumer span that continues the producer's trace.
    async fn handle(&self, delivery: Delivery) {
        if delivery.job.kind == JobKind::Event {
            return self.handle_event(delivery).await;
        }
        let job = &delivery.job;
        let span = tracing::info_span!(
            "run_fix_pipeline",
            otel.kind = "consumer",
            otel.status_code = Empty,
            messaging.system = "redis",
            messaging.operation.type = "process",
            messaging.destination.name = self.queue.stream(),
            messaging.message.id = %delivery.id,
            messaging.redis.reclaimed = delivery.reclaimed,
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
        // Before the span is entered.
        propagation::set_remote_parent(&span, propagation::extract_map(&job.trace_context));
        record_ids(&span, job.ids());
        self.process(&delivery).instrument(span).await;
    }

    /// An event that names a failure without its job, inside its `process_pipeline_event` consumer span.
    async fn handle_event(&self, delivery: Delivery) {
        let job = &delivery.job;
        let span = tracing::info_span!(
            "process_pipeline_event",
            otel.kind = "consumer",
            otel.status_code = Empty,
            messaging.system = "redis",
            messaging.operation.type = "process",
            messaging.destination.name = self.queue.stream(),
            messaging.message.id = %delivery.id,
            messaging.redis.reclaimed = delivery.reclaimed,
            delivery_id = Empty,
            run_key = Empty,
            failure_id = Empty,
            outcome = Empty,
        );
        propagation::set_remote_parent(&span, propagation::extract_map(&job.trace_context));
        record_ids(&span, job.ids());
        self.resolve_event(&delivery).instrument(span).await;
    }

    /// Resolves a stored workflow_run / check_suite failure into the runs of its failed jobs: each a new run
    /// (enqueued) or the run a workflow_job event already made (enriched, nothing enqueued). With the GitHub
    /// backend the jobs are listed on GitHub (a transient error tries again for an hour); with the local one the
    /// workflow itself stands in for its jobs: one run.
    async fn resolve_event(&self, delivery: &Delivery) {
        let Some(store) = self.store.get() else { return };
        let task = Task::ProcessPipelineEvent;
        self.task(task, TaskStatus::Started, "");
        let delivery_id = delivery.job.delivery_id.as_str();
        let failure = match store.pending_event(delivery_id).await {
            Ok(Some((_, true))) => {
                self.task(task, TaskStatus::Success, "event already resolved; duplicate job acked");
                self.ack(delivery).await;
                return;
            }
            Ok(Some((failure, false))) => failure,
            Ok(None) => {
                self.task(task, TaskStatus::Fail, "the job names an event this store does not have; dropped");
                self.ack(delivery).await;
                return;
            }
            Err(err) => {
                tracing::error!(error = %err, "could not read the pending event");
                self.task(task, TaskStatus::Retry, "store unavailable; the job stays pending");
                return;
            }
        };
        let span = tracing::Span::current();
        let traceparent = propagation::traceparent(&span);
        let (jobs, why_none) = match self.jobs_of(&failure).await {
            Ok(jobs) => (jobs, String::new()),
            Err(Refusal::Transient(message)) => {
                let since = store.pending_created_ms(delivery_id).await.ok().flatten().unwrap_or_default();
                if sre_store::now_ms() - since < EVENT_RETRY_FOR_MS {
                    let opts = Publish {
                        delay: Some(EVENT_RETRY),
                        kind: JobKind::Event,
                        link: Some(&traceparent),
                        ..Publish::default()
                    };
                    if let Err(err) = self.queue.publish(delivery.job.ids(), opts).await {
                        tracing::error!(error = %err, "could not schedule the event again; the job stays pending");
                        self.task(task, TaskStatus::Retry, "queue unavailable; the job stays pending");
                        return;
                    }
                    tracing::warn!(error = %message, "the event's jobs cannot be listed now; trying again");
                    self.task(task, TaskStatus::Retry, &message);
                    self.ack(delivery).await;
                    return;
                }
                (Vec::new(), format!("gave up listing the jobs after an hour: {message}"))
            }
            Err(Refusal::Skip(reason) | Refusal::Defer { detail: reason, .. }) => (Vec::new(), reason),
        };
        let runs: Vec<Run> = jobs
            .into_iter()
            .map(|job_failure| {
                let mut run = Run::new(
                    uuid::Uuid::new_v4().to_string(),
                    delivery_id.to_owned(),
                    job_failure,
                    sre_store::now_ms(),
                );
                run.trace_id = propagation::trace_id(&span).unwrap_or_default();
                run.origin_traceparent.clone_from(&traceparent);
                run
            })
            .collect();
        let note = if runs.is_empty() && !why_none.is_empty() {
            format!("no job runs: {why_none}")
        } else {
            format!(
                "{} job run(s): {}",
                runs.len(),
                runs.iter().map(|r| r.run_key.as_str()).collect::<Vec<_>>().join(", ")
            )
        };
        let resolved = match store.resolve_pending(delivery_id, &runs, &note).await {
            Ok(resolved) => resolved,
            Err(err) => {
                tracing::error!(error = %err, "could not store the event's runs");
                self.task(task, TaskStatus::Retry, "store unavailable; the job stays pending");
                return;
            }
        };
        let mut enqueued = 0;
        for ingested in &resolved {
            let Ingested::New(run) = ingested else { continue };
            // A run left unenqueued here is picked up by the outbox sweep.
            if self.queue.publish(run.ids(), Publish::default()).await.is_ok() {
                let _ = store.mark_enqueued(&run.run_id).await;
                enqueued += 1;
            }
        }
        span.record("outcome", "resolved");
        tracing::info!(runs = resolved.len(), new_runs = enqueued, "event resolved into job runs");
        self.task(task, TaskStatus::Success, &note);
        self.ack(delivery).await;
    }

    /// The failed jobs of a workflow-level failure: listed on GitHub, or (local backend) the workflow itself.
    async fn jobs_of(&self, failure: &sre_domain::Failure) -> Result<Vec<sre_domain::Failure>, Refusal> {
        match &self.github {
            Some(github) => github.failed_jobs(failure).await,
            None => Ok(vec![failure.clone()]),
        }
    }

    async fn process(&self, delivery: &Delivery) {
        let Some(store) = self.store.get() else { return };
        let process = Task::ProcessPipelineEvent;
        self.task(process, TaskStatus::Started, "");
        if delivery.reclaimed {
            // The queue redelivered a job a dead (or stuck) worker held: the seed's Celery-style retry.
            self.metrics().emit(RetryScheduled {
                reason: RetryReason::CeleryRetry,
                attempt: 0,
                delay: Duration::ZERO,
                detail: "job reclaimed from a consumer that did not ack it",
            });
        }
        // A reclaimed delivery, or a job re-enqueued for a dead worker's run, may take over a running run;
        // any other job for a run that is running or finished is a duplicate.
        let takeover = delivery.reclaimed || delivery.job.takeover;
        let run = match store.claim_run(&delivery.job.run_id, takeover).await {
            Ok(Claim::Claimed(run)) => run,
            Ok(Claim::Finished(run) | Claim::InProgress(run)) => {
                let why = format!("duplicate job for a run that is {}; acked", run.status.as_str());
                self.task(process, TaskStatus::Success, &why);
                self.ack(delivery).await;
                return;
            }
            Ok(Claim::Missing) => {
                // A job from another deployment sharing this Redis stream (each store needs its own
                // SRE_QUEUE_STREAM), or a run deleted since: nothing here can run it.
                self.task(process, TaskStatus::Fail, "the job names a run this store does not have; dropped");
                self.ack(delivery).await;
                return;
            }
            Err(err) => {
                // Left pending: it is reclaimed once the store answers again.
                tracing::error!(error = %err, "could not claim the run");
                self.task(process, TaskStatus::Retry, "store unavailable; the job stays pending");
                return;
            }
        };
        let span = tracing::Span::current();
        record_ids(&span, run.ids());
        // A job published by a retry or the sweep may belong to another trace: link the delivery's story.
        let origin = run.origin_traceparent.as_str();
        if propagation::trace_id_of(origin) != propagation::trace_id(&span) {
            propagation::add_link(&span, origin);
        }
        if run.attempts > self.config.max_attempts {
            let detail = format!("blocked after {} attempts", run.attempts - 1);
            self.metrics().emit(LoopBlocked {
                reason: LoopBlockedReason::MaxAttempts,
                attempts: run.attempts,
                detail: &detail,
            });
            self.task(process, TaskStatus::Success, "loop guard");
            let patch = RunPatch::concluded(Outcome::Blocked, detail);
            self.finish(store, delivery, &run, Task::ProcessPipelineEvent, Outcome::Blocked, patch, &[]).await;
            return;
        }
        let held = match self.guards.check(&run).await {
            Verdict::Go(held) => held,
            Verdict::Block { reason, detail } => {
                self.metrics().emit(LoopBlocked { reason, attempts: run.attempts, detail: &detail });
                self.task(process, TaskStatus::Success, "loop guard");
                let patch = RunPatch::concluded(Outcome::Blocked, detail);
                self.finish(store, delivery, &run, process, Outcome::Blocked, patch, &[]).await;
                return;
            }
            Verdict::Defer { retry_at_ms, reason, scope, detail } => {
                if let Some(scope) = scope {
                    self.metrics().emit(Throttled { scope, detail: &detail });
                }
                self.defer(store, delivery, &run, retry_at_ms, reason, &detail).await;
                return;
            }
        };
        let prepared = match &self.github {
            None => None,
            Some(github) => match github.prepare(&run, store).await {
                Ok(prepared) => Some(prepared),
                Err(refusal) => {
                    self.guards.release(held, false, None).await;
                    self.refused(store, delivery, &run, refusal).await;
                    return;
                }
            },
        };
        self.task(process, TaskStatus::Success, "");
        tracing::info!(attempt = run.attempts, head_sha = short_sha(&run.failure.head_sha), "pipeline run started");

        self.task(Task::RunFixPipeline, TaskStatus::Started, "");
        match self.pipeline.run(&run).await {
            Ok(Concluded { outcome, opened_pr, patch, artifacts }) => {
                let failed_key = (outcome == Outcome::Fail).then_some(run.run_key.as_str());
                self.guards.release(held, opened_pr, failed_key).await;
                if let (Some(github), Some(prepared)) = (&self.github, &prepared) {
                    let reason = patch.reason.as_deref().unwrap_or_default();
                    github.complete(prepared, &run, Some(outcome), reason, patch.pr.as_ref()).await;
                }
                self.finish(store, delivery, &run, Task::RunFixPipeline, outcome, patch, &artifacts).await;
            }
            Err(transient) => {
                self.guards.release(held, false, None).await;
                if let (Some(github), Some(prepared)) = (&self.github, &prepared) {
                    github.complete(prepared, &run, None, &transient.message, None).await;
                }
                self.retry_later(store, delivery, &run, Task::RunFixPipeline, transient).await;
            }
        }
    }

    /// A run GitHub stopped before its stages: skipped with the reason, deferred (the open-PR limit), or
    /// retried later (a transient error).
    async fn refused(&self, store: &Store, delivery: &Delivery, run: &Run, refusal: Refusal) {
        let process = Task::ProcessPipelineEvent;
        match refusal {
            Refusal::Skip(reason) => {
                tracing::info!(reason = %reason, "nothing to do on GitHub");
                self.task(process, TaskStatus::Success, "github");
                let patch = RunPatch::concluded(Outcome::Skipped, reason);
                self.finish(store, delivery, run, process, Outcome::Skipped, patch, &[]).await;
            }
            Refusal::Defer { retry_at_ms, detail } => {
                self.metrics().emit(Throttled { scope: ThrottleScope::Repo, detail: &detail });
                self.defer(store, delivery, run, retry_at_ms, RetryReason::RepoThrottled, &detail).await;
            }
            Refusal::Transient(message) => {
                let transient = Transient { stage: None, message, stages: run.stages.clone() };
                self.retry_later(store, delivery, run, process, transient).await;
            }
        }
    }

    /// Not now (a limit or a cooldown): the run goes back to queued with its due time, the attempt its claim
    /// counted given back, its job in the delayed set; this delivery is acked.
    async fn defer(
        &self,
        store: &Store,
        delivery: &Delivery,
        run: &Run,
        retry_at_ms: i64,
        reason: RetryReason,
        detail: &str,
    ) {
        let delay = Duration::from_millis(u64::try_from(retry_at_ms - sre_store::now_ms()).unwrap_or(0).max(1000));
        let patch = RunPatch {
            status: Some(RunStatus::Queued),
            reason: Some(format!("deferred ({}): {detail}", reason.as_str())),
            retry_at_ms: Some(Some(sre_store::now_ms() + delay.as_millis() as i64)),
            attempts: Some(run.attempts.saturating_sub(1)),
            ..RunPatch::default()
        };
        if let Err(err) = store.update_run(&run.run_id, &patch).await {
            tracing::error!(error = %err, "could not record the deferral; the job stays pending for reclaim");
            self.task(Task::ProcessPipelineEvent, TaskStatus::Retry, "store unavailable; the job stays pending");
            return;
        }
        let opts = Publish { delay: Some(delay), link: Some(&run.origin_traceparent), ..Publish::default() };
        match self.queue.publish(run.ids(), opts).await {
            Ok(_) => {
                self.metrics().emit(RetryScheduled { reason, attempt: run.attempts, delay, detail });
                self.task(Task::ProcessPipelineEvent, TaskStatus::Retry, detail);
                self.ack(delivery).await;
            }
            Err(err) => {
                tracing::error!(error = %err, "could not schedule the deferred run; the job stays pending");
                self.task(Task::ProcessPipelineEvent, TaskStatus::Retry, "queue unavailable; the job stays pending");
            }
        }
    }

    /// Persists the concluded run, then acks. If the store fails the job stays pending (reclaimed later).
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        store: &Store,
        delivery: &Delivery,
        run: &Run,
        task: Task,
        outcome: Outcome,
        patch: RunPatch,
        artifacts: &[(sre_domain::ArtifactKind, String)],
    ) {
        let span = tracing::Span::current();
        span.record("outcome", outcome.as_str());
        if let Err(err) = self.pipeline.persist(store, run, &patch, artifacts).await {
            tracing::error!(error = %err, "could not record the run");
            span.record("otel.status_code", "ERROR");
            self.task(task, TaskStatus::Retry, "could not record the run; the job stays pending for reclaim");
            return;
        }
        self.metrics().emit(RunFinished {
            outcome,
            reason: patch.reason.as_deref().unwrap_or_default(),
            attempts: run.attempts,
            danger_score: patch.danger_score,
            pr_number: patch.pr.as_ref().map(|p| p.number),
        });
        let status = if outcome == Outcome::Fail { TaskStatus::Fail } else { TaskStatus::Success };
        self.task(task, status, patch.reason.as_deref().unwrap_or_default());
        self.ack(delivery).await;
    }

    /// Schedules the run again after a transient failure: recorded as queued with its due time, its job in
    /// the delayed set (through `publish`, so the retry has a producer span), this delivery acked. The loop
    /// guard ends a run that keeps failing.
    async fn retry_later(&self, store: &Store, delivery: &Delivery, run: &Run, task: Task, t: Transient) {
        let detail = match t.stage {
            Some(stage) => format!("{} (transient): {}", stage.span_name(), t.message),
            None => format!("{} (transient)", t.message),
        };
        if run.attempts >= self.config.max_attempts {
            let detail = format!("gave up after {} attempts; last: {detail}", run.attempts);
            self.metrics().emit(LoopBlocked {
                reason: LoopBlockedReason::MaxAttempts,
                attempts: run.attempts,
                detail: &detail,
            });
            let mut patch = RunPatch::concluded(Outcome::Blocked, detail);
            patch.stages = Some(t.stages);
            self.finish(store, delivery, run, task, Outcome::Blocked, patch, &[]).await;
            return;
        }
        let jitter = (std::collections::hash_map::RandomState::new().hash_one(&delivery.id) % 1000) as f64 / 999.0;
        let delay = self.config.retry_delay(run.attempts, jitter);
        let due = sre_store::now_ms() + delay.as_millis() as i64;
        let patch = RunPatch {
            status: Some(RunStatus::Queued),
            reason: Some(format!("retry {} scheduled: {detail}", run.attempts + 1)),
            stages: Some(t.stages),
            retry_at_ms: Some(Some(due)),
            ..RunPatch::default()
        };
        if let Err(err) = store.update_run(&run.run_id, &patch).await {
            tracing::error!(error = %err, "could not record the retry; the job stays pending for reclaim");
            self.task(task, TaskStatus::Retry, "store unavailable; the job stays pending");
            return;
        }
        let opts = Publish { delay: Some(delay), link: Some(&run.origin_traceparent), ..Publish::default() };
        match self.queue.publish(run.ids(), opts).await {
            Ok(_) => {
                self.metrics().emit(RetryScheduled {
                    reason: RetryReason::TransientError,
                    attempt: run.attempts,
                    delay,
                    detail: &detail,
                });
                self.task(task, TaskStatus::Retry, &detail);
                self.ack(delivery).await;
            }
            // Not acked: this delivery is reclaimed after the idle timeout and runs the retry then.
            Err(err) => {
                tracing::error!(error = %err, "could not schedule the retry; the job stays pending");
                self.task(task, TaskStatus::Retry, "queue unavailable; the job stays pending");
            }
        }
    }

    async fn ack(&self, delivery: &Delivery) {
        if let Err(err) = self.queue.ack(&delivery.id).await {
            // The run is recorded; a redelivery finds it terminal and acks then.
            tracing::warn!(error = %err, "ack failed");
        }
    }

    /// Due retries into the stream; the queue gauges and the outbox sweep every few seconds.
    async fn housekeeping(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(PROMOTE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sweep = tokio::time::Instant::now() - SWEEP_EVERY;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            match self.queue.promote_due(100).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(moved = n, "due retries moved into the stream"),
                Err(err) => tracing::debug!(error = %err, "could not promote due retries"),
            }
            if last_sweep.elapsed() < SWEEP_EVERY {
                continue;
            }
            last_sweep = tokio::time::Instant::now();
            match (self.queue.depth().await, self.queue.delayed_len().await) {
                (Ok(depth), Ok(delayed)) => self.metrics().queue(depth, delayed),
                (Err(err), _) | (_, Err(err)) => tracing::debug!(error = %err, "queue depth unavailable"),
            }
            // A Redis that lost its data lost every queued job with it: those runs are enqueued again now,
            // not once they look stale (SRE_REQUEUE_STALE_SECONDS). Running runs keep their live workers
            // (a dead one's is covered by the stale sweep).
            // (Only with the store open: the marker is set once, and the requeue must not be skipped.)
            if self.store.get().is_some() {
                match self.queue.mark_data().await {
                    Ok(true) => self.requeue_after_data_loss().await,
                    Ok(false) => {}
                    Err(err) => tracing::debug!(error = %err, "queue marker unavailable"),
                }
            }
            self.sweep_outbox().await;
        }
    }

    /// Enqueues every queued run and pending event again (a retry keeps its due time), once, after the queue's
    /// Redis came back empty. A surplus job (the run's own job was enqueued after the loss) is harmless: the
    /// claim in [`Self::process`] runs a run once.
    async fn requeue_after_data_loss(&self) {
        let Some(store) = self.store.get() else { return };
        const MAX: i64 = 10_000;
        let runs = match store.queued_runs(MAX).await {
            Ok(runs) => runs,
            Err(err) => {
                // The marker is set: the stale sweep covers these runs instead.
                tracing::warn!(error = %err, "queue data lost, but the queued runs could not be read");
                return;
            }
        };
        let pending = store.pending_to_requeue(0).await.unwrap_or_default();
        tracing::warn!(
            runs = runs.len(),
            pending_events = pending.len(),
            "the queue's Redis holds none of its data (restarted empty, flushed, or a first start); enqueueing every queued run again"
        );
        let now = sre_store::now_ms();
        let mut requeued = 0usize;
        for run in &runs {
            let delay = run.retry_at_ms.filter(|due| *due > now).map(|due| Duration::from_millis((due - now) as u64));
            let opts = Publish { delay, link: Some(&run.origin_traceparent), ..Publish::default() };
            match self.queue.publish(run.ids(), opts).await {
                Ok(_) => {
                    let _ = store.mark_enqueued(&run.run_id).await;
                    requeued += 1;
                }
                Err(err) => {
                    tracing::warn!(error = %err, requeued, "enqueue failed while requeueing after data loss; the stale sweep covers the rest");
                    return;
                }
            }
        }
        for (delivery_id, failure) in pending {
            if self.publish_pending(&delivery_id, &failure).await.is_ok() {
                let _ = store.touch_pending(&delivery_id).await;
            }
        }
        if requeued > 0 {
            tracing::warn!(runs = requeued, "requeued the queued runs after the queue's data was lost");
        }
    }

    /// Enqueues the resolution job of a pending event again.
    async fn publish_pending(
        &self,
        delivery_id: &str,
        failure: &sre_domain::Failure,
    ) -> sre_queue::QueueResult<String> {
        let (run_key, failure_id) = (failure.run_key(), failure.failure_id());
        let ids = sre_domain::RunIds { delivery_id, run_key: &run_key, failure_id: &failure_id, ..Default::default() };
        self.queue.publish(ids, Publish { kind: JobKind::Event, ..Publish::default() }).await
    }

    /// Re-enqueues runs whose job may be gone: never enqueued (Redis was down at the webhook), or queued /
    /// running with no progress for longer than any stage takes (their job was lost, e.g. Redis restarted
    /// empty, or their worker died). Each publish starts a new trace linked to the delivery's original one.
    /// The claim in [`Self::process`] makes a surplus job harmless.
    async fn sweep_outbox(&self) {
        let Some(store) = self.store.get() else { return };
        // Pending events whose resolution job was lost (never enqueued, or Redis restarted empty).
        if let Ok(pending) = store.pending_to_requeue(UNENQUEUED_GRACE_MS).await {
            for (delivery_id, failure) in pending {
                match self.publish_pending(&delivery_id, &failure).await {
                    Ok(_) => {
                        let _ = store.touch_pending(&delivery_id).await;
                        tracing::warn!(delivery_id = %delivery_id, "outbox: re-enqueued a pending event whose job was missing");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "outbox: enqueue still failing");
                        return;
                    }
                }
            }
        }
        let stale = self.config.requeue_stale().as_millis() as i64;
        let Ok(runs) = store.runs_to_requeue(UNENQUEUED_GRACE_MS, stale).await else { return };
        for run in runs {
            // A run left running by a dead worker may be taken over; a queued one is simply queued again.
            let opts = Publish {
                takeover: run.status == RunStatus::Running,
                link: Some(&run.origin_traceparent),
                ..Publish::default()
            };
            match self.queue.publish(run.ids(), opts).await {
                Ok(_) => {
                    let _ = store.mark_enqueued(&run.run_id).await;
                    tracing::warn!(run_id = %run.run_id, status = run.status.as_str(), enqueued_before = run.enqueued,
                        "outbox: re-enqueued a run whose job was missing");
                }
                Err(err) => {
                    tracing::warn!(error = %err, "outbox: enqueue still failing");
                    return;
                }
            }
        }
    }
}
