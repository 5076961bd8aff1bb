//! The store against real SQLite (a temp file) and real PostgreSQL (a fresh database per run).
//! PostgreSQL comes from SRE_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres);
//! if it is unreachable the test fails and says what to start.

use sre_domain::{
    ArtifactKind, Conclusion, EventKind, Failure, Language, Outcome, PrLabel, PullRequestRef, Run, RunPatch, RunStatus,
    Stage, StageRecord, StageStatus,
};
use sre_store::{BatchItem, BatchOutcome, Claim, Ingested, NewEvent, Store};

fn failure(job_id: Option<u64>, installation_id: Option<u64>) -> Failure {
    Failure {
        repo: "acme/app".into(),
        head_sha: "abc1234def".into(),
        head_branch: "main".into(),
        event: Some(EventKind::WorkflowJob),
        conclusion: Some(Conclusion::Failure),
        run_attempt: 1,
        workflow_name: "CI".into(),
        workflow_run_id: Some(42),
        job_name: "lint".into(),
        job_id,
        check_suite_id: None,
        installation_id,
    }
}

fn new_run(id: &str, delivery: &str, f: Failure) -> Run {
    Run::new(format!("run-{id}"), delivery.into(), f, 0)
}

fn stage(stage: Stage, status: StageStatus, attempt: u32) -> StageRecord {
    StageRecord { stage, status, attempt, duration_ms: 3, detail: String::new() }
}

