//! The pipeline worker. Consumes jobs from the Redis Stream (continuing each job's trace), runs the stages
//! in the seed's order by calling the planner, policy, scanner, validator and pr services over gRPC,
//! records the run, and acks only after the record is written. Serves `/metrics`, `/health` and `/ready`
//! (store and Redis reachable) on its HTTP port.
//!
//! Layout: `config.rs` (flags and env), `events.rs` (what it logs and counts: the seed's pipeline families),
//! `clients.rs` (traced gRPC clients), `pipeline.rs` (the stages), `github.rs` (what it asks GitHub with the
//! GitHub backend: jobs, logs, history, the commit, check runs), `guards.rs` (loop guards and limits),
//! `worker.rs` (job loop, retries, reclaim, outbox), `main.rs`.

pub mod clients;
pub mod config;
pub mod events;
pub mod github;
pub mod guards;
pub mod pipeline;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
pub use config::Config;
use sre_queue::Queue;
use sre_store::StoreCell;
use sre_telemetry::SharedRegistry;
use sre_telemetry::grpc::GrpcMetrics;
use sre_telemetry::http::{HttpMetrics, instrument, metrics_routes};

/// Longest the orchestrator waits for in-flight runs at shutdown; unfinished jobs stay pending and are
/// reclaimed by another worker.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Readiness {
    store: StoreCell,
    queue: Queue,
}

async fn ready(State(r): State<Readiness>) -> impl IntoResponse {
    let store = match r.store.get() {
        None => "connecting".to_owned(),
        Some(s) => s.ping().await.map_or_else(|e| e.to_string(), |()| "ok".to_owned()),
    };
    let redis = r.queue.ping().await.map_or_else(|e| e.to_string(), |()| "ok".to_owned());
    let ok = store == "ok" && redis == "ok";
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        code,
        axum::Json(
            serde_json::json!({"status": if ok { "ready" } else { "not_ready" }, "checks": {"store": store, "redis": redis}}),
        ),
    )
}

/// Runs the worker and its HTTP port until `shutdown` resolves, then drains.
pub async fn run(
    config: Config,
    registry: SharedRegistry,
    http_listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    config.check()?;
    let config = Arc::new(config);
    let store = StoreCell::connect_in_background(config.database_url());
    let queue = Queue::new(&config.redis_url, &config.stream, sre_queue::DEFAULT_GROUP).map_err(|e| e.to_string())?;
    let clients = clients::Clients::new(&config, &GrpcMetrics::client(&registry))?;
    let pipeline = pipeline::Pipeline::new(
        clients,
        events::PipelineMetrics::register(&registry),
        store.clone(),
        config.validate_timeout_seconds,
    );

    let router = metrics_routes(registry.clone()).merge(
        axum::Router::new()
            .route("/ready", axum::routing::get(ready))
            .with_state(Readiness { store: store.clone(), queue: queue.clone() }),
    );
    let http_metrics = HttpMetrics::register(&registry);
    http_metrics.expect(&sre_telemetry::http::METRICS_ROUTES);
    http_metrics.expect(&[("GET", "/ready", 200)]);
    let router = instrument(router, http_metrics);
    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(sre_service_kit::serve_http(http_listener, router, async {
        let _ = http_stop_rx.await;
    }));

    let group_queue = queue.clone();
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(250);
        while let Err(err) = group_queue.ensure_group().await {
            tracing::warn!(error = %err, "queue group not created yet; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    });

    // Registered with either backend, so every process shows the same families (at 0 when local).
    let github_metrics = sre_github::GithubMetrics::register(&registry);
    let github = match config.backend {
        sre_github::Backend::Local => None,
        sre_github::Backend::Github => {
            let github_config = config
                .github
                .config()
                .map_err(|e| e.to_string())?
                .ok_or("SRE_PR_BACKEND=github needs GITHUB_APP_ID and GITHUB_PRIVATE_KEY_FILE, or GITHUB_TOKEN")?;
            let bot = config.github.bot_identity().map_err(|e| e.to_string())?;
            let client = sre_github::GithubClient::new(github_config, github_metrics).map_err(|e| e.to_string())?;
            let source =
                github::GithubSource::new(client, config.data.repos_dir(), config.cache.options(), bot, &config);
            tracing::info!(api = %config.github.api_url, "reading failures from GitHub");
            Some(Arc::new(source))
        }
    };
    let history = match &github {
        Some(github) => guards::Source::Github(github.clone()),
        None => guards::Source::Local(guards::LocalHistory { repos_dir: config.data.repos_dir() }),
    };
    let guards = guards::Guards::new(queue.limits(), history, &config);
    let worker = Arc::new(worker::Worker { queue, store, pipeline, guards, github, config: config.clone() });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = tokio::spawn(worker.run(stop_rx));
    tracing::info!(workers = config.workers, "consuming pipeline jobs");

    tokio::select! {
        () = shutdown => {}
        _ = &mut workers => return Err("worker loops ended unexpectedly".into()),
    }
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, &mut workers).await.is_err() {
        tracing::warn!(
            timeout_s = DRAIN_TIMEOUT.as_secs(),
            "in-flight runs still going at shutdown; they will be reclaimed"
        );
        workers.abort();
    }
    let _ = http_stop_tx.send(());
    let _ = http.await;
    tracing::info!("stopped");
    Ok(())
}
