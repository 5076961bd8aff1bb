//! The job loop: read or reclaim a job, continue its trace, run the pipeline, persist, then ack.

use std::sync::Arc;
use std::time::Duration;

use sre_queue::{Delivery, Job, Queue, RunRef};
use sre_store::{Claim, RunUpdate, StoreCell};
use sre_telemetry::{BusinessIds, propagation};
use tokio::sync::watch;
use tracing::Instrument;
use tracing::field::Empty;

use crate::config::Config;
use crate::metrics::Outcome;
use crate::pipeline::{Pipeline, PipelineError};

/// How long a worker waits for a new job before checking for shutdown and reclaimable jobs.
const READ_BLOCK: Duration = Duration::from_secs(2);

pub struct Worker {
    pub queue: Queue,
    pub store: StoreCell,
    pub pipeline: Pipeline,
    pub config: Arc<Config>,
}

impl Worker {
    /// Runs `config.workers` consumer loops until `stop` flips; in-flight runs finish first.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let mut loops = Vec::new();
        for i in 0..self.config.workers {
            let consumer = format!("{}-{i}", self.config.consumer);
            loops.push(tokio::spawn(self.clone().consume(consumer, stop.clone())));
        }
        loops.push(tokio::spawn(self.clone().housekeeping(stop.clone())));
        for l in loops {
            let _ = l.await;
        }
    }

    async fn consume(self: Arc<Self>, consumer: String, stop: watch::Receiver<bool>) {
        let mut reader = self.queue.reader(&consumer, READ_BLOCK);
        let mut backoff = Duration::from_millis(200);
        while !*stop.borrow() {
            if self.store.get().is_none() {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            // Jobs a dead worker left behind come first, then new ones.
            let next = match self.queue.reclaim(&consumer, self.config.reclaim_idle, 1).await {
                Ok(claimed) if !claimed.is_empty() => Ok(claimed.into_iter().next()),
                Ok(_) => reader.read(1).await.map(|v| v.into_iter().next()),
                Err(e) => Err(e),
            };
            match next {
                Ok(Some(delivery)) => {
                    backoff = Duration::from_millis(200);
                    self.handle(delivery).await;
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

    /// One job, inside the consumer span that continues the producer's trace.
    async fn handle(&self, delivery: Delivery) {
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
        BusinessIds {
            delivery_id: &job.delivery_id,
            run_key: &job.run_key,
            failure_id: "",
            run_id: &job.run_id,
            correlation_id: &job.correlation_id,
        }
        .record_on(&span);
        self.process(&delivery).instrument(span).await;
    }

    async fn process(&self, delivery: &Delivery) {
        let metrics = self.pipeline.metrics();
        let Some(store) = self.store.get() else { return };
        metrics.task("started");
        // A reclaimed delivery, or a job re-enqueued for a dead worker's run, may take over a running run;
        // any other job for a run that is running or finished is a duplicate.
        let takeover = delivery.reclaimed || delivery.job.takeover;
        let run = match store.claim_run(&delivery.job.run_id, takeover).await {
            Ok(Claim::Claimed(run)) => run,
            Ok(Claim::Finished(run) | Claim::InProgress(run)) => {
                tracing::info!(status = %run.status, "duplicate job for a run that is running or finished; acking it");
                metrics.task("success");
                self.ack(delivery).await;
                return;
            }
            Ok(Claim::Missing) => {
                // A job from another deployment sharing this Redis stream (each store needs its own
                // SRE_QUEUE_STREAM), or a run deleted since: nothing here can run it.
                tracing::error!(stream = self.queue.stream(), "job names a run this store does not have; dropping it");
                metrics.task("fail");
                self.ack(delivery).await;
                return;
            }
            Err(err) => {
                // Leave it pending: it is reclaimed once the store answers again.
                tracing::error!(error = %err, "could not start run; job stays pending");
                metrics.task("retry");
                metrics.retry("transient_error");
                return;
            }
        };
        tracing::Span::current().record("failure_id", run.failure_id.as_str());
        if run.attempts > self.config.max_attempts {
            tracing::warn!(attempts = run.attempts, max = self.config.max_attempts, "loop guard: too many attempts");
            metrics.loop_blocked("max_attempts");
            let mut update = RunUpdate {
                status: Outcome::Blocked.as_str().into(),
                reason: format!("blocked after {} attempts", run.attempts - 1),
                stages: run.stages.clone(),
                ..RunUpdate::default()
            };
            self.finish(delivery, Outcome::Blocked, &mut update).await;
            return;
        }
        tracing::info!(attempt = run.attempts, repo_sha = %short(&run.head_sha), "pipeline run started");

        match self.pipeline.run(&run).await {
            Ok(mut concluded) => {
                self.finish(delivery, concluded.outcome, &mut concluded.update).await;
            }
            Err(PipelineError::Transient { stage, message }) => {
                tracing::warn!(stage, error = %message, attempt = run.attempts, "transient failure; retrying the run later");
                metrics.retry("transient_error");
                metrics.task("retry");
                self.retry_later(delivery, run.attempts).await;
            }
        }
    }

    /// Persists the concluded run, then acks. If the store fails the job stays pending (reclaimed later).
    async fn finish(&self, delivery: &Delivery, outcome: Outcome, update: &mut RunUpdate) {
        let metrics = self.pipeline.metrics();
        let Some(store) = self.store.get() else { return };
        let span = tracing::Span::current();
        span.record("outcome", outcome.as_str());
        if let Err(err) = self.pipeline.persist(store, &delivery.job.run_id, update).await {
            tracing::error!(error = %err, "could not record the run; job stays pending for reclaim");
            span.record("otel.status_code", "ERROR");
            metrics.task("retry");
            metrics.retry("transient_error");
            return;
        }
        metrics.outcome(outcome);
        metrics.task("success");
        tracing::info!(
            outcome = outcome.as_str(),
            reason = %update.reason,
            danger_score = update.danger_score,
            pr_number = update.pr_number,
            "pipeline run finished"
        );
        self.ack(delivery).await;
    }

    /// Puts a fresh copy of the job on the queue after a backoff, then acks this delivery.
    async fn retry_later(&self, delivery: &Delivery, attempts: i64) {
        let delay = Duration::from_secs(2u64.saturating_pow(attempts.clamp(0, 5) as u32));
        tokio::time::sleep(delay).await;
        if let Some(store) = self.store.get() {
            let requeued = RunUpdate {
                status: "queued".into(),
                reason: "retrying after a transient error".into(),
                ..RunUpdate::default()
            };
            if let Err(err) = store.update_run(&delivery.job.run_id, &requeued).await {
                tracing::warn!(error = %err, "could not mark run queued");
            }
        }
        let mut job: Job = delivery.job.clone();
        job.trace_context = propagation::inject_map(&tracing::Span::current());
        match self.queue.enqueue(&job).await {
            Ok(_) => {
                self.pipeline.metrics().retry("celery_retry");
                self.ack(delivery).await;
            }
            // Not acked: the original delivery is reclaimed after the idle timeout.
            Err(err) => tracing::error!(error = %err, "could not requeue; leaving the job pending"),
        }
    }

    async fn ack(&self, delivery: &Delivery) {
        if let Err(err) = self.queue.ack(&delivery.id).await {
            // The run is recorded; a redelivery finds it terminal and acks then.
            tracing::warn!(error = %err, "ack failed");
        }
    }

    /// Queue depth gauge and the outbox sweep (runs stored but never enqueued, e.g. Redis was down).
    async fn housekeeping(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            match self.queue.depth().await {
                Ok(depth) => self.pipeline.metrics().queue(depth),
                Err(err) => tracing::debug!(error = %err, "queue depth unavailable"),
            }
            self.sweep_outbox().await;
        }
    }

    /// Re-enqueues runs whose job may be gone: never enqueued (Redis was down at the webhook), or queued /
    /// running with no progress for longer than any stage takes (their job was lost, e.g. Redis restarted
    /// empty, or their worker died). The claim in [`Self::process`] makes a surplus job harmless.
    async fn sweep_outbox(&self) {
        let Some(store) = self.store.get() else { return };
        let stale = self.config.requeue_stale.as_millis() as i64;
        let Ok(runs) = store.runs_to_requeue(30_000, stale).await else { return };
        for run in runs {
            let run_ref = RunRef {
                run_id: &run.run_id,
                run_key: &run.run_key,
                delivery_id: &run.delivery_id,
                correlation_id: &run.correlation_id,
            };
            // A run left running by a dead worker may be taken over; a queued one is simply queued again.
            match self.queue.publish(run_ref, run.status == "running").await {
                Ok(_) => {
                    let _ = store.mark_enqueued(&run.run_id).await;
                    tracing::warn!(run_id = %run.run_id, status = %run.status, enqueued_before = run.enqueued,
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

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
