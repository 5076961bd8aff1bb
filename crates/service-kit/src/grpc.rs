//! Serving one sre.v1 gRPC service the same way everywhere.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use sre_telemetry::SharedRegistry;
use sre_telemetry::grpc::{GrpcMetrics, GrpcServerLayer};
use sre_telemetry::http::{HttpMetrics, metrics_router};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::config::{Command, ServeArgs};

/// Errors that stop a gRPC process.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("metrics HTTP server: {0}")]
    Http(#[from] std::io::Error),
}

/// One service to serve and how.
pub struct ServeOptions {
    /// Fully qualified service name, e.g. `sre.v1.Planner` (health status key).
    pub service_name: &'static str,
    pub grpc_listener: TcpListener,
    pub http_listener: TcpListener,
    /// Time between reporting NOT_SERVING and closing the listener, so balancers stop routing to us.
    pub drain_grace: Duration,
}

/// Serves `routes` with health, reflection and the telemetry layer until `shutdown` resolves, then drains:
/// health goes NOT_SERVING, in-flight calls finish, the metrics port closes last.
/// Health reports SERVING only after `ready` resolves (the service's own dependencies answered).
pub async fn serve(
    opts: ServeOptions,
    registry: SharedRegistry,
    routes: Routes,
    ready: impl Future<Output = ()> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in ["", opts.service_name] {
        reporter.set_service_status(name, ServingStatus::NotServing).await;
    }
    // v1 for current grpcurl/grpcui, v1alpha for grpcurl 1.8.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(sre_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let service_name = opts.service_name;
    let ready_reporter = reporter.clone();
    let readiness = tokio::spawn(async move {
        ready.await;
        for name in ["", service_name] {
            ready_reporter.set_service_status(name, ServingStatus::Serving).await;
        }
        tracing::info!(service = service_name, "health: SERVING");
    });

    // The metrics port outlives the gRPC port so the last scrape sees the drain.
    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http_metrics = HttpMetrics::register(&registry);
    let http =
        tokio::spawn(crate::serve_http(opts.http_listener, metrics_router(registry.clone(), http_metrics), async {
            let _ = http_stop_rx.await;
        }));

    let drain_grace = opts.drain_grace;
    let drain = async move {
        shutdown.await;
        readiness.abort();
        for name in ["", service_name] {
            reporter.set_service_status(name, ServingStatus::NotServing).await;
        }
        tracing::info!(service = service_name, "health: NOT_SERVING, draining in-flight calls");
        tokio::time::sleep(drain_grace).await;
    };

    let result = tonic::transport::Server::builder()
        // Trace context extraction, server span and RPC metrics for every call but health/reflection.
        .layer(GrpcServerLayer::new(GrpcMetrics::server(&registry)))
        .add_routes(routes)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // TCP_NODELAY: without it a unary reply's trailers wait on the peer's delayed ACK (~40 ms).
        .serve_with_incoming_shutdown(TcpIncoming::from(opts.grpc_listener).with_nodelay(Some(true)), drain)
        .await;

    let _ = http_stop_tx.send(());
    match http.await {
        Ok(Err(err)) => tracing::warn!(error = %err, "metrics HTTP server ended with an error"),
        Err(err) => tracing::warn!(error = %err, "metrics HTTP task failed"),
        Ok(Ok(())) => {}
    }
    result?;
    tracing::info!(service = service_name, "stopped");
    Ok(())
}

/// Where a gRPC service binary listens by default and what it is called.
pub struct ServiceSpec {
    /// Process name: default `OTEL_SERVICE_NAME` and log `service`, e.g. `planner`.
    pub process: &'static str,
    /// gRPC service name, e.g. `sre.v1.Planner`.
    pub grpc_service: &'static str,
    pub default_grpc_addr: SocketAddr,
    pub default_http_addr: SocketAddr,
}

/// What a service's constructor hands back: its routes and the future that resolves once it is ready.
pub type Built = (Routes, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>);

/// The whole `main` of a gRPC service once its configuration is parsed: `health-probe`, telemetry, build,
/// bind, serve, drain, flush. `build` constructs the service with the process registry; its error (a
/// dependency that cannot be set up) ends the process with exit code 2.
pub async fn run_main<F, E>(
    spec: ServiceSpec,
    serve_args: &ServeArgs,
    command: Option<Command>,
    build: F,
) -> std::process::ExitCode
where
    F: FnOnce(&SharedRegistry) -> Result<Built, E>,
    E: std::fmt::Display,
{
    use std::process::ExitCode;
    let grpc_addr = serve_args.grpc_addr.unwrap_or(spec.default_grpc_addr);
    let http_addr = serve_args.http_addr.unwrap_or(spec.default_http_addr);
    if command == Some(Command::HealthProbe) {
        return crate::probe::run(http_addr);
    }
    let telemetry = match sre_telemetry::init(sre_telemetry::Config::from_env(spec.process)) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("{}: telemetry: {err}", spec.process);
            return ExitCode::from(2);
        }
    };
    let registry = telemetry.registry();
    let code = match build(&registry) {
        Err(err) => {
            tracing::error!(error = %err, "configuration error");
            ExitCode::from(2)
        }
        Ok((routes, ready)) => {
            let drain_grace = Duration::from_millis(serve_args.drain_grace_ms);
            match serve_main(&spec, grpc_addr, http_addr, drain_grace, registry, routes, ready).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!(error = %err, "exiting");
                    ExitCode::FAILURE
                }
            }
        }
    };
    telemetry.shutdown(Duration::from_secs(5)).await;
    code
}

async fn serve_main(
    spec: &ServiceSpec,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    drain_grace: Duration,
    registry: SharedRegistry,
    routes: Routes,
    ready: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
) -> Result<(), String> {
    let grpc_listener = TcpListener::bind(grpc_addr).await.map_err(|e| format!("bind gRPC {grpc_addr}: {e}"))?;
    let http_listener = TcpListener::bind(http_addr).await.map_err(|e| format!("bind HTTP {http_addr}: {e}"))?;
    tracing::info!(grpc_addr = %grpc_addr, http_addr = %http_addr, service = spec.grpc_service, "listening");
    let opts = ServeOptions { service_name: spec.grpc_service, grpc_listener, http_listener, drain_grace };
    serve(opts, registry, routes, ready, crate::shutdown_signal()).await.map_err(|e| e.to_string())
}
