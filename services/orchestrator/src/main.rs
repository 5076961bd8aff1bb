use std::process::ExitCode;
use std::time::Duration;

use sre_orchestrator::Config;
use sre_service_kit::config::{Command, parse_or_exit};
use sre_service_kit::{probe, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    let config: Config = parse_or_exit();
    if config.command == Some(Command::HealthProbe) {
        return probe::run(config.http_addr);
    }
    if let Err(err) = config.check() {
        eprintln!("sre-orchestrator: configuration error: {err}");
        return ExitCode::from(2);
    }
    let telemetry = match sre_telemetry::init(sre_telemetry::Config::from_env("orchestrator")) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("sre-orchestrator: telemetry: {err}");
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
