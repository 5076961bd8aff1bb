//! What the planner refuses or fails at, and its one mapping into a gRPC status.

/// A planner call that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    #[error(transparent)]
    Request(#[from] sre_service_kit::RequestError),
    #[error(transparent)]
    Git(#[from] sre_gitwork::GitError),
    #[error(transparent)]
    Sandbox(#[from] sre_sandbox::SandboxError),
    #[error(transparent)]
    Llm(#[from] sre_llm::LlmError),
    #[error("plan is required")]
    MissingPlan,
    #[error("the log is {0} bytes; the planner reads at most 8 MiB (bound it before sending)")]
    LogTooLarge(usize),
    #[error("unknown plan action {0:?}")]
    UnknownAction(String),
    #[error("plan step {action:?} does not belong to strategy {strategy:?}")]
    MixedPlan { strategy: String, action: String },
    #[error("plan path {0:?} leaves the repository")]
    PathEscapes(String),
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Write { path: String, source: std::io::Error },
}

impl From<PlannerError> for tonic::Status {
    fn from(err: PlannerError) -> Self {
        use sre_sandbox::SandboxError;
        match err {
            PlannerError::Request(e) => e.into(),
            PlannerError::Git(e) => sre_service_kit::git_status(e),
            PlannerError::MissingPlan
            | PlannerError::LogTooLarge(_)
            | PlannerError::UnknownAction(_)
            | PlannerError::MixedPlan { .. }
            | PlannerError::PathEscapes(_) => tonic::Status::invalid_argument(err.to_string()),
            PlannerError::Sandbox(SandboxError::InvalidJob(_)) => tonic::Status::invalid_argument(err.to_string()),
            PlannerError::Sandbox(_) => tonic::Status::internal(err.to_string()),
            // A model server that may answer later (timeouts, 429, 5xx) is a retry; anything else fails the run.
            PlannerError::Llm(e) if e.is_transient() => tonic::Status::unavailable(e.to_string()),
            PlannerError::Llm(e) => tonic::Status::failed_precondition(e.to_string()),
            PlannerError::Read { .. } => tonic::Status::failed_precondition(err.to_string()),
            PlannerError::Write { .. } => tonic::Status::internal(err.to_string()),
        }
    }
}
