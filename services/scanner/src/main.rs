use sre_service_kit::grpc::{ServiceSpec, run_main};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let spec = ServiceSpec {
        process: "scanner",
        grpc_service: "sre.v1.Scanner",
        default_grpc_addr: "127.0.0.1:50053",
        default_http_addr: "127.0.0.1:9103",
    };
    run_main(spec, sre_scanner::build).await
}
