use sre_service_kit::grpc::{ServiceSpec, run_main};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let spec = ServiceSpec {
        process: "policy",
        grpc_service: "sre.v1.Policy",
        default_grpc_addr: "127.0.0.1:50052",
        default_http_addr: "127.0.0.1:9102",
    };
    run_main(spec, sre_policy::build).await
}
