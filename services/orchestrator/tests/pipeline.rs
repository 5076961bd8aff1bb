//! One signed webhook, end to end in one process: the gateway router, real Redis, a SQLite store, the
//! orchestrator and the five services served over gRPC on 127.0.0.1, a real git repository with a lint
//! failure. The run must reach create_pr, and the spans (read back from an OTLP receiver) must form ONE trace:
//! gateway spans → queue → run_fix_pipeline → every stage → client span → the service's server span.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use sre_gitwork::testing::{git, init_repo};
use sre_otlp_sink::{Sink, SpanRecord};
use sre_service_kit::grpc::{Built, ServeOptions, serve};
use sre_telemetry::SharedRegistry;
use tokio::sync::watch;
use tower::ServiceExt;

const SECRET: &[u8] = b"pipeline-test-secret";

/// A repository whose `make test` fails on trailing whitespace, as a lint workflow would.
fn lint_failure_repo(repos: &Path) -> String {
    let repo = repos.join("acme").join("app");
    init_repo(&repo);
    std::fs::write(repo.join("app.py"), "def add(a, b):   \n    return a + b  \n").unwrap();
    std::fs::write(repo.join("Makefile"), "test:\n\t! grep -nE '[[:space:]]+$$' app.py\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "app with trailing whitespace"]);
    git(&repo, &["rev-parse", "HEAD"])
}

/// Serves one service on loopback with its own registry; returns its URL.
async fn start_service(
    name: &'static str,
    build: fn(&SharedRegistry) -> Result<Built, String>,
    stop: watch::Receiver<bool>,
) -> String {
    let registry = SharedRegistry::default();
    let (routes, ready) = build(&registry).unwrap();
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", grpc_listener.local_addr().unwrap());
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = ServeOptions { service_name: name, grpc_listener, http_listener, drain_grace: Duration::ZERO };
    let mut stop = stop;
    tokio::spawn(serve(opts, registry, routes, ready, async move {
        let _ = stop.changed().await;
    }));
    url
}

fn span<'a>(spans: &'a [&SpanRecord], name: &str) -> &'a SpanRecord {
    spans.iter().copied().find(|s| s.name == name).unwrap_or_else(|| {
        panic!("no span {name:?} in the trace; have {:?}", spans.iter().map(|s| &s.name).collect::<BTreeSet<_>>())
    })
}

#[test]
fn one_webhook_is_one_run_and_one_trace() {
    let repos = tempfile::tempdir().unwrap();
    // Set before any thread exists: the services read SRE_REPOS_DIR when they are built.
    unsafe {
        std::env::set_var("SRE_REPOS_DIR", repos.path());
    }
    let head_sha = lint_failure_repo(repos.path());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(pipeline(repos.path().to_owned(), head_sha));
}