async fn exercise(store: &Store) {
    let body = br#"{"action":"completed"}"#;
    let event = |d: &'static str| NewEvent {
        delivery_id: d,
        event: EventKind::WorkflowJob,
        action: "completed",
        repo: "acme/app",
        payload: body,
    };

    let Ingested::New(run) = store.ingest(&event("d-1"), &new_run("1", "d-1", failure(None, None))).await.unwrap()
    else {
        panic!("first delivery must be new")
    };
    assert_eq!(run.status, RunStatus::Queued);
    assert!(!run.enqueued);
    assert_eq!(run.delivery_id, "d-1");
    // Every fact the webhook gave is kept.
    assert_eq!(run.failure, failure(None, None));

    // Same delivery again: the same run, nothing new stored.
    let Ingested::Duplicate(dup) =
        store.ingest(&event("d-1"), &new_run("other", "d-1", failure(None, None))).await.unwrap()
    else {
        panic!("redelivery must be a duplicate")
    };
    assert_eq!(dup.run_id, "run-1");
    // Another delivery about the same failure (same run_key and attempt) enriches the run, creates none.
    let Ingested::Enriched(enriched) =
        store.ingest(&event("d-2"), &new_run("2", "d-2", failure(Some(901), Some(5)))).await.unwrap()
    else {
        panic!("a second event about the same failure must enrich its run")
    };
    assert_eq!(enriched.run_id, "run-1");
    assert_eq!((enriched.failure.job_id, enriched.failure.installation_id), (Some(901), Some(5)));
    assert_eq!(enriched.delivery_id, "d-1", "the run keeps the delivery that created it");
    assert_eq!(store.run_by_delivery("d-2").await.unwrap().unwrap().run_id, "run-1");
    assert_eq!(store.count_events().await.unwrap(), 2);
    assert_eq!(store.count_runs().await.unwrap(), 1);
    // A re-run that fails again is a new attempt of the same key: a run of its own.
    let mut rerun = failure(Some(902), Some(5));
    rerun.run_attempt = 2;
    let Ingested::New(second) = store.ingest(&event("d-3"), &new_run("3", "d-3", rerun)).await.unwrap() else {
        panic!("a new run_attempt is a new run")
    };
    assert_eq!(second.run_key, run.run_key);
    assert_eq!(store.count_runs().await.unwrap(), 2);

    // Never enqueued: due for the outbox at once (threshold in the past), not when younger than it.
    assert_eq!(store.runs_to_requeue(-1_000, 3_600_000).await.unwrap().len(), 2);
    assert!(store.runs_to_requeue(3_600_000, 3_600_000).await.unwrap().is_empty());
    store.mark_enqueued("run-1").await.unwrap();
    store.mark_enqueued("run-3").await.unwrap();
    assert!(store.get_run("run-1").await.unwrap().unwrap().enqueued);
    assert!(store.runs_to_requeue(-1_000, 3_600_000).await.unwrap().is_empty());
    // Enqueued but unchanged for longer than the stale threshold: its job may be gone.
    assert_eq!(store.runs_to_requeue(3_600_000, -1_000).await.unwrap().len(), 2);

    let Claim::Claimed(started) = store.claim_run("run-1", false).await.unwrap() else {
        panic!("queued run must be claimable")
    };
    assert_eq!((started.status, started.attempts), (RunStatus::Running, 1));
    // A duplicate job does not run it twice; a takeover (dead worker) does, counting the attempt.
    assert!(matches!(store.claim_run("run-1", false).await.unwrap(), Claim::InProgress(_)));
    let Claim::Claimed(taken) = store.claim_run("run-1", true).await.unwrap() else {
        panic!("takeover must claim a running run")
    };
    assert_eq!(taken.attempts, 2);
    assert!(matches!(store.claim_run("nope", true).await.unwrap(), Claim::Missing));
    let progress = vec![stage(Stage::Plan, StageStatus::Ok, 2)];
    store.record_progress("run-1", &progress).await.unwrap();
    assert_eq!(store.get_run("run-1").await.unwrap().unwrap().stages, progress);

    // A scheduled retry: queued again with a due time, the stages and label it had are kept.
    store.update_run("run-1", &RunPatch { label: Some(PrLabel::Safe), ..RunPatch::default() }).await.unwrap();
    let retry = RunPatch {
        status: Some(RunStatus::Queued),
        reason: Some("retrying after a transient error".into()),
        retry_at_ms: Some(Some(sre_store::now_ms() + 60_000)),
        ..RunPatch::default()
    };
    store.update_run("run-1", &retry).await.unwrap();
    let waiting = store.get_run("run-1").await.unwrap().unwrap();
    assert_eq!((waiting.status, waiting.label), (RunStatus::Queued, Some(PrLabel::Safe)));
    assert_eq!(waiting.stages, progress, "a retry keeps the recorded stages");
    assert!(waiting.retry_at_ms.is_some());
    let Claim::Claimed(again) = store.claim_run("run-1", false).await.unwrap() else { panic!("retry claim") };
    assert_eq!((again.attempts, again.retry_at_ms), (3, None));

    let mut stages = progress.clone();
    stages.push(stage(Stage::PrCreate, StageStatus::Ok, 3));
    let mut done = RunPatch::concluded(Outcome::Success, "");
    done.language = Some(Language::Python);
    done.danger_score = Some(12.5);
    done.pr = Some(PullRequestRef { number: 7, branch: "sre-agent/lint/abc".into(), url: String::new() });
    done.stages = Some(stages.clone());
    store.update_run("run-1", &done).await.unwrap();
    store.put_artifact("run-1", ArtifactKind::Diff, "diff --git a/x b/x\n").await.unwrap();
    store.put_artifact("run-1", ArtifactKind::Diff, "diff --git a/y b/y\n").await.unwrap();
    store.put_artifact("run-1", ArtifactKind::Log, "error: boom\n").await.unwrap();
    let done = store.get_run("run-1").await.unwrap().unwrap();
    assert!(done.is_terminal());
    assert_eq!(done.status, RunStatus::Success);
    assert_eq!(done.danger_score, Some(12.5));
    assert_eq!(done.label, Some(PrLabel::Safe), "fields the patch does not name stay");
    assert_eq!(done.pr.as_ref().map(|p| p.number), Some(7));
    assert_eq!(done.stages, stages);
    assert_eq!(store.artifact("run-1", ArtifactKind::Diff).await.unwrap().as_deref(), Some("diff --git a/y b/y\n"));
    let kinds: Vec<_> = store.artifacts("run-1").await.unwrap().into_iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![ArtifactKind::Log, ArtifactKind::Diff]);
    assert!(store.artifact("run-1", ArtifactKind::Plan).await.unwrap().is_none());
    assert!(store.get_run("nope").await.unwrap().is_none());
    assert_eq!(store.list_runs(10).await.unwrap().len(), 2);
    assert!(matches!(store.claim_run("run-1", true).await.unwrap(), Claim::Finished(_)));
    let requeue = store.runs_to_requeue(-1_000, -1_000).await.unwrap();
    assert!(requeue.iter().all(|r| r.run_id != "run-1"), "finished runs are never requeued");
    store.ping().await.unwrap();

    // A workflow_run names the failure without its job: it waits, then resolves into job runs. The job
    // that a workflow_job event already made is enriched, a job seen first here is new.
    let mut wf = failure(None, Some(5));
    wf.event = Some(EventKind::WorkflowRun);
    wf.job_name.clear();
    wf.run_attempt = 3;
    let pending = NewEvent { delivery_id: "d-wf", event: EventKind::WorkflowRun, ..event("d-wf") };
    assert!(store.ingest_pending(&pending, &wf).await.unwrap());
    assert!(!store.ingest_pending(&pending, &wf).await.unwrap(), "a redelivery is stored once");
    let (facts, resolved) = store.pending_event("d-wf").await.unwrap().unwrap();
    assert_eq!((facts, resolved), (wf.clone(), false));
    assert_eq!(store.pending_to_requeue(-1_000).await.unwrap().len(), 1);
    let mut lint = wf.clone();
    lint.job_name = "lint".into();
    lint.job_id = Some(77);
    let mut test = wf.clone();
    test.job_name = "test".into();
    test.job_id = Some(78);
    let jobs = vec![new_run("wf-lint", "d-wf", lint), new_run("wf-test", "d-wf", test)];
    let resolved = store.resolve_pending("d-wf", &jobs, "2 failed jobs").await.unwrap();
    assert!(resolved.iter().all(|r| matches!(r, Ingested::New(_))));
    let mut fresh = jobs.clone();
    for (i, run) in fresh.iter_mut().enumerate() {
        run.run_id = format!("retry-{i}");
    }
    let again = store.resolve_pending("d-wf", &fresh, "again").await.unwrap();
    assert!(again.iter().all(|r| matches!(r, Ingested::Enriched(_))), "resolving twice creates nothing");
    assert!(store.pending_event("d-wf").await.unwrap().unwrap().1);
    assert!(store.pending_to_requeue(-1_000).await.unwrap().is_empty());

    // Installations: which repositories the App may act on.
    let install = NewEvent { delivery_id: "d-inst", event: EventKind::Installation, ..event("d-inst") };
    let change = sre_store::InstallationChange {
        installation_id: 5,
        account: "acme".into(),
        repos_added: vec!["acme/app".into(), "acme/web".into()],
        ..Default::default()
    };
    assert!(store.ingest_installation(&install, &change).await.unwrap());
    let removal = NewEvent { delivery_id: "d-inst-2", event: EventKind::InstallationRepositories, ..event("d-inst-2") };
    let change = sre_store::InstallationChange {
        installation_id: 5,
        account: "acme".into(),
        repos_removed: vec!["acme/web".into()],
        ..Default::default()
    };
    assert!(store.ingest_installation(&removal, &change).await.unwrap());
    let installation = store.installation(5).await.unwrap().unwrap();
    assert_eq!((installation.account.as_str(), installation.repos.clone()), ("acme", vec!["acme/app".to_owned()]));
    assert!(store.installation(6).await.unwrap().is_none());

    // A group commit: one delivery twice in the batch, one stored before, two new ones. The first of a
    // delivery ID is stored, every other is its duplicate.
    let pending = |d: &'static str| NewEvent { event: EventKind::WorkflowRun, ..event(d) };
    let f = failure(None, None);
    let known = new_run("again", "d-1", failure(None, None));
    let items = [
        BatchItem::Pending(pending("b-1"), &f),
        BatchItem::Pending(pending("b-1"), &f),
        BatchItem::Failure(event("d-1"), &known),
        BatchItem::Pending(pending("b-2"), &f),
    ];
    let outcomes: Vec<BatchOutcome> = store.ingest_batch(&items, &[]).await.into_iter().map(Result::unwrap).collect();
    assert!(matches!(outcomes[0], BatchOutcome::Pending), "{outcomes:?}");
    assert!(matches!(outcomes[1], BatchOutcome::Duplicate(None)), "{outcomes:?}");
    assert!(matches!(&outcomes[2], BatchOutcome::Duplicate(Some(run)) if run.run_id == "run-1"), "{outcomes:?}");
    assert!(matches!(outcomes[3], BatchOutcome::Pending), "{outcomes:?}");
    for d in ["b-1", "b-2"] {
        assert_eq!(store.pending_event(d).await.unwrap(), Some((failure(None, None), false)), "{d}");
    }

    // Every stored body reads back as received, whichever path stored it; a redelivery's body does not
    // replace the first.
    for d in ["d-1", "d-2", "d-wf", "d-inst", "b-1", "b-2"] {
        assert_eq!(store.event_payload(d).await.unwrap().as_deref(), Some(&body[..]), "{d}");
    }
    let other_body = br#"{"action":"requested","x":"\u00e9\n"}"#;
    let items = [BatchItem::Pending(NewEvent { payload: other_body, ..pending("b-3") }, &f)];
    assert!(store.ingest_batch(&items, &[]).await.into_iter().all(|r| r.is_ok()));
    assert_eq!(store.event_payload("b-3").await.unwrap().as_deref(), Some(&other_body[..]));
    assert_eq!(store.event_payload("b-1").await.unwrap().as_deref(), Some(&body[..]));
    assert_eq!(store.event_payload("never-sent").await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/sre.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    exercise(&store).await;
    // A SQLite file store keeps bodies out of its B-tree, in segment files beside the database.
    let segments: Vec<_> = std::fs::read_dir(dir.path().join("nested/sre.db-bodies")).unwrap().collect();
    assert!(!segments.is_empty());
    // Migrations are idempotent: a second connect to the same file works and sees the data, bodies included.
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.count_runs().await.unwrap(), 4);
    assert_eq!(again.event_payload("b-3").await.unwrap().unwrap(), br#"{"action":"requested","x":"\u00e9\n"}"#);
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

/// A write that met a full disk can leave SQLite's transaction open on its connection (drill j of
/// scripts/drills.sh: the gateway then answered "database is locked" to every delivery, after space was back,
/// and a delivery answered 202 nested in the stale transaction and was lost). A connection released inside a
/// transaction is rolled back and closed, so it never holds the write lock from the pool.
#[tokio::test]
async fn a_connection_left_inside_a_transaction_does_not_keep_the_database_locked() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sre.db", dir.path().display());
    let a = Store::connect(&url).await.unwrap();
    let b = Store::connect(&url).await.unwrap(); // another process on the same file (gateway, orchestrator)
    // What such a write leaves behind: the write lock taken, no COMMIT or ROLLBACK to come.
    a.execute_raw("BEGIN IMMEDIATE").await.unwrap();
    let started = std::time::Instant::now();
    let (id, delivery) = ("left-open", "delivery-left-open");
    let event = NewEvent {
        delivery_id: delivery,
        event: EventKind::WorkflowJob,
        action: "completed",
        repo: "acme/app",
        payload: b"{}",
    };
    let stored = b.ingest(&event, &new_run(id, delivery, failure(Some(7), None))).await;
    assert!(stored.is_ok(), "the other store could not write after {:?}: {stored:?}", started.elapsed());
    // ...and the first store's own next write is not nested in a stale transaction: it is visible to the other.
    let (id, delivery) = ("after", "delivery-after");
    let event = NewEvent {
        delivery_id: delivery,
        event: EventKind::WorkflowJob,
        action: "completed",
        repo: "acme/app",
        payload: b"{}",
    };
    let other_job = Failure { job_name: "test".into(), ..failure(Some(8), None) };
    assert!(matches!(a.ingest(&event, &new_run(id, delivery, other_job)).await.unwrap(), Ingested::New(_)));
    assert!(b.get_run("run-after").await.unwrap().is_some(), "a's write never committed");
}
