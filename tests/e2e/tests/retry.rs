//! A transient failure does not hold a worker: the run is scheduled again with backoff in the queue's
//! delayed set (its producer span a child of the failed attempt, so the story stays one trace), the worker
//! is free meanwhile, and the retry succeeds once the service is back. The stages of both attempts are kept,
//! and the retry is counted once, under `transient_error`.

use std::time::{Duration, Instant};

use sre_domain::{RunStatus, Stage, StageStatus};
use sre_e2e::{Mesh, MeshOptions, lint_failure_repo, telemetry, workflow_job_failure};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_later_without_holding_a_worker() {
    let mut mesh = Mesh::start(MeshOptions { retry_base_ms: 1500, ..MeshOptions::default() }).await;
    let sha = lint_failure_repo(mesh.repos_dir());
    mesh.stop_service("validator").await;

    let body = workflow_job_failure("acme/app", &sha, "lint", 901, 77);
    let (status, accepted) = mesh.webhook("workflow_job", "aaaaaaaa-0000-4000-8000-000000000001", &body).await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();

    // The first attempt stops at sandbox_validate (UNAVAILABLE) and is scheduled, not retried in place.
    let deadline = Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        let run = mesh.store.get_run(&run_id).await.unwrap().unwrap();
        if run.retry_at_ms.is_some() {
            break run;
        }
        assert!(Instant::now() < deadline, "no retry was scheduled: {run:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(waiting.status, RunStatus::Queued);
    assert!(waiting.reason.contains("sandbox_validate") && waiting.reason.contains("retry 2"), "{}", waiting.reason);
    let last = waiting.stages.last().unwrap();
    assert_eq!((last.stage, last.status, last.attempt), (Stage::Validate, StageStatus::Retry, 1));
    let queue = sre_queue::Queue::new(
        &std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        &mesh.stream,
        sre_queue::DEFAULT_GROUP,
    )
    .unwrap();
    assert_eq!(queue.delayed_len().await.unwrap(), 1, "the retry waits in the delayed set");
    // No worker is held: the job of the first attempt was acknowledged.
    assert_eq!(queue.depth().await.unwrap().pending, 0);

    mesh.restart_service("validator").await;
    let run = mesh.wait_terminal(&run_id, Duration::from_secs(60)).await;
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");
    assert_eq!(run.attempts, 2);
    let attempts: Vec<(Stage, StageStatus, u32)> = run.stages.iter().map(|s| (s.stage, s.status, s.attempt)).collect();
    assert_eq!(attempts.iter().filter(|s| s.2 == 1).count(), 6, "attempt 1: plan .. validate(retry): {attempts:?}");
    assert_eq!(attempts.last(), Some(&(Stage::PrCreate, StageStatus::Ok, 2)));
    assert!(run.retry_at_ms.is_none());

    mesh.wait_metric("orchestrator", r#"sre_agent_celery_tasks_total{task="run_fix_pipeline",status="success"}"#, 1.0)
        .await;
    let metrics = mesh.scrape("orchestrator");
    for (series, value) in [
        (r#"sre_agent_pipeline_retry_total{reason="transient_error"}"#, 1),
        (r#"sre_agent_pipeline_retry_total{reason="celery_retry"}"#, 0),
        (r#"sre_agent_celery_tasks_total{task="run_fix_pipeline",status="retry"}"#, 1),
        (r#"sre_agent_celery_tasks_total{task="run_fix_pipeline",status="success"}"#, 1),
        (r#"sre_agent_pipeline_runs_total{outcome="success"}"#, 1),
    ] {
        assert!(metrics.contains(&format!("{series} {value}\n")), "want {series} {value}:\n{metrics}");
    }
    mesh.stop().await;

    // The retry's producer span is in the delivery's trace: one story, two consumer spans.
    telemetry().flush().await;
    let spans = telemetry().spans();
    let root =
        spans.iter().find(|s| s.name == "ingest_webhook" && s.attributes.get("run_id") == Some(&run_id)).unwrap();
    let trace: Vec<_> = spans.iter().filter(|s| s.trace_id == root.trace_id).collect();
    let consumers: Vec<_> = trace.iter().filter(|s| s.name == "run_fix_pipeline").collect();
    assert_eq!(consumers.len(), 2, "both attempts in the delivery's trace");
    let delayed = trace
        .iter()
        .find(|s| s.name == "enqueue_pipeline" && s.attributes.contains_key("messaging.redis.delay_ms"))
        .expect("the retry's producer span");
    assert!(consumers.iter().any(|c| c.span_id == delayed.parent_span_id), "the retry was published by attempt 1");
    assert!(consumers.iter().any(|c| c.parent_span_id == delayed.span_id), "attempt 2 continues the retry's span");
}
