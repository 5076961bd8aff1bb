//! Group commit. One writer task takes the deliveries that arrive while the previous commit is in flight and
//! stores them in ONE transaction (one fsync for many); each request is answered only once ITS delivery is
//! durable and its job is on the queue. The jobs of a batch go to Redis in one round trip (a pipelined
//! `XADD`), in a task of their own so the next batch's commit overlaps them; the "enqueued" flags of those
//! runs ride in the next batch's transaction (or a lone commit when no delivery comes), so marking costs no
//! commit per delivery. A flag lost in a crash only means the outbox sweep enqueues that run once more, which
//! the orchestrator's claim makes harmless.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use sre_domain::{EventKind, Failure, Run, RunIds, RunStatus};
use sre_queue::{JobKind, Queue};
use sre_store::{BatchItem, BatchOutcome, Ingested, InstallationChange, NewEvent, StoreCell};
use tokio::sync::{mpsc, oneshot};

/// Deliveries one transaction takes at most.
const MAX_BATCH: usize = 128;
/// Requests waiting for the writer at most (then callers wait to queue: backpressure, not loss).
const QUEUE_DEPTH: usize = 4096;
/// How long flags of enqueued runs may wait for a batch to ride in before they get a commit of their own.
const MARK_FLUSH: Duration = Duration::from_millis(200);

/// A delivery, owned, for the writer.
#[derive(Debug)]
pub struct Delivery {
    pub delivery_id: String,
    pub event: EventKind,
    pub action: &'static str,
    pub repo: String,
    pub payload: Bytes,
    pub what: What,
}

/// What a delivery stores.
#[derive(Debug)]
pub enum What {
    Failure(Box<Run>),
    Pending(Box<Failure>),
    Installation(InstallationChange),
}

/// What became of a delivery.
#[derive(Debug)]
pub struct Reply {
    /// The store's answer for it.
    pub outcome: Result<BatchOutcome, String>,
    /// Whether it needed a job and got one on the queue (`Err` when the queue refused).
    pub enqueued: Result<bool, String>,
    /// How many deliveries shared its commit.
    pub batch: usize,
}

struct Request {
    delivery: Delivery,
    span: tracing::Span,
    reply: oneshot::Sender<Reply>,
}

/// The handle the handlers submit deliveries through.
#[derive(Clone)]
pub struct Ingester {
    tx: mpsc::Sender<Request>,
}

impl Ingester {
    /// Starts the writer over `store` and `queue`.
    pub fn start(store: StoreCell, queue: Queue) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(writer(rx, store, queue));
        Self { tx }
    }

    /// Stores `delivery` (in the next group commit) and enqueues its job; `span` is the delivery's ingest
    /// span, parent of its producer span.
    pub async fn submit(&self, delivery: Delivery, span: tracing::Span) -> Reply {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Request { delivery, span, reply }).await.is_err() {
            return Reply { outcome: Err("the writer stopped".into()), enqueued: Ok(false), batch: 0 };
        }
        answer.await.unwrap_or(Reply { outcome: Err("the writer stopped".into()), enqueued: Ok(false), batch: 0 })
    }
}

/// The job a stored delivery needs, if any: a new run, a run whose enqueue failed before (not one this writer
/// has just enqueued and not yet flagged), a new pending event.
fn job_of(delivery: &Delivery, outcome: &BatchOutcome, in_flight: &HashSet<String>) -> Option<(Option<Run>, JobKind)> {
    let needs = |run: &Run| !run.enqueued && run.status == RunStatus::Queued && !in_flight.contains(&run.run_id);
    match outcome {
        BatchOutcome::Run(Ingested::New(run)) => Some((Some(run.clone()), JobKind::Run)),
        BatchOutcome::Run(Ingested::Enriched(run) | Ingested::Duplicate(run)) | BatchOutcome::Duplicate(Some(run))
            if needs(run) =>
        {
            Some((Some(run.clone()), JobKind::Run))
        }
        BatchOutcome::Pending if matches!(delivery.what, What::Pending(_)) => Some((None, JobKind::Event)),
        _ => None,
    }
}

/// Runs whose job this writer enqueued: `marks` still to flag in the store, `in_flight` every one not yet
/// flagged (so a redelivery in between does not enqueue a second job).
#[derive(Clone, Default)]
struct Enqueued {
    marks: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

impl Enqueued {
    fn take_marks(&self) -> Vec<String> {
        std::mem::take(&mut *self.marks.lock().unwrap_or_else(|e| e.into_inner()))
    }
    fn has_marks(&self) -> bool {
        !self.marks.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
    /// The flags of `ids` are committed: they are no longer in flight.
    fn flagged(&self, ids: &[String]) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            in_flight.remove(id);
        }
    }
    fn put_back(&self, ids: Vec<String>) {
        self.marks.lock().unwrap_or_else(|e| e.into_inner()).extend(ids);
    }
}

