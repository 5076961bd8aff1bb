use sre_service_kit::grpc::{ServiceSpec, run_main};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let spec = ServiceSpec {
        process: "pr",
        grpc_service: "sre.v1.PullRequests",
        default_grpc_addr: "127.0.0.1:50055",
        default_http_addr: "127.0.0.1:9105",
    };
    run_main(spec, sre_pr::build).await
}
