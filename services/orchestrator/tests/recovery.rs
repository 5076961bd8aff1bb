//! Runs whose job is gone are not lost: a run recorded as enqueued but missing from the stream (Redis
//! restarted empty) and a run left "running" by a dead worker are both enqueued again by the sweep and
//! processed. The loop guard is set to 0 attempts so each claimed run ends "blocked" at once, without
//! calling any service: what is checked is that the orchestrator picked it up again.

use std::time::{Duration, Instant};

use clap::Parser;
use sre_domain::{Conclusion, EventKind, Failure, Run, RunStatus};
use sre_store::{Claim, Ingested, NewEvent, Store};

async fn stored_run(store: &Store, n: u32) -> String {
    let failure = Failure {
        repo: "acme/app".into(),
        head_sha: "0123456789abcdef0123456789abcdef01234567".into(),
        head_branch: "main".into(),
        event: Some(EventKind::WorkflowRun),
        conclusion: Some(Conclusion::Failure),
        run_attempt: 1,
        workflow_name: format!("lint-{n}"),
        workflow_run_id: Some(u64::from(n)),
        ..Failure::default()
    };
    let run_id = format!("recovery-run-{n}-{}", uuid::Uuid::new_v4().simple());
    let delivery = format!("recovery-delivery-{run_id}");
    let run = Run::new(run_id, delivery.clone(), failure, sre_store::now_ms());
    let event = NewEvent {
        delivery_id: &delivery,
        event: EventKind::WorkflowRun,
        action: "completed",
        repo: "acme/app",
        payload: b"{}",
    };
    let Ingested::New(stored) = store.ingest(&event, &run).await.unwrap() else { panic!("new run expected") };
    // Recorded as handed to the queue, but no job was ever added: as if Redis lost it.
    store.mark_enqueued(&stored.run_id).await.unwrap();
    stored.run_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_whose_job_was_lost_are_picked_up_again() {
    let data = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/sre.db", data.path().display());
    let store = Store::connect(&database_url).await.unwrap();
    let queued = stored_run(&store, 1).await;
    let orphaned = stored_run(&store, 2).await;
    // A worker claimed this one and died with it.
    assert!(matches!(store.claim_run(&orphaned, false).await.unwrap(), Claim::Claimed(_)));

    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let unused = "http://127.0.0.1:9".to_owned(); // never called: the loop guard stops every run first
    let mut config = sre_orchestrator::Config::try_parse_from([
        "sre-orchestrator",
        "--http-addr",
        "127.0.0.1:0",
        "--redis-url",
        &redis_url,
        "--database-url",
        &database_url,
        "--consumer",
        "recovery-test",
        "--workers",
        "1",
    ])
    .unwrap();
    config.stream = format!("sre:test:recovery:{}", uuid::Uuid::new_v4().simple());
    for url in [&mut config.planner_url, &mut config.policy_url, &mut config.scanner_url] {
        url.clone_from(&unused);
    }
    config.validator_url.clone_from(&unused);
    config.pr_url = unused;
    config.requeue_stale_seconds = 1;
    // Every claimed run is blocked at once, so no service is ever called.
    config.max_attempts = 0;
    tokio::time::sleep(Duration::from_millis(1100)).await; // both runs are now stale
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let orchestrator =
        tokio::spawn(sre_orchestrator::run(config, sre_telemetry::SharedRegistry::default(), listener, async {
            let _ = stopped.await;
        }));

    let deadline = Instant::now() + Duration::from_secs(30);
    for run_id in [&queued, &orphaned] {
        let run = loop {
            let run = store.get_run(run_id).await.unwrap().unwrap();
            if run.is_terminal() {
                break run;
            }
            assert!(Instant::now() < deadline, "run {run_id} was never picked up again: {run:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(run.status, RunStatus::Blocked, "{run:?}");
        assert!(run.reason.contains("attempts"), "{}", run.reason);
    }
    let _ = stop.send(());
    orchestrator.await.unwrap().unwrap();
}
