//! What the pr service refuses or fails at, and its one mapping into a gRPC status.

#[derive(Debug, thiserror::Error)]
pub enum PrError {
    #[error(transparent)]
    Request(#[from] sre_service_kit::RequestError),
    #[error(transparent)]
    Git(#[from] sre_gitwork::GitError),
    #[error("diff is empty: there is nothing to propose")]
    EmptyDiff,
    #[error("context.run_id is required (pull requests are idempotent by run)")]
    NoRunId,
    #[error("context.run_id has no [a-z0-9-] characters to name a branch with")]
    UnusableRunId,
    #[error("base_branch {0:?} is not a valid branch name")]
    InvalidBase(String),
    #[error("base branch {0:?} does not exist in the repository")]
    MissingBase(String),
    #[error("the diff does not apply to {sha}: {message}")]
    DoesNotApply { sha: String, message: String },
    #[error("could not commit the diff (does it change anything?): {0}")]
    Commit(String),
    #[error("{0}")]
    BranchConflict(String),
    #[error("pull request record unreadable: {0}")]
    RecordUnreadable(String),
    #[error("the branch was created but the pull request could not be recorded: {0}")]
    RecordWrite(String),
}

impl From<PrError> for tonic::Status {
    fn from(err: PrError) -> Self {
        use tonic::Status;
        match err {
            PrError::Request(e) => e.into(),
            PrError::Git(e) => sre_service_kit::git_status(e),
            PrError::EmptyDiff | PrError::NoRunId | PrError::UnusableRunId | PrError::InvalidBase(_) => {
                Status::invalid_argument(err.to_string())
            }
            PrError::MissingBase(_) | PrError::DoesNotApply { .. } | PrError::Commit(_) => {
                Status::failed_precondition(err.to_string())
            }
            PrError::BranchConflict(_) => Status::already_exists(err.to_string()),
            PrError::RecordUnreadable(_) => Status::data_loss(err.to_string()),
            PrError::RecordWrite(_) => Status::internal(err.to_string()),
        }
    }
}