async fn writer(mut rx: mpsc::Receiver<Request>, store: StoreCell, queue: Queue) {
    let enqueued = Enqueued::default();
    loop {
        let first = if !enqueued.has_marks() {
            match rx.recv().await {
                Some(r) => r,
                None => return,
            }
        } else {
            match tokio::time::timeout(MARK_FLUSH, rx.recv()).await {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(_) => {
                    flush_marks(&store, &enqueued).await;
                    continue;
                }
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let Some(db) = store.get() else {
            for r in batch {
                let _ = r.reply.send(Reply { outcome: Err("store unavailable".into()), enqueued: Ok(false), batch: 0 });
            }
            continue;
        };
        let pending_marks = enqueued.take_marks();
        let outcomes = {
            let items: Vec<BatchItem<'_>> = batch
                .iter()
                .map(|r| {
                    let d = &r.delivery;
                    let event = NewEvent {
                        delivery_id: &d.delivery_id,
                        event: d.event,
                        action: d.action,
                        repo: &d.repo,
                        payload: &d.payload,
                    };
                    match &d.what {
                        What::Failure(run) => BatchItem::Failure(event, run),
                        What::Pending(failure) => BatchItem::Pending(event, failure),
                        What::Installation(change) => BatchItem::Installation(event, change),
                    }
                })
                .collect();
            db.ingest_batch(&items, &pending_marks).await
        };
        let size = batch.len();
        // Which deliveries need a job, decided here, in order, so two deliveries of one run in flight get one.
        let jobs: Vec<Option<(Option<Run>, JobKind)>> = {
            let mut in_flight = enqueued.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            batch
                .iter()
                .zip(&outcomes)
                .map(|(r, o)| {
                    let job = o.as_ref().ok().and_then(|o| job_of(&r.delivery, o, &in_flight));
                    if let Some((Some(run), _)) = &job {
                        in_flight.insert(run.run_id.clone());
                    }
                    job
                })
                .collect()
        };
        if outcomes.iter().all(Result::is_err) {
            // The commit that carried them failed: keep the flags for the next one.
            enqueued.put_back(pending_marks);
        } else {
            enqueued.flagged(&pending_marks);
        }
        let publish = Publish { queue: queue.clone(), enqueued: enqueued.clone() };
        // Its own task: the next batch's commit overlaps this batch's round trip to Redis.
        tokio::spawn(publish.run(batch, outcomes, jobs, size));
    }
}

async fn flush_marks(store: &StoreCell, enqueued: &Enqueued) {
    let Some(db) = store.get() else { return };
    let pending = enqueued.take_marks();
    if pending.is_empty() {
        return;
    }
    if let Err(err) = db.mark_enqueued_many(&pending).await {
        // Dropped, not retried for ever: the outbox sweep enqueues unflagged runs again.
        tracing::warn!(error = %err, runs = pending.len(), "could not mark runs enqueued; the outbox sweep covers them");
    }
    enqueued.flagged(&pending);
}

struct Publish {
    queue: Queue,
    enqueued: Enqueued,
}

impl Publish {
    async fn run(
        self,
        batch: Vec<Request>,
        outcomes: Vec<sre_store::StoreResult<BatchOutcome>>,
        jobs: Vec<Option<(Option<Run>, JobKind)>>,
        size: usize,
    ) {
        let keys: Vec<(String, String)> = batch
            .iter()
            .zip(&jobs)
            .map(|(r, job)| match (&r.delivery.what, job) {
                (What::Pending(f), Some((None, _))) => (f.run_key(), f.failure_id()),
                _ => (String::new(), String::new()),
            })
            .collect();
        let to_publish: Vec<(RunIds<'_>, JobKind, &tracing::Span)> = batch
            .iter()
            .zip(&jobs)
            .zip(&keys)
            .filter_map(|((r, job), (run_key, failure_id))| {
                let (run, kind) = job.as_ref()?;
                let ids = match run {
                    Some(run) => run.ids(),
                    None => RunIds { delivery_id: &r.delivery.delivery_id, run_key, failure_id, ..Default::default() },
                };
                Some((ids, *kind, &r.span))
            })
            .collect();
        let published = self.queue.publish_batch(&to_publish).await;
        drop(to_publish);
        let runs: Vec<String> =
            jobs.iter().flatten().filter_map(|(run, _)| run.as_ref().map(|r| r.run_id.clone())).collect();
        let enqueued: Result<(), String> = match &published {
            Ok(_) => {
                self.enqueued.put_back(runs);
                Ok(())
            }
            Err(err) => {
                // Not in flight any more: a redelivery may enqueue them.
                self.enqueued.flagged(&runs);
                tracing::error!(error = %err, jobs = jobs.iter().flatten().count(), "enqueue failed; the deliveries are stored, their jobs not queued");
                Err(err.to_string())
            }
        };
        for ((request, outcome), job) in batch.into_iter().zip(outcomes).zip(jobs) {
            let enqueued = match (&enqueued, job.is_some()) {
                (_, false) => Ok(false),
                (Ok(()), true) => Ok(true),
                (Err(e), true) => Err(e.clone()),
            };
            let outcome = outcome.map_err(|e| e.to_string());
            let _ = request.reply.send(Reply { outcome, enqueued, batch: size });
        }
    }
}
