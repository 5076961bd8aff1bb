use std::process::ExitCode;
use std::time::Duration;

use sre_gateway::{AppState, Config};
use sre_service_kit::config::{Command, parse_or_exit};
use sre_service_kit::{probe, shutdown_signal};

/// jemalloc, not glibc's malloc: every delivery allocates and frees a ~17 KB body several times, and glibc's
/// consolidation and free-list walks were ~13% of the gateway's CPU under webhook load (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config: Config = parse_or_exit();
    if config.command == Some(Command::HealthProbe) {
        return probe::run(config.http_addr);
    }
    let (secret, insecure) = match config.secret() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("sre-gateway: {err}");
            return ExitCode::from(2);
        }
    };
    let (api_auth, limits) = match config.api_auth().and_then(|auth| Ok((auth, config.limits()?))) {
        Ok(v) => v,
        Err(err) => {
            eprintln!("sre-gateway: {err}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match sre_telemetry::init(sre_telemetry::Config::from_env("gateway")) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("sre-gateway: telemetry: {err}");
            return ExitCode::from(2);
        }
    };
    if insecure {
        tracing::warn!("SRE_DEV_INSECURE_WEBHOOK_SECRET is set: webhooks are verified with the built-in dev secret");
    }
    if matches!(api_auth, sre_gateway::ApiAuth::InsecureLoopback) {
        tracing::warn!(
            http_addr = %config.http_addr,
            "SRE_API_INSECURE_LOOPBACK is set: the runs API answers without a token (loopback only)"
        );
    }
    let code = match serve(&config, secret.expose().as_bytes(), api_auth, limits, telemetry.registry()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "exiting");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown(Duration::from_secs(5)).await;
    code
}

async fn serve(
    config: &Config,
    secret: &[u8],
    api_auth: sre_gateway::ApiAuth,
    limits: sre_gateway::Limits,
    registry: sre_telemetry::SharedRegistry,
) -> Result<(), String> {
    let queue = sre_queue::Queue::new(&config.redis_url, &config.stream, sre_queue::DEFAULT_GROUP)
        .map_err(|e| format!("configuration error: {e}"))?;
    let store = sre_store::StoreCell::connect_in_background(config.database_url());
    let state = AppState::new(secret, api_auth, store, queue, &registry).with_limits(limits);
    let http_metrics = sre_telemetry::http::HttpMetrics::register(&registry);
    let listener =
        tokio::net::TcpListener::bind(config.http_addr).await.map_err(|e| format!("bind {}: {e}", config.http_addr))?;
    tracing::info!(http_addr = %config.http_addr, "listening");
    sre_gateway::run(state, http_metrics, listener, shutdown_signal()).await.map_err(|e| e.to_string())
}
