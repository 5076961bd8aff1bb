//! What a claimed run must pass before the pipeline spends anything on it, after the bots users already
//! trust (autofix.ci, pre-commit.ci, Renovate, Dependabot):
//! - the loop guards: never act on a failure on the agent's own branch, or whose head commit the agent
//!   authored, or after the agent already committed N times in a row on the branch (`blocked_reason_other`);
//! - the cooldown of a run key after a failed attempt (a re-run that fails again waits: `retry{cooldown}`);
//! - the limits shared by every orchestrator through Redis: runs at once per repository
//!   (`throttled{repo_concurrency}`) and per installation owner (`throttled{org}`), pull requests per
//!   repository per hour (`throttled{repo}`); a full limit defers the run (`retry{repo_throttled}`).
//!
//! Deferrals and refusals are run outcomes with a reason and the seed metrics; nothing is dropped silently.

use std::path::PathBuf;
use std::time::Duration;

use sre_domain::{LoopBlockedReason, RetryReason, Run, ThrottleScope};
use sre_queue::limits::{Grant, Limits};

use crate::config::Config;

pub use sre_domain::AGENT_BRANCH_PREFIX;

/// What the guards decided.
#[derive(Debug)]
pub enum Verdict {
    /// Go ahead, holding these places (release them with [`Guards::release`]).
    Go(Held),
    /// Not now: try again at `retry_at_ms`.
    Defer { retry_at_ms: i64, reason: RetryReason, scope: Option<ThrottleScope>, detail: String },
    /// Never: the loop guard.
    Block { reason: LoopBlockedReason, detail: String },
}

/// The places a run holds while it runs.
#[derive(Debug, Default)]
pub struct Held {
    repo: String,
    owner: String,
    run_id: String,
    pr_reserved: bool,
}

/// Who the commits of a branch are by, where the orchestrator can tell.
pub trait History {
    /// Author names and emails of the head commit and of up to `n` commits of the branch, newest first;
    /// `None` when this source does not know the repository.
    fn authors(&self, run: &Run, n: usize) -> impl Future<Output = Option<(String, Vec<String>)>> + Send;
}

/// The history of a repository under the repos dir (the local backend), read with git.
pub struct LocalHistory {
    pub repos_dir: PathBuf,
}

impl History for LocalHistory {
    async fn authors(&self, run: &Run, n: usize) -> Option<(String, Vec<String>)> {
        let repo = sre_gitwork::Repo::open(&self.repos_dir, &run.failure.repo).ok()?;
        let fmt = ["log", "--format=%an <%ae>"];
        let branch = &run.failure.head_branch;
        let (n, branch_ref) = (n.to_string(), format!("refs/heads/{branch}"));
        let head_args = [fmt[0], "-1", fmt[1], run.failure.head_sha.as_str()];
        // The head commit and the branch's recent commits, both at once.
        let (head, recent) = tokio::join!(sre_gitwork::git(repo.path(), &head_args, None), async {
            if branch.is_empty() {
                return Vec::new();
            }
            match sre_gitwork::git(repo.path(), &[fmt[0], "-n", &n, fmt[1], &branch_ref], None).await {
                Ok(out) => String::from_utf8_lossy(&out).lines().map(str::to_owned).collect(),
                Err(_) => Vec::new(),
            }
        });
        let head = String::from_utf8_lossy(&head.ok()?).trim().to_owned();
        Some((head, recent))
    }
}

/// Where the loop guards read commit authors from: the repos dir, or GitHub.
pub enum Source {
    Local(LocalHistory),
    Github(std::sync::Arc<crate::github::GithubSource>),
}

impl History for Source {
    async fn authors(&self, run: &Run, n: usize) -> Option<(String, Vec<String>)> {
        match self {
            Self::Local(local) => local.authors(run, n).await,
            Self::Github(github) => github.authors(run, n).await,
        }
    }
}

pub struct Guards<H> {
    limits: Limits,
    history: H,
    repo_concurrency: u32,
    org_concurrency: u32,
    prs_per_hour: u32,
    lease: Duration,
    cooldown: Duration,
    max_agent_commits: usize,
    identity: String,
}

fn now_ms() -> i64 {
    sre_store::now_ms()
}

impl<H: History> Guards<H> {
    pub fn new(limits: Limits, history: H, config: &Config) -> Self {
        Self {
            limits,
            history,
            repo_concurrency: config.repo_concurrency,
            org_concurrency: config.org_concurrency,
            prs_per_hour: config.prs_per_hour,
            lease: config.requeue_stale(),
            cooldown: Duration::from_secs(config.cooldown_seconds),
            max_agent_commits: config.max_agent_commits as usize,
            identity: config.agent_identity.to_ascii_lowercase(),
        }
    }

    fn is_agent(&self, author: &str) -> bool {
        author.to_ascii_lowercase().contains(&self.identity)
    }

