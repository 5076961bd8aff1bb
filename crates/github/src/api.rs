//! The REST calls sre-agent makes, as [`Session`] methods. Paths, query parameters and status codes follow
//! GitHub's REST description (`@octokit/openapi`, `api.github.com.json`).

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::client::{Credential, Request, Session, Target, encode_ref, location, read_json, repo_path};
use crate::error::GithubError;
use crate::git::GitCredentials;
use crate::log::{JobLog, LineFilter, LogCollector, LogLimits};
use crate::metrics::Endpoint;
use crate::types::{
    Branch, CheckRun, CheckRunUpdate, Commit, CreatedPull, InstallationRepositories, Job, JobList, JobsOf, Label,
    NewCheckRun, NewLabel, NewPullRequest, PullRequest, PullRequestUpdate, RepoRef, Repository, WorkflowRun,
    WorkflowRunList,
};

const PER_PAGE: u32 = 100;

impl Session {
    /// `GET /installation/repositories`: every repository the installation can reach (bounded by
    /// `max_pages`). Installation sessions only.
    pub async fn installation_repositories(&self) -> Result<Vec<Repository>, GithubError> {
        if !matches!(self.credential, Credential::Installation(_)) {
            return Err(GithubError::Config("installation_repositories needs an installation session".into()));
        }
        let mut all = Vec::new();
        for page in 1..=self.client.config().retry.max_pages.max(1) {
            let req = Request::api(
                Endpoint::InstallationRepos,
                Method::GET,
                "/installation/repositories",
                "/installation/repositories".to_owned(),
                self.credential,
            )
            .query("per_page", PER_PAGE.to_string())
            .query("page", page.to_string());
            let body: InstallationRepositories = self.get_json(&req).await?;
            let got = body.repositories.len();
            all.extend(body.repositories);
            if got < PER_PAGE as usize || all.len() as u64 >= body.total_count {
                break;
            }
        }
        Ok(all)
    }

    /// `GET /repos/{owner}/{repo}`: the repository, or [`GithubError::NotAccessible`] when these credentials
    /// cannot see it.
    pub async fn repository(&self, repo: &RepoRef) -> Result<Repository, GithubError> {
        let req =
            Request::api(Endpoint::Repo, Method::GET, "/repos/{owner}/{repo}", repo_path(repo, ""), self.credential)
                .repo(repo);
        self.get_json(&req).await
    }

    /// The jobs of a workflow run with their steps: `GET .../actions/runs/{run_id}/jobs?filter=latest|all`
    /// or `.../attempts/{n}/jobs` (bounded by `max_pages`).
    pub async fn list_jobs(&self, repo: &RepoRef, run_id: u64, which: JobsOf) -> Result<Vec<Job>, GithubError> {
        let mut all = Vec::new();
        for page in 1..=self.client.config().retry.max_pages.max(1) {
            let mut req = match which {
                JobsOf::Attempt(n) => Request::api(
                    Endpoint::Jobs,
                    Method::GET,
                    "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs",
                    repo_path(repo, &format!("/actions/runs/{run_id}/attempts/{n}/jobs")),
                    self.credential,
                ),
                JobsOf::Latest | JobsOf::All => Request::api(
                    Endpoint::Jobs,
                    Method::GET,
                    "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
                    repo_path(repo, &format!("/actions/runs/{run_id}/jobs")),
                    self.credential,
                )
                .query("filter", if which == JobsOf::All { "all" } else { "latest" }),
            };
            req = req.repo(repo).query("per_page", PER_PAGE.to_string()).query("page", page.to_string());
            let body: JobList = self.get_json(&req).await?;
            let got = body.jobs.len();
            all.extend(body.jobs);
            if got < PER_PAGE as usize || all.len() as u64 >= body.total_count {
                break;
            }
        }
        Ok(all)
    }

    /// The workflow runs of a check suite (GitHub Actions makes one suite per workflow run):
    /// `GET /repos/{owner}/{repo}/actions/runs?check_suite_id={id}` (bounded by `max_pages`).
    pub async fn workflow_runs_of_check_suite(
        &self,
        repo: &RepoRef,
        check_suite_id: u64,
    ) -> Result<Vec<WorkflowRun>, GithubError> {
        let mut all = Vec::new();
        for page in 1..=self.client.config().retry.max_pages.max(1) {
            let req = Request::api(
                Endpoint::WorkflowRuns,
                Method::GET,
                "/repos/{owner}/{repo}/actions/runs",
                repo_path(repo, "/actions/runs"),
                self.credential,
            )
            .repo(repo)
            .query("check_suite_id", check_suite_id.to_string())
            .query("per_page", PER_PAGE.to_string())
            .query("page", page.to_string());
            let body: WorkflowRunList = self.get_json(&req).await?;
            let got = body.workflow_runs.len();
            all.extend(body.workflow_runs);
            if got < PER_PAGE as usize || all.len() as u64 >= body.total_count {
                break;
            }
        }
        Ok(all)
    }

