use sre_service_kit::config::parse_or_exit;
use sre_service_kit::grpc::{ServiceSpec, run_main};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config: sre_validator::Config = parse_or_exit();
    let spec = ServiceSpec {
        process: "validator",
        grpc_service: "sre.v1.Validator",
        default_grpc_addr: ([127, 0, 0, 1], 50054).into(),
        default_http_addr: ([127, 0, 0, 1], 9104).into(),
    };
    run_main(spec, &config.serve, config.command, |registry| sre_validator::build(&config, registry)).await
}
