//! The queue against the real Redis at REDIS_URL (default redis://127.0.0.1:6379): trace context crosses
//! it, unacked jobs are reclaimed, depth is reported.

use std::time::Duration;

use sre_queue::{Hold, Job, Publish, Queue};
use sre_telemetry::propagation;
use tracing::Instrument;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn fresh_queue() -> Queue {
    let stream = format!("sre:test:{}", uuid::Uuid::new_v4().simple());
    let queue = Queue::new(&redis_url(), &stream, "orchestrator").unwrap();
    queue.ping().await.unwrap_or_else(|e| panic!("Redis at {} is unreachable ({e}); start redis-server", redis_url()));
    queue.ensure_group().await.unwrap();
    queue.ensure_group().await.unwrap(); // idempotent
    queue
}

/// One tracing setup for every test of this binary (spans need a tracer to have trace IDs).
fn telemetry() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let telemetry = sre_telemetry::init(sre_telemetry::Config {
            otlp_endpoint: None,
            ..sre_telemetry::Config::from_env("queue-test")
        })
        .unwrap();
        std::mem::forget(telemetry);
    });
}

fn job(n: u32) -> Job {
    Job {
        run_id: format!("run-{n}"),
        run_key: "acme/app@abc/lint".into(),
        delivery_id: format!("d-{n}"),
        failure_id: format!("workflow_job:{n}"),
        correlation_id: format!("run-{n}"),
        trace_context: Default::default(),
        takeover: n == 2,
        ..Job::default()
    }
}

#[tokio::test]
async fn producer_and_consumer_share_the_trace() {
    telemetry();
    let queue = fresh_queue().await;

    let producer = tracing::info_span!("enqueue_pipeline", otel.kind = "producer");
    let producer_trace = propagation::trace_id(&producer).expect("producer span has a trace");
    let mut sent = job(1);
    sent.trace_context = propagation::inject_map(&producer);
    assert!(sent.trace_context["traceparent"].contains(&producer_trace));
    queue.enqueue(&sent).await.unwrap();

    let got = queue.reader("c1", Duration::from_millis(500)).read(10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job, sent);
    assert!(!got[0].reclaimed);

    let consumer = tracing::info_span!("run_fix_pipeline", otel.kind = "consumer");
    propagation::set_remote_parent(&consumer, propagation::extract_map(&got[0].job.trace_context));
    assert_eq!(propagation::trace_id(&consumer).as_deref(), Some(producer_trace.as_str()));
    queue.ack(&got[0].id).await.unwrap();
    assert_eq!(queue.depth().await.unwrap().pending, 0);
}

