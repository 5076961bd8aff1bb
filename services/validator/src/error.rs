//! What the validator refuses or fails at, and its one mapping into a gRPC status. (A patch that does not
//! apply, a step that cannot be reproduced or is refused, a fix that does not fix: those are verdicts in the
//! response, not errors.)

#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    #[error(transparent)]
    Request(#[from] sre_service_kit::RequestError),
    #[error(transparent)]
    Git(#[from] sre_gitwork::GitError),
    #[error(transparent)]
    Sandbox(#[from] sre_sandbox::SandboxError),
    #[error("reading the worktree: {0}")]
    Worktree(String),
    #[error("validator is shutting down")]
    ShuttingDown,
}

impl From<ValidatorError> for tonic::Status {
    fn from(err: ValidatorError) -> Self {
        use sre_sandbox::SandboxError;
        use tonic::Status;
        match err {
            ValidatorError::Request(e) => e.into(),
            ValidatorError::Git(e) => sre_service_kit::git_status(e),
            ValidatorError::ShuttingDown => Status::unavailable(err.to_string()),
            ValidatorError::Sandbox(SandboxError::BwrapMissing | SandboxError::ProbeFailed(_)) => {
                Status::unavailable(err.to_string())
            }
            ValidatorError::Sandbox(_) | ValidatorError::Worktree(_) => {
                tracing::error!(error = %err, "validation could not run");
                Status::internal(err.to_string())
            }
        }
    }
}
