//! gRPC clients of the five services, each a lazy channel behind the telemetry client layer (client span,
//! W3C injection, client metrics). Nothing connects until the first call, so the orchestrator starts while
//! a service is still coming up.

use std::time::Duration;

use sre_proto::planner_client::PlannerClient;
use sre_proto::policy_client::PolicyClient;
use sre_proto::pull_requests_client::PullRequestsClient;
use sre_proto::scanner_client::ScannerClient;
use sre_proto::validator_client::ValidatorClient;
use sre_telemetry::grpc::{GrpcClient, GrpcClientLayer, GrpcMetrics};
use tonic::transport::{Channel, Endpoint};
use tower::Layer;

use crate::config::Config;

pub type Traced = GrpcClient<Channel>;

#[derive(Clone)]
pub struct Clients {
    pub planner: PlannerClient<Traced>,
    pub policy: PolicyClient<Traced>,
    pub scanner: ScannerClient<Traced>,
    pub validator: ValidatorClient<Traced>,
    pub pr: PullRequestsClient<Traced>,
}

/// A lazily connecting, traced channel to `url` with a per-call `timeout`.
fn channel(url: &str, timeout: Duration, metrics: &GrpcMetrics) -> Result<Traced, String> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("invalid service URL {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .tcp_nodelay(true);
    let authority = endpoint.uri().authority().map(|a| a.to_string()).unwrap_or_default();
    Ok(GrpcClientLayer::new(authority, metrics.clone()).layer(endpoint.connect_lazy()))
}

impl Clients {
    pub fn new(config: &Config, metrics: &GrpcMetrics) -> Result<Self, String> {
        // The validator runs a repository's tests: give it the test timeout plus room to set up.
        let validate = config.validate_timeout() + Duration::from_secs(60);
        // A patch of up to MAX_DIFF_BYTES comes back from the planner: the same decode limit as the servers.
        const MAX: usize = sre_service_kit::MAX_GRPC_MESSAGE_BYTES;
        Ok(Self {
            planner: PlannerClient::new(channel(&config.planner_url, Duration::from_secs(120), metrics)?)
                .max_decoding_message_size(MAX),
            policy: PolicyClient::new(channel(&config.policy_url, Duration::from_secs(30), metrics)?)
                .max_decoding_message_size(MAX),
            scanner: ScannerClient::new(channel(&config.scanner_url, Duration::from_secs(600), metrics)?)
                .max_decoding_message_size(MAX),
            validator: ValidatorClient::new(channel(&config.validator_url, validate, metrics)?)
                .max_decoding_message_size(MAX),
            pr: PullRequestsClient::new(channel(&config.pr_url, Duration::from_secs(120), metrics)?)
                .max_decoding_message_size(MAX),
        })
    }
}
