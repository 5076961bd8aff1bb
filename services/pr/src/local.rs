//! The local backend (no GitHub): the repository at `<repos dir>/<owner>/<name>` (bare or not) is the
//! remote. The fix is committed in a throwaway worktree of it and pushed to it like to any remote
//! ([`crate::publish`]); pull requests are records in `<its git dir>/sre-agent/pulls.json` (number, branch,
//! base, title, body, labels, draft, state), one per run_key, numbered from 1, rewritten atomically under an
//! exclusive flock held for the whole call, so several pr processes share one repository safely.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sre_gitwork::{FileLock, LockMode, Repo, git};

use crate::backend::{Opened, PrBackend, PrRequest};
use crate::error::PrError;
use crate::events::PrOutcome;
use crate::publish::{BranchResult, Change, Identity, Workspace, publish};
use crate::store::{self, PullRecord, PullState};

/// Longest wait for another process's PR call on the same repository.
const RECORD_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// The identity of the local backend's commits.
pub fn local_identity() -> Identity {
    Identity { name: "sre-agent".to_owned(), email: "sre-agent@users.noreply.localhost".to_owned() }
}

pub struct LocalBackend {
    repos_dir: PathBuf,
    identity: Identity,
}

impl LocalBackend {
    pub fn new(repos_dir: PathBuf) -> Self {
        Self { repos_dir, identity: local_identity() }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn out(dir: &Path, args: &[&str]) -> Result<String, PrError> {
    Ok(String::from_utf8_lossy(&git(dir, args, None).await?).trim().to_owned())
}

/// The base: as asked, or the remote's current branch, or `main`; it must exist.
async fn base_branch(repo: &Path, asked: &str) -> Result<String, PrError> {
    let base = if asked.is_empty() {
        out(repo, &["symbolic-ref", "--short", "-q", "HEAD"]).await.unwrap_or_else(|_| "main".to_owned())
    } else {
        asked.to_owned()
    };
    if !store::valid_branch(&base) {
        return Err(PrError::InvalidBase(base));
    }
    let exists = git(repo, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{base}^{{commit}}")], None).await;
    if exists.is_err() {
        return Err(PrError::MissingBase(base));
    }
    Ok(base)
}

/// The git dir of the (canonical) repository `repo` when its layout says it without asking git: `repo/.git`
/// when that is a directory, `repo` itself when it is bare (no `.git`, a `HEAD`, `objects` and `refs`).
/// `None` for anything else (a `.git` file pointing elsewhere): `git rev-parse --absolute-git-dir` decides.
fn plain_git_dir(repo: &Path) -> Option<PathBuf> {
    let dot_git = repo.join(".git");
    match std::fs::symlink_metadata(&dot_git) {
        Ok(meta) if meta.is_dir() => Some(dot_git),
        Ok(_) => None,
        Err(_) => {
            let bare = repo.join("HEAD").is_file() && repo.join("objects").is_dir() && repo.join("refs").is_dir();
            bare.then(|| repo.to_owned())
        }
    }
}

fn url(repo_path: &Path, branch: &str) -> String {
    format!("file://{}#{branch}", repo_path.display())
}

#[tonic::async_trait]
impl PrBackend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn open(&self, req: &PrRequest) -> Result<Opened, PrError> {
        let repo = Repo::open(&self.repos_dir, &req.repo)?;
        let repo_path = std::fs::canonicalize(repo.path()).unwrap_or_else(|_| repo.path().to_owned());
        let git_dir = match plain_git_dir(&repo_path) {
            Some(dir) => dir,
            None => PathBuf::from(out(&repo_path, &["rev-parse", "--absolute-git-dir"]).await?),
        };
        let pulls_path = store::pulls_path(&git_dir);

        let _lock = FileLock::acquire(&store::lock_path(&git_dir), LockMode::Exclusive, RECORD_LOCK_TIMEOUT).await?;
        let mut pulls = store::load(&pulls_path).await.map_err(|e| {
            tracing::error!(error = %e, "pull request record unreadable");
            PrError::RecordUnreadable(e.to_string())
        })?;
        let existing = pulls.by_run_key(&req.run_key).cloned();
        // A run_key keeps the branch it was first given.
        let branch = existing.as_ref().map_or_else(|| req.branch.clone(), |r| r.branch.clone());
        if let Some(other) = pulls.pulls.iter().find(|p| p.branch == branch && p.run_key != req.run_key) {
            tracing::warn!(number = other.number, branch = %branch, "branch belongs to another failure");
            return Err(PrError::BranchConflict(format!(
                "branch {branch} already belongs to pull request #{} of another failure",
                other.number
            )));
        }
        if let Some(closed) = existing.as_ref().filter(|r| r.state == PullState::Closed) {
            return Ok(Opened {
                number: closed.number,
                branch,
                url: url(&repo_path, &closed.branch),
                commit_sha: closed.commit_sha.clone(),
                action: PrOutcome::Refused,
                refused_reason: format!(
                    "pull request #{} for this failure was closed: not reopening or pushing to it",
                    closed.number
                ),
                draft: closed.draft,
            });
        }
        // Both at once; an unknown head_sha is reported first.
        let (head_sha, base) = tokio::join!(repo.resolve(&req.head_sha), async {
            match &existing {
                Some(r) => Ok(r.base.clone()),
                None => base_branch(&repo_path, &req.base).await,
            }
        });
        let (head_sha, base) = (head_sha?, base?);
        if base == branch {
            return Err(PrError::BaseIsAgentBranch(base));
        }

        let ws = Workspace::Local { repo: &repo, url: repo_path.to_string_lossy().into_owned() };
        let change = Change {
            head_sha: &head_sha,
            base: &base,
            diff: &req.diff,
            message: &req.message,
            branch: &branch,
            identity: &self.identity,
        };
        let result = publish(&ws, &change).await?;
        if let BranchResult::Refused { reason, tip, foreign_commits } = &result {
            tracing::warn!(branch = %branch, foreign_commits, "someone else's commits are on the branch");
            return Ok(Opened {
                number: existing.as_ref().map_or(0, |r| r.number),
                url: existing.as_ref().map_or_else(String::new, |r| url(&repo_path, &r.branch)),
                branch,
                commit_sha: tip.clone(),
                action: PrOutcome::Refused,
                refused_reason: reason.clone(),
                draft: existing.as_ref().is_some_and(|r| r.draft),
            });
        }

        let labels = store::pull_labels(req.label);
        let now = now_secs();
        let (record, action) = match existing {
            Some(mut r) => {
                let changed = result.pushed()
                    || r.title != req.title
                    || r.body != req.body
                    || r.labels != labels
                    || r.label != req.label.as_str();
                r.title.clone_from(&req.title);
                r.body.clone_from(&req.body);
                r.label = req.label.as_str().to_owned();
                r.labels = labels;
                r.commit_sha = result.tip().to_owned();
                r.head_sha.clone_from(&head_sha);
                r.run_id.clone_from(&req.run_id);
                if changed {
                    r.updated_at = now;
                }
                (r, if changed { PrOutcome::Updated } else { PrOutcome::Unchanged })
            }
            None => (
                PullRecord {
                    number: pulls.next_number(),
                    run_key: req.run_key.clone(),
                    run_id: req.run_id.clone(),
                    branch: branch.clone(),
                    base,
                    title: req.title.clone(),
                    body: req.body.clone(),
                    label: req.label.as_str().to_owned(),
                    labels,
                    draft: req.draft,
                    state: PullState::Open,
                    commit_sha: result.tip().to_owned(),
                    head_sha,
                    created_at: now,
                    updated_at: now,
                },
                PrOutcome::Created,
            ),
        };
        let opened = Opened {
            number: record.number,
            url: url(&repo_path, &record.branch),
            branch: record.branch.clone(),
            commit_sha: record.commit_sha.clone(),
            action,
            refused_reason: String::new(),
            draft: record.draft,
        };
        if action != PrOutcome::Unchanged {
            match pulls.pulls.iter_mut().find(|p| p.number == record.number) {
                Some(slot) => *slot = record,
                None => pulls.pulls.push(record),
            }
            store::save(&pulls_path, &pulls).await.map_err(|e| {
                tracing::error!(error = %e, "could not record the pull request");
                PrError::RecordWrite(e.to_string())
            })?;
        }
        Ok(opened)
    }
}
