//! Schema migrations, applied in order at connect. Each statement is idempotent (`IF NOT EXISTS`) so the
//! gateway and the orchestrator can start at the same time against one database.

use sqlx::AnyPool;

/// (version, statements). Append only; never edit an applied migration.
const MIGRATIONS: &[(i64, &[&str])] = &[(
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
)];

pub(crate) async fn apply(pool: &AnyPool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    for (version, statements) in MIGRATIONS {
        let mut tx = pool.begin().await?;
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
