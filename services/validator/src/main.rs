use sre_service_kit::grpc::{ServiceSpec, run_main};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let spec = ServiceSpec {
        process: "validator",
        grpc_service: "sre.v1.Validator",
        default_grpc_addr: "127.0.0.1:50054",
        default_http_addr: "127.0.0.1:9104",
    };
    run_main(spec, sre_validator::build).await
}
