use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sre_gateway::{AppState, Config, metrics::GatewayMetrics};
use sre_service_kit::{probe, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(err) => {
            eprintln!("gateway: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(code) = probe::run_if_requested(config.http_addr) {
        return code;
    }
    let telemetry = match sre_telemetry::init(sre_telemetry::Config::from_env("gateway")) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("gateway: telemetry: {err}");
            return ExitCode::from(2);
        }
    };
    if config.insecure_dev_secret {
        tracing::warn!("SRE_DEV_INSECURE_WEBHOOK_SECRET is set: webhooks are verified with the built-in dev secret");
    }
    let code = match serve(config, telemetry.registry()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "exiting");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown(Duration::from_secs(5)).await;
    code
}

async fn serve(config: Config, registry: sre_telemetry::SharedRegistry) -> Result<(), String> {
    let queue = sre_queue::Queue::new(&config.redis_url, &config.stream, sre_queue::DEFAULT_GROUP)
        .map_err(|e| format!("configuration error: {e}"))?;
    let state = AppState {
        secret: Arc::from(config.webhook_secret.as_bytes()),
        store: sre_store::StoreCell::connect_in_background(config.database_url.clone()),
        queue,
        metrics: GatewayMetrics::register(&registry),
        registry: registry.clone(),
    };
    let http_metrics = sre_telemetry::http::HttpMetrics::register(&registry);
    let listener =
        tokio::net::TcpListener::bind(config.http_addr).await.map_err(|e| format!("bind {}: {e}", config.http_addr))?;
    tracing::info!(http_addr = %config.http_addr, "listening");
    sre_gateway::run(state, http_metrics, listener, shutdown_signal()).await.map_err(|e| e.to_string())
}