#[tokio::test]
async fn a_dead_consumers_job_is_reclaimed_not_lost() {
    let queue = fresh_queue().await;
    queue.enqueue(&job(1)).await.unwrap();
    queue.enqueue(&job(2)).await.unwrap();
    let depth = queue.depth().await.unwrap();
    assert_eq!((depth.lag, depth.pending), (2, 0));

    // Consumer "dead" takes both and never acks.
    let taken = queue.reader("dead", Duration::from_millis(200)).read(10).await.unwrap();
    assert_eq!(taken.len(), 2);
    assert_eq!(queue.depth().await.unwrap().pending, 2);
    assert!(queue.reader("alive", Duration::from_millis(100)).read(10).await.unwrap().is_empty());

    // Not idle long enough yet: nothing to claim.
    assert!(queue.reclaim("alive", Duration::from_secs(60), 10).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let reclaimed = queue.reclaim("alive", Duration::from_millis(10), 10).await.unwrap();
    assert_eq!(reclaimed.iter().map(|d| d.job.run_id.as_str()).collect::<Vec<_>>(), ["run-1", "run-2"]);
    assert!(reclaimed.iter().all(|d| d.reclaimed));
    for d in &reclaimed {
        queue.ack(&d.id).await.unwrap();
    }
    assert_eq!(queue.depth().await.unwrap(), sre_queue::Depth { lag: 0, pending: 0 });
}

#[tokio::test]
async fn a_heartbeat_keeps_a_live_consumers_job_and_tells_it_when_lost() {
    let queue = fresh_queue().await;
    queue.enqueue(&job(1)).await.unwrap();
    let taken = queue.reader("slow", Duration::from_millis(200)).read(1).await.unwrap();
    let id = taken[0].id.clone();

    // Renewed every 100 ms for over a second: never idle for the 400 ms a reclaim asks for.
    let until = std::time::Instant::now() + Duration::from_millis(1200);
    while std::time::Instant::now() < until {
        assert_eq!(queue.heartbeat("slow", &id).await.unwrap(), Hold::Renewed);
        assert!(queue.reclaim("other", Duration::from_millis(400), 10).await.unwrap().is_empty(), "stolen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The heartbeats stop (the worker died): reclaimed once idle for the timeout.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let reclaimed = queue.reclaim("other", Duration::from_millis(400), 10).await.unwrap();
    assert_eq!(reclaimed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    // A late heartbeat of the first consumer learns it lost the job, and does not take it back.
    assert_eq!(queue.heartbeat("slow", &id).await.unwrap(), Hold::Lost);
    assert_eq!(queue.heartbeat("other", &id).await.unwrap(), Hold::Renewed);
    queue.ack(&id).await.unwrap();
    assert_eq!(queue.heartbeat("other", &id).await.unwrap(), Hold::Done);
}

#[tokio::test]
async fn a_restarted_consumer_reads_its_own_pending_jobs_first() {
    let queue = fresh_queue().await;
    for n in 1..=3 {
        queue.enqueue(&job(n)).await.unwrap();
    }
    // The first process of consumer "w-0" took two jobs and died.
    let taken = queue.reader("w-0", Duration::from_millis(200)).read(2).await.unwrap();
    assert_eq!(taken.len(), 2);
    // Another consumer name has nothing of its own; the third job is still new.
    assert!(queue.reader("w-1", Duration::from_millis(100)).read_pending(10).await.unwrap().is_empty());

    // Its successor under the same name gets both back at once, as takeovers, and the new one after.
    let mut again = queue.reader("w-0", Duration::from_millis(200));
    let own = again.read_pending(10).await.unwrap();
    assert_eq!(own.iter().map(|d| d.job.run_id.as_str()).collect::<Vec<_>>(), ["run-1", "run-2"]);
    assert!(own.iter().all(|d| d.reclaimed));
    for d in &own {
        queue.ack(&d.id).await.unwrap();
    }
    assert!(again.read_pending(10).await.unwrap().is_empty());
    let fresh = again.read(10).await.unwrap();
    assert_eq!(fresh.iter().map(|d| d.job.run_id.as_str()).collect::<Vec<_>>(), ["run-3"]);
    assert!(!fresh[0].reclaimed);
}

#[tokio::test]
async fn a_delayed_job_waits_then_moves_once_with_its_trace() {
    telemetry();
    let queue = fresh_queue().await;
    let sent = job(5);
    let retry = tracing::info_span!("run_fix_pipeline");
    let trace = propagation::trace_id(&retry);
    let id = queue
        .publish(sent.ids(), Publish { delay: Some(Duration::from_millis(300)), ..Publish::default() })
        .instrument(retry)
        .await
        .unwrap();
    assert_eq!(id, "delayed");
    assert_eq!(queue.delayed_len().await.unwrap(), 1);
    // Not due yet: nothing moves, nothing is readable.
    assert_eq!(queue.promote_due(10).await.unwrap(), 0);
    assert!(queue.reader("c", Duration::from_millis(100)).read(10).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Several orchestrators promote at once: the job moves exactly once.
    let (a, b, c) = tokio::join!(queue.promote_due(10), queue.promote_due(10), queue.promote_due(10));
    assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), 1);
    assert_eq!(queue.delayed_len().await.unwrap(), 0);
    let got = queue.reader("c", Duration::from_millis(200)).read(10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].job.run_id.as_str(), got[0].job.failure_id.as_str()), ("run-5", "workflow_job:5"));
    // The producer span was a child of the retrying span: the consumer continues the same trace.
    let tp = &got[0].job.trace_context["traceparent"];
    let trace = trace.expect("the retrying span has a trace");
    assert!(tp.contains(&trace), "{tp} should carry trace {trace}");
}

#[tokio::test]
async fn redis_down_is_an_error_not_a_panic() {
    let queue = Queue::new("redis://127.0.0.1:1", "sre:test:down", "orchestrator").unwrap();
    assert!(queue.ping().await.is_err());
    assert!(queue.enqueue(&job(1)).await.is_err());
}

#[tokio::test]
async fn a_read_may_block_longer_than_the_pools_response_timeout() {
    // Pooled connections give up on a reply after 500 ms; an idle blocking read must not fail.
    let queue = fresh_queue().await;
    let mut reader = queue.reader("idle", Duration::from_millis(1500));
    let started = std::time::Instant::now();
    assert!(reader.read(1).await.unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(1400), "returned after {:?}", started.elapsed());
    // A job that arrives during the wait is returned at once.
    let producer = queue.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        producer.enqueue(&job(7)).await.unwrap();
    });
    let got = reader.read(1).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job.run_id, "run-7");
}