    /// The loop guards, the cooldown, then the limits, in that order.
    pub async fn check(&self, run: &Run) -> Verdict {
        let f = &run.failure;
        if f.head_branch.starts_with(AGENT_BRANCH_PREFIX) {
            let detail =
                format!("the failure is on the agent's own branch {}: never fixed by the agent", f.head_branch);
            return Verdict::Block { reason: LoopBlockedReason::BlockedReasonOther, detail };
        }
        if let Some((head, recent)) = self.history.authors(run, self.max_agent_commits).await {
            if self.is_agent(&head) {
                let detail = "the failing commit was authored by the agent: never fixed by the agent".to_owned();
                return Verdict::Block { reason: LoopBlockedReason::BlockedReasonOther, detail };
            }
            if self.max_agent_commits > 0
                && recent.len() >= self.max_agent_commits
                && recent.iter().all(|a| self.is_agent(a))
            {
                let detail = format!("the agent made the last {} commits on {} in a row", recent.len(), f.head_branch);
                return Verdict::Block { reason: LoopBlockedReason::BlockedReasonOther, detail };
            }
        }
        match self.limits.cooldown_until(&run.run_key).await {
            Ok(Some(until)) => {
                return Verdict::Defer {
                    retry_at_ms: until,
                    reason: RetryReason::Cooldown,
                    scope: None,
                    detail: "a failed attempt of this failure is cooling down".into(),
                };
            }
            Ok(None) => {}
            Err(err) => return transient(&err),
        }
        let owner = f.repo.split('/').next().unwrap_or_default().to_owned();
        let mut held = Held { repo: f.repo.clone(), owner, run_id: run.run_id.clone(), pr_reserved: false };
        let steps: [(&str, &str, u32, ThrottleScope); 2] = [
            ("repo-running", held.repo.as_str(), self.repo_concurrency, ThrottleScope::RepoConcurrency),
            ("org-running", held.owner.as_str(), self.org_concurrency, ThrottleScope::Org),
        ];
        let mut taken = Vec::new();
        for (kind, scope, max, throttle) in steps {
            match self.limits.acquire_lease(kind, scope, &run.run_id, max, self.lease).await {
                Ok(Grant::Granted) => taken.push((kind, scope.to_owned())),
                Ok(Grant::Full { retry_at_ms }) => {
                    self.give_back(&taken, &run.run_id).await;
                    let retry_at_ms = retry_at_ms.min(now_ms() + 60_000);
                    let detail = format!("{max} run(s) at once is the {} limit", throttle.as_str());
                    return Verdict::Defer {
                        retry_at_ms,
                        reason: RetryReason::RepoThrottled,
                        scope: Some(throttle),
                        detail,
                    };
                }
                Err(err) => {
                    self.give_back(&taken, &run.run_id).await;
                    return transient(&err);
                }
            }
        }
        match self
            .limits
            .reserve("repo-prs", &held.repo, &run.run_id, self.prs_per_hour, Duration::from_secs(3600))
            .await
        {
            Ok(Grant::Granted) => held.pr_reserved = true,
            Ok(Grant::Full { retry_at_ms }) => {
                self.give_back(&taken, &run.run_id).await;
                let detail = format!("{} pull request(s) per hour is the repository's limit", self.prs_per_hour);
                return Verdict::Defer {
                    retry_at_ms,
                    reason: RetryReason::RepoThrottled,
                    scope: Some(ThrottleScope::Repo),
                    detail,
                };
            }
            Err(err) => {
                self.give_back(&taken, &run.run_id).await;
                return transient(&err);
            }
        }
        Verdict::Go(held)
    }

    async fn give_back(&self, taken: &[(&str, String)], holder: &str) {
        for (kind, scope) in taken {
            if let Err(err) = self.limits.release_lease(kind, scope, holder).await {
                tracing::warn!(error = %err, "could not release a limit (its lease runs out by itself)");
            }
        }
    }

    /// Releases the places a finished (or deferred) run held; the hourly PR reservation only when it made no
    /// pull request. A failed run starts its key's cooldown.
    pub async fn release(&self, held: Held, made_pr: bool, failed_key: Option<&str>) {
        let taken = [("repo-running", held.repo.clone()), ("org-running", held.owner.clone())];
        self.give_back(&taken, &held.run_id).await;
        if held.pr_reserved
            && !made_pr
            && let Err(err) = self.limits.release_reservation("repo-prs", &held.repo, &held.run_id).await
        {
            tracing::warn!(error = %err, "could not release a pull-request reservation");
        }
        if let Some(key) = failed_key
            && let Err(err) = self.limits.start_cooldown(key, self.cooldown).await
        {
            tracing::warn!(error = %err, "could not start the cooldown of a failed run key");
        }
    }
}

fn transient(err: &sre_queue::QueueError) -> Verdict {
    Verdict::Defer {
        retry_at_ms: now_ms() + 5_000,
        reason: RetryReason::TransientError,
        scope: None,
        detail: format!("the shared limits are unavailable: {err}"),
    }
}
