use sre_service_kit::config::parse_or_exit;
use sre_service_kit::grpc::{ServiceSpec, run_main};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config: sre_planner::Config = parse_or_exit();
    let spec = ServiceSpec {
        process: "planner",
        grpc_service: "sre.v1.Planner",
        default_grpc_addr: ([127, 0, 0, 1], 50051).into(),
        default_http_addr: ([127, 0, 0, 1], 9101).into(),
    };
    run_main(spec, &config.serve, config.command, |registry| sre_planner::build(&config, registry)).await
}
