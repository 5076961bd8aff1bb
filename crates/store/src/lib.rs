//! The events, runs and artifacts store: SQLite (a file under the data dir) by default, PostgreSQL when
//! `DATABASE_URL` is `postgres://`. One schema, portable SQL through sqlx's `Any` driver, migrations applied
//! at connect.
//!
//! A webhook delivery becomes one `events` row and, in the same transaction, either a new `runs` row or an
//! enrichment of the run its failure already has: runs are unique per `(run_key, run_attempt)`, so every
//! event and redelivery about one failure lands on one run. Updates are partial ([`RunPatch`]): they change
//! only what they name. Artifacts (log, context, plan, diff, scan report, validation, PR) sit beside the run.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use sre_domain::{
    ArtifactKind, Category, Conclusion, EventKind, Failure, Label, Language, PrLabel, PullRequestRef, Run, RunPatch,
    RunStatus, StageRecord, Tool,
};

mod bodies;
mod migrations;

use bodies::{BodyLog, BodyRef};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("unsupported DATABASE_URL scheme {0:?}: use sqlite:// or postgres://")]
    Scheme(String),
    #[error("creating the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("stored stages are not valid JSON: {0}")]
    Stages(#[from] serde_json::Error),
    #[error("delivery body file: {0}")]
    Body(#[from] std::io::Error),
    #[error("column {column} holds {value:?}, which is not a known value")]
    Corrupt { column: &'static str, value: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `db.system` of the store spans (OTel semantic conventions).
    pub fn db_system(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgresql",
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A webhook delivery (or a local submission) to store.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    pub delivery_id: &'a str,
    pub event: EventKind,
    pub action: &'a str,
    pub repo: &'a str,
    /// The raw body, kept for audit and replays; never logged.
    pub payload: &'a [u8],
}

/// Result of [`Store::claim_run`].
#[derive(Debug)]
pub enum Claim {
    /// This worker now runs it.
    Claimed(Run),
    /// Already finished: the job was a duplicate.
    Finished(Run),
    /// Another worker is running it: the job was a duplicate.
    InProgress(Run),
    /// No such run in this store.
    Missing,
}

/// Result of [`Store::ingest`].
#[derive(Debug)]
pub enum Ingested {
    /// A failure seen for the first time: a new run.
    New(Run),
    /// A new delivery about a failure that already has its run (another event type, or GitHub sending the
    /// same failure twice): the run was enriched with the facts it lacked, nothing else changed.
    Enriched(Run),
    /// The delivery was seen before; this is its run.
    Duplicate(Run),
}

impl Ingested {
    pub fn run(&self) -> &Run {
        match self {
            Self::New(r) | Self::Enriched(r) | Self::Duplicate(r) => r,
        }
    }
}

/// One delivery of a group commit ([`Store::ingest_batch`]).
#[derive(Clone, Debug)]
pub enum BatchItem<'a> {
    /// A failed job and the run it makes or enriches.
    Failure(NewEvent<'a>, &'a Run),
    /// A failure named without its job, resolved later.
    Pending(NewEvent<'a>, &'a Failure),
    Installation(NewEvent<'a>, &'a InstallationChange),
}

impl<'a> BatchItem<'a> {
    fn event(&self) -> &NewEvent<'a> {
        match self {
            Self::Failure(e, _) | Self::Pending(e, _) | Self::Installation(e, _) => e,
        }
    }
}

/// What a group commit did with one delivery.
#[derive(Debug)]
pub enum BatchOutcome {
    /// A failure: its run, new or enriched.
    Run(Ingested),
    /// A pending event stored.
    Pending,
    /// An installation change applied.
    Installation,
    /// The delivery was stored before (with its run, for a failure whose run is known).
    Duplicate(Option<Run>),
}

/// An `installation` or `installation_repositories` delivery: which repositories the App may act on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallationChange {
    pub installation_id: u64,
    /// The account (user or organisation) the App is installed on.
    pub account: String,
    pub suspended: bool,
    /// The App was uninstalled.
    pub removed: bool,
    pub repos_added: Vec<String>,
    pub repos_removed: Vec<String>,
}

/// An installation as recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Installation {
    pub installation_id: u64,
    pub account: String,
    pub suspended: bool,
    pub removed: bool,
    pub repos: Vec<String>,
}

/// What the store knows of one artifact, without its body.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ArtifactMeta {
    pub kind: ArtifactKind,
    pub content_type: String,
    pub bytes: i64,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Delivery bodies of a SQLite file store (see [`bodies`]); `None`: bodies stay in `events.payload`.
    bodies: Option<std::sync::Arc<BodyLog>>,
}

const RUN_COLUMNS: &str = "run_id, run_key, delivery_id, failure_id, correlation_id, repo, head_sha, head_branch, \
     event, conclusion, run_attempt, workflow_name, workflow_run_id, job_name, job_id, check_suite_id, installation_id, \
     status, reason, language, category, tool, danger_score, label, pr_number, pr_branch, pr_url, stages, attempts, \
     enqueued, trace_id, origin_traceparent, retry_at_ms, created_at_ms, updated_at_ms";

