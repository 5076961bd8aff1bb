//! Runs whose job is gone are not lost: a run recorded as enqueued but missing from the stream (Redis
//! restarted empty) and a run left "running" by a dead worker are both enqueued again by the sweep and
//! processed. The loop guard is set to 0 attempts so each claimed run ends "blocked" at once, without
//! calling any service: what is checked is that the orchestrator picked it up again.

use std::time::{Duration, Instant};

use sre_store::{Claim, Ingested, NewEvent, NewRun, Store};

async fn stored_run(store: &Store, n: u32) -> String {
    let run = NewRun {
        run_id: format!("recovery-run-{n}-{}", uuid::Uuid::new_v4().simple()),
        run_key: format!("acme/app:lint:{n}"),
        failure_id: format!("workflow_run:{n}"),
        correlation_id: format!("c-{n}"),
        repo: "acme/app".into(),
        head_sha: "0123456789abcdef0123456789abcdef01234567".into(),
        head_branch: "main".into(),
        failure_name: "lint".into(),
        attempt: 1,
    };
    let delivery = format!("recovery-delivery-{}", run.run_id);
    let event = NewEvent {
        delivery_id: &delivery,
        event: "workflow_run",
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
    let config = sre_orchestrator::Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        redis_url,
        database_url,
        stream: format!("sre:test:recovery:{}", uuid::Uuid::new_v4().simple()),
        planner_url: unused.clone(),
        policy_url: unused.clone(),
        scanner_url: unused.clone(),
        validator_url: unused.clone(),
        pr_url: unused,
        workers: 1,
        reclaim_idle: Duration::from_secs(600),
        requeue_stale: Duration::from_millis(500),
        max_attempts: 0,
        validate_timeout: Duration::from_secs(60),
        consumer: "recovery-test".into(),
    };
    tokio::time::sleep(Duration::from_millis(600)).await; // both runs are now stale
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
        assert_eq!(run.status, "blocked", "{run:?}");
        assert!(run.reason.contains("attempts"), "{}", run.reason);
    }
    let _ = stop.send(());
    orchestrator.await.unwrap().unwrap();
}
