//! The GitHub side of a run (`SRE_PR_BACKEND=github`): what the orchestrator itself asks GitHub, before and
//! after the stages (the pr service pushes and opens the pull request).
//!
//! - A workflow-level failure (`workflow_run`, `check_suite`) is resolved into its failed jobs:
//!   `GET .../actions/runs/{id}/attempts/{n}/jobs`, or for a check suite first
//!   `GET .../actions/runs?check_suite_id=` (GitHub Actions makes one suite per workflow run).
//! - The loop guards read who authored the failing commit and the branch's last commits
//!   (`GET .../commits/{sha}`, `GET .../commits?sha=<branch>`).
//! - Before the stages ([`GithubSource::prepare`]): the repository must be reachable and not archived, the
//!   failing branch must still point at the failing commit (a newer push supersedes the failure: its own CI
//!   reports what is still broken), the repository must be under its limit of open agent pull requests, the
//!   job's log is read once (bounded, streamed) into the run's `log` artifact, the commit is fetched into the
//!   repository cache the planner, scanner and validator read (held, so it is not evicted mid-run), and the
//!   agent's check run is opened on the commit, in progress.
//! - After the run: the check run is completed (`neutral`: the agent never turns a commit red or green) with
//!   the outcome and, when there is one, the pull request.
//!
//! Every GitHub error becomes a [`Refusal`]: a reason the run records as skipped (not accessible, gone,
//! superseded), a deferral (the open-PR limit), or a transient error the worker retries (5xx, network, rate
//! limits, a 401 after a fresh token).

use std::path::PathBuf;
use std::time::Duration;

use sre_domain::{ArtifactKind, Failure, Outcome, PullRequestRef, Run, short_key, short_sha};
use sre_github::{
    Auth, BotIdentity, CheckConclusion, CheckOutput, CheckRunUpdate, ErrorLines, GithubClient, GithubError,
    InstallationId, JobsOf, LogLimits, NewCheckRun, RepoRef, RunState, Session,
};
use sre_gitwork::{CacheError, CachedRepo, Remote, RepoCache};
use sre_store::Store;
use sre_telemetry::record_ids;
use tracing::Instrument;
use tracing::field::Empty;

/// The name of the agent's check run.
pub const CHECK_RUN_NAME: &str = "sre-agent";
/// How long a run waits when its repository has as many open agent pull requests as allowed.
const OPEN_PRS_WAIT: Duration = Duration::from_secs(3600);

/// Why a GitHub step stops the run.
#[derive(Debug)]
pub enum Refusal {
    /// Nothing to do, for this reason (the run is skipped).
    Skip(String),
    /// Not now: the repository is at its limit of open agent pull requests.
    Defer { retry_at_ms: i64, detail: String },
    /// Worth trying again (5xx, network, rate limits, credentials refused).
    Transient(String),
}

fn refusal(what: &str, err: GithubError) -> Refusal {
    match err {
        e if e.is_transient() => Refusal::Transient(format!("{what}: {e}")),
        // Credentials GitHub refused after a fresh token: an operator's problem, retried, then blocked.
        e @ GithubError::Unauthorized { .. } => Refusal::Transient(format!("{what}: {e}")),
        e => Refusal::Skip(format!("{what}: {e}")),
    }
}

/// What a prepared run holds while its stages run.
pub struct Prepared {
    /// The failing commit in the cache, held shared (never evicted while held).
    _cached: CachedRepo,
    check_run: Option<u64>,
    repo: RepoRef,
    session: Session,
}

pub struct GithubSource {
    client: GithubClient,
    cache: RepoCache,
    bot: BotIdentity,
    max_open_prs: u32,
    check_runs: bool,
    public_url: Option<String>,
}

