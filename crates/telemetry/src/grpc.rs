//! gRPC tower layers: [`GrpcServerLayer`] and [`GrpcClientLayer`].
//!
//! The server layer extracts the W3C context from the request headers and sets it as the parent of the
//! server span *before* that span is entered (tracing-opentelemetry refuses a parent once a span started),
//! then runs the handler inside the span. The client layer opens a client span under the caller's current
//! span and injects it into the outgoing headers. Both record request counts and latency; health checks and
//! reflection make neither spans nor metrics.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::field::Empty;

use crate::metrics::{LATENCY_BUCKETS, SharedRegistry, TraceExemplar};
use crate::propagation;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcCodeLabels {
    rpc_service: String,
    rpc_method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc_service: String,
    rpc_method: String,
}

/// Request counter and latency histogram for one side (server or client) of gRPC.
#[derive(Clone)]
pub struct GrpcMetrics {
    requests: Family<RpcCodeLabels, Counter>,
    duration: Family<RpcLabels, HistogramWithExemplars<TraceExemplar>>,
}

impl GrpcMetrics {
    /// `sre_agent_grpc_server_*`.
    pub fn server(registry: &SharedRegistry) -> Self {
        Self::register(registry, "server")
    }

    /// `sre_agent_grpc_client_*`.
    pub fn client(registry: &SharedRegistry) -> Self {
        Self::register(registry, "client")
    }

    fn register(registry: &SharedRegistry, side: &str) -> Self {
        let this = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| HistogramWithExemplars::new(LATENCY_BUCKETS.into_iter())),
        };
        registry.register(
            &format!("sre_agent_grpc_{side}_requests"),
            &format!("gRPC {side} calls by service, method and status code"),
            this.requests.clone(),
        );
        registry.register(
            &format!("sre_agent_grpc_{side}_request_duration_seconds"),
            &format!("gRPC {side} call latency by service and method"),
            this.duration.clone(),
        );
        this
    }

    fn observe(&self, call: &Call, code: i32, elapsed: f64, span: &tracing::Span) {
        // An unknown path answers UNIMPLEMENTED: collapse it so callers cannot mint label values.
        let (service, method) = if code == 12 {
            ("unknown".to_owned(), "unknown".to_owned())
        } else {
            (call.service.clone(), call.method.clone())
        };
        self.requests
            .get_or_create(&RpcCodeLabels {
                rpc_service: service.clone(),
                rpc_method: method.clone(),
                code: code_name(code).to_owned(),
            })
            .inc();
        let exemplar = propagation::trace_id(span).map(|trace_id| TraceExemplar { trace_id });
        self.duration
            .get_or_create(&RpcLabels { rpc_service: service, rpc_method: method })
            .observe(elapsed, exemplar, None);
    }
}

/// Service and method parsed from a gRPC path `/pkg.Service/Method`.
#[derive(Clone, Debug)]
struct Call {
    service: String,
    method: String,
}

impl Call {
    /// `None` for infrastructure calls (health, reflection) that get neither spans nor metrics.
    fn parse(path: &str) -> Option<Self> {
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let service = parts.next().unwrap_or_default();
        let method = parts.next().unwrap_or_default();
        if service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.") {
            return None;
        }
        Some(Self { service: service.to_owned(), method: method.to_owned() })
    }
}