async fn pipeline(repos: std::path::PathBuf, head_sha: String) {
    let sink = Sink::default();
    let sink_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = sink_listener.local_addr().unwrap();
    tokio::spawn(sink.clone().serve(sink_listener, std::future::pending()));
    let telemetry = sre_telemetry::init(sre_telemetry::Config {
        otlp_endpoint: Some(format!("http://{sink_addr}")),
        ..sre_telemetry::Config::from_env("pipeline-test")
    })
    .unwrap();

    let (stop_tx, stop_rx) = watch::channel(false);
    let planner = start_service("sre.v1.Planner", sre_planner::build, stop_rx.clone()).await;
    let policy = start_service("sre.v1.Policy", sre_policy::build, stop_rx.clone()).await;
    let scanner = start_service("sre.v1.Scanner", sre_scanner::build, stop_rx.clone()).await;
    let validator = start_service("sre.v1.Validator", sre_validator::build, stop_rx.clone()).await;
    let pr = start_service("sre.v1.PullRequests", sre_pr::build, stop_rx.clone()).await;

    let data = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/sre.db", data.path().display());
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let stream = format!("sre:test:pipeline:{}", uuid::Uuid::new_v4().simple());

    // Gateway, in-process router over the same store and stream.
    let store = sre_store::Store::connect(&database_url).await.unwrap();
    let queue = sre_queue::Queue::new(&redis_url, &stream, sre_queue::DEFAULT_GROUP).unwrap();
    queue.ping().await.unwrap_or_else(|e| panic!("Redis at {redis_url} is unreachable ({e}); start redis-server"));
    queue.ensure_group().await.unwrap();
    let gw_registry = SharedRegistry::default();
    let gateway = sre_gateway::routes::router(
        sre_gateway::AppState {
            secret: Arc::from(SECRET),
            store: sre_store::StoreCell::ready(store.clone()),
            queue,
            metrics: sre_gateway::metrics::GatewayMetrics::register(&gw_registry),
            registry: gw_registry.clone(),
        },
        sre_telemetry::http::HttpMetrics::register(&gw_registry),
    );

    // Orchestrator.
    let config = sre_orchestrator::Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        redis_url,
        database_url,
        stream,
        planner_url: planner,
        policy_url: policy,
        scanner_url: scanner,
        validator_url: validator,
        pr_url: pr,
        workers: 1,
        reclaim_idle: Duration::from_secs(600),
        requeue_stale: Duration::from_secs(1200),
        max_attempts: 3,
        validate_timeout: Duration::from_secs(60),
        consumer: "pipeline-test".into(),
    };
    let orch_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let orch_registry = SharedRegistry::default();
    let mut orch_stop = stop_rx.clone();
    let orchestrator = tokio::spawn(sre_orchestrator::run(config, orch_registry.clone(), orch_listener, async move {
        let _ = orch_stop.changed().await;
    }));

    // The webhook GitHub would send.
    let body = format!(
        r#"{{"action":"completed","workflow_run":{{"id":4242,"name":"lint","head_sha":"{head_sha}","head_branch":"main","conclusion":"failure","run_attempt":1}},"repository":{{"full_name":"acme/app"}}}}"#
    );
    let req = Request::post("/webhooks/github")
        .header("x-github-event", "workflow_run")
        .header("x-github-delivery", "7c0b7f8e-0000-4000-8000-000000000001")
        .header("x-hub-signature-256", sre_gateway::webhook::sign(SECRET, body.as_bytes()))
        .body(Body::from(body))
        .unwrap();
    let resp = gateway.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 202);
    let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let accepted: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(90);
    let run = loop {
        let run = store.get_run(&run_id).await.unwrap().unwrap();
        if run.is_terminal() {
            break run;
        }
        assert!(Instant::now() < deadline, "run did not finish: {run:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run.status, "success", "{run:#?}");
    let stages: Vec<_> = run.stages.iter().map(|s| (s.stage.as_str(), s.status.as_str())).collect();
    assert_eq!(
        stages,
        [
            ("generate_plan", "ok"),
            ("policy_check_plan", "ok"),
            ("generate_patch", "ok"),
            ("policy_check_patch", "ok"),
            ("run_scans", "ok"),
            ("sandbox_validate", "ok"),
            ("create_pr", "ok"),
        ]
    );
    assert_eq!((run.language.as_str(), run.category.as_str(), run.label.as_str()), ("python", "lint", "safe"));
    assert_eq!(run.pr_number, Some(1));
    let branch_file = git(&repos.join("acme/app"), &["show", &format!("{}:app.py", run.pr_branch)]);
    assert_eq!(branch_file, "def add(a, b):\n    return a + b");
    let diff = store.run_diff(&run_id).await.unwrap().unwrap();
    assert!(diff.contains("+def add(a, b):\n"), "{diff}");

    let metrics = orch_registry.encode(false);
    assert!(metrics.contains(r#"sre_agent_pipeline_runs_total{outcome="success"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"sre_agent_pipeline_stage_duration_seconds_count{stage="validate"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"sre_agent_celery_tasks_total{task="run_fix_pipeline",status="success"} 1"#));

    let _ = stop_tx.send(true);
    orchestrator.await.unwrap().unwrap();
    telemetry.shutdown(Duration::from_secs(5)).await;

    // One trace, rooted at the webhook.
    let all = sink.spans();
    let root = all
        .iter()
        .find(|s| s.name == "ingest_webhook" && s.attributes.get("run_id") == Some(&run_id))
        .expect("ingest_webhook span with the run_id");
    assert_eq!(root.parent_span_id, "", "ingest_webhook is the root");
    let trace: Vec<&SpanRecord> = all.iter().filter(|s| s.trace_id == root.trace_id).collect();
    let child_of = |child: &SpanRecord, parent: &SpanRecord| {
        assert_eq!(child.parent_span_id, parent.span_id, "{} is not a child of {}", child.name, parent.name)
    };
    let store_event = span(&trace, "store_event");
    let enqueue = span(&trace, "enqueue_pipeline");
    child_of(store_event, root);
    child_of(enqueue, root);
    assert_eq!(enqueue.kind, "producer");
    assert_eq!(enqueue.attributes["messaging.system"], "redis");
    let consumer = trace.iter().copied().find(|s| s.kind == "consumer").expect("consumer span in the same trace");
    child_of(consumer, enqueue);
    assert_eq!(consumer.attributes["run_id"], run_id);

    for (stage, rpc) in [
        ("generate_plan", "sre.v1.Planner/GeneratePlan"),
        ("policy_check_plan", "sre.v1.Policy/CheckPlan"),
        ("generate_patch", "sre.v1.Planner/GeneratePatch"),
        ("policy_check_patch", "sre.v1.Policy/CheckPatch"),
        ("run_scans", "sre.v1.Scanner/RunScans"),
        ("sandbox_validate", "sre.v1.Validator/Validate"),
        ("create_pr", "sre.v1.PullRequests/CreatePullRequest"),
    ] {
        let stage_span = span(&trace, stage);
        child_of(stage_span, consumer);
        let client = trace
            .iter()
            .copied()
            .find(|s| s.name == rpc && s.kind == "client" && s.parent_span_id == stage_span.span_id)
            .unwrap_or_else(|| panic!("no client span {rpc} under {stage}"));
        let server = trace
            .iter()
            .copied()
            .find(|s| s.name == rpc && s.kind == "server")
            .unwrap_or_else(|| panic!("no server span {rpc} in the trace"));
        child_of(server, client);
        assert_eq!(server.attributes.get("run_id"), Some(&run_id), "{rpc} server span lacks run_id");
    }
    child_of(span(&trace, "persist_artifact"), consumer);
    // Nothing secret on any span.
    for s in &trace {
        for (k, v) in &s.attributes {
            assert!(!v.contains("diff --git") && !v.contains("file://"), "{} carries {k}={v}", s.name);
        }
    }
}