impl GithubSource {
    pub fn new(
        client: GithubClient,
        cache_root: PathBuf,
        cache: sre_gitwork::CacheOptions,
        bot: BotIdentity,
        config: &crate::Config,
    ) -> Self {
        Self {
            client,
            cache: RepoCache::new(cache_root, cache),
            bot,
            max_open_prs: config.max_open_prs,
            check_runs: config.check_runs,
            public_url: config.public_url.as_ref().map(|u| u.trim_end_matches('/').to_owned()),
        }
    }

    fn session(&self, failure: &Failure) -> Result<Session, Refusal> {
        let session = match (&self.client.config().auth, failure.installation_id) {
            (Auth::App(_), Some(id)) => self.client.installation(InstallationId(id)),
            (Auth::App(_), None) => {
                return Err(Refusal::Skip(
                    "the event names no App installation, and the agent is configured as a GitHub App".into(),
                ));
            }
            (Auth::Token(_), _) => self.client.with_token(),
        };
        session.map_err(|e| refusal("GitHub session", e))
    }

    fn repo(failure: &Failure) -> Result<RepoRef, Refusal> {
        RepoRef::parse(&failure.repo).map_err(|e| Refusal::Skip(e.to_string()))
    }

    /// The failed jobs of a workflow run or check suite, each a failure of its own (same repository, commit
    /// and installation; the job's name, id and attempt).
    pub async fn failed_jobs(&self, failure: &Failure) -> Result<Vec<Failure>, Refusal> {
        let repo = Self::repo(failure)?;
        let session = self.session(failure)?;
        let mut runs: Vec<(u64, u32, String)> = Vec::new();
        if let Some(run_id) = failure.workflow_run_id {
            runs.push((run_id, failure.run_attempt.max(1), failure.workflow_name.clone()));
        } else if let Some(suite) = failure.check_suite_id {
            let found = session
                .workflow_runs_of_check_suite(&repo, suite)
                .await
                .map_err(|e| refusal("the check suite's workflow runs", e))?;
            for run in found.into_iter().filter(|r| r.conclusion.is_failure()) {
                runs.push((run.id, run.run_attempt.unwrap_or(1), run.name.unwrap_or_default()));
            }
        }
        let mut jobs = Vec::new();
        for (run_id, attempt, workflow) in runs {
            let listed = session
                .list_jobs(&repo, run_id, JobsOf::Attempt(attempt))
                .await
                .map_err(|e| refusal("the workflow run's jobs", e))?;
            for job in listed.into_iter().filter(|j| j.conclusion.is_failure()) {
                jobs.push(Failure {
                    repo: failure.repo.clone(),
                    head_sha: if job.head_sha.is_empty() { failure.head_sha.clone() } else { job.head_sha },
                    head_branch: job.head_branch.filter(|b| !b.is_empty()).unwrap_or(failure.head_branch.clone()),
                    event: failure.event,
                    conclusion: Some(job.conclusion),
                    run_attempt: job.run_attempt.unwrap_or(attempt),
                    workflow_name: job.workflow_name.filter(|w| !w.is_empty()).unwrap_or(workflow.clone()),
                    workflow_run_id: Some(run_id),
                    job_name: job.name,
                    job_id: Some(job.id),
                    check_suite_id: failure.check_suite_id,
                    installation_id: failure.installation_id,
                });
            }
        }
        Ok(jobs)
    }

    /// Author strings (`login name <email>`) of the failing commit and of the branch's last `n` commits.
    pub async fn authors(&self, run: &Run, n: usize) -> Option<(String, Vec<String>)> {
        let f = &run.failure;
        let repo = Self::repo(f).ok()?;
        let session = self.session(f).ok()?;
        let who = |c: &sre_github::Commit| {
            let person = c.commit.author.as_ref();
            format!(
                "{} {} <{}>",
                c.author.as_ref().map(|a| a.login.as_str()).unwrap_or_default(),
                person.and_then(|p| p.name.as_deref()).unwrap_or_default(),
                person.and_then(|p| p.email.as_deref()).unwrap_or_default()
            )
        };
        let head = match session.commit(&repo, &f.head_sha).await {
            Ok(c) => who(&c),
            Err(err) => {
                tracing::warn!(error = %err, "could not read the failing commit's author; loop guard by branch only");
                return None;
            }
        };
        let recent = if f.head_branch.is_empty() || n == 0 {
            Vec::new()
        } else {
            match session.commits(&repo, &f.head_branch, n).await {
                Ok(commits) => commits.iter().map(who).collect(),
                Err(err) => {
                    tracing::warn!(error = %err, "could not read the branch's commits");
                    Vec::new()
                }
            }
        };
        Some((head, recent))
    }

