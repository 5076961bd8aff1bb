use sre_service_kit::grpc::{ServiceSpec, run_main};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let spec = ServiceSpec {
        process: "planner",
        grpc_service: "sre.v1.Planner",
        default_grpc_addr: "127.0.0.1:50051",
        default_http_addr: "127.0.0.1:9101",
    };
    run_main(spec, sre_planner::build).await
}
