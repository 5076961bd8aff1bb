//! The `sre.v1.Policy` gRPC edge: runs the checks, emits violations and scores, answers the decision.

use sre_domain::{ViolationType, decision_label};
use sre_proto::policy_server::{Policy, PolicyServer};
use sre_proto::{CheckPatchRequest, CheckPlanRequest, PolicyDecision};
use sre_service_kit::grpc::Built;
use sre_service_kit::{check_diff_size, record_run_context};
use sre_telemetry::{Emit, SharedRegistry};
use tonic::{Request, Response, Status};

use crate::config::Config;
use crate::error::PolicyError;
use crate::events::{PatchScored, PolicyMetrics, ViolationFound};
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
            // Rules build every code from a ViolationType, so the family always parses.
            let r#type = ViolationType::of_code(&v.code).unwrap_or(ViolationType::Diff);
            self.metrics.emit(ViolationFound { r#type, code: &v.code, path: &v.path, blocking: v.blocking });
        }
        let label = decision_label(decision);
        tracing::Span::current().record("pr_label", label.as_str());
        tracing::info!(
            check = what,
            allowed = decision.allowed,
            danger_score = decision.danger_score,
            pr_label = label.as_str(),
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
        let plan = req.plan.ok_or(PolicyError::MissingPlan)?;
        let decision = rules::check_plan(&plan);
        self.report("plan", &decision);
        Ok(Response::new(decision))
    }

    async fn check_patch(&self, request: Request<CheckPatchRequest>) -> Result<Response<PolicyDecision>, Status> {
        let req = request.into_inner();
        if let Some(ctx) = &req.context {
            record_run_context(ctx);
        }
        check_diff_size(&req.diff).map_err(PolicyError::from)?;
        let decision = rules::check_patch(&req.diff);
        self.metrics.emit(PatchScored {
            danger_score: decision.danger_score,
            label: decision_label(&decision),
            allowed: decision.allowed,
            violations: decision.violations.len(),
        });
        self.report("patch", &decision);
        Ok(Response::new(decision))
    }
}

/// Builds the service; it has no dependencies, so it is ready at once.
pub fn build(_config: &Config, registry: &SharedRegistry) -> Result<Built, PolicyError> {
    let service = PolicyService::new(PolicyMetrics::register(registry));
    Ok((
        tonic::service::Routes::new(
            PolicyServer::new(service).max_decoding_message_size(sre_service_kit::MAX_GRPC_MESSAGE_BYTES),
        ),
        Box::pin(async {}),
    ))
}
