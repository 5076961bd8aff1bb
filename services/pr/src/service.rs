//! The `sre.v1.PullRequests` gRPC edge and its local git backend.

use std::path::{Path, PathBuf};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sre_gitwork::{Repo, git};
use sre_proto::pull_requests_server::{PullRequests, PullRequestsServer};
use sre_proto::{CreatePullRequestRequest, CreatePullRequestResponse};
use sre_service_kit::grpc::Built;
use sre_service_kit::{config, git_status, require_context};
use sre_telemetry::SharedRegistry;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::store::{self, PullRecord};

/// Longest title and body stored.
const MAX_TITLE_BYTES: usize = 1024;
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The identity of the commits the local backend makes.
const COMMITTER: [&str; 6] =
    ["-c", "user.name=sre-agent", "-c", "user.email=sre-agent@localhost", "-c", "commit.gpgsign=false"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LabelLabels {
    label: String,
}

/// `sre_agent_pr_created_total{label}`, label ∈ {safe, needs-review, unknown}.
#[derive(Clone)]
pub struct PrMetrics {
    created: Family<LabelLabels, Counter>,
}

impl PrMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self { created: Family::default() };
        registry.register("sre_agent_pr_created", "Pull requests opened, by label", this.created.clone());
        this
    }

    /// `label` is already normalized by [`store::normalize_label`].
    fn created(&self, label: &'static str) {
        self.created.get_or_create(&LabelLabels { label: label.to_owned() }).inc();
    }
}

/// `SRE_PR_BACKEND`: only `local` (the default) exists.
pub fn check_backend(value: Option<&str>) -> Result<(), String> {
    match value {
        None | Some("local") => Ok(()),
        Some(other) => Err(format!("SRE_PR_BACKEND={other} is not available yet; use local")),
    }
}

async fn git_out(dir: &Path, args: &[&str]) -> Result<String, Status> {
    let out = git(dir, args, None).await.map_err(git_status)?;
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

    fn response(repo_path: &Path, pr: &PullRecord) -> CreatePullRequestResponse {
        CreatePullRequestResponse {
            number: pr.number,
            branch: pr.branch.clone(),
            url: format!("file://{}#{}", repo_path.display(), pr.branch),
            label: pr.label.clone(),
            commit_sha: pr.commit_sha.clone(),
            backend: "local".to_owned(),
        }
    }

    /// The base branch: as asked (it must exist), or the repository's current branch, or "main".
    async fn base_branch(repo: &Path, asked: &str) -> Result<String, Status> {
        let base = if asked.is_empty() {
            git_out(repo, &["symbolic-ref", "--short", "-q", "HEAD"]).await.unwrap_or_else(|_| "main".to_owned())
        } else {
            asked.to_owned()
        };
        if git(repo, &["check-ref-format", "--branch", &base], None).await.is_err() {
            return Err(Status::invalid_argument(format!("base_branch {base:?} is not a valid branch name")));
        }
        if rev(repo, &format!("refs/heads/{base}")).await.is_none() {
            return Err(Status::failed_precondition(format!("base branch {base:?} does not exist in the repository")));
        }
        Ok(base)
    }

    /// Applies the diff on `head_sha` in a worktree and commits it; returns the commit.
    async fn commit(&self, repo: &Repo, head_sha: &str, diff: &str, message: &str) -> Result<String, Status> {
        let wt = repo.worktree(head_sha).await.map_err(git_status)?;
        let result = async {
            wt.apply(diff).await.map_err(|e| {
                tracing::warn!(error = %e, "diff does not apply");
                Status::failed_precondition(format!("the diff does not apply to {head_sha}: {e}"))
            })?;
            git(wt.path(), &["add", "-A"], None).await.map_err(git_status)?;
            let mut args: Vec<&str> = COMMITTER.to_vec();
            args.extend(["commit", "--no-verify", "--quiet", "-F", "-"]);
            git(wt.path(), &args, Some(message.as_bytes())).await.map_err(|e| {
                tracing::warn!(error = %e, "commit failed");
                Status::failed_precondition(format!("could not commit the diff (does it change anything?): {e}"))
            })?;
            git_out(wt.path(), &["rev-parse", "HEAD"]).await
        }
        .await;
        wt.remove().await;
        result
    }

    /// Points `branch` at `commit`, creating it. A branch that already exists is reused only when it holds
    /// the same change on the same parent (a retry after a crash between branching and recording).
    async fn create_branch(repo: &Path, branch: &str, commit: &str, head_sha: &str) -> Result<String, Status> {
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
            return Err(Status::already_exists(format!(
                "branch {branch} already exists at {existing} with a different change"
            )));
        }
        // The empty old value makes the update fail if the branch appeared meanwhile.
        git(repo, &["update-ref", "-m", "sre-agent: pull request branch", &full, commit, ""], None)
            .await
            .map_err(|e| Status::already_exists(format!("branch {branch} could not be created: {e}")))?;
        Ok(commit.to_owned())
    }
}