#[test]
fn bad_urls_are_rejected() {
    assert!(Queue::new("http://nope", "s", "g").is_err());
}

#[tokio::test]
async fn limits_are_shared_leases_windows_and_cooldowns() {
    use sre_queue::limits::Grant;
    let queue = fresh_queue().await;
    let limits = queue.limits();
    let lease = Duration::from_millis(400);
    // Two places: two holders get one each, a third waits until the first lease could free.
    assert_eq!(limits.acquire_lease("repo", "acme/app", "run-1", 2, lease).await.unwrap(), Grant::Granted);
    assert_eq!(limits.acquire_lease("repo", "acme/app", "run-2", 2, lease).await.unwrap(), Grant::Granted);
    let Grant::Full { retry_at_ms } = limits.acquire_lease("repo", "acme/app", "run-3", 2, lease).await.unwrap() else {
        panic!("the third holder must wait")
    };
    assert!(retry_at_ms > 0);
    // A holder renews; another repository is unaffected (keys are per scope).
    assert_eq!(limits.acquire_lease("repo", "acme/app", "run-1", 2, lease).await.unwrap(), Grant::Granted);
    assert_eq!(limits.acquire_lease("repo", "acme/web", "run-3", 2, lease).await.unwrap(), Grant::Granted);
    // Released: room again. Expired (a dead worker): room again.
    limits.release_lease("repo", "acme/app", "run-2").await.unwrap();
    assert_eq!(limits.acquire_lease("repo", "acme/app", "run-3", 2, lease).await.unwrap(), Grant::Granted);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(limits.acquire_lease("repo", "acme/app", "run-4", 1, lease).await.unwrap(), Grant::Granted);

    // A window of 2 per 500 ms, idempotent per holder, released when unused.
    let window = Duration::from_millis(500);
    assert_eq!(limits.reserve("prs", "acme/app", "run-1", 2, window).await.unwrap(), Grant::Granted);
    assert_eq!(limits.reserve("prs", "acme/app", "run-1", 2, window).await.unwrap(), Grant::Granted);
    assert_eq!(limits.reserve("prs", "acme/app", "run-2", 2, window).await.unwrap(), Grant::Granted);
    assert!(matches!(limits.reserve("prs", "acme/app", "run-3", 2, window).await.unwrap(), Grant::Full { .. }));
    limits.release_reservation("prs", "acme/app", "run-2").await.unwrap();
    assert_eq!(limits.reserve("prs", "acme/app", "run-3", 2, window).await.unwrap(), Grant::Granted);

    // Cooldowns.
    assert_eq!(limits.cooldown_until("acme/app@abc/lint").await.unwrap(), None);
    limits.start_cooldown("acme/app@abc/lint", Duration::from_millis(300)).await.unwrap();
    assert!(limits.cooldown_until("acme/app@abc/lint").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(limits.cooldown_until("acme/app@abc/lint").await.unwrap(), None);
}
