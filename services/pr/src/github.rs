//! The GitHub backend. For a call, in order:
//!
//! 1. a session: the App installation of `failure.installation_id` (or the plain token);
//! 2. `GET /repos/{o}/{r}`: a repository outside the installation is PERMISSION_DENIED with GitHub's
//!    reason before any git runs; an archived one is refused; its default branch is the base of last resort;
//! 3. `GET /repos/{o}/{r}/pulls?head=<owner>:<branch>&state=all`: the run_key's pull requests; when the
//!    only ones are closed (a reviewer closed or merged it), REFUSED: never reopened, nothing pushed;
//! 4. the repository cache ensures `head_sha` in `<repos dir>/<owner>/<name>` (clone once, then fetch the
//!    commit by id), with the installation token as an `http.extraHeader` in the git child's environment
//!    only ([`sre_github::GitCredentials`]; never in a URL, an argument, `.git/config` or a log line);
//! 5. [`crate::publish`] under a flock per branch (callers in other processes sharing the cache wait):
//!    the commit as the bot identity in a worktree, `git ls-remote` of the branch and the base, and a push
//!    with `--force-with-lease` unless the branch already holds the change (UNCHANGED) or holds anyone
//!    else's commits (REFUSED: nothing pushed, nothing edited);
//! 6. the open pull request of step 3 (any base), else `POST /repos/{o}/{r}/pulls` (a draft when asked;
//!    GitHub's 422 "A pull request already exists" is a concurrent caller's pull request and is used; "No
//!    commits between" is FAILED_PRECONDITION);
//! 7. `PATCH /repos/{o}/{r}/pulls/{n}` when the title or body changed;
//! 8. for each of `sre-agent` and `safe`/`needs-review` missing from the pull request:
//!    `POST /repos/{o}/{r}/labels` (created if missing; 422 `already_exists` is fine), then
//!    `POST /repos/{o}/{r}/issues/{n}/labels`.
//!
//! An existing pull request's draft state is left as it is and reported (draft ↔ ready is GraphQL-only); a
//! review label that no longer applies is not removed (the REST client has no label removal yet).

use sre_github::{
    Auth, BotIdentity, GithubClient, GithubError, InstallationId, NewLabel, NewPullRequest, PullRequest,
    PullRequestUpdate, RepoRef, Session,
};
use sre_gitwork::{FileLock, LockMode, Remote, RepoCache};

use crate::backend::{Opened, PrBackend, PrRequest};
use crate::error::PrError;
use crate::events::PrOutcome;
use crate::publish::{BranchResult, Change, Identity, Workspace, publish};
use crate::store;

/// Longest wait for another caller publishing the same branch.
const BRANCH_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

pub struct GithubBackend {
    client: GithubClient,
    cache: RepoCache,
    identity: Identity,
    login: String,
}

impl GithubBackend {
    pub fn new(client: GithubClient, cache: RepoCache, bot: BotIdentity) -> Self {
        let identity = Identity { name: bot.login.clone(), email: bot.email };
        Self { client, cache, identity, login: bot.login }
    }

    /// `<cache>/.sre-agent-cache/locks/<owner>/<name>.branches/<branch with / as __>.lock`.
    fn branch_lock(&self, repo: &RepoRef, branch: &str) -> std::path::PathBuf {
        self.cache
            .root()
            .join(".sre-agent-cache/locks")
            .join(repo.owner())
            .join(format!("{}.branches", repo.name()))
            .join(format!("{}.lock", branch.replace('/', "__")))
    }

    fn session(&self, installation_id: u64) -> Result<Session, PrError> {
        match self.client.config().auth {
            Auth::App(_) if installation_id == 0 => Err(PrError::NoInstallation),
            Auth::App(_) => Ok(self.client.installation(InstallationId(installation_id))?),
            Auth::Token(_) => Ok(self.client.with_token()?),
        }
    }
}

/// The description and colour of the labels the agent creates.
fn label_spec(name: &str) -> NewLabel {
    let (color, description) = match name {
        "safe" => ("0e8a16", "sre-agent: low-risk fix that passed validation"),
        "needs-review" => ("d93f0b", "sre-agent: a person should review this fix closely"),
        _ => ("5319e7", "Opened by sre-agent, the CI-fixing bot"),
    };
    NewLabel { name: name.to_owned(), color: color.to_owned(), description: description.to_owned() }
}

fn no_commits_between(err: &GithubError) -> bool {
    let GithubError::Validation { errors, message, .. } = err else { return false };
    message.contains("No commits between")
        || errors.iter().any(|e| e.message.as_deref().is_some_and(|m| m.starts_with("No commits between")))
}

