//! The HTTP edge of the mesh.
//!
//! `POST /webhooks/github` verifies the HMAC signature, dedupes on `X-GitHub-Delivery`, stores the event and
//! its run in one transaction (a new run per failure; later events about the same failure enrich it), and
//! enqueues a pipeline job carrying the W3C context (spans `ingest_webhook` → `store_event` →
//! `enqueue_pipeline`). Also the runs API (`GET /api/v1/runs[/{run_id}[/diff|/artifacts[/{kind}]]]`),
//! `/health`, `/ready` (store and Redis reachable) and `/metrics`.
//!
//! `/api/v1/*` requires the bearer token (`auth.rs`); every body is read within a size limit and a deadline
//! before a handler sees it, and a client that trickles its headers is disconnected (docs/security.md).
//!
//! Layout: `config.rs` (flags and env), `auth.rs` (the runs API token), `webhook.rs` (signature and payload semantics, pure), `events.rs`
//! (what the gateway logs and counts), `routes.rs` (handlers), `main.rs` (process scaffold).

pub mod auth;
pub mod config;
pub mod events;
pub mod ingest;
pub mod routes;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

pub use auth::ApiAuth;
pub use config::Config;
use sre_queue::Queue;
use sre_store::StoreCell;
use sre_telemetry::SharedRegistry;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub secret: Arc<[u8]>,
    pub store: StoreCell,
    pub queue: Queue,
    /// The group-commit writer every webhook is stored through.
    pub ingester: ingest::Ingester,
    pub metrics: events::GatewayMetrics,
    pub registry: SharedRegistry,
    pub api_auth: ApiAuth,
    pub limits: Limits,
}

/// What the gateway waits for and accepts from a client.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body (413 beyond).
    pub max_body_bytes: usize,
    /// Request line and headers must arrive within this (connection closed otherwise).
    pub header_timeout: Duration,
    /// The whole body must arrive within this (408 and the connection closed otherwise).
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: config::DEFAULT_MAX_BODY_BYTES,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

impl AppState {
    /// The state over `store` and `queue`, with the gateway's metric families registered and the
    /// group-commit writer started; default [`Limits`].
    pub fn new(secret: &[u8], api_auth: ApiAuth, store: StoreCell, queue: Queue, registry: &SharedRegistry) -> Self {
        Self {
            api_auth,
            limits: Limits::default(),
            secret: Arc::from(secret),
            ingester: ingest::Ingester::start(store.clone(), queue.clone()),
            store,
            queue,
            metrics: events::GatewayMetrics::register(registry),
            registry: registry.clone(),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// Runs the gateway on `listener` until `shutdown` resolves.
pub async fn run(
    state: AppState,
    http_metrics: sre_telemetry::http::HttpMetrics,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let queue = state.queue.clone();
    // The group exists before the first job, whichever of gateway and orchestrator starts first.
    tokio::spawn(async move {
        let mut delay = std::time::Duration::from_millis(250);
        while let Err(err) = queue.ensure_group().await {
            tracing::warn!(error = %err, "queue group not created yet; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(10));
        }
    });
    let metrics = state.metrics.clone();
    let options = sre_service_kit::HttpServerOptions {
        header_read_timeout: state.limits.header_timeout,
        on_header_timeout: Some(Arc::new(move || {
            use sre_telemetry::Emit;
            let reason = events::RejectReason::HeaderTimeout;
            metrics.emit(events::RequestRejected { reason, route: sre_telemetry::http::UNMATCHED_ROUTE });
        })),
    };
    let router = routes::router(state, http_metrics);
    sre_service_kit::serve_http_with(listener, router, options, shutdown).await
}
