//! The store against real SQLite (a temp file) and real PostgreSQL (a fresh database per run).
//! PostgreSQL comes from SRE_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres);
//! if it is unreachable the test fails and says what to start.

use sre_store::{Claim, Ingested, NewEvent, NewRun, RunUpdate, StageResult, Store};

fn new_run(id: &str) -> NewRun {
    NewRun {
        run_id: format!("run-{id}"),
        run_key: "acme/app:lint:abc1234".into(),
        failure_id: "workflow_run:42".into(),
        correlation_id: format!("run-{id}"),
        repo: "acme/app".into(),
        head_sha: "abc1234".into(),
        head_branch: "main".into(),
        failure_name: "lint".into(),
        attempt: 1,
    }
}

async fn exercise(store: &Store) {
    let body = br#"{"action":"completed"}"#;
    let event = |d: &'static str| NewEvent {
        delivery_id: d,
        event: "workflow_run",
        action: "completed",
        repo: "acme/app",
        payload: body,
    };

    let Ingested::New(run) = store.ingest(&event("d-1"), &new_run("1")).await.unwrap() else {
        panic!("first delivery must be new")
    };
    assert_eq!(run.status, "queued");
    assert!(!run.enqueued);
    assert_eq!(run.delivery_id, "d-1");

    // Same delivery again: the same run, nothing new stored.
    let Ingested::Duplicate(dup) = store.ingest(&event("d-1"), &new_run("other")).await.unwrap() else {
        panic!("redelivery must be a duplicate")
    };
    assert_eq!(dup.run_id, "run-1");
    assert_eq!(store.count_events().await.unwrap(), 1);
    assert_eq!(store.count_runs().await.unwrap(), 1);

    // Never enqueued: due for the outbox at once (threshold in the past), not when younger than it.
    assert_eq!(store.runs_to_requeue(-1_000, 3_600_000).await.unwrap().len(), 1);
    assert!(store.runs_to_requeue(3_600_000, 3_600_000).await.unwrap().is_empty());
    store.mark_enqueued("run-1").await.unwrap();
    assert!(store.get_run("run-1").await.unwrap().unwrap().enqueued);
    assert!(store.runs_to_requeue(-1_000, 3_600_000).await.unwrap().is_empty());
    // Enqueued but unchanged for longer than the stale threshold: its job may be gone.
    assert_eq!(store.runs_to_requeue(3_600_000, -1_000).await.unwrap().len(), 1);

    let Claim::Claimed(started) = store.claim_run("run-1", false).await.unwrap() else {
        panic!("queued run must be claimable")
    };
    assert_eq!((started.status.as_str(), started.attempts), ("running", 1));
    // A duplicate job does not run it twice; a takeover (dead worker) does, counting the attempt.
    assert!(matches!(store.claim_run("run-1", false).await.unwrap(), Claim::InProgress(_)));
    let Claim::Claimed(taken) = store.claim_run("run-1", true).await.unwrap() else {
        panic!("takeover must claim a running run")
    };
    assert_eq!(taken.attempts, 2);
    assert!(matches!(store.claim_run("nope", true).await.unwrap(), Claim::Missing));
    let progress =
        vec![StageResult { stage: "generate_plan".into(), status: "ok".into(), duration_ms: 3, detail: String::new() }];
    store.record_progress("run-1", &progress).await.unwrap();
    assert_eq!(store.get_run("run-1").await.unwrap().unwrap().stages, progress);

    let update = RunUpdate {
        status: "success".into(),
        language: "python".into(),
        category: "lint".into(),
        danger_score: Some(12.5),
        label: "safe".into(),
        pr_number: Some(7),
        pr_branch: "sre-agent/run-1".into(),
        stages: vec![StageResult {
            stage: "generate_plan".into(),
            status: "ok".into(),
            duration_ms: 12,
            detail: String::new(),
        }],
        diff: Some("diff --git a/x b/x\n".into()),
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        ..Default::default()
    };
    store.update_run("run-1", &update).await.unwrap();
    let done = store.get_run("run-1").await.unwrap().unwrap();
    assert!(done.is_terminal());
    assert_eq!(done.danger_score, Some(12.5));
    assert_eq!(done.pr_number, Some(7));
    assert_eq!(done.stages, update.stages);
    assert_eq!(store.run_diff("run-1").await.unwrap().as_deref(), Some("diff --git a/x b/x\n"));
    assert!(store.get_run("nope").await.unwrap().is_none());
    assert_eq!(store.list_runs(10).await.unwrap().len(), 1);
    assert!(matches!(store.claim_run("run-1", true).await.unwrap(), Claim::Finished(_)));
    assert!(store.runs_to_requeue(-1_000, -1_000).await.unwrap().is_empty(), "finished runs are never requeued");
    store.ping().await.unwrap();
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/sre.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    exercise(&store).await;
    // Migrations are idempotent: a second connect to the same file works and sees the data.
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.count_runs().await.unwrap(), 1);
}

#[tokio::test]
async fn postgres_store() {
    let admin_url =
        std::env::var("SRE_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("sre_test_{}", uuid::Uuid::new_v4().simple());
    let admin = Store::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {admin_url} is unreachable ({e}); start it (scripts/test.sh does) or set SRE_TEST_DATABASE_URL")
    });
    admin.execute_raw(&format!("CREATE DATABASE {db}")).await.unwrap();
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(b, _)| b);
    let store = Store::connect(&format!("{base}/{db}")).await.unwrap();
    exercise(&store).await;
    drop(store);
    let _ = admin.execute_raw(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
}

#[tokio::test]
async fn rejects_unknown_schemes() {
    let err = Store::connect("mysql://localhost/x").await.unwrap_err();
    assert!(err.to_string().contains("sqlite:// or postgres://"), "{err}");
}
