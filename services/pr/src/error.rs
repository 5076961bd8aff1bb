//! What the pr service refuses or fails at, and its one mapping into a gRPC status. Transient failures
//! (GitHub rate limits and outages, a branch that moved while pushing, a lock held too long) map to codes
//! the orchestrator retries: RESOURCE_EXHAUSTED, UNAVAILABLE, ABORTED.

use sre_github::GithubError;
use sre_gitwork::{CacheError, LockError};

#[derive(Debug, thiserror::Error)]
pub enum PrError {
    #[error(transparent)]
    Request(#[from] sre_service_kit::RequestError),
    #[error(transparent)]
    Git(#[from] sre_gitwork::GitError),
    #[error("diff is empty: there is nothing to propose")]
    EmptyDiff,
    #[error("context.run_key is required (one pull request per failure key)")]
    NoRunKey,
    #[error("context.head_sha {0:?} is not a full commit id (40 or 64 hex characters)")]
    InvalidHeadSha(String),
    #[error("base_branch {0:?} is not a valid branch name")]
    InvalidBase(String),
    #[error("base branch {0:?} is the agent's own branch: a pull request needs another base")]
    BaseIsAgentBranch(String),
    #[error("base branch {0:?} does not exist in the repository")]
    MissingBase(String),
    #[error("failure.installation_id is required with GitHub App credentials (the installation that reported it)")]
    NoInstallation,
    #[error("the diff does not apply to {sha}: {message}")]
    DoesNotApply { sha: String, message: String },
    #[error("the diff changes {0}: the agent never writes under .github/")]
    ProtectedPath(String),
    #[error("could not commit the diff (does it change anything?): {0}")]
    Commit(String),
    #[error("{0}")]
    BranchConflict(String),
    #[error("branch {0} changed while the fix was pushed; try again")]
    BranchMoved(String),
    #[error("push of {branch} refused: {message}")]
    PushRejected { branch: String, message: String },
    #[error("no commits between {base} and {branch}: {base} already holds this change")]
    NoCommitsBetween { base: String, branch: String },
    #[error("repository {0} is archived: no pull requests")]
    Archived(String),
    #[error("pull request record unreadable: {0}")]
    RecordUnreadable(String),
    #[error("the branch was pushed but the pull request could not be recorded: {0}")]
    RecordWrite(String),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Github(#[from] GithubError),
    #[error("configuration: {0}")]
    Config(String),
}

fn github_status(err: &GithubError) -> tonic::Status {
    use tonic::Status;
    let message = err.to_string();
    match err {
        GithubError::NotAccessible { .. } => Status::permission_denied(message),
        GithubError::Unauthorized { .. } => Status::unauthenticated(message),
        GithubError::RateLimited { .. } | GithubError::SecondaryRateLimited { .. } => {
            Status::resource_exhausted(message)
        }
        GithubError::Server { .. } | GithubError::Transport { .. } => Status::unavailable(message),
        GithubError::Validation { .. } | GithubError::NotFound { .. } => Status::failed_precondition(message),
        GithubError::InvalidInput(_) => Status::invalid_argument(message),
        GithubError::Config(_) | GithubError::Api { .. } | GithubError::Decode { .. } => Status::internal(message),
    }
}

impl From<PrError> for tonic::Status {
    fn from(err: PrError) -> Self {
        use tonic::Status;
        match err {
            PrError::Request(e) => e.into(),
            PrError::Git(e) => sre_service_kit::git_status(e),
            PrError::Cache(CacheError::Git(e)) => sre_service_kit::git_status(e),
            PrError::Github(e) => {
                tracing::warn!(error = %e, "github call failed");
                github_status(&e)
            }
            PrError::EmptyDiff
            | PrError::NoRunKey
            | PrError::InvalidHeadSha(_)
            | PrError::InvalidBase(_)
            | PrError::BaseIsAgentBranch(_)
            | PrError::NoInstallation => Status::invalid_argument(err.to_string()),
            PrError::MissingBase(_)
            | PrError::DoesNotApply { .. }
            | PrError::ProtectedPath(_)
            | PrError::Commit(_)
            | PrError::PushRejected { .. }
            | PrError::NoCommitsBetween { .. }
            | PrError::Archived(_) => Status::failed_precondition(err.to_string()),
            PrError::Cache(
                CacheError::ShaNotFound { .. } | CacheError::NotManaged(_) | CacheError::InvalidBranch(_),
            ) => Status::failed_precondition(err.to_string()),
            PrError::BranchConflict(_) => Status::already_exists(err.to_string()),
            PrError::BranchMoved(_) => Status::aborted(err.to_string()),
            PrError::Lock(LockError::Timeout { .. })
            | PrError::Cache(CacheError::Lock(LockError::Timeout { .. }) | CacheError::Busy(_)) => {
                Status::unavailable(err.to_string())
            }
            PrError::RecordUnreadable(_) => Status::data_loss(err.to_string()),
            PrError::RecordWrite(_)
            | PrError::Lock(LockError::Io { .. })
            | PrError::Cache(
                CacheError::Lock(LockError::Io { .. }) | CacheError::Io { .. } | CacheError::InvalidRemote(_),
            )
            | PrError::Config(_) => Status::internal(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sre_github::Endpoint;
    use tonic::Code;

    use super::*;

    #[test]
    fn transient_failures_get_codes_the_orchestrator_retries() {
        let code = |e: PrError| tonic::Status::from(e).code();
        let limited =
            GithubError::SecondaryRateLimited { endpoint: Endpoint::Pulls, retry_after: Duration::from_secs(9) };
        assert_eq!(code(limited.into()), Code::ResourceExhausted);
        assert_eq!(code(GithubError::Server { endpoint: Endpoint::Pulls, status: 502 }.into()), Code::Unavailable);
        assert_eq!(code(PrError::BranchMoved("b".into())), Code::Aborted);
        let timeout = LockError::Timeout { path: "p".into(), waited: Duration::from_secs(1) };
        assert_eq!(code(PrError::Lock(timeout)), Code::Unavailable);
        let denied = GithubError::NotAccessible { repo: "o/r".into(), status: 404, message: "Not Found".into() };
        let status = tonic::Status::from(PrError::Github(denied));
        assert_eq!(status.code(), Code::PermissionDenied);
        assert!(status.message().contains("o/r is not accessible"), "{}", status.message());
        let missing = CacheError::ShaNotFound { repo: "o/r".into(), sha: "a".repeat(40) };
        assert_eq!(code(missing.into()), Code::FailedPrecondition);
        let none = PrError::NoCommitsBetween { base: "main".into(), branch: "sre-agent/lint/x".into() };
        assert_eq!(code(none), Code::FailedPrecondition);
    }
}
