//! The `sre.v1.PullRequests` gRPC edge and its local git backend.

use std::path::{Path, PathBuf};

use sre_domain::PrLabel;
use sre_gitwork::{Repo, git};
use sre_proto::pull_requests_server::{PullRequests, PullRequestsServer};
use sre_proto::{CreatePullRequestRequest, CreatePullRequestResponse, PrAction};
use sre_service_kit::grpc::Built;
use sre_service_kit::require_context;
use sre_telemetry::{Emit, SharedRegistry};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::config::Config;
use crate::error::PrError;
use crate::events::{PrCreated, PrMetrics};
use crate::store::{self, PullRecord};

/// Longest title and body stored.
const MAX_TITLE_BYTES: usize = 1024;
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The identity of the commits the local backend makes.
const COMMITTER: [&str; 6] =
    ["-c", "user.name=sre-agent", "-c", "user.email=sre-agent@localhost", "-c", "commit.gpgsign=false"];

async fn git_out(dir: &Path, args: &[&str]) -> Result<String, PrError> {
    let out = git(dir, args, None).await?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// The commit `rev` names, or `None` when it does not exist.
async fn rev(dir: &Path, rev: &str) -> Option<String> {
    git(dir, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")], None)
        .await
        .ok()
        .map(|out| String::from_utf8_lossy(&out).trim().to_owned())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub struct PullRequestService {
    repos_dir: PathBuf,
    metrics: PrMetrics,
    /// Serializes PR creation: one pulls.json read-modify-write at a time.
    lock: Mutex<()>,
}

impl PullRequestService {
    pub fn new(repos_dir: PathBuf, metrics: PrMetrics) -> Self {
        Self { repos_dir, metrics, lock: Mutex::new(()) }
    }

    fn response(repo_path: &Path, pr: &PullRecord, action: PrAction) -> CreatePullRequestResponse {
        CreatePullRequestResponse {
            number: pr.number,
            branch: pr.branch.clone(),
            url: format!("file://{}#{}", repo_path.display(), pr.branch),
            label: pr.label.clone(),
            commit_sha: pr.commit_sha.clone(),
            backend: "local".to_owned(),
            action: action.into(),
            refused_reason: String::new(),
            draft: false,
        }
    }

    /// The base branch: as asked (it must exist), or the repository's current branch, or "main".
    async fn base_branch(repo: &Path, asked: &str) -> Result<String, PrError> {
        let base = if asked.is_empty() {
            git_out(repo, &["symbolic-ref", "--short", "-q", "HEAD"]).await.unwrap_or_else(|_| "main".to_owned())
        } else {
            asked.to_owned()
        };
        if git(repo, &["check-ref-format", "--branch", &base], None).await.is_err() {
            return Err(PrError::InvalidBase(base));
        }
        if rev(repo, &format!("refs/heads/{base}")).await.is_none() {
            return Err(PrError::MissingBase(base));
        }
        Ok(base)
    }

    /// Applies the diff on `head_sha` in a worktree and commits it; returns the commit.
    async fn commit(&self, repo: &Repo, head_sha: &str, diff: &str, message: &str) -> Result<String, PrError> {
        let wt = repo.worktree(head_sha).await?;
        let result = async {
            wt.apply(diff).await.map_err(|e| {
                tracing::warn!(error = %e, "diff does not apply");
                PrError::DoesNotApply { sha: head_sha.to_owned(), message: e.to_string() }
            })?;
            git(wt.path(), &["add", "-A"], None).await?;
            let mut args: Vec<&str> = COMMITTER.to_vec();
            args.extend(["commit", "--no-verify", "--quiet", "-F", "-"]);
            git(wt.path(), &args, Some(message.as_bytes())).await.map_err(|e| {
                tracing::warn!(error = %e, "commit failed");
                PrError::Commit(e.to_string())
            })?;
            git_out(wt.path(), &["rev-parse", "HEAD"]).await
        }
        .await;
        wt.remove().await;
        result
    }

    /// Points `branch` at `commit`, creating it. A branch that already exists is reused only when it holds
    /// the same change on the same parent (a retry after a crash between branching and recording).
    async fn create_branch(repo: &Path, branch: &str, commit: &str, head_sha: &str) -> Result<String, PrError> {
        let full = format!("refs/heads/{branch}");
        if let Some(existing) = rev(repo, &full).await {
            let existing_tree = git_out(repo, &["rev-parse", &format!("{existing}^{{tree}}")]).await.ok();
            let new_tree = git_out(repo, &["rev-parse", &format!("{commit}^{{tree}}")]).await.ok();
            let same_tree = existing_tree.is_some() && existing_tree == new_tree;
            let same_parent = rev(repo, &format!("{existing}^")).await.as_deref() == Some(head_sha);
            if same_tree && same_parent {
                tracing::info!(branch, "branch already holds this change; reusing it");
                return Ok(existing);
            }
            tracing::warn!(branch, "branch already exists with another commit");
            return Err(PrError::BranchConflict(format!(
                "branch {branch} already exists at {existing} with a different change"
            )));
        }
        // The empty old value makes the update fail if the branch appeared meanwhile.
        git(repo, &["update-ref", "-m", "sre-agent: pull request branch", &full, commit, ""], None)
            .await
            .map_err(|e| PrError::BranchConflict(format!("branch {branch} could not be created: {e}")))?;
        Ok(commit.to_owned())
    }
}

#[tonic::async_trait]
impl PullRequests for PullRequestService {
    async fn create_pull_request(
        &self,
        request: Request<CreatePullRequestRequest>,
    ) -> Result<Response<CreatePullRequestResponse>, Status> {
        Ok(Response::new(self.create(request.into_inner()).await?))
    }
}

impl PullRequestService {
    async fn create(&self, req: CreatePullRequestRequest) -> Result<CreatePullRequestResponse, PrError> {
        let ctx = require_context(req.context.as_ref())?;
        let label = store::normalize_label(&req.label);
        tracing::Span::current().record("pr_label", label.as_str());
        if label == PrLabel::Unknown && !req.label.is_empty() {
            tracing::warn!("label is neither safe nor needs-review; stored as unknown");
        }
        if req.diff.trim().is_empty() {
            tracing::warn!("empty diff; no pull request");
            return Err(PrError::EmptyDiff);
        }
        sre_service_kit::check_diff_size(&req.diff)?;
        if ctx.run_id.is_empty() {
            return Err(PrError::NoRunId);
        }
        let branch = store::branch_name(&ctx.run_id).ok_or(PrError::UnusableRunId)?;
        let repo = Repo::open(&self.repos_dir, &ctx.repo)?;
        let repo_path = std::fs::canonicalize(repo.path()).unwrap_or_else(|_| repo.path().to_owned());
        let git_dir = PathBuf::from(git_out(&repo_path, &["rev-parse", "--absolute-git-dir"]).await?);
        let pulls_path = store::pulls_path(&git_dir);

        let _guard = self.lock.lock().await;
        let mut pulls = store::load(&pulls_path).await.map_err(|e| {
            tracing::error!(error = %e, "pull request record unreadable");
            PrError::RecordUnreadable(e.to_string())
        })?;
        if let Some(existing) = pulls.by_run_id(&ctx.run_id) {
            tracing::info!(number = existing.number, branch = %existing.branch, "pull request already exists for this run");
            tracing::Span::current().record("pr_label", existing.label.as_str());
            return Ok(Self::response(&repo_path, existing, PrAction::Unchanged));
        }

        if let Some(other) = pulls.pulls.iter().find(|p| p.branch == branch) {
            tracing::warn!(number = other.number, branch = %branch, "branch belongs to another run");
            return Err(PrError::BranchConflict(format!(
                "branch {branch} already belongs to pull request #{} of another run (run_id prefix collision)",
                other.number
            )));
        }
        let head_sha = repo.resolve(&ctx.head_sha).await?;
        let base = Self::base_branch(&repo_path, &req.base_branch).await?;
        let title = truncate(&req.title, MAX_TITLE_BYTES);
        let body = truncate(&req.body, MAX_BODY_BYTES);
        let message = store::commit_message(&title, &body);
        let commit = self.commit(&repo, &head_sha, &req.diff, &message).await?;
        let commit = Self::create_branch(&repo_path, &branch, &commit, &head_sha).await?;

        let record = PullRecord {
            number: pulls.next_number(),
            run_id: ctx.run_id.clone(),
            branch,
            base,
            title,
            body,
            label: label.as_str().to_owned(),
            commit_sha: commit,
            head_sha,
            created_at: now_secs(),
        };
        let resp = Self::response(&repo_path, &record, PrAction::Created);
        pulls.pulls.push(record);
        store::save(&pulls_path, &pulls).await.map_err(|e| {
            tracing::error!(error = %e, "could not record the pull request");
            PrError::RecordWrite(e.to_string())
        })?;
        self.metrics.emit(PrCreated {
            label,
            number: resp.number,
            branch: &resp.branch,
            commit_sha: &resp.commit_sha,
            backend: "local",
        });
        Ok(resp)
    }
}

/// Builds the service from its configuration.
pub fn build(config: &Config, registry: &SharedRegistry) -> Result<Built, PrError> {
    let crate::config::Backend::Local = config.backend;
    let service = PullRequestService::new(config.data.repos_dir(), PrMetrics::register(registry));
    Ok((tonic::service::Routes::new(PullRequestsServer::new(service)), Box::pin(sre_service_kit::git_ready())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }
}
