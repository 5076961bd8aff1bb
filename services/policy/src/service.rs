//! The `sre.v1.Policy` gRPC edge: runs the checks, counts violations and scores, logs the decision.

use sre_proto::policy_server::{Policy, PolicyServer};
use sre_proto::{CheckPatchRequest, CheckPlanRequest, PolicyDecision};
use sre_service_kit::grpc::Built;
use sre_service_kit::record_run_context;
use sre_telemetry::SharedRegistry;
use tonic::{Request, Response, Status};

use crate::metrics::PolicyMetrics;
use crate::rules;

pub struct PolicyService {
    metrics: PolicyMetrics,
}

impl PolicyService {
    pub fn new(metrics: PolicyMetrics) -> Self {
        Self { metrics }
    }

    fn report(&self, what: &str, decision: &PolicyDecision) {
        for v in &decision.violations {
            self.metrics.violation(&v.code);
            tracing::info!(code = %v.code, path = %v.path, blocking = v.blocking, "policy violation");
        }
        let span = tracing::Span::current();
        span.record("pr_label", decision.label.as_str());
        tracing::info!(
            check = what,
            allowed = decision.allowed,
            danger_score = decision.danger_score,
            label = %decision.label,
            violations = decision.violations.len(),
            "policy decision"
        );
    }
}

#[tonic::async_trait]
impl Policy for PolicyService {
    async fn check_plan(&self, request: Request<CheckPlanRequest>) -> Result<Response<PolicyDecision>, Status> {
        let req = request.into_inner();
        if let Some(ctx) = &req.context {
            record_run_context(ctx);
        }
        let plan = req.plan.ok_or_else(|| Status::invalid_argument("plan is required"))?;
        let decision = rules::check_plan(&plan);
        self.report("plan", &decision);
        Ok(Response::new(decision))
    }

    async fn check_patch(&self, request: Request<CheckPatchRequest>) -> Result<Response<PolicyDecision>, Status> {
        let req = request.into_inner();
        if let Some(ctx) = &req.context {
            record_run_context(ctx);
        }
        sre_service_kit::check_diff_size(&req.diff)?;
        let decision = rules::check_patch(&req.diff);
        self.metrics.danger_score(decision.danger_score);
        self.report("patch", &decision);
        Ok(Response::new(decision))
    }
}

/// Builds the service; it has no dependencies, so it is ready at once.
pub fn build(registry: &SharedRegistry) -> Result<Built, String> {
    let service = PolicyService::new(PolicyMetrics::register(registry));
    Ok((tonic::service::Routes::new(PolicyServer::new(service)), Box::pin(async {})))
}
