//! Runs whose job is gone are not lost: a run recorded as enqueued but missing from the stream (Redis
//! restarted empty) and a run left "running" by a dead worker are both enqueued again by the sweep and
//! processed. The loop guard is set to 0 attempts so each claimed run ends "blocked" at once, without
//! calling any service: what is checked is that the orchestrator picked it up again.

mod support;

use std::time::{Duration, Instant};

use sre_domain::RunStatus;
use sre_store::{Claim, Store};

/// A stored run recorded as handed to the queue, but no job was ever added: as if Redis lost it.
async fn stored_run(store: &Store, n: u32) -> String {
    let run = support::stored_run(store, n).await;
    store.mark_enqueued(&run.run_id).await.unwrap();
    run.run_id
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

    let unused = "http://127.0.0.1:9"; // never called: the loop guard stops every run first
    let stream = support::fresh_stream("recovery");
    let mut config = support::config(&support::args(&database_url, &stream, "recovery-test", unused, &[]));
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
