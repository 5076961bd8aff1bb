//! HTTP side: the axum metrics middleware (`sre_agent_http_requests_total`,
//! `sre_agent_http_request_duration_seconds`) keyed by route template, and the `/metrics` handler.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;

use crate::metrics::{LATENCY_BUCKETS, SharedRegistry, TraceExemplar, wants_openmetrics};

/// Route label for requests that matched no route: keeps scanners and typos out of the label set.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    route: String,
    method: String,
}

/// The HTTP metric families of one process.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<DurationLabels, HistogramWithExemplars<TraceExemplar>>,
}

impl HttpMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| HistogramWithExemplars::new(LATENCY_BUCKETS.into_iter())),
        };
        registry.register("sre_agent_http_requests", "HTTP requests by route template", this.requests.clone());
        registry.register(
            "sre_agent_http_request_duration_seconds",
            "HTTP request latency by route template",
            this.duration.clone(),
        );
        this
    }
}

impl HttpMetrics {
    /// Creates, at 0, the series of each `(method, route template, status)` a router normally answers, so a
    /// fresh process's first scrape already shows them (error rates and `absent()` alerts need the series).
    pub fn expect(&self, routes: &[(&str, &str, u16)]) {
        for (method, route, status) in routes {
            let method = bounded_method(method);
            let _ = self.requests.get_or_create(&RequestLabels {
                method: method.clone(),
                route: (*route).to_owned(),
                status: status.to_string(),
            });
            let _ = self.duration.get_or_create(&DurationLabels { route: (*route).to_owned(), method });
        }
    }
}

/// The trace a handler worked in, left in the response extensions so the latency exemplar can point at it.
#[derive(Clone, Debug)]
pub struct ResponseTrace(pub String);

/// Wraps `router` with the metrics middleware. Call after every route (and the fallback) is added.
pub fn instrument(router: Router, metrics: HttpMetrics) -> Router {
    router
        // Inner: runs after routing, so it can see the matched template and hand it outwards.
        .route_layer(middleware::from_fn(carry_matched_path))
        // Outer: sees every request, including the ones no route matched.
        .layer(middleware::from_fn_with_state(metrics, record_request))
}

async fn carry_matched_path(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(matched) = matched {
        resp.extensions_mut().insert(matched);
    }
    resp
}

async fn record_request(State(metrics): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let route =
        resp.extensions().get::<MatchedPath>().map_or_else(|| UNMATCHED_ROUTE.to_owned(), |m| m.as_str().to_owned());
    let method = bounded_method(&method);
    let exemplar = resp.extensions().get::<ResponseTrace>().map(|t| TraceExemplar { trace_id: t.0.clone() });
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status: resp.status().as_u16().to_string(),
        })
        .inc();
    metrics.duration.get_or_create(&DurationLabels { route, method }).observe(elapsed, exemplar, None);
    resp
}

/// Methods outside the standard set collapse to "OTHER" so a client cannot mint label values.
fn bounded_method(method: &str) -> String {
    match method {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => method.to_owned(),
        _ => "OTHER".to_owned(),
    }
}

/// `GET /metrics`: OpenMetrics when asked for (exemplars), Prometheus text otherwise.
pub async fn metrics_handler(State(registry): State<SharedRegistry>, headers: HeaderMap) -> Response {
    let openmetrics = wants_openmetrics(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = registry.encode(openmetrics);
    let content_type =
        if openmetrics { crate::metrics::OPENMETRICS_CONTENT_TYPE } else { crate::metrics::TEXT_CONTENT_TYPE };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `/metrics` and `/health` (liveness), not yet instrumented: merge more routes, then [`instrument`].
pub fn metrics_routes(registry: SharedRegistry) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics_handler))
        .with_state(registry)
        .route("/health", axum::routing::get(|| async { (StatusCode::OK, "ok") }))
}

/// The routes of [`metrics_routes`], with their normal answers (for [`HttpMetrics::expect`]).
pub const METRICS_ROUTES: [(&str, &str, u16); 2] = [("GET", "/metrics", 200), ("GET", "/health", 200)];

/// The router a gRPC service serves on its HTTP port: `/metrics` and `/health`, instrumented.
pub fn metrics_router(registry: SharedRegistry, http_metrics: HttpMetrics) -> Router {
    http_metrics.expect(&METRICS_ROUTES);
    instrument(metrics_routes(registry), http_metrics)
}
