//! The events and runs store: SQLite (a file under the data dir) by default, PostgreSQL when `DATABASE_URL`
//! is `postgres://`. One schema, portable SQL through sqlx's `Any` driver, migrations applied at connect.
//!
//! A webhook delivery becomes one `events` row and one `runs` row in a single transaction, keyed by the
//! delivery ID, so a redelivery finds the existing run instead of starting another.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

mod migrations;

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
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A webhook delivery to store.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub action: &'a str,
    pub repo: &'a str,
    /// The raw body, kept for audit and replays; never logged.
    pub payload: &'a [u8],
}

/// The run a failure delivery starts.
#[derive(Clone, Debug, Default)]
pub struct NewRun {
    pub run_id: String,
    pub run_key: String,
    pub failure_id: String,
    pub correlation_id: String,
    pub repo: String,
    pub head_sha: String,
    pub head_branch: String,
    pub failure_name: String,
    pub attempt: i64,
}

/// One stage's result inside a run.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct StageResult {
    /// Span name of the stage: generate_plan, policy_check_plan, ...
    pub stage: String,
    /// ok, failed, blocked, skipped.
    pub status: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub detail: String,
}

/// A run as stored.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub run_key: String,
    pub delivery_id: String,
    pub failure_id: String,
    pub correlation_id: String,
    pub repo: String,
    pub head_sha: String,
    pub head_branch: String,
    pub failure_name: String,
    /// queued, running, success, fail, blocked, skipped.
    pub status: String,
    pub reason: String,
    pub language: String,
    pub category: String,
    pub danger_score: Option<f64>,
    pub label: String,
    pub pr_number: Option<i64>,
    pub pr_branch: String,
    pub stages: Vec<StageResult>,
    pub attempts: i64,
    pub enqueued: bool,
    pub trace_id: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl RunRecord {
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "success" | "fail" | "blocked" | "skipped")
    }
}

/// What the orchestrator learned; written with [`Store::update_run`].
#[derive(Clone, Debug, Default)]
pub struct RunUpdate {
    pub status: String,
    pub reason: String,
    pub language: String,
    pub category: String,
    pub danger_score: Option<f64>,
    pub label: String,
    pub pr_number: Option<i64>,
    pub pr_branch: String,
    pub stages: Vec<StageResult>,
    pub diff: Option<String>,
    pub trace_id: String,
}

/// Result of [`Store::claim_run`].
#[derive(Debug)]
pub enum Claim {
    /// This worker now runs it.
    Claimed(RunRecord),
    /// Already finished: the job was a duplicate.
    Finished(RunRecord),
    /// Another worker is running it: the job was a duplicate.
    InProgress(RunRecord),
    /// No such run in this store.
    Missing,
}

/// Result of [`Store::ingest`].
#[derive(Debug)]
pub enum Ingested {
    New(RunRecord),
    /// The delivery was seen before; this is its run.
    Duplicate(RunRecord),
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

const RUN_COLUMNS: &str = "run_id, run_key, delivery_id, failure_id, correlation_id, repo, head_sha, head_branch, \
     failure_name, status, reason, language, category, danger_score, label, pr_number, pr_branch, stages, attempts, \
     enqueued, trace_id, created_at_ms, updated_at_ms";

impl Store {
    /// `DATABASE_URL` or `sqlite://<data_dir>/sre-agent.db`.
    pub fn url_from_env(data_dir: &std::path::Path) -> String {
        std::env::var("DATABASE_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("sre-agent.db").display()))
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
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
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
                        sqlx::query("PRAGMA foreign_keys=ON").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let store = Self { pool, backend };
        migrations::apply(&store.pool).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// `SELECT 1`, for readiness.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stores the event and its run atomically, or returns the run of an earlier identical delivery.
    pub async fn ingest(&self, event: &NewEvent<'_>, run: &NewRun) -> StoreResult<Ingested> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO events (delivery_id, event, action, repo, payload, received_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(event.delivery_id)
        .bind(event.event)
        .bind(event.action)
        .bind(event.repo)
        .bind(String::from_utf8_lossy(event.payload).into_owned())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return match self.run_by_delivery(event.delivery_id).await? {
                Some(existing) => Ok(Ingested::Duplicate(existing)),
                // The delivery was stored by a concurrent request that has not committed its run yet.
                None => Err(StoreError::Db(sqlx::Error::RowNotFound)),
            };
        }
        sqlx::query(
            "INSERT INTO runs (run_id, run_key, delivery_id, failure_id, correlation_id, repo, head_sha, head_branch, \
             failure_name, status, reason, language, category, label, pr_branch, stages, attempts, enqueued, trace_id, \
             created_at_ms, updated_at_ms, diff) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', '', '', '', '', '', '[]', $10, 0, '', $11, $12, '')",
        )
        .bind(&run.run_id)
        .bind(&run.run_key)
        .bind(event.delivery_id)
        .bind(&run.failure_id)
        .bind(&run.correlation_id)
        .bind(&run.repo)
        .bind(&run.head_sha)
        .bind(&run.head_branch)
        .bind(&run.failure_name)
        .bind(0_i64)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let stored = self.get_run(&run.run_id).await?.ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
        Ok(Ingested::New(stored))
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

    pub async fn get_run(&self, run_id: &str) -> StoreResult<Option<RunRecord>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode_run(&r)).transpose()
    }