    /// Everything a run needs from GitHub before its stages (see the module docs); `store` receives the log.
    pub async fn prepare(&self, run: &Run, store: &Store) -> Result<Prepared, Refusal> {
        let f = &run.failure;
        let repo = Self::repo(f)?;
        let session = self.session(f)?;
        let info = session.repository(&repo).await.map_err(|e| refusal("the repository", e))?;
        if info.archived {
            return Err(Refusal::Skip(format!("{} is archived", f.repo)));
        }
        let branch = if f.head_branch.is_empty() { info.default_branch.clone() } else { f.head_branch.clone() };
        match session.branch(&repo, &branch).await {
            Ok(None) => {
                return Err(Refusal::Skip(format!(
                    "the branch {branch} is gone from {} (deleted, or the failure came from a fork)",
                    f.repo
                )));
            }
            Ok(Some(b)) if b.commit.sha != f.head_sha => {
                return Err(Refusal::Skip(format!(
                    "{branch} moved on to {} since the failure at {}: superseded",
                    short_sha(&b.commit.sha),
                    short_sha(&f.head_sha)
                )));
            }
            Ok(Some(_)) => {}
            Err(e) => return Err(refusal("the failing branch", e)),
        }
        self.check_open_pulls(&session, &repo, run).await?;
        self.fetch_job_log(&session, &repo, run, store).await?;
        let cached = self.fetch_repository(&session, &repo, run, &branch).await?;
        let check_run = self.open_check_run(&session, &repo, run).await;
        Ok(Prepared { _cached: cached, check_run, repo, session })
    }

    /// Waits when the repository has `max_open_prs` open agent pull requests, unless one of them is this
    /// failure's (an update, not a new one).
    async fn check_open_pulls(&self, session: &Session, repo: &RepoRef, run: &Run) -> Result<(), Refusal> {
        let open = session
            .open_pulls_by(repo, &self.bot.login)
            .await
            .map_err(|e| refusal("the agent's open pull requests", e))?;
        let suffix = format!("/{}", short_key(&run.run_key));
        let ours = open.iter().any(|p| p.head.branch.ends_with(&suffix));
        if !ours && open.len() as u64 >= u64::from(self.max_open_prs) {
            return Err(Refusal::Defer {
                retry_at_ms: sre_store::now_ms() + OPEN_PRS_WAIT.as_millis() as i64,
                detail: format!(
                    "{} open pull request(s) by the agent is the repository's limit (SRE_MAX_OPEN_PRS)",
                    open.len()
                ),
            });
        }
        Ok(())
    }

