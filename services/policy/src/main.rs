use sre_service_kit::config::parse_or_exit;
use sre_service_kit::grpc::{ServiceSpec, run_main};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config: sre_policy::Config = parse_or_exit();
    let spec = ServiceSpec {
        process: "policy",
        grpc_service: "sre.v1.Policy",
        default_grpc_addr: ([127, 0, 0, 1], 50052).into(),
        default_http_addr: ([127, 0, 0, 1], 9102).into(),
    };
    run_main(spec, &config.serve, config.command, |registry| sre_policy::build(&config, registry)).await
}
