//! What the validator refuses or fails at, and its one mapping into a gRPC status. (A patch that does not
//! apply, or tests that fail, are verdicts in the response, not errors.)

#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    #[error(transparent)]
    Request(#[from] sre_service_kit::RequestError),
    #[error(transparent)]
    Git(#[from] sre_gitwork::GitError),
    #[error("{0}")]
    SandboxUnavailable(String),
    #[error("no test command detected (looked for {0})")]
    NoTestCommand(&'static str),
    #[error("could not start `{command}` (sandbox {sandbox}): {source}")]
    Spawn { command: String, sandbox: &'static str, source: std::io::Error },
    #[error("reading the worktree: {0}")]
    Worktree(String),
    #[error("validator is shutting down")]
    ShuttingDown,
}

impl From<ValidatorError> for tonic::Status {
    fn from(err: ValidatorError) -> Self {
        use tonic::Status;
        match err {
            ValidatorError::Request(e) => e.into(),
            ValidatorError::Git(e) => sre_service_kit::git_status(e),
            ValidatorError::SandboxUnavailable(_) | ValidatorError::ShuttingDown => {
                Status::unavailable(err.to_string())
            }
            ValidatorError::NoTestCommand(_) => Status::failed_precondition(err.to_string()),
            ValidatorError::Spawn { .. } | ValidatorError::Worktree(_) => Status::internal(err.to_string()),
        }
    }
}