/// u64 GitHub IDs as BIGINT (they fit: GitHub IDs are far below 2^63).
fn id_col(v: Option<u64>) -> Option<i64> {
    v.and_then(|v| i64::try_from(v).ok())
}

impl Store {
    /// `DATABASE_URL` or `sqlite://<data_dir>/sre-agent.db`.
    pub fn default_url(data_dir: &std::path::Path) -> String {
        format!("sqlite://{}", data_dir.join("sre-agent.db").display())
    }

    /// Connects and applies migrations. A SQLite file (and its directory) is created when missing.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Scheme(url.split(':').next().unwrap_or_default().to_owned()));
        };
        let (url, bodies) = match backend {
            Backend::Sqlite => {
                let (url, file) = sqlite_url(url)?;
                (url, file.map(|path| std::sync::Arc::new(BodyLog::for_database(&path))))
            }
            Backend::Postgres => (url.to_owned(), None),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(std::time::Duration::from_secs(3))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets the API read while the worker writes; busy_timeout rides out writer overlap.
                        sqlx::query("PRAGMA journal_mode=WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout=5000").execute(&mut *conn).await?;
                        // Every acknowledged delivery survives a crash or power loss: the WAL is fsynced at
                        // each commit (group commit makes that one fsync for many deliveries).
                        sqlx::query("PRAGMA synchronous=FULL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys=ON").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .after_release(move |conn, _| {
                Box::pin(async move {
                    if backend != Backend::Sqlite {
                        return Ok(true);
                    }
                    // A write that met a full disk (SQLITE_FULL) or an I/O error can leave SQLite's
                    // transaction open behind sqlx's back (whether SQLite rolls back by itself depends on
                    // the error and the moment). Idle in the pool, that connection would hold the write lock
                    // ("database is locked" for every other one, past the moment space is back), and a
                    // transaction begun on it later would nest in the stale one and never commit. No
                    // finished Transaction is open at release: a ROLLBACK that succeeds means such a
                    // leftover, and the connection is closed (a new one replaces it).
                    match sqlx::query("ROLLBACK").execute(&mut *conn).await {
                        Ok(_) => {
                            tracing::warn!("a pooled SQLite connection was left inside a transaction (a failed write); rolled back and closed");
                            Ok(false)
                        }
                        Err(_) => Ok(true), // "no transaction is active": the normal case
                    }
                })
            })
            .connect(&url)
            .await?;
        let store = Self { pool, backend, bodies };
        migrations::apply(&store.pool, backend).await?;
        Ok(store)
    }

    /// Reserves the bodies of `events` in the body log, when this store keeps one.
    fn reserve_bodies(&self, events: &[&NewEvent<'_>]) -> StoreResult<Option<(Vec<BodyRef>, bodies::BodyWrite)>> {
        let Some(log) = &self.bodies else { return Ok(None) };
        let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload).collect();
        Ok(Some(log.reserve(&payloads)?))
    }

    /// Writes reserved bodies and waits until they are durable (on a blocking thread: `fdatasync`).
    async fn write_bodies(&self, write: bodies::BodyWrite) -> StoreResult<()> {
        self.bodies_written(tokio::task::spawn_blocking(move || write.run()).await)
    }

    /// The end of a body write: after a failure the log moves to a new segment.
    fn bodies_written(&self, joined: Result<std::io::Result<()>, tokio::task::JoinError>) -> StoreResult<()> {
        let result = joined.unwrap_or_else(|e| Err(std::io::Error::other(format!("body write task: {e}"))));
        if result.is_err()
            && let Some(log) = &self.bodies
        {
            log.abandon_segment();
        }
        Ok(result?)
    }

    /// Inserts one delivery, its body durable first; false when it was stored before.
    async fn insert_event(&self, tx: &mut Tx<'_>, event: &NewEvent<'_>) -> StoreResult<bool> {
        let refs = match self.reserve_bodies(&[event])? {
            Some((refs, write)) => {
                self.write_bodies(write).await?;
                Some(refs)
            }
            None => None,
        };
        Ok(insert_events(tx, &[event], refs.as_deref()).await?[0])
    }

    /// A stored delivery's body, byte for byte as received (`None`: no such delivery).
    pub async fn event_payload(&self, delivery_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let Some(row) =
            sqlx::query("SELECT payload, body_segment, body_offset, body_len FROM events WHERE delivery_id = $1")
                .bind(delivery_id)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let segment: String = row.try_get("body_segment")?;
        if segment.is_empty() {
            return Ok(Some(row.try_get::<String, _>("payload")?.into_bytes()));
        }
        let body = BodyRef { segment, offset: row.try_get("body_offset")?, len: row.try_get("body_len")? };
        let log = self.bodies.clone().ok_or_else(|| {
            StoreError::Body(std::io::Error::other("the event's body is in a segment file, but this store has none"))
        })?;
        let read = tokio::task::spawn_blocking(move || log.read(&body))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(format!("body read task: {e}"))));
        Ok(Some(read?))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// `SELECT 1`, for readiness.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stores the event and, atomically with it, the run of its failure: a new run, or the existing run of
    /// the same `(run_key, run_attempt)` enriched with the facts it lacked. A delivery seen before changes
    /// nothing and returns its run.
    pub async fn ingest(&self, event: &NewEvent<'_>, run: &Run) -> StoreResult<Ingested> {
        let mut tx = self.pool.begin().await?;
        if !self.insert_event(&mut tx, event).await? {
            tx.rollback().await?;
            return match self.run_by_delivery(event.delivery_id).await? {
                Some(existing) => Ok(Ingested::Duplicate(existing)),
                // The delivery was stored by a concurrent request that has not committed its run yet.
                None => Err(StoreError::Db(sqlx::Error::RowNotFound)),
            };
        }
        let run_id = upsert_run(&mut tx, run, event.delivery_id).await?;
        link_event(&mut tx, event.delivery_id, &run_id).await?;
        tx.commit().await?;
        let stored = self.get_run(&run_id).await?.ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
        Ok(if run_id == run.run_id { Ingested::New(stored) } else { Ingested::Enriched(stored) })
    }

    /// Group commit: many deliveries stored in ONE transaction (one fsync), each with the semantics of its
    /// single-delivery method ([`Self::ingest`], [`Self::ingest_pending`], [`Self::ingest_installation`]).
    /// `enqueued` names runs whose jobs were handed to the queue since the last batch: their flag is set in
    /// the same transaction, so marking costs no commit of its own. Should the batch fail as a whole, each
    /// delivery is retried in a transaction of its own, so one bad delivery cannot fail the others.
    pub async fn ingest_batch(&self, items: &[BatchItem<'_>], enqueued: &[String]) -> Vec<StoreResult<BatchOutcome>> {
        match self.ingest_batch_once(items, enqueued).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(err) => {
                tracing::warn!(error = %err, deliveries = items.len(), "batch failed; storing one by one");
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.ingest_batch_once(std::slice::from_ref(item), &[]).await.map(|mut v| v.remove(0)));
                }
                if !enqueued.is_empty() {
                    for run_id in enqueued {
                        let _ = self.mark_enqueued(run_id).await;
                    }
                }
                out
            }
        }
    }

    async fn ingest_batch_once(&self, items: &[BatchItem<'_>], enqueued: &[String]) -> StoreResult<Vec<BatchOutcome>> {
        let mut tx = self.pool.begin().await?;
        // The flags first, so a delivery of such a run in this batch sees it enqueued.
        mark_enqueued_tx(&mut tx, enqueued).await?;
        // Two statements for the whole batch's events and pending rows (each statement is a round trip to
        // SQLite's worker thread); runs and installations stay one item at a time, in order, because a later
        // delivery of the batch may enrich what an earlier one stored.
        let events: Vec<&NewEvent<'_>> = items.iter().map(BatchItem::event).collect();
        // The bodies go to their segment while the statements run; the commit waits for both.
        let (refs, body_write) = match self.reserve_bodies(&events)? {
            Some((refs, write)) => (Some(refs), Some(tokio::task::spawn_blocking(move || write.run()))),
            None => (None, None),
        };
        let new_events = insert_events(&mut tx, &events, refs.as_deref()).await?;
        let mut out = Vec::with_capacity(items.len());
        let mut duplicates = Vec::new();
        let mut pending = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let event = item.event();
            if !new_events[i] {
                duplicates.push(i);
                out.push(BatchOutcome::Duplicate(None));
                continue;
            }
            out.push(match item {
                BatchItem::Failure(_, run) => {
                    let stored = upsert_run_returning(&mut tx, run, event.delivery_id).await?;
                    link_event(&mut tx, event.delivery_id, &stored.run_id).await?;
                    if stored.run_id == run.run_id {
                        BatchOutcome::Run(Ingested::New(stored))
                    } else {
                        BatchOutcome::Run(Ingested::Enriched(stored))
                    }
                }
                BatchItem::Pending(_, failure) => {
                    pending.push((event.delivery_id, serde_json::to_string(failure)?));
                    BatchOutcome::Pending
                }
                BatchItem::Installation(_, change) => {
                    apply_installation(&mut tx, change).await?;
                    BatchOutcome::Installation
                }
            });
        }
        insert_pending(&mut tx, &pending).await?;
        if let Some(write) = body_write {
            self.bodies_written(write.await)?;
        }
        tx.commit().await?;
        // A redelivery's run, read after the commit (a concurrent writer may have stored it meanwhile).
        for i in duplicates {
            if let BatchItem::Failure(event, _) = &items[i] {
                out[i] = BatchOutcome::Duplicate(self.run_by_delivery(event.delivery_id).await?);
            }
        }
        Ok(out)
    }

    /// A local submission: the event, a new run and its job log, in one transaction.
    pub async fn ingest_with_log(&self, event: &NewEvent<'_>, run: &Run, log: &str) -> StoreResult<Run> {
        let mut tx = self.pool.begin().await?;
        if !self.insert_event(&mut tx, event).await? {
            tx.rollback().await?;
            return Err(StoreError::Db(sqlx::Error::Protocol(format!("delivery {} exists", event.delivery_id))));
        }
        let run_id = upsert_run(&mut tx, run, event.delivery_id).await?;
        link_event(&mut tx, event.delivery_id, &run_id).await?;
        put_artifact_tx(&mut tx, &run_id, ArtifactKind::Log, log).await?;
        tx.commit().await?;
        self.get_run(&run_id).await?.ok_or(StoreError::Db(sqlx::Error::RowNotFound))
    }

    /// The next `run_attempt` of a run key (1 for a key never seen).
    pub async fn next_attempt(&self, run_key: &str) -> StoreResult<u32> {
        let row = sqlx::query("SELECT COALESCE(MAX(run_attempt), 0) AS n FROM runs WHERE run_key = $1")
            .bind(run_key)
            .fetch_one(&self.pool)
            .await?;
        Ok(u32::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0) + 1)
    }

    /// Stores an event that names a failure without its job (a `workflow_run` or `check_suite`): the event
    /// and the failure facts to resolve into job runs later ([`Self::resolve_pending`]). Returns false for a
    /// delivery seen before.
    pub async fn ingest_pending(&self, event: &NewEvent<'_>, failure: &Failure) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        if !self.insert_event(&mut tx, event).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO pending_events (delivery_id, failure, status, runs, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, 'pending', '[]', $3, $3)",
        )
        .bind(event.delivery_id)
        .bind(serde_json::to_string(failure)?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A pending event's failure facts, and whether it was resolved already.
    pub async fn pending_event(&self, delivery_id: &str) -> StoreResult<Option<(Failure, bool)>> {
        let row = sqlx::query("SELECT failure, status FROM pending_events WHERE delivery_id = $1")
            .bind(delivery_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let failure: String = r.try_get("failure")?;
            let status: String = r.try_get("status")?;
            Ok((serde_json::from_str(&failure)?, status == "resolved"))
        })
        .transpose()
    }

    /// Resolves a pending event into the runs of its failed jobs, atomically: each run is created, or the
    /// existing run of its key enriched (a `workflow_job` event may have made it already), and the event is
    /// marked resolved with the run IDs. Returns what happened to each.
    /// When a pending event was stored (`None`: no such event).
    pub async fn pending_created_ms(&self, delivery_id: &str) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT created_at_ms FROM pending_events WHERE delivery_id = $1")
            .bind(delivery_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("created_at_ms")).transpose()?)
    }

    pub async fn resolve_pending(&self, delivery_id: &str, runs: &[Run], note: &str) -> StoreResult<Vec<Ingested>> {
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::new();
        for run in runs {
            ids.push((upsert_run(&mut tx, run, delivery_id).await?, run.run_id.clone()));
        }
        let run_ids: Vec<&str> = ids.iter().map(|(id, _)| id.as_str()).collect();
        sqlx::query(
            "UPDATE pending_events SET status = 'resolved', runs = $1, note = $2, updated_at_ms = $3 \
             WHERE delivery_id = $4",
        )
        .bind(serde_json::to_string(&run_ids)?)
        .bind(note)
        .bind(now_ms())
        .bind(delivery_id)
        .execute(&mut *tx)
        .await?;
        if let Some((first, _)) = ids.first() {
            link_event(&mut tx, delivery_id, first).await?;
        }
        tx.commit().await?;
        let mut out = Vec::new();
        for (id, proposed) in ids {
            let stored = self.get_run(&id).await?.ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
            out.push(if id == proposed { Ingested::New(stored) } else { Ingested::Enriched(stored) });
        }
        Ok(out)
    }

    /// Pending events not resolved after `older_than_ms` (their job was lost): for the outbox sweep.
    pub async fn pending_to_requeue(&self, older_than_ms: i64) -> StoreResult<Vec<(String, Failure)>> {
        let rows = sqlx::query(
            "SELECT delivery_id, failure FROM pending_events WHERE status = 'pending' AND updated_at_ms < $1 \
             ORDER BY created_at_ms LIMIT 100",
        )
        .bind(now_ms() - older_than_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let failure: String = r.try_get("failure")?;
                Ok((r.try_get("delivery_id")?, serde_json::from_str(&failure)?))
            })
            .collect()
    }

    /// Restarts a pending event's staleness clock (it was enqueued again).
    pub async fn touch_pending(&self, delivery_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE pending_events SET updated_at_ms = $1 WHERE delivery_id = $2")
            .bind(now_ms())
            .bind(delivery_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores an `installation` or `installation_repositories` delivery and applies it to the record of which
    /// repositories the App may act on, atomically. Returns false for a delivery seen before.
    pub async fn ingest_installation(&self, event: &NewEvent<'_>, change: &InstallationChange) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        if !self.insert_event(&mut tx, event).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        apply_installation(&mut tx, change).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// What the store knows of an installation: `None` when no installation event was received for it.
    pub async fn installation(&self, installation_id: u64) -> StoreResult<Option<Installation>> {
        let id = id_col(Some(installation_id));
        let Some(row) = sqlx::query("SELECT account, suspended, removed FROM installations WHERE installation_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let repos = sqlx::query("SELECT repo FROM installation_repos WHERE installation_id = $1 ORDER BY repo")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("repo"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Installation {
            installation_id,
            account: row.try_get("account")?,
            suspended: row.try_get::<i64, _>("suspended")? != 0,
            removed: row.try_get::<i64, _>("removed")? != 0,
            repos,
        }))
    }

    /// Marks a run's job as handed to the queue (again, for a requeue: restarts its staleness clock).
    pub async fn mark_enqueued(&self, run_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE runs SET enqueued = 1, updated_at_ms = $1 WHERE run_id = $2")
            .bind(now_ms())
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks many runs' jobs as handed to the queue, in one commit.
    pub async fn mark_enqueued_many(&self, run_ids: &[String]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        mark_enqueued_tx(&mut tx, run_ids).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_run(&self, run_id: &str) -> StoreResult<Option<Run>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode_run(&r)).transpose()
    }

    /// The run a delivery was stored for.
    pub async fn run_by_delivery(&self, delivery_id: &str) -> StoreResult<Option<Run>> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE run_id = (SELECT run_id FROM events WHERE delivery_id = $1)"
        ))
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| decode_run(&r)).transpose()
    }

    /// Newest runs first, at most `limit`.
    pub async fn list_runs(&self, limit: i64) -> StoreResult<Vec<Run>> {
        let rows = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY created_at_ms DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_run).collect()
    }

    /// Claims a run for execution: `queued` → `running`, counting the attempt. With `takeover`, a run
    /// already `running` is claimed too (its worker died: a reclaimed or re-enqueued job). Anything else is
    /// reported, not changed, so a duplicate job never runs a run twice.
    pub async fn claim_run(&self, run_id: &str, takeover: bool) -> StoreResult<Claim> {
        let claimed = sqlx::query(
            "UPDATE runs SET status = 'running', attempts = attempts + 1, retry_at_ms = NULL, updated_at_ms = $1 \
             WHERE run_id = $2 AND (status = 'queued' OR ($3 = 1 AND status = 'running'))",
        )
        .bind(now_ms())
        .bind(run_id)
        .bind(i64::from(takeover))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(match (claimed, self.get_run(run_id).await?) {
            (_, None) => Claim::Missing,
            (1, Some(run)) => Claim::Claimed(run),
            (_, Some(run)) if run.is_terminal() => Claim::Finished(run),
            (_, Some(run)) => Claim::InProgress(run),
        })
    }

    /// Records the stages so far (progress for the runs API, and the heartbeat the stale-run sweep reads).
    pub async fn record_progress(&self, run_id: &str, stages: &[StageRecord]) -> StoreResult<()> {
        sqlx::query("UPDATE runs SET stages = $1, updated_at_ms = $2 WHERE run_id = $3 AND status = 'running'")
            .bind(serde_json::to_string(stages)?)
            .bind(now_ms())
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Changes exactly the fields `patch` names (and `updated_at_ms`).
    pub async fn update_run(&self, run_id: &str, patch: &RunPatch) -> StoreResult<()> {
        enum Value {
            Text(String),
            Real(Option<f64>),
            Int(Option<i64>),
        }
        let RunPatch {
            status,
            reason,
            language,
            category,
            tool,
            danger_score,
            label,
            pr,
            stages,
            retry_at_ms,
            attempts,
        } = patch;
        let mut sets: Vec<(&str, Value)> = Vec::new();
        let text = |v: &str| Value::Text(v.to_owned());
        if let Some(v) = status {
            sets.push(("status", text(v.as_str())));
        }
        if let Some(v) = reason {
            sets.push(("reason", text(v)));
        }
        if let Some(v) = language {
            sets.push(("language", text(v.as_str())));
        }
        if let Some(v) = category {
            sets.push(("category", text(v.as_str())));
        }
        if let Some(v) = tool {
            sets.push(("tool", text(v.as_str())));
        }
        if danger_score.is_some() {
            sets.push(("danger_score", Value::Real(*danger_score)));
        }
        if let Some(v) = label {
            sets.push(("label", text(v.as_str())));
        }
        if let Some(pr) = pr {
            sets.push(("pr_number", Value::Int(i64::try_from(pr.number).ok())));
            sets.push(("pr_branch", text(&pr.branch)));
            sets.push(("pr_url", text(&pr.url)));
        }
        if let Some(v) = stages {
            sets.push(("stages", Value::Text(serde_json::to_string(v)?)));
        }
        if let Some(v) = retry_at_ms {
            sets.push(("retry_at_ms", Value::Int(*v)));
        }
        if let Some(v) = attempts {
            sets.push(("attempts", Value::Int(Some(i64::from(*v)))));
        }
        sets.push(("updated_at_ms", Value::Int(Some(now_ms()))));
        let assignments: Vec<String> =
            sets.iter().enumerate().map(|(i, (col, _))| format!("{col} = ${}", i + 1)).collect();
        let sql = format!("UPDATE runs SET {} WHERE run_id = ${}", assignments.join(", "), sets.len() + 1);
        let mut query = sqlx::query(&sql);
        for (_, value) in sets {
            query = match value {
                Value::Text(v) => query.bind(v),
                Value::Real(v) => query.bind(v),
                Value::Int(v) => query.bind(v),
            };
        }
        query.bind(run_id).execute(&self.pool).await?;
        Ok(())
    }

    /// Stores (or replaces) one artifact of a run.
    pub async fn put_artifact(&self, run_id: &str, kind: ArtifactKind, body: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        put_artifact_tx(&mut tx, run_id, kind, body).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The body of one artifact.
    pub async fn artifact(&self, run_id: &str, kind: ArtifactKind) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT body FROM artifacts WHERE run_id = $1 AND kind = $2")
            .bind(run_id)
            .bind(kind.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("body")).transpose()?)
    }

    /// What a run has stored beside its record, in [`ArtifactKind`] order.
    pub async fn artifacts(&self, run_id: &str) -> StoreResult<Vec<ArtifactMeta>> {
        let rows = sqlx::query("SELECT kind, content_type, bytes, created_at_ms FROM artifacts WHERE run_id = $1")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(ArtifactMeta {
                    kind: label(r, "kind")?,
                    content_type: r.try_get("content_type")?,
                    bytes: r.try_get("bytes")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|a| a.kind);
        Ok(out)
    }

    /// Runs whose job may be gone, oldest first (at most 100 per call):
    /// - stored but never handed to the queue (the webhook-time enqueue failed), older than `unenqueued_ms`;
    /// - `queued` with no change for `stale_ms` (their job was lost, e.g. Redis restarted empty), unless a
    ///   delayed retry is still due later;
    /// - `running` with no progress for `stale_ms` (their worker died and the job is gone).
    pub async fn runs_to_requeue(&self, unenqueued_ms: i64, stale_ms: i64) -> StoreResult<Vec<Run>> {
        let now = now_ms();
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE \
             (enqueued = 0 AND status = 'queued' AND created_at_ms < $1) \
             OR (enqueued = 1 AND status IN ('queued', 'running') AND updated_at_ms < $2 \
                 AND COALESCE(retry_at_ms, 0) < $2) \
             ORDER BY created_at_ms LIMIT 100"
        ))
        .bind(now - unenqueued_ms)
        .bind(now - stale_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_run).collect()
    }

    /// Every `queued` run, oldest first (at most `limit`): their jobs, in the stream or the delayed set, are
    /// gone when Redis lost its data, without waiting for them to go stale.
    pub async fn queued_runs(&self, limit: i64) -> StoreResult<Vec<Run>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE status = 'queued' ORDER BY created_at_ms LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_run).collect()
    }

    /// Number of stored events.
    pub async fn count_events(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM events").fetch_one(&self.pool).await?.try_get::<i64, _>("n")?)
    }

    pub async fn count_runs(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM runs").fetch_one(&self.pool).await?.try_get::<i64, _>("n")?)
    }

    /// Runs one statement outside any transaction (administrative use: tests create databases with it).
    pub async fn execute_raw(&self, sql: &str) -> StoreResult<()> {
        sqlx::raw_sql(sql).execute(&self.pool).await?;
        Ok(())
    }
}

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// Inserts a run or enriches the run of its `(run_key, run_attempt)`, returning the stored row.
static UPSERT_RUN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO runs (run_id, run_key, delivery_id, failure_id, correlation_id, repo, head_sha, head_branch, \
         event, conclusion, run_attempt, workflow_name, workflow_run_id, job_name, job_id, check_suite_id, \
         installation_id, status, reason, language, category, tool, label, pr_branch, pr_url, stages, attempts, \
         enqueued, trace_id, origin_traceparent, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, '', '', '', '', \
         '', '', '', '[]', 0, 0, $19, $20, $21, $21) \
         ON CONFLICT (run_key, run_attempt) DO UPDATE SET \
         head_branch = CASE WHEN runs.head_branch = '' THEN excluded.head_branch ELSE runs.head_branch END, \
         workflow_name = CASE WHEN runs.workflow_name = '' THEN excluded.workflow_name ELSE runs.workflow_name END, \
         job_name = CASE WHEN runs.job_name = '' THEN excluded.job_name ELSE runs.job_name END, \
         workflow_run_id = COALESCE(runs.workflow_run_id, excluded.workflow_run_id), \
         job_id = COALESCE(runs.job_id, excluded.job_id), \
         check_suite_id = COALESCE(runs.check_suite_id, excluded.check_suite_id), \
         installation_id = COALESCE(runs.installation_id, excluded.installation_id) \
         RETURNING {RUN_COLUMNS}",
    )
});