    /// The job's log into the run's `log` artifact, once per run (a retry reads the stored one).
    async fn fetch_job_log(&self, session: &Session, repo: &RepoRef, run: &Run, store: &Store) -> Result<(), Refusal> {
        let Some(job_id) = run.failure.job_id else { return Ok(()) };
        match store.artifact(&run.run_id, ArtifactKind::Log).await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(err) => return Err(Refusal::Transient(format!("reading the stored log: {err}"))),
        }
        let span = tracing::info_span!(
            "fetch_job_log",
            otel.status_code = Empty,
            delivery_id = Empty,
            run_key = Empty,
            failure_id = Empty,
            run_id = Empty,
            correlation_id = Empty,
            log_bytes = Empty,
            log_truncated = Empty,
            outcome = Empty,
        );
        record_ids(&span, run.ids());
        let limits = LogLimits::new(sre_cilog::MAX_STORED_LOG_BYTES);
        let result = session.job_log(repo, job_id, limits, &ErrorLines).instrument(span.clone()).await;
        let log = match result {
            Ok(log) => log,
            Err(GithubError::NotFound { .. }) => {
                // Expired (GitHub keeps logs 90 days by default) or not a GitHub Actions job (another app's
                // check run): the run goes on without a log and its diagnosis says so.
                span.record("outcome", "not_found");
                tracing::warn!(parent: &span, job_id, "the job has no log to read; diagnosing without it");
                return Ok(());
            }
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                span.record("outcome", "error");
                return Err(refusal("the job's log", e));
            }
        };
        let text = log.render();
        span.record("log_bytes", text.len());
        span.record("log_truncated", log.truncated);
        if let Err(err) = store.put_artifact(&run.run_id, ArtifactKind::Log, &text).await {
            span.record("outcome", "error");
            return Err(Refusal::Transient(format!("storing the job's log: {err}")));
        }
        span.record("outcome", "ok");
        tracing::info!(parent: &span, job_id, log_bytes = text.len(), total_bytes = log.total_bytes, truncated = log.truncated, "job log read");
        Ok(())
    }

    /// The failing commit into the repository cache, with the installation's credentials for git only.
    async fn fetch_repository(
        &self,
        session: &Session,
        repo: &RepoRef,
        run: &Run,
        branch: &str,
    ) -> Result<CachedRepo, Refusal> {
        let span = tracing::info_span!(
            "fetch_repository",
            otel.status_code = Empty,
            delivery_id = Empty,
            run_key = Empty,
            failure_id = Empty,
            run_id = Empty,
            correlation_id = Empty,
            outcome = Empty,
        );
        record_ids(&span, run.ids());
        let result = async {
            let creds = session.git_credentials().await.map_err(|e| refusal("git credentials", e))?;
            let remote = Remote::new(creds.remote_url(repo))
                .map_err(|e| Refusal::Skip(format!("the repository's git URL: {e}")))?
                .with_env(creds.git_env());
            let f = &run.failure;
            self.cache.ensure(&f.repo, &f.head_sha, Some(branch), &remote).await.map_err(|e| match e {
                CacheError::ShaNotFound { .. } => Refusal::Skip(format!(
                    "the commit {} is gone from {} (force-pushed away?)",
                    short_sha(&f.head_sha),
                    f.repo
                )),
                CacheError::InvalidBranch(_) | CacheError::InvalidRemote(_) | CacheError::NotManaged(_) => {
                    Refusal::Skip(format!("fetching the commit: {e}"))
                }
                // Network, a lock held too long, the disk: try again later.
                other => Refusal::Transient(format!("fetching the commit: {other}")),
            })
        }
        .instrument(span.clone())
        .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(Refusal::Skip(_)) => "skipped",
            Err(_) => {
                span.record("otel.status_code", "ERROR");
                "error"
            }
        };
        span.record("outcome", outcome);
        result
    }

    fn details_url(&self, run: &Run) -> Option<String> {
        self.public_url.as_ref().map(|u| format!("{u}/api/v1/runs/{}", run.run_id))
    }

    /// The agent's check run on the failing commit, in progress. Optional: a plain token cannot create check
    /// runs (GitHub answers 403), which is logged, never fatal.
    async fn open_check_run(&self, session: &Session, repo: &RepoRef, run: &Run) -> Option<u64> {
        if !self.check_runs {
            return None;
        }
        let new = NewCheckRun {
            name: CHECK_RUN_NAME.to_owned(),
            head_sha: run.failure.head_sha.clone(),
            status: RunState::InProgress,
            conclusion: None,
            details_url: self.details_url(run),
            external_id: Some(run.run_id.clone()),
            output: Some(CheckOutput {
                title: Some(format!("Fixing the failed {} job", run.failure.display_name())),
                summary: Some(format!(
                    "sre-agent is working on this failure (run `{}`, attempt {}).",
                    run.run_id, run.attempts
                )),
            }),
        };
        match session.create_check_run(repo, &new).await {
            Ok(check) => Some(check.id),
            Err(err) => {
                tracing::warn!(error = %err, "could not open the agent's check run; going on without one");
                None
            }
        }
    }

    /// Completes the run's check run (if it has one) with its outcome.
    pub async fn complete(
        &self,
        prepared: &Prepared,
        run: &Run,
        outcome: Option<Outcome>,
        reason: &str,
        pr: Option<&PullRequestRef>,
    ) {
        let Some(id) = prepared.check_run else { return };
        let (title, summary) = check_summary(run, outcome, reason, pr);
        let update = CheckRunUpdate {
            status: Some(RunState::Completed),
            conclusion: Some(CheckConclusion::Neutral),
            details_url: self.details_url(run),
            output: Some(CheckOutput { title: Some(title), summary: Some(summary) }),
        };
        if let Err(err) = prepared.session.update_check_run(&prepared.repo, id, &update).await {
            tracing::warn!(error = %err, "could not complete the agent's check run");
        }
    }
}

