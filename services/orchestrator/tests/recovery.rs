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

/// Redis losing its data (restarted without persistence, FLUSHALL) loses every queued job: those runs are
/// enqueued again within a sweep or two, not after SRE_REQUEUE_STALE_SECONDS (20 min by default), and the
/// consumer group the loss removed is created again. While Redis keeps its data nothing is enqueued twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_runs_are_enqueued_again_as_soon_as_redis_lost_its_data() {
    let data = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/sre.db", data.path().display());
    let store = Store::connect(&database_url).await.unwrap();
    let stream = support::fresh_stream("data-loss");
    let mut config =
        support::config(&support::args(&database_url, &stream, "data-loss-test", "http://127.0.0.1:9", &[]));
    assert_eq!(config.requeue_stale_seconds, 1200, "the default: staleness cannot explain a requeue here");
    config.max_attempts = 0;
    let wait_terminal = |run_id: String, within: Duration, what: &'static str| {
        let store = store.clone();
        async move {
            let deadline = Instant::now() + within;
            loop {
                let run = store.get_run(&run_id).await.unwrap().unwrap();
                if run.is_terminal() {
                    assert_eq!(run.status, RunStatus::Blocked, "{run:?}");
                    return Instant::now();
                }
                assert!(Instant::now() < deadline, "{what}: run {run_id} still {:?} after {within:?}", run.status);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    // A fresh stream has no marker: to the orchestrator this Redis lost (or never had) the queue's data.
    let first = stored_run(&store, 1).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let orchestrator =
        tokio::spawn(sre_orchestrator::run(config, sre_telemetry::SharedRegistry::default(), listener, async {
            let _ = stopped.await;
        }));
    wait_terminal(first, Duration::from_secs(20), "a queued run without a job on a Redis without the marker").await;

    // The marker is there now: a run whose job is missing while Redis kept its data waits for the stale sweep.
    let second = stored_run(&store, 2).await;
    let mut redis =
        redis::Client::open(support::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let marker = format!("{stream}:marker");
    let exists: bool = redis::cmd("EXISTS").arg(&marker).query_async(&mut redis).await.unwrap();
    assert!(exists, "the orchestrator set {marker}");
    // Longer than a sweep (5 s): nothing enqueued it.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let still = store.get_run(&second).await.unwrap().unwrap();
    assert_eq!(still.status, RunStatus::Queued, "requeued although Redis kept its data: {still:?}");

    // What FLUSHALL does to this queue's keys (the shared test Redis is not flushed): the stream, its
    // consumer group, the delayed set and the marker are gone.
    let lost_at = Instant::now();
    let _: i64 = redis::cmd("DEL")
        .arg(&stream)
        .arg(format!("{stream}:delayed"))
        .arg(&marker)
        .query_async(&mut redis)
        .await
        .unwrap();
    let done = wait_terminal(second, Duration::from_secs(20), "a queued run after Redis lost its data").await;
    println!("requeued and run {:.1} s after the data loss", (done - lost_at).as_secs_f64());
    let groups: Vec<redis::Value> =
        redis::cmd("XINFO").arg("GROUPS").arg(&stream).query_async(&mut redis).await.unwrap();
    assert_eq!(groups.len(), 1, "the consumer group is created again");
    let _: i64 = redis::cmd("DEL").arg(&stream).arg(&marker).query_async(&mut redis).await.unwrap();
    let _ = stop.send(());
    orchestrator.await.unwrap().unwrap();
}
