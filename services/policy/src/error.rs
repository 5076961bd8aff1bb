//! What the policy service refuses, and its one mapping into a gRPC status.

/// A request the policy service cannot judge.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("plan is required")]
    MissingPlan,
    #[error(transparent)]
    Request(#[from] sre_service_kit::RequestError),
}

impl From<PolicyError> for tonic::Status {
    fn from(err: PolicyError) -> Self {
        match err {
            PolicyError::MissingPlan => tonic::Status::invalid_argument(err.to_string()),
            PolicyError::Request(e) => e.into(),
        }
    }
}