async fn apply_installation(tx: &mut Tx<'_>, change: &InstallationChange) -> StoreResult<()> {
    let id = id_col(Some(change.installation_id));
    let now = now_ms();
    sqlx::query(
        "INSERT INTO installations (installation_id, account, suspended, removed, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (installation_id) DO UPDATE SET \
             account = excluded.account, suspended = excluded.suspended, removed = excluded.removed, \
             updated_at_ms = excluded.updated_at_ms",
    )
    .bind(id)
    .bind(&change.account)
    .bind(i64::from(change.suspended))
    .bind(i64::from(change.removed))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if change.removed {
        sqlx::query("DELETE FROM installation_repos WHERE installation_id = $1").bind(id).execute(&mut **tx).await?;
    }
    for repo in &change.repos_added {
        sqlx::query("INSERT INTO installation_repos (installation_id, repo) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(repo)
            .execute(&mut **tx)
            .await?;
    }
    for repo in &change.repos_removed {
        sqlx::query("DELETE FROM installation_repos WHERE installation_id = $1 AND repo = $2")
            .bind(id)
            .bind(repo)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn put_artifact_tx(tx: &mut Tx<'_>, run_id: &str, kind: ArtifactKind, body: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO artifacts (run_id, kind, content_type, body, bytes, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (run_id, kind) DO UPDATE SET content_type = excluded.content_type, body = excluded.body, \
         bytes = excluded.bytes, created_at_ms = excluded.created_at_ms",
    )
    .bind(run_id)
    .bind(kind.as_str())
    .bind(kind.content_type())
    .bind(body)
    .bind(body.len() as i64)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A delivery's body as the TEXT column keeps it. JSON and forms are UTF-8, and checking that is cheap
/// (`from_utf8_lossy`'s chunk walk over a 17 KB body was 4.5% of the gateway's CPU); anything else is
/// kept lossily rather than refused, as before.
fn payload_text(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(payload).into_owned(),
    }
}

/// Rows per multi-row INSERT: far below both backends' bind-parameter limits (SQLite 32766, PostgreSQL 65535).
const ROWS_PER_INSERT: usize = 256;

/// Inserts deliveries in multi-row statements; for each, whether it is new (false: stored before, or an
/// earlier item of the same batch has its delivery ID). With `bodies` (one per event) a row points at its body
/// in a segment file and `payload` stays empty.
async fn insert_events(
    tx: &mut Tx<'_>,
    events: &[&NewEvent<'_>],
    bodies: Option<&[BodyRef]>,
) -> StoreResult<Vec<bool>> {
    let mut inserted = std::collections::HashSet::new();
    for (n, chunk) in events.chunks(ROWS_PER_INSERT).enumerate() {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * 9;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, '', ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO events (delivery_id, event, action, repo, payload, received_at_ms, run_id, body_segment, \
             body_offset, body_len) VALUES {} ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id",
            rows.join(", ")
        );
        let now = now_ms();
        let mut q = sqlx::query(&sql);
        for (i, e) in chunk.iter().enumerate() {
            q = q.bind(e.delivery_id).bind(e.event.as_str()).bind(e.action).bind(e.repo);
            q = match bodies.map(|b| &b[n * ROWS_PER_INSERT + i]) {
                Some(body) => q.bind("").bind(now).bind(body.segment.as_str()).bind(body.offset).bind(body.len),
                None => q.bind(payload_text(e.payload)).bind(now).bind("").bind(0_i64).bind(0_i64),
            };
        }
        for row in q.fetch_all(&mut **tx).await? {
            inserted.insert(row.try_get::<String, _>("delivery_id")?);
        }
    }
    // The first item of a delivery ID is the one stored; any later one in the batch is its duplicate.
    Ok(events.iter().map(|e| inserted.remove(e.delivery_id)).collect())
}

/// Pending events (delivery ID, failure facts as JSON) in multi-row statements.
async fn insert_pending(tx: &mut Tx<'_>, pending: &[(&str, String)]) -> StoreResult<()> {
    for chunk in pending.chunks(ROWS_PER_INSERT) {
        let rows: Vec<String> =
            (0..chunk.len()).map(|i| format!("(${}, ${}, 'pending', '[]', $1, $1)", 2 * i + 2, 2 * i + 3)).collect();
        let sql = format!(
            "INSERT INTO pending_events (delivery_id, failure, status, runs, created_at_ms, updated_at_ms) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(now_ms());
        for (delivery_id, failure) in chunk {
            q = q.bind(*delivery_id).bind(failure.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn mark_enqueued_tx(tx: &mut Tx<'_>, run_ids: &[String]) -> StoreResult<()> {
    for chunk in run_ids.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql =
            format!("UPDATE runs SET enqueued = 1, updated_at_ms = $1 WHERE run_id IN ({})", placeholders.join(", "));
        let mut q = sqlx::query(&sql).bind(now_ms());
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn link_event(tx: &mut Tx<'_>, delivery_id: &str, run_id: &str) -> StoreResult<()> {
    sqlx::query("UPDATE events SET run_id = $1 WHERE delivery_id = $2")
        .bind(run_id)
        .bind(delivery_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Inserts the run, or enriches the run of the same `(run_key, run_attempt)`: a later event fills in what
/// the first one could not know (job id, workflow run id, installation, names); it never overwrites a known
/// fact or the run's progress. Returns the ID of the run that holds the failure.
async fn upsert_run(tx: &mut Tx<'_>, run: &Run, delivery_id: &str) -> StoreResult<String> {
    Ok(upsert_run_returning(tx, run, delivery_id).await?.run_id)
}

/// [`upsert_run`], returning the stored run (no second read).
async fn upsert_run_returning(tx: &mut Tx<'_>, run: &Run, delivery_id: &str) -> StoreResult<Run> {
    let f = &run.failure;
    let now = now_ms();
    let row = sqlx::query(&UPSERT_RUN)
        .bind(&run.run_id)
        .bind(&run.run_key)
        .bind(delivery_id)
        .bind(&run.failure_id)
        .bind(&run.correlation_id)
        .bind(&f.repo)
        .bind(&f.head_sha)
        .bind(&f.head_branch)
        .bind(f.event.map(EventKind::as_str).unwrap_or_default())
        .bind(f.conclusion.map(Conclusion::as_str).unwrap_or_default())
        .bind(i64::from(f.run_attempt))
        .bind(&f.workflow_name)
        .bind(id_col(f.workflow_run_id))
        .bind(&f.job_name)
        .bind(id_col(f.job_id))
        .bind(id_col(f.check_suite_id))
        .bind(id_col(f.installation_id))
        .bind(run.status.as_str())
        .bind(&run.trace_id)
        .bind(&run.origin_traceparent)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
    decode_run(&row)
}

/// The URL sqlx opens, and the database file (`None` for an in-memory database).
fn sqlite_url(url: &str) -> StoreResult<(String, Option<std::path::PathBuf>)> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let in_memory = path == ":memory:" || path.is_empty() || query.split('&').any(|kv| kv == "mode=memory");
    if !in_memory && let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::DataDir(dir.display().to_string(), e))?;
    }
    let query = if query.is_empty() { "mode=rwc".to_owned() } else { query.to_owned() };
    Ok((format!("sqlite://{path}?{query}"), (!in_memory).then(|| std::path::PathBuf::from(path))))
}

/// A required enum column.
fn label<L: Label>(r: &AnyRow, column: &'static str) -> StoreResult<L> {
    let value: String = r.try_get(column)?;
    L::parse(&value).ok_or(StoreError::Corrupt { column, value })
}

/// An enum column that is empty until known.
fn optional<L: Label>(r: &AnyRow, column: &'static str) -> StoreResult<Option<L>> {
    let value: String = r.try_get(column)?;
    if value.is_empty() {
        return Ok(None);
    }
    L::parse(&value).map(Some).ok_or(StoreError::Corrupt { column, value })
}

fn id(r: &AnyRow, column: &'static str) -> StoreResult<Option<u64>> {
    Ok(r.try_get::<Option<i64>, _>(column)?.and_then(|v| u64::try_from(v).ok()))
}

fn decode_run(r: &AnyRow) -> StoreResult<Run> {
    let stages: String = r.try_get("stages")?;
    let pr = id(r, "pr_number")?.map(|number| -> StoreResult<PullRequestRef> {
        Ok(PullRequestRef { number, branch: r.try_get("pr_branch")?, url: r.try_get("pr_url")? })
    });
    Ok(Run {
        run_id: r.try_get("run_id")?,
        run_key: r.try_get("run_key")?,
        delivery_id: r.try_get("delivery_id")?,
        failure_id: r.try_get("failure_id")?,
        correlation_id: r.try_get("correlation_id")?,
        failure: Failure {
            repo: r.try_get("repo")?,
            head_sha: r.try_get("head_sha")?,
            head_branch: r.try_get("head_branch")?,
            event: optional::<EventKind>(r, "event")?,
            conclusion: optional::<Conclusion>(r, "conclusion")?,
            run_attempt: u32::try_from(r.try_get::<i64, _>("run_attempt")?).unwrap_or_default(),
            workflow_name: r.try_get("workflow_name")?,
            workflow_run_id: id(r, "workflow_run_id")?,
            job_name: r.try_get("job_name")?,
            job_id: id(r, "job_id")?,
            check_suite_id: id(r, "check_suite_id")?,
            installation_id: id(r, "installation_id")?,
        },
        status: label::<RunStatus>(r, "status")?,
        reason: r.try_get("reason")?,
        language: optional::<Language>(r, "language")?,
        category: optional::<Category>(r, "category")?,
        tool: optional::<Tool>(r, "tool")?,
        danger_score: r.try_get("danger_score")?,
        label: optional::<PrLabel>(r, "label")?,
        pr: pr.transpose()?,
        stages: serde_json::from_str(&stages)?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or_default(),
        enqueued: r.try_get::<i64, _>("enqueued")? != 0,
        trace_id: r.try_get("trace_id")?,
        origin_traceparent: r.try_get("origin_traceparent")?,
        retry_at_ms: r.try_get("retry_at_ms")?,
        created_at_ms: r.try_get("created_at_ms")?,
        updated_at_ms: r.try_get("updated_at_ms")?,
    })
}

/// A store that connects in the background and keeps trying, so a process starts (and reports not ready)
/// while its database is down, and becomes ready by itself when the database answers.
#[derive(Clone, Default)]
pub struct StoreCell(std::sync::Arc<tokio::sync::OnceCell<Store>>);

impl StoreCell {
    /// Starts connecting to `url` with capped exponential backoff.
    pub fn connect_in_background(url: String) -> Self {
        let cell = Self::default();
        let target = cell.clone();
        tokio::spawn(async move {
            let mut delay = std::time::Duration::from_millis(250);
            loop {
                match Store::connect(&url).await {
                    Ok(store) => {
                        tracing::info!(backend = store.backend().db_system(), "store connected, migrations applied");
                        let _ = target.0.set(store);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "store unavailable");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(std::time::Duration::from_secs(10));
                    }
                }
            }
        });
        cell
    }

    /// A cell holding an already connected store.
    pub fn ready(store: Store) -> Self {
        let cell = Self::default();
        let _ = cell.0.set(store);
        cell
    }

    /// The store once connected.
    pub fn get(&self) -> Option<&Store> {
        self.0.get()
    }
}
