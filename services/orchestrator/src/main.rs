use std::process::ExitCode;
use std::time::Duration;

use sre_orchestrator::Config;
use sre_service_kit::{probe, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(err) => {
            eprintln!("orchestrator: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(code) = probe::run_if_requested(config.http_addr) {
        return code;
    }
    let telemetry = match sre_telemetry::init(sre_telemetry::Config::from_env("orchestrator")) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("orchestrator: telemetry: {err}");
            return ExitCode::from(2);
        }
    };
    let code = match tokio::net::TcpListener::bind(config.http_addr).await {
        Ok(listener) => {
            tracing::info!(http_addr = %config.http_addr, "listening");
            match sre_orchestrator::run(config, telemetry.registry(), listener, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!(error = %err, "exiting");
                    ExitCode::FAILURE
                }
            }
        }
        Err(err) => {
            tracing::error!(error = %err, addr = %config.http_addr, "bind failed");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown(Duration::from_secs(5)).await;
    code
}