/// Canonical upper-case name of a gRPC status code.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// Codes that mark a server span as an error (OpenTelemetry gRPC semantic conventions).
fn is_server_error(code: i32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// Status in the response headers (trailers-only responses carry it there); absent means the status comes
/// in the trailers, which for our unary calls is OK.
fn header_status<B>(resp: &http::Response<B>) -> i32 {
    resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------------------
// Server

/// Server-side layer: context extraction, server span, server metrics.
#[derive(Clone)]
pub struct GrpcServerLayer {
    metrics: GrpcMetrics,
}

impl GrpcServerLayer {
    pub fn new(metrics: GrpcMetrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for GrpcServerLayer {
    type Service = GrpcServer<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcServer { inner, metrics: self.metrics.clone() }
    }
}

#[derive(Clone)]
pub struct GrpcServer<S> {
    inner: S,
    metrics: GrpcMetrics,
}

impl<S, B, RB> Service<http::Request<B>> for GrpcServer<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Observed<tracing::instrument::Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let call = Call::parse(req.uri().path());
        let span = match &call {
            Some(call) => {
                let span = tracing::info_span!(
                    "grpc.server",
                    otel.name = %format!("{}/{}", call.service, call.method),
                    otel.kind = "server",
                    otel.status_code = Empty,
                    rpc.system = "grpc",
                    rpc.service = %call.service,
                    rpc.method = %call.method,
                    rpc.grpc.status_code = Empty,
                    delivery_id = Empty,
                    run_key = Empty,
                    failure_id = Empty,
                    run_id = Empty,
                    correlation_id = Empty,
                    language = Empty,
                    category = Empty,
                    pr_label = Empty,
                    outcome = Empty,
                );
                // Before the span is ever entered: see the module docs.
                propagation::set_remote_parent(&span, propagation::extract_headers(req.headers()));
                span
            }
            None => tracing::Span::none(),
        };
        let fut = span.in_scope(|| self.inner.call(req));
        Observed {
            inner: fut.instrument(span.clone()),
            start: Instant::now(),
            state: call.map(|call| (call, span, self.metrics.clone(), Side::Server)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Client

/// Client-side layer: client span under the current span, W3C injection, client metrics.
#[derive(Clone)]
pub struct GrpcClientLayer {
    server_address: String,
    metrics: GrpcMetrics,
}

impl GrpcClientLayer {
    /// `server_address` is the `host:port` put on the span as `server.address`.
    pub fn new(server_address: impl Into<String>, metrics: GrpcMetrics) -> Self {
        Self { server_address: server_address.into(), metrics }
    }
}

impl<S> Layer<S> for GrpcClientLayer {
    type Service = GrpcClient<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcClient { inner, server_address: self.server_address.clone(), metrics: self.metrics.clone() }
    }
}

#[derive(Clone)]
pub struct GrpcClient<S> {
    inner: S,
    server_address: String,
    metrics: GrpcMetrics,
}

impl<S, B, RB> Service<http::Request<B>> for GrpcClient<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Observed<tracing::instrument::Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let call = Call::parse(req.uri().path());
        let span = match &call {
            Some(call) => {
                let (host, port) = self.server_address.rsplit_once(':').unwrap_or((&self.server_address, ""));
                let span = tracing::info_span!(
                    "grpc.client",
                    otel.name = %format!("{}/{}", call.service, call.method),
                    otel.kind = "client",
                    otel.status_code = Empty,
                    rpc.system = "grpc",
                    rpc.service = %call.service,
                    rpc.method = %call.method,
                    rpc.grpc.status_code = Empty,
                    server.address = %host,
                    server.port = %port,
                );
                propagation::inject_headers(&span, req.headers_mut());
                span
            }
            None => tracing::Span::none(),
        };
        let fut = span.in_scope(|| self.inner.call(req));
        Observed {
            inner: fut.instrument(span.clone()),
            start: Instant::now(),
            state: call.map(|call| (call, span, self.metrics.clone(), Side::Client)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Shared response future

#[derive(Clone, Copy)]
enum Side {
    Server,
    Client,
}

pin_project! {
    /// Completes the span and the metrics when the response (or the error) arrives.
    pub struct Observed<F> {
        #[pin]
        inner: F,
        start: Instant,
        state: Option<(Call, tracing::Span, GrpcMetrics, Side)>,
    }
}

impl<F, RB, E> Future for Observed<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Some((call, span, metrics, side)) = this.state.take() {
            let code = match &result {
                Ok(resp) => header_status(resp),
                // Transport failure before any response: the peer is unreachable.
                Err(_) => 14,
            };
            span.record("rpc.grpc.status_code", code);
            let error = match side {
                Side::Server => is_server_error(code),
                Side::Client => code != 0,
            };
            if error {
                span.record("otel.status_code", "ERROR");
            }
            metrics.observe(&call, code, this.start.elapsed().as_secs_f64(), &span);
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_skips_infrastructure() {
        let call = Call::parse("/sre.v1.Planner/GeneratePlan").unwrap();
        assert_eq!((call.service.as_str(), call.method.as_str()), ("sre.v1.Planner", "GeneratePlan"));
        assert!(Call::parse("/grpc.health.v1.Health/Check").is_none());
        assert!(Call::parse("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").is_none());
    }

    #[test]
    fn code_names() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(14), "UNAVAILABLE");
        assert_eq!(code_name(99), "UNKNOWN");
    }
}