/// The check run's title and summary for an outcome (`None`: the attempt ends without one and is retried).
fn check_summary(run: &Run, outcome: Option<Outcome>, reason: &str, pr: Option<&PullRequestRef>) -> (String, String) {
    let job = run.failure.display_name();
    let run_line = format!("\n\nRun `{}`, attempt {}.", run.run_id, run.attempts);
    match (outcome, pr) {
        (Some(Outcome::Success), Some(pr)) => (
            format!("Fix proposed in #{}", pr.number),
            format!("sre-agent proposes a fix for the failed {job} job in #{} ({}).{run_line}", pr.number, pr.url),
        ),
        (Some(outcome), _) => (
            format!("No fix proposed ({})", outcome.as_str()),
            format!("sre-agent did not propose a fix for the failed {job} job: {reason}{run_line}"),
        ),
        (None, _) => (
            "Will try again".to_owned(),
            format!("sre-agent stopped on a transient error and will try again: {reason}{run_line}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_reasons_retries_or_skips() {
        let e = sre_github::Endpoint::Repo;
        assert!(matches!(refusal("x", GithubError::Server { endpoint: e, status: 502 }), Refusal::Transient(_)));
        assert!(matches!(refusal("x", GithubError::Unauthorized { endpoint: e }), Refusal::Transient(_)));
        let gone = GithubError::NotAccessible { repo: "o/r".into(), status: 404, message: "Not Found".into() };
        let Refusal::Skip(reason) = refusal("the repository", gone) else { panic!() };
        assert!(reason.starts_with("the repository: repository o/r is not accessible"), "{reason}");
    }

    #[test]
    fn the_check_run_says_what_happened() {
        let mut run = Run::new("r1".into(), "d1".into(), Failure { job_name: "lint".into(), ..Failure::default() }, 0);
        run.attempts = 1;
        let pr = PullRequestRef { number: 7, branch: "b".into(), url: "https://x/pull/7".into() };
        let (title, summary) = check_summary(&run, Some(Outcome::Success), "", Some(&pr));
        assert_eq!(title, "Fix proposed in #7");
        assert!(summary.contains("failed lint job in #7"), "{summary}");
        let (title, summary) = check_summary(&run, Some(Outcome::Skipped), "no rule fixes it", None);
        assert_eq!(title, "No fix proposed (skipped)");
        assert!(summary.contains(": no rule fixes it"));
        assert_eq!(check_summary(&run, None, "502", None).0, "Will try again");
    }
}
