//! Schema migrations, applied in order at connect, each in one transaction and recorded in
//! `schema_migrations`; an applied version is skipped, so the gateway and the orchestrator can start at the
//! same time against one database.

use sqlx::AnyPool;

/// (version, statements). Append only; never edit an applied migration.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE IF NOT EXISTS events (
            delivery_id TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            action TEXT NOT NULL,
            repo TEXT NOT NULL,
            payload TEXT NOT NULL,
            received_at_ms BIGINT NOT NULL
        )",
            "CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT PRIMARY KEY,
            run_key TEXT NOT NULL,
            delivery_id TEXT NOT NULL UNIQUE REFERENCES events (delivery_id),
            failure_id TEXT NOT NULL,
            correlation_id TEXT NOT NULL,
            repo TEXT NOT NULL,
            head_sha TEXT NOT NULL,
            head_branch TEXT NOT NULL,
            failure_name TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL,
            language TEXT NOT NULL,
            category TEXT NOT NULL,
            danger_score DOUBLE PRECISION,
            label TEXT NOT NULL,
            pr_number BIGINT,
            pr_branch TEXT NOT NULL,
            stages TEXT NOT NULL,
            attempts BIGINT NOT NULL,
            enqueued BIGINT NOT NULL,
            trace_id TEXT NOT NULL,
            diff TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL,
            updated_at_ms BIGINT NOT NULL
        )",
            "CREATE INDEX IF NOT EXISTS runs_created_idx ON runs (created_at_ms)",
            "CREATE INDEX IF NOT EXISTS runs_run_key_idx ON runs (run_key)",
        ],
    ),
    // 2: the typed run domain. One run per failure attempt (UNIQUE run_key + run_attempt, so every event and
    // redelivery about one failure lands on one run), every GitHub fact of the webhook kept, events linked to
    // their run, artifacts (log, context, plan, diff, scans, validation, PR) beside the run. Version 1's runs
    // are kept, renamed runs_v1, for audit: they predate the per-failure key and cannot satisfy its UNIQUE.
    (
        2,
        &[
            "ALTER TABLE runs RENAME TO runs_v1",
            "ALTER TABLE events ADD COLUMN run_id TEXT NOT NULL DEFAULT ''",
            "CREATE TABLE runs (
                run_id TEXT PRIMARY KEY,
                run_key TEXT NOT NULL,
                delivery_id TEXT NOT NULL,
                failure_id TEXT NOT NULL,
                correlation_id TEXT NOT NULL,
                repo TEXT NOT NULL,
                head_sha TEXT NOT NULL,
                head_branch TEXT NOT NULL,
                event TEXT NOT NULL,
                conclusion TEXT NOT NULL,
                run_attempt BIGINT NOT NULL,
                workflow_name TEXT NOT NULL,
                workflow_run_id BIGINT,
                job_name TEXT NOT NULL,
                job_id BIGINT,
                check_suite_id BIGINT,
                installation_id BIGINT,
                status TEXT NOT NULL,
                reason TEXT NOT NULL,
                language TEXT NOT NULL,
                category TEXT NOT NULL,
                tool TEXT NOT NULL,
                danger_score DOUBLE PRECISION,
                label TEXT NOT NULL,
                pr_number BIGINT,
                pr_branch TEXT NOT NULL,
                pr_url TEXT NOT NULL,
                stages TEXT NOT NULL,
                attempts BIGINT NOT NULL,
                enqueued BIGINT NOT NULL,
                trace_id TEXT NOT NULL,
                origin_traceparent TEXT NOT NULL,
                retry_at_ms BIGINT,
                created_at_ms BIGINT NOT NULL,
                updated_at_ms BIGINT NOT NULL,
                UNIQUE (run_key, run_attempt)
            )",
            "CREATE INDEX IF NOT EXISTS runs2_created_idx ON runs (created_at_ms)",
            "CREATE INDEX IF NOT EXISTS runs2_status_idx ON runs (status, updated_at_ms)",
            "CREATE INDEX IF NOT EXISTS events_run_idx ON events (run_id)",
            "CREATE TABLE artifacts (
                run_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                content_type TEXT NOT NULL,
                body TEXT NOT NULL,
                bytes BIGINT NOT NULL,
                created_at_ms BIGINT NOT NULL,
                PRIMARY KEY (run_id, kind)
            )",
        ],
    ),
    // 3: GitHub for real. Events that name a failure without its job (workflow_run, check_suite) wait in
    // pending_events until the orchestrator resolves them into job runs; installations record which
    // repositories the App may act on.
    (
        3,
        &[
            "CREATE TABLE pending_events (
                delivery_id TEXT PRIMARY KEY,
                failure TEXT NOT NULL,
                status TEXT NOT NULL,
                runs TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                created_at_ms BIGINT NOT NULL,
                updated_at_ms BIGINT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS pending_status_idx ON pending_events (status, updated_at_ms)",
            "CREATE TABLE installations (
                installation_id BIGINT PRIMARY KEY,
                account TEXT NOT NULL,
                suspended BIGINT NOT NULL,
                removed BIGINT NOT NULL,
                updated_at_ms BIGINT NOT NULL
            )",
            "CREATE TABLE installation_repos (
                installation_id BIGINT NOT NULL,
                repo TEXT NOT NULL,
                PRIMARY KEY (installation_id, repo)
            )",
        ],
    ),
    // 4: delivery bodies of a SQLite file store move out of the B-tree into append-only segment files
    // (crates/store/src/bodies.rs); the row says where. Rows written before, and every PostgreSQL row, keep
    // the body in `payload` and an empty `body_segment`.
    (
        4,
        &[
            "ALTER TABLE events ADD COLUMN body_segment TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE events ADD COLUMN body_offset BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE events ADD COLUMN body_len BIGINT NOT NULL DEFAULT 0",
        ],
    ),
];

pub(crate) async fn apply(pool: &AnyPool, backend: crate::Backend) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    for (version, statements) in MIGRATIONS {
        let mut tx = pool.begin().await?;
        // Two processes may start together: the second waits on the first's transaction, then skips. (On
        // SQLite the loser's write fails with SQLITE_BUSY instead, and its connect is retried.)
        if backend == crate::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7361)").execute(&mut *tx).await?;
        }
        let applied = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(*version)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if applied {
            tx.rollback().await?;
            continue;
        }
        for statement in *statements {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
        )
        .bind(*version)
        .bind(crate::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