    pub async fn run_by_delivery(&self, delivery_id: &str) -> StoreResult<Option<RunRecord>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE delivery_id = $1"))
            .bind(delivery_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode_run(&r)).transpose()
    }

    /// The patch a run produced (empty when none).
    pub async fn run_diff(&self, run_id: &str) -> StoreResult<Option<String>> {
        let row =
            sqlx::query("SELECT diff FROM runs WHERE run_id = $1").bind(run_id).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get::<String, _>("diff")).transpose()?)
    }

    /// Newest runs first, at most `limit`.
    pub async fn list_runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
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
            "UPDATE runs SET status = 'running', attempts = attempts + 1, updated_at_ms = $1 \
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
    pub async fn record_progress(&self, run_id: &str, stages: &[StageResult]) -> StoreResult<()> {
        sqlx::query("UPDATE runs SET stages = $1, updated_at_ms = $2 WHERE run_id = $3 AND status = 'running'")
            .bind(serde_json::to_string(stages)?)
            .bind(now_ms())
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes what a pipeline run found.
    pub async fn update_run(&self, run_id: &str, u: &RunUpdate) -> StoreResult<()> {
        let stages = serde_json::to_string(&u.stages)?;
        sqlx::query(
            "UPDATE runs SET status = $1, reason = $2, language = $3, category = $4, danger_score = $5, label = $6, \
             pr_number = $7, pr_branch = $8, stages = $9, diff = COALESCE($10, diff), trace_id = $11, updated_at_ms = $12 \
             WHERE run_id = $13",
        )
        .bind(&u.status)
        .bind(&u.reason)
        .bind(&u.language)
        .bind(&u.category)
        .bind(u.danger_score)
        .bind(&u.label)
        .bind(u.pr_number)
        .bind(&u.pr_branch)
        .bind(stages)
        .bind(u.diff.clone())
        .bind(&u.trace_id)
        .bind(now_ms())
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs whose job may be gone, oldest first (at most 100 per call):
    /// - stored but never handed to the queue (the webhook-time enqueue failed), older than `unenqueued_ms`;
    /// - `queued` with no change for `stale_ms` (their job was lost, e.g. Redis restarted empty);
    /// - `running` with no progress for `stale_ms` (their worker died and the job is gone).
    pub async fn runs_to_requeue(&self, unenqueued_ms: i64, stale_ms: i64) -> StoreResult<Vec<RunRecord>> {
        let now = now_ms();
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE \
             (enqueued = 0 AND status = 'queued' AND created_at_ms < $1) \
             OR (enqueued = 1 AND status IN ('queued', 'running') AND updated_at_ms < $2) \
             ORDER BY created_at_ms LIMIT 100"
        ))
        .bind(now - unenqueued_ms)
        .bind(now - stale_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_run).collect()
    }

    /// Number of stored events (tests and the runs API use it).
    pub async fn count_events(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM events").fetch_one(&self.pool).await?.try_get::<i64, _>("n")?)
    }

    pub async fn count_runs(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM runs").fetch_one(&self.pool).await?.try_get::<i64, _>("n")?)
    }
}

fn sqlite_url(url: &str) -> StoreResult<String> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path != ":memory:"
        && let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::DataDir(dir.display().to_string(), e))?;
    }
    let query = if query.is_empty() { "mode=rwc".to_owned() } else { query.to_owned() };
    Ok(format!("sqlite://{path}?{query}"))
}

fn decode_run(r: &AnyRow) -> StoreResult<RunRecord> {
    let stages: String = r.try_get("stages")?;
    Ok(RunRecord {
        run_id: r.try_get("run_id")?,
        run_key: r.try_get("run_key")?,
        delivery_id: r.try_get("delivery_id")?,
        failure_id: r.try_get("failure_id")?,
        correlation_id: r.try_get("correlation_id")?,
        repo: r.try_get("repo")?,
        head_sha: r.try_get("head_sha")?,
        head_branch: r.try_get("head_branch")?,
        failure_name: r.try_get("failure_name")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        language: r.try_get("language")?,
        category: r.try_get("category")?,
        danger_score: r.try_get("danger_score")?,
        label: r.try_get("label")?,
        pr_number: r.try_get("pr_number")?,
        pr_branch: r.try_get("pr_branch")?,
        stages: serde_json::from_str(&stages)?,
        attempts: r.try_get("attempts")?,
        enqueued: r.try_get::<i64, _>("enqueued")? != 0,
        trace_id: r.try_get("trace_id")?,
        created_at_ms: r.try_get("created_at_ms")?,
        updated_at_ms: r.try_get("updated_at_ms")?,
    })
}

impl Store {
    /// Runs one statement outside any transaction (administrative use: tests create databases with it).
    pub async fn execute_raw(&self, sql: &str) -> StoreResult<()> {
        sqlx::raw_sql(sql).execute(&self.pool).await?;
        Ok(())
    }
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
                        tracing::info!(backend = ?store.backend(), "store connected, migrations applied");
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