#[tonic::async_trait]
impl PullRequests for PullRequestService {
    async fn create_pull_request(
        &self,
        request: Request<CreatePullRequestRequest>,
    ) -> Result<Response<CreatePullRequestResponse>, Status> {
        let req = request.into_inner();
        let ctx = require_context(req.context.as_ref())?;
        let label = store::normalize_label(&req.label);
        tracing::Span::current().record("pr_label", label);
        if label == store::UNKNOWN_LABEL && !req.label.is_empty() {
            tracing::warn!("label is neither safe nor needs-review; stored as unknown");
        }
        if req.diff.trim().is_empty() {
            tracing::warn!("empty diff; no pull request");
            return Err(Status::invalid_argument("diff is empty: there is nothing to propose"));
        }
        sre_service_kit::check_diff_size(&req.diff)?;
        if ctx.run_id.is_empty() {
            return Err(Status::invalid_argument("context.run_id is required (pull requests are idempotent by run)"));
        }
        let branch = store::branch_name(&ctx.run_id).ok_or_else(|| {
            Status::invalid_argument("context.run_id has no [a-z0-9-] characters to name a branch with")
        })?;
        let repo = Repo::open(&self.repos_dir, &ctx.repo).map_err(git_status)?;
        let repo_path = std::fs::canonicalize(repo.path()).unwrap_or_else(|_| repo.path().to_owned());
        let git_dir = PathBuf::from(git_out(&repo_path, &["rev-parse", "--absolute-git-dir"]).await?);
        let pulls_path = store::pulls_path(&git_dir);

        let _guard = self.lock.lock().await;
        let mut pulls = store::load(&pulls_path).await.map_err(|e| {
            tracing::error!(error = %e, "pull request record unreadable");
            Status::data_loss(e.to_string())
        })?;
        if let Some(existing) = pulls.by_run_id(&ctx.run_id) {
            tracing::info!(number = existing.number, branch = %existing.branch, "pull request already exists for this run");
            tracing::Span::current().record("pr_label", existing.label.as_str());
            return Ok(Response::new(Self::response(&repo_path, existing)));
        }

        if let Some(other) = pulls.pulls.iter().find(|p| p.branch == branch) {
            tracing::warn!(number = other.number, branch = %branch, "branch belongs to another run");
            return Err(Status::already_exists(format!(
                "branch {branch} already belongs to pull request #{} of another run (run_id prefix collision)",
                other.number
            )));
        }
        let head_sha = repo.resolve(&ctx.head_sha).await.map_err(git_status)?;
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
            label: label.to_owned(),
            commit_sha: commit,
            head_sha,
            created_at: now_secs(),
        };
        let resp = Self::response(&repo_path, &record);
        pulls.pulls.push(record);
        store::save(&pulls_path, &pulls).await.map_err(|e| {
            tracing::error!(error = %e, "could not record the pull request");
            Status::internal(format!("the branch was created but the pull request could not be recorded: {e}"))
        })?;
        self.metrics.created(label);
        tracing::info!(
            number = resp.number,
            branch = %resp.branch,
            label,
            commit_sha = %resp.commit_sha,
            backend = "local",
            "pull request created"
        );
        Ok(Response::new(resp))
    }
}

/// Builds the service from the environment (`SRE_PR_BACKEND`, `SRE_REPOS_DIR`). Any backend but `local` is
/// a configuration error, so the process exits at start with the reason.
pub fn build(registry: &SharedRegistry) -> Result<Built, String> {
    check_backend(config::var("SRE_PR_BACKEND").as_deref())?;
    let service = PullRequestService::new(config::repos_dir(), PrMetrics::register(registry));
    Ok((tonic::service::Routes::new(PullRequestsServer::new(service)), Box::pin(sre_service_kit::git_ready())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_local_backend_exists() {
        assert!(check_backend(None).is_ok());
        assert!(check_backend(Some("local")).is_ok());
        assert_eq!(check_backend(Some("github")).unwrap_err(), "SRE_PR_BACKEND=github is not available yet; use local");
        assert!(check_backend(Some("gitlab")).is_err());
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }
}
