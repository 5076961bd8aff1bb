//! The gateway in-process against real SQLite (temp file) and real Redis: the harness the gateway's tests share.
#![allow(dead_code)] // each test binary uses part of it

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sre_gateway::{ApiAuth, AppState, Limits, routes};
use sre_queue::Queue;
use sre_store::{Store, StoreCell};
use sre_telemetry::SharedRegistry;
use sre_telemetry::http::HttpMetrics;
use tower::ServiceExt;

/// The runs API token of the harness's gateway; [`send`] carries it on `/api/v1/*` requests.
pub const API_TOKEN: &str = "gateway-test-api-token";

pub const SECRET: &[u8] = b"test-secret";

pub struct Harness {
    pub router: axum::Router,
    pub state: AppState,
    pub store: Store,
    pub queue: Queue,
    pub _dir: tempfile::TempDir,
}

/// In-process spans (no exporter), so trace context is real and can be checked on the queue.
fn init_tracing() {
    static TELEMETRY: std::sync::OnceLock<sre_telemetry::Telemetry> = std::sync::OnceLock::new();
    TELEMETRY.get_or_init(|| {
        sre_telemetry::init(sre_telemetry::Config {
            otlp_endpoint: None,
            ..sre_telemetry::Config::from_env("gateway-test")
        })
        .expect("telemetry init")
    });
}

pub async fn harness() -> Harness {
    harness_with(Limits::default()).await
}

pub async fn harness_with(limits: Limits) -> Harness {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/gw.db", dir.path().display())).await.unwrap();
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let stream = format!("sre:test:gw:{}", uuid::Uuid::new_v4().simple());
    let queue = Queue::new(&redis, &stream, "orchestrator").unwrap();
    queue.ping().await.unwrap_or_else(|e| panic!("Redis at {redis} is unreachable ({e}); start redis-server"));
    queue.ensure_group().await.unwrap();
    let registry = SharedRegistry::default();
    let state =
        AppState::new(SECRET, ApiAuth::token(API_TOKEN), StoreCell::ready(store.clone()), queue.clone(), &registry)
            .with_limits(limits);
    let router = routes::router(state.clone(), HttpMetrics::register(&registry));
    Harness { router, state, store, queue, _dir: dir }
}

pub fn failure_body() -> Vec<u8> {
    br#"{"action":"completed","workflow_job":{"id":99,"run_id":5,"name":"lint","head_sha":"0123456789abcdef0123456789abcdef01234567","head_branch":"main","conclusion":"failure","run_attempt":1},"repository":{"full_name":"acme/app"}}"#.to_vec()
}

pub fn webhook(event: &str, delivery: &str, body: &[u8], signature: Option<String>) -> Request<Body> {
    let mut req = Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery);
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    req.body(Body::from(body.to_vec())).unwrap()
}

/// The API client: sends `req`, with the bearer token when it is a runs API request that carries no
/// Authorization of its own.
pub async fn send(router: &axum::Router, mut req: Request<Body>) -> (StatusCode, String) {
    if req.uri().path().starts_with("/api/v1") && !req.headers().contains_key("authorization") {
        req.headers_mut().insert("authorization", format!("Bearer {API_TOKEN}").parse().unwrap());
    }
    send_raw(router, req).await
}

/// Sends `req` as it is.
pub async fn send_raw(router: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}