    /// `GET /repos/{owner}/{repo}/actions/jobs/{job_id}`.
    pub async fn job(&self, repo: &RepoRef, job_id: u64) -> Result<Job, GithubError> {
        let req = Request::api(
            Endpoint::Jobs,
            Method::GET,
            "/repos/{owner}/{repo}/actions/jobs/{job_id}",
            repo_path(repo, &format!("/actions/jobs/{job_id}")),
            self.credential,
        )
        .repo(repo);
        self.get_json(&req).await
    }

    /// A job's log, bounded by `limits` (head, filtered middle lines, tail; see [`crate::log`]).
    ///
    /// `GET .../actions/jobs/{job_id}/logs` answers 302 to a short-lived URL on another host. That URL is
    /// fetched with no `Authorization` header (and its query, which holds the signature, is kept out of
    /// spans); the body is streamed through a [`LogCollector`], never held whole.
    pub async fn job_log(
        &self,
        repo: &RepoRef,
        job_id: u64,
        limits: LogLimits,
        filter: &dyn LineFilter,
    ) -> Result<JobLog, GithubError> {
        let req = Request::api(
            Endpoint::JobLog,
            Method::GET,
            "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs",
            repo_path(repo, &format!("/actions/jobs/{job_id}/logs")),
            self.credential,
        )
        .repo(repo);
        let first = self.client.execute(&req).await?;
        let (mut resp, endpoint) = if first.status().is_redirection() {
            let target = location(&first).ok_or_else(|| GithubError::Decode {
                endpoint: Endpoint::JobLog,
                message: "redirect without a usable Location".to_owned(),
            })?;
            drop(first);
            let blob = Request {
                endpoint: Endpoint::JobLogBlob,
                method: Method::GET,
                route: "job-log-download",
                target: Target::Absolute(target),
                query: Vec::new(),
                body: None,
                repo: None,
                credential: Credential::None,
                timeout: Some(self.client.config().log_download_timeout),
            };
            (self.client.execute(&blob).await?, Endpoint::JobLogBlob)
        } else {
            (first, Endpoint::JobLog)
        };
        let mut collector = LogCollector::new(limits, filter);
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => collector.push(&chunk),
                Ok(None) => break,
                Err(err) => {
                    return Err(GithubError::Transport {
                        endpoint,
                        message: format!("log download interrupted: {}", err.without_url()),
                    });
                }
            }
        }
        Ok(collector.finish())
    }

    /// `GET /repos/{owner}/{repo}/commits/{ref}`: author, committer, parents.
    pub async fn commit(&self, repo: &RepoRef, reference: &str) -> Result<Commit, GithubError> {
        non_empty("ref", reference)?;
        let req = Request::api(
            Endpoint::Commits,
            Method::GET,
            "/repos/{owner}/{repo}/commits/{ref}",
            repo_path(repo, &format!("/commits/{}", encode_ref(reference))),
            self.credential,
        )
        .repo(repo)
        .query("per_page", "1");
        self.get_json(&req).await
    }

    /// `GET /repos/{owner}/{repo}/branches/{branch}`: `None` when the branch does not exist (deleted).
    /// Compare `commit.sha` with the sha you pushed to detect a force-push by someone else.
    pub async fn branch(&self, repo: &RepoRef, branch: &str) -> Result<Option<Branch>, GithubError> {
        non_empty("branch", branch)?;
        let req = Request::api(
            Endpoint::Branches,
            Method::GET,
            "/repos/{owner}/{repo}/branches/{branch}",
            repo_path(repo, &format!("/branches/{}", encode_ref(branch))),
            self.credential,
        )
        .repo(repo);
        match self.get_json(&req).await {
            Ok(branch) => Ok(Some(branch)),
            Err(GithubError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `GET /repos/{owner}/{repo}/commits?sha={branch}`: the newest `max` commits reachable from a branch or
    /// sha, newest first (to see whose commits sit on a branch).
    pub async fn commits(&self, repo: &RepoRef, branch_or_sha: &str, max: usize) -> Result<Vec<Commit>, GithubError> {
        non_empty("sha", branch_or_sha)?;
        let per_page = max.clamp(1, PER_PAGE as usize);
        let mut all = Vec::new();
        for page in 1..=self.client.config().retry.max_pages.max(1) {
            let req = Request::api(
                Endpoint::Commits,
                Method::GET,
                "/repos/{owner}/{repo}/commits",
                repo_path(repo, "/commits"),
                self.credential,
            )
            .repo(repo)
            .query("sha", branch_or_sha)
            .query("per_page", per_page.to_string())
            .query("page", page.to_string());
            let commits: Vec<Commit> = self.get_json(&req).await?;
            let got = commits.len();
            all.extend(commits);
            if got < per_page || all.len() >= max {
                break;
            }
        }
        all.truncate(max);
        Ok(all)
    }

    /// Open pull requests whose head is `head_owner:branch` (`GET .../pulls?head=owner:branch&state=open`;
    /// GitHub ignores a `head` without the owner).
    pub async fn open_pulls_for_branch(
        &self,
        repo: &RepoRef,
        head_owner: &str,
        branch: &str,
    ) -> Result<Vec<PullRequest>, GithubError> {
        self.pulls_for_branch(repo, head_owner, branch, "open").await
    }

    /// Pull requests whose head is `head_owner:branch` in `state` (`open`, `closed` or `all`), newest first
    /// (one page of 100): whether a branch's pull request was closed, not only whether one is open.
    pub async fn pulls_for_branch(
        &self,
        repo: &RepoRef,
        head_owner: &str,
        branch: &str,
        state: &str,
    ) -> Result<Vec<PullRequest>, GithubError> {
        non_empty("branch", branch)?;
        non_empty("head owner", head_owner)?;
        if !matches!(state, "open" | "closed" | "all") {
            return Err(GithubError::InvalidInput(format!("pull request state {state:?} is not open, closed or all")));
        }
        let req = Request::api(
            Endpoint::Pulls,
            Method::GET,
            "/repos/{owner}/{repo}/pulls",
            repo_path(repo, "/pulls"),
            self.credential,
        )
        .repo(repo)
        .query("head", format!("{head_owner}:{branch}"))
        .query("state", state)
        .query("per_page", PER_PAGE.to_string());
        self.get_json(&req).await
    }

    /// `POST /repos/{owner}/{repo}/pulls`. When GitHub answers 422 "A pull request already exists for
    /// owner:branch", the existing open pull request is looked up and returned with `already_existed`.
    pub async fn create_pull(&self, repo: &RepoRef, new: &NewPullRequest) -> Result<CreatedPull, GithubError> {
        let body = serde_json::to_value(new).map_err(|e| GithubError::InvalidInput(e.to_string()))?;
        let req = Request::api(
            Endpoint::Pulls,
            Method::POST,
            "/repos/{owner}/{repo}/pulls",
            repo_path(repo, "/pulls"),
            self.credential,
        )
        .repo(repo)
        .json(body);
        match self.get_json(&req).await {
            Ok(pull) => Ok(CreatedPull { pull, already_existed: false }),
            Err(err @ GithubError::Validation { .. }) if already_exists(&err) => {
                let (owner, branch) = new.head.split_once(':').unwrap_or((repo.owner(), new.head.as_str()));
                let existing = self.open_pulls_for_branch(repo, owner, branch).await?;
                match existing.into_iter().find(|p| p.base.branch == new.base) {
                    Some(pull) => Ok(CreatedPull { pull, already_existed: true }),
                    // Closed between the two calls: report what GitHub said.
                    None => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// `PATCH /repos/{owner}/{repo}/pulls/{n}`: title, body, state, base. (Draft ↔ ready is GraphQL-only.)
    pub async fn update_pull(
        &self,
        repo: &RepoRef,
        number: u64,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest, GithubError> {
        let body = serde_json::to_value(update).map_err(|e| GithubError::InvalidInput(e.to_string()))?;
        let req = Request::api(
            Endpoint::Pulls,
            Method::PATCH,
            "/repos/{owner}/{repo}/pulls/{pull_number}",
            repo_path(repo, &format!("/pulls/{number}")),
            self.credential,
        )
        .repo(repo)
        .json(body);
        self.get_json(&req).await
    }

    /// The open pull requests `login` opened: `GET /repos/{owner}/{repo}/pulls?state=open`, filtered by author
    /// (bounded by `max_pages`).
    pub async fn open_pulls_by(&self, repo: &RepoRef, login: &str) -> Result<Vec<PullRequest>, GithubError> {
        let mut mine = Vec::new();
        for page in 1..=self.client.config().retry.max_pages.max(1) {
            let req = Request::api(
                Endpoint::Pulls,
                Method::GET,
                "/repos/{owner}/{repo}/pulls",
                repo_path(repo, "/pulls"),
                self.credential,
            )
            .repo(repo)
            .query("state", "open")
            .query("per_page", PER_PAGE.to_string())
            .query("page", page.to_string());
            let pulls: Vec<PullRequest> = self.get_json(&req).await?;
            let got = pulls.len();
            mine.extend(pulls.into_iter().filter(|p| p.user.as_ref().is_some_and(|u| u.login == login)));
            if got < PER_PAGE as usize {
                break;
            }
        }
        Ok(mine)
    }

    /// How many open pull requests `login` has in the repository (see [`Self::open_pulls_by`]).
    pub async fn count_open_pulls_by(&self, repo: &RepoRef, login: &str) -> Result<u64, GithubError> {
        Ok(self.open_pulls_by(repo, login).await?.len() as u64)
    }

    /// `POST /repos/{owner}/{repo}/issues/{n}/labels`: adds labels to an issue or pull request (GitHub creates
    /// unknown labels with a default colour); returns the labels now on it.
    pub async fn add_labels(&self, repo: &RepoRef, number: u64, labels: &[&str]) -> Result<Vec<Label>, GithubError> {
        let req = Request::api(
            Endpoint::Labels,
            Method::POST,
            "/repos/{owner}/{repo}/issues/{issue_number}/labels",
            repo_path(repo, &format!("/issues/{number}/labels")),
            self.credential,
        )
        .repo(repo)
        .json(json!({ "labels": labels }));
        self.get_json(&req).await
    }

    /// `POST /repos/{owner}/{repo}/labels`; a 422 `already_exists` is fine. True when the label was created.
    pub async fn ensure_label(&self, repo: &RepoRef, label: &NewLabel) -> Result<bool, GithubError> {
        let body = serde_json::to_value(label).map_err(|e| GithubError::InvalidInput(e.to_string()))?;
        let req = Request::api(
            Endpoint::Labels,
            Method::POST,
            "/repos/{owner}/{repo}/labels",
            repo_path(repo, "/labels"),
            self.credential,
        )
        .repo(repo)
        .json(body);
        match self.get_json::<Label>(&req).await {
            Ok(_) => Ok(true),
            Err(GithubError::Validation { errors, .. })
                if errors.iter().any(|e| e.code.as_deref() == Some("already_exists")) =>
            {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    /// `POST /repos/{owner}/{repo}/check-runs` (GitHub Apps only: a plain token gets 403).
    pub async fn create_check_run(&self, repo: &RepoRef, new: &NewCheckRun) -> Result<CheckRun, GithubError> {
        let body = serde_json::to_value(new).map_err(|e| GithubError::InvalidInput(e.to_string()))?;
        let req = Request::api(
            Endpoint::CheckRuns,
            Method::POST,
            "/repos/{owner}/{repo}/check-runs",
            repo_path(repo, "/check-runs"),
            self.credential,
        )
        .repo(repo)
        .json(body);
        self.get_json(&req).await
    }

    /// `PATCH /repos/{owner}/{repo}/check-runs/{id}`.
    pub async fn update_check_run(
        &self,
        repo: &RepoRef,
        check_run_id: u64,
        update: &CheckRunUpdate,
    ) -> Result<CheckRun, GithubError> {
        let body = serde_json::to_value(update).map_err(|e| GithubError::InvalidInput(e.to_string()))?;
        let req = Request::api(
            Endpoint::CheckRuns,
            Method::PATCH,
            "/repos/{owner}/{repo}/check-runs/{check_run_id}",
            repo_path(repo, &format!("/check-runs/{check_run_id}")),
            self.credential,
        )
        .repo(repo)
        .json(body);
        self.get_json(&req).await
    }

    /// Credentials for the git CLI (clone, fetch, push) as this session: an installation token (minted or
    /// cached) or the plain token, passed as an `http.extraHeader`, never in a URL.
    pub async fn git_credentials(&self) -> Result<GitCredentials, GithubError> {
        let token = self
            .client
            .token_for(self.credential)
            .await?
            .ok_or_else(|| GithubError::Config("this session has no token".to_owned()))?;
        let expires_at = match self.credential {
            Credential::Installation(id) => self.client.cached_expiry(id).await,
            _ => None,
        };
        Ok(GitCredentials::new(&self.client.config().git_base, &token, expires_at))
    }

    async fn get_json<T: DeserializeOwned>(&self, req: &Request<'_>) -> Result<T, GithubError> {
        let resp = self.client.execute(req).await?;
        if !resp.status().is_success() {
            return Err(GithubError::Api {
                endpoint: req.endpoint,
                status: resp.status().as_u16(),
                message: "unexpected redirect".to_owned(),
            });
        }
        read_json(resp, req.endpoint).await
    }
}

fn non_empty(what: &str, value: &str) -> Result<(), GithubError> {
    if value.trim().is_empty() {
        return Err(GithubError::InvalidInput(format!("{what} is empty")));
    }
    Ok(())
}

/// GitHub's 422 for a second pull request with the same head and base.
fn already_exists(err: &GithubError) -> bool {
    let GithubError::Validation { errors, .. } = err else { return false };
    errors.iter().any(|e| e.message.as_deref().is_some_and(|m| m.starts_with("A pull request already exists")))
}