#[tonic::async_trait]
impl PrBackend for GithubBackend {
    fn name(&self) -> &'static str {
        "github"
    }

    async fn open(&self, req: &PrRequest) -> Result<Opened, PrError> {
        let repo = RepoRef::parse(&req.repo)?;
        if !(req.head_sha.len() == 40 || req.head_sha.len() == 64) {
            return Err(PrError::InvalidHeadSha(req.head_sha.clone()));
        }
        let session = self.session(req.installation_id)?;
        let info = session.repository(&repo).await?;
        if info.archived {
            return Err(PrError::Archived(req.repo.clone()));
        }
        let base = if req.base.is_empty() { info.default_branch.clone() } else { req.base.clone() };
        if !store::valid_branch(&base) {
            return Err(PrError::InvalidBase(base));
        }
        if base == req.branch {
            return Err(PrError::BaseIsAgentBranch(base));
        }

        // The branch's pull requests, closed ones too: a pull request a reviewer closed (or merged) for this
        // failure is never reopened or pushed to.
        let pulls = session.pulls_for_branch(&repo, repo.owner(), &req.branch, "all").await?;
        let existing: Option<PullRequest> = pulls.iter().find(|p| p.state == "open").cloned();
        if existing.is_none()
            && let Some(closed) = pulls.first()
        {
            tracing::warn!(number = closed.number, branch = %req.branch, "the failure's pull request was closed");
            return Ok(Opened {
                number: closed.number,
                branch: req.branch.clone(),
                url: closed.html_url.clone(),
                commit_sha: closed.head.sha.clone(),
                action: PrOutcome::Refused,
                refused_reason: format!(
                    "pull request #{} for this failure was closed: not reopening or pushing to it",
                    closed.number
                ),
                draft: closed.draft,
            });
        }

        let creds = session.git_credentials().await?;
        let remote = Remote::new(creds.remote_url(&repo))?.with_env(creds.git_env());
        let cached = self.cache.ensure(&req.repo, &req.head_sha, Some(&base), &remote).await?;
        let ws = Workspace::Cached { cached: &cached, remote: &remote };
        let change = Change {
            head_sha: cached.sha(),
            base: &base,
            diff: &req.diff,
            message: &req.message,
            branch: &req.branch,
            identity: &self.identity,
        };
        // One publisher per branch at a time, across the processes sharing the cache: a concurrent caller
        // then sees the branch the first one pushed instead of losing the lease.
        let lock = self.branch_lock(&repo, &req.branch);
        let held = FileLock::acquire(&lock, LockMode::Exclusive, BRANCH_LOCK_TIMEOUT).await?;
        let result = publish(&ws, &change).await;
        drop(held);
        drop(cached);
        let result = result?;

        if let BranchResult::Refused { reason, tip, foreign_commits } = &result {
            tracing::warn!(branch = %req.branch, foreign_commits, "someone else's commits are on the branch");
            return Ok(Opened {
                number: existing.as_ref().map_or(0, |p| p.number),
                branch: req.branch.clone(),
                url: existing.as_ref().map_or_else(String::new, |p| p.html_url.clone()),
                commit_sha: tip.clone(),
                action: PrOutcome::Refused,
                refused_reason: reason.clone(),
                draft: existing.as_ref().is_some_and(|p| p.draft),
            });
        }

        let (mut pull, created) = match existing {
            Some(pull) => (pull, false),
            None => {
                let new = NewPullRequest {
                    title: req.title.clone(),
                    head: req.branch.clone(),
                    base: base.clone(),
                    body: req.body.clone(),
                    draft: req.draft,
                    maintainer_can_modify: false,
                };
                match session.create_pull(&repo, &new).await {
                    Ok(c) => {
                        let created = !c.already_existed;
                        if c.already_existed {
                            tracing::info!(number = c.pull.number, "pull request opened concurrently; using it");
                        }
                        (c.pull, created)
                    }
                    Err(e) if no_commits_between(&e) => {
                        tracing::warn!(branch = %req.branch, "GitHub sees no commits between base and branch");
                        return Err(PrError::NoCommitsBetween { base, branch: req.branch.clone() });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if pull.user.as_ref().is_some_and(|u| u.login != self.login) {
            tracing::info!(number = pull.number, "the branch's pull request was opened by another account");
        }

        let mut changed = result.pushed();
        if !created && (pull.title != req.title || pull.body.as_deref().unwrap_or_default() != req.body) {
            let update = PullRequestUpdate {
                title: Some(req.title.clone()),
                body: Some(req.body.clone()),
                ..Default::default()
            };
            pull = session.update_pull(&repo, pull.number, &update).await?;
            changed = true;
        }
        let wanted = store::pull_labels(req.label);
        let missing: Vec<&str> =
            wanted.iter().map(String::as_str).filter(|w| !pull.labels.iter().any(|l| l.name == *w)).collect();
        if !missing.is_empty() {
            for name in &missing {
                session.ensure_label(&repo, &label_spec(name)).await?;
            }
            session.add_labels(&repo, pull.number, &missing).await?;
            changed = true;
        }
        let action = if created {
            PrOutcome::Created
        } else if changed {
            PrOutcome::Updated
        } else {
            PrOutcome::Unchanged
        };
        Ok(Opened {
            number: pull.number,
            branch: req.branch.clone(),
            url: pull.html_url.clone(),
            commit_sha: result.tip().to_owned(),
            action,
            refused_reason: String::new(),
            draft: pull.draft,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_have_colours_and_the_422s_are_told_apart() {
        assert_eq!(label_spec("safe").color, "0e8a16");
        assert_eq!(label_spec("sre-agent").name, "sre-agent");
        let detail = sre_github::ValidationDetail {
            message: Some("No commits between main and sre-agent/lint/x".into()),
            ..Default::default()
        };
        let err = GithubError::Validation {
            endpoint: sre_github::Endpoint::Pulls,
            message: "Validation Failed".into(),
            errors: vec![detail],
        };
        assert!(no_commits_between(&err));
        let other = GithubError::Validation {
            endpoint: sre_github::Endpoint::Pulls,
            message: "Validation Failed".into(),
            errors: vec![],
        };
        assert!(!no_commits_between(&other));
    }
}
