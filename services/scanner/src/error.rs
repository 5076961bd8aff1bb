//! What the scanner refuses or fails at, and its one mapping into a gRPC status.

#[derive(Debug, thiserror::Error)]
pub enum ScannerError {
    #[error(transparent)]
    Request(#[from] sre_service_kit::RequestError),
    #[error(transparent)]
    Git(#[from] sre_gitwork::GitError),
    #[error("the diff does not apply to {sha}: {message}")]
    DiffDoesNotApply { sha: String, message: String },
}

impl From<ScannerError> for tonic::Status {
    fn from(err: ScannerError) -> Self {
        match err {
            ScannerError::Request(e) => e.into(),
            ScannerError::Git(e) => sre_service_kit::git_status(e),
            ScannerError::DiffDoesNotApply { .. } => tonic::Status::failed_precondition(err.to_string()),
        }
    }
}
