//! Test support: a faithful fake of the parts of GitHub that sre-agent talks to, in process, on loopback.
//!
//! [`FakeGithub::start`] binds three listeners on `127.0.0.1:0`, as GitHub has three hosts:
//! - the **REST API** (optionally under a GHES-style prefix such as `/api/v3`): App installation tokens
//!   (JWT verified with the App's public key: RS256, `iss`, `exp` ≤ 10 min, `iat` in the past), installation
//!   repositories, repositories, workflow-run jobs with steps (latest, all, per attempt), single jobs, job
//!   logs (302 to the blob host), commits, commit lists, branches, pull requests (list with
//!   `head=owner:branch`, create with GitHub's 422s, get, update), labels (repository and issue), check runs
//!   (create, get, update; Apps only); each with GitHub's paths, status codes and JSON shapes;
//! - the **blob host** that signed log URLs point at; it refuses any request carrying `Authorization`;
//! - **git smart HTTP** at `/{owner}/{repo}.git/...`, served by `git http-backend` from real bare
//!   repositories in a temp dir, requiring `Authorization: Basic x-access-token:<token>`; pushes land in the
//!   bare repositories, and the REST commit/branch/pull answers read them, so both views agree.
//!
//! Every request is recorded ([`FakeGithub::calls`]: host, method, path, query, credentials seen, status).
//! Knobs: [`FakeGithub::fail_next`] (answer the next N calls of a [`Route`] with a status, a secondary rate
//! limit with `retry-after`, or an exhausted primary limit), [`FakeGithub::set_latency`],
//! [`FakeGithub::exhaust_primary_limit`], [`FakeGithub::revoke_token`], and
//! [`FakeGithub::remove_from_installation`] (a repository outside the installation).
//!
//! State is seeded by the test: Apps, installations, plain tokens, users (commit email → login),
//! repositories, commits, workflow runs with jobs and steps, job logs.
//!
//! The `sre-github-fake` binary (src/bin) runs the same fake as a process of its own, seeded from a JSON
//! file, with a control port for faults and latency: what scripts/drills.sh points a running mesh at.

#![recursion_limit = "256"]

mod api;
mod git;
pub mod keys;
mod shapes;
mod state;
mod time;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use rand::Rng as _;

pub use keys::AppKey;
pub use state::{Fault, Host, JobSpec, RecordedCall, RunSpec, SeenAuth};

use crate::state::{App, Installation, RepoState, TokenInfo, TokenKind, World};

/// Request families, for faults, latency and call assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    AppToken,
    InstallationRepos,
    Repo,
    /// Run jobs, attempt jobs and single jobs.
    Jobs,
    JobLog,
    /// The blob host.
    Blob,
    /// Single commits and commit lists.
    Commits,
    Branches,
    Pulls,
    IssueLabels,
    Labels,
    CheckRuns,
    /// Git smart HTTP.
    Git,
    Unknown,
}

impl Route {
    /// Every route, for parsing names.
    pub const ALL: [Route; 14] = [
        Self::AppToken,
        Self::InstallationRepos,
        Self::Repo,
        Self::Jobs,
        Self::JobLog,
        Self::Blob,
        Self::Commits,
        Self::Branches,
        Self::Pulls,
        Self::IssueLabels,
        Self::Labels,
        Self::CheckRuns,
        Self::Git,
        Self::Unknown,
    ];

    /// The snake_case name (`check_runs`), as the standalone binary's control API takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AppToken => "app_token",
            Self::InstallationRepos => "installation_repos",
            Self::Repo => "repo",
            Self::Jobs => "jobs",
            Self::JobLog => "job_log",
            Self::Blob => "blob",
            Self::Commits => "commits",
            Self::Branches => "branches",
            Self::Pulls => "pulls",
            Self::IssueLabels => "issue_labels",
            Self::Labels => "labels",
            Self::CheckRuns => "check_runs",
            Self::Git => "git",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn classify(host: Host, path: &str) -> Self {
        match host {
            Host::Blob => return Self::Blob,
            Host::Git => return Self::Git,
            Host::Api => {}
        }
        let s: Vec<&str> = path.trim_matches('/').split('/').collect();
        match s.as_slice() {
            ["app", "installations", _, "access_tokens"] => Self::AppToken,
            ["installation", "repositories"] => Self::InstallationRepos,
            ["repos", _, _] => Self::Repo,
            ["repos", _, _, "actions", "jobs", _, "logs"] => Self::JobLog,
            ["repos", _, _, "actions", ..] => Self::Jobs,
            ["repos", _, _, "commits", ..] => Self::Commits,
            ["repos", _, _, "branches", ..] => Self::Branches,
            ["repos", _, _, "pulls", ..] => Self::Pulls,
            ["repos", _, _, "issues", _, "labels"] => Self::IssueLabels,
            ["repos", _, _, "labels", ..] => Self::Labels,
            ["repos", _, _, "check-runs", ..] => Self::CheckRuns,
            _ => Self::Unknown,
        }
    }
}

/// Options for [`FakeGithub::start_with`].
#[derive(Clone, Debug, Default)]
pub struct FakeOptions {
    /// Serve the REST API under this prefix (`/api/v3` as on GHES); empty for github.com's layout.
    pub api_prefix: String,
    /// Listen addresses of the REST API, git smart HTTP and the blob host; `127.0.0.1:0` each when unset
    /// (the standalone binary gives fixed ones).
    pub api_addr: Option<SocketAddr>,
    pub git_addr: Option<SocketAddr>,
    pub blob_addr: Option<SocketAddr>,
}

pub(crate) struct Shared {
    world: Mutex<World>,
    root: PathBuf,
    urls: shapes::Urls,
    blob_base: String,
    prefix: String,
    /// Start time: the fixed timestamps of seeded runs and repositories.
    started: u64,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running fake. Dropping it stops the listeners and deletes the repositories.
pub struct FakeGithub {
    shared: Arc<Shared>,
    api_addr: SocketAddr,
    git_addr: SocketAddr,
    blob_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _root: tempfile::TempDir,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub(crate) fn random_alnum(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n).map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())])).collect()
}

impl FakeGithub {
    /// Starts the fake with github.com's layout.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(FakeOptions::default()).await
    }

    pub async fn start_with(options: FakeOptions) -> std::io::Result<Self> {
        let root = tempfile::tempdir()?;
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let api = tokio::net::TcpListener::bind(options.api_addr.unwrap_or(any)).await?;
        let git = tokio::net::TcpListener::bind(options.git_addr.unwrap_or(any)).await?;
        let blob = tokio::net::TcpListener::bind(options.blob_addr.unwrap_or(any)).await?;
        let (api_addr, git_addr, blob_addr) = (api.local_addr()?, git.local_addr()?, blob.local_addr()?);
        let prefix = options.api_prefix.trim_end_matches('/').to_owned();
        let shared = Arc::new(Shared {
            world: Mutex::new(World::default()),
            root: root.path().to_path_buf(),
            urls: shapes::Urls { api: format!("http://{api_addr}{prefix}"), html: format!("http://{git_addr}") },
            blob_base: format!("http://{blob_addr}"),
            prefix: prefix.clone(),
            started: time::now(),
        });

        let rest = Router::new()
            .route("/app/installations/{installation_id}/access_tokens", post(api::create_access_token))
            .route("/installation/repositories", get(api::installation_repositories))
            .route("/repos/{owner}/{repo}", get(api::get_repo))
            .route("/repos/{owner}/{repo}/actions/runs", get(api::list_runs))
            .route("/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", get(api::list_jobs))
            .route("/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}/jobs", get(api::list_attempt_jobs))
            .route("/repos/{owner}/{repo}/actions/jobs/{job_id}", get(api::get_job))
            .route("/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", get(api::job_logs))
            .route("/repos/{owner}/{repo}/commits", get(api::list_commits))
            .route("/repos/{owner}/{repo}/commits/{*reference}", get(api::get_commit))
            .route("/repos/{owner}/{repo}/branches/{*branch}", get(api::get_branch))
            .route("/repos/{owner}/{repo}/pulls", get(api::list_pulls).post(api::create_pull))
            .route("/repos/{owner}/{repo}/pulls/{number}", get(api::get_pull).patch(api::update_pull))
            .route("/repos/{owner}/{repo}/issues/{number}/labels", get(api::issue_labels).post(api::issue_labels))
            .route("/repos/{owner}/{repo}/labels", get(api::list_labels).post(api::create_label))
            .route("/repos/{owner}/{repo}/check-runs", post(api::create_check_run))
            .route("/repos/{owner}/{repo}/check-runs/{id}", get(api::check_run).patch(api::check_run))
            .fallback(|| async { api::gh_error(StatusCode::NOT_FOUND, "Not Found") });
        let rest = if prefix.is_empty() { rest } else { Router::new().nest(&prefix, rest) };
        let api_router = rest
            .layer(axum::middleware::from_fn_with_state((shared.clone(), Host::Api), observe))
            .with_state(shared.clone());
        let blob_router = Router::new()
            .route("/job-logs/{key}", get(api::blob))
            .layer(axum::middleware::from_fn_with_state((shared.clone(), Host::Blob), observe))
            .with_state(shared.clone());
        let git_router = Router::new()
            .route("/{owner}/{repo}/{*rest}", get(api::git_http).post(api::git_http))
            .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
            .layer(axum::middleware::from_fn_with_state((shared.clone(), Host::Git), observe))
            .with_state(shared.clone());

        let serve = |listener: tokio::net::TcpListener, router: Router| {
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            })
        };
        let tasks = vec![serve(api, api_router), serve(git, git_router), serve(blob, blob_router)];
        Ok(Self { shared, api_addr, git_addr, blob_addr, tasks, _root: root })
    }

    /// REST root (with the prefix): the client's `api_base`.
    pub fn api_url(&self) -> String {
        format!("http://{}{}", self.api_addr, self.shared.prefix)
    }

    /// Git root: the client's `git_base`.
    pub fn git_url(&self) -> String {
        format!("http://{}", self.git_addr)
    }

    /// Blob host root.
    pub fn blob_url(&self) -> String {
        format!("http://{}", self.blob_addr)
    }

    /// Where `owner/name`'s bare repository lives.
    pub fn repo_path(&self, full_name: &str) -> PathBuf {
        git::repo_dir(&self.shared.root, full_name)
    }

    // -----------------------------------------------------------------------------------------------------
    // Seeding

    /// Registers a GitHub App by id, slug and RS256 public key (PEM).
    pub fn add_app(&self, app_id: u64, slug: &str, public_pem: &str) {
        self.world().apps.insert(app_id, App { id: app_id, slug: slug.to_owned(), public_pem: public_pem.to_owned() });
    }

    /// An installation of `app_id` with access to `repos` (`owner/name`).
    pub fn add_installation(&self, installation_id: u64, app_id: u64, repos: &[&str]) {
        let repos: BTreeSet<String> = repos.iter().map(|r| (*r).to_owned()).collect();
        self.world().installations.insert(installation_id, Installation { app_id, repos });
    }

    /// Takes a repository out of an installation: its token then gets 404s for it.
    pub fn remove_from_installation(&self, installation_id: u64, full_name: &str) {
        if let Some(i) = self.world().installations.get_mut(&installation_id) {
            i.repos.remove(full_name);
        }
    }

    /// A plain token (PAT or `GITHUB_TOKEN`) for `login`, which can see every repository.
    pub fn add_plain_token(&self, token: &str, login: &str) {
        let mut world = self.world();
        world.tokens.insert(
            token.to_owned(),
            TokenInfo { kind: TokenKind::Plain { login: login.to_owned() }, expires_at: None, revoked: false },
        );
        world.issued.push(token.to_owned());
        world.login_id(login);
    }

    /// Maps a commit email to a GitHub login (commit `author`/`committer` accounts).
    pub fn add_user(&self, login: &str, email: &str) {
        let mut world = self.world();
        world.login_id(login);
        world.users.insert(email.to_owned(), login.to_owned());
    }

    /// Creates `owner/name` as an empty bare repository whose default branch is `default_branch`.
    pub fn add_repo(&self, full_name: &str, default_branch: &str) -> Result<(), String> {
        let (owner, name) = full_name.split_once('/').ok_or_else(|| format!("{full_name:?} is not owner/name"))?;
        let dir = self.repo_path(full_name);
        git::init_bare(&dir, default_branch)?;
        let mut world = self.world();
        let id = world.next_id();
        let owner_id = world.login_id(owner);
        world.repos.insert(
            full_name.to_owned(),
            RepoState {
                id,
                owner: owner.to_owned(),
                name: name.to_owned(),
                owner_id,
                default_branch: default_branch.to_owned(),
                private: true,
                created_at: self.shared.started,
                labels: Vec::new(),
                pulls: Vec::new(),
                check_runs: Vec::new(),
                runs: BTreeMap::new(),
            },
        );
        Ok(())
    }

    /// Commits `files` (path, content) onto `branch` of `owner/name` (creating the branch) with
    /// `author` = (name, email); returns the sha.
    pub fn commit(
        &self,
        full_name: &str,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
        author: (&str, &str),
    ) -> Result<String, String> {
        git::commit_files(&self.repo_path(full_name), branch, files, message, author)
    }

    /// The head of a branch in the bare repository (what a push left there).
    pub fn branch_head(&self, full_name: &str, branch: &str) -> Option<String> {
        let r = format!("refs/heads/{branch}");
        git::git_sync(&self.repo_path(full_name), &["rev-parse", "--verify", "--quiet", &r], &[], None).ok()
    }

    /// A workflow run of `owner/name` with its jobs per attempt.
    pub fn add_run(&self, full_name: &str, run: RunSpec) {
        if let Some(r) = self.world().repos.get_mut(full_name) {
            r.runs.insert(run.id, run);
        }
    }

    /// The log of job `job_id` of `owner/name`.
    pub fn set_job_log(&self, full_name: &str, job_id: u64, log: impl Into<Vec<u8>>) {
        self.world().logs.insert(job_id, (full_name.to_owned(), log.into()));
    }

    // -----------------------------------------------------------------------------------------------------
    // Knobs

    /// The next `n` calls of `route` get `fault` instead of an answer.
    pub fn fail_next(&self, route: Route, n: usize, fault: Fault) {
        let mut world = self.world();
        let queue = world.faults.entry(route).or_default();
        queue.extend(std::iter::repeat_n(fault, n));
    }

    /// Adds `latency` before every answer of `route`.
    pub fn set_latency(&self, route: Route, latency: Duration) {
        self.world().latency.insert(route, latency);
    }

    /// Adds `latency` before every answer of `method` on `route` (`POST` on [`Route::Pulls`] delays only the
    /// creation of pull requests), instead of the route's own latency; zero removes it.
    pub fn set_method_latency(&self, route: Route, method: &str, latency: Duration) {
        let key = (route, method.to_ascii_uppercase());
        let mut world = self.world();
        if latency.is_zero() {
            world.method_latency.remove(&key);
        } else {
            world.method_latency.insert(key, latency);
        }
    }

    /// Every API token is out of primary quota until `reset_in` from now (403, `x-ratelimit-remaining: 0`).
    pub fn exhaust_primary_limit(&self, reset_in: Duration) {
        self.world().exhausted_until = Some(time::now() + reset_in.as_secs().max(1));
    }

    /// Revokes a token: it gets 401 `Bad credentials` from then on.
    pub fn revoke_token(&self, token: &str) {
        if let Some(t) = self.world().tokens.get_mut(token) {
            t.revoked = true;
        }
    }

    // -----------------------------------------------------------------------------------------------------
    // Inspection

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.world().calls.clone()
    }

    /// The calls of one route.
    pub fn calls_to(&self, route: Route) -> Vec<RecordedCall> {
        self.world().calls.iter().filter(|c| c.route == route).cloned().collect()
    }

    pub fn clear_calls(&self) {
        self.world().calls.clear();
    }

    /// Every token the fake minted or was given, for "no token leaked" assertions.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.world().issued.clone()
    }

    /// Installation tokens minted so far, oldest first.
    pub fn installation_tokens(&self) -> Vec<String> {
        let world = self.world();
        world.issued.iter().filter(|t| t.starts_with("ghs_")).cloned().collect()
    }

    /// `(number, title, head, base, open, labels)` of the pull requests of `owner/name`.
    pub fn pulls(&self, full_name: &str) -> Vec<(u64, String, String, String, bool, Vec<String>)> {
        let world = self.world();
        world
            .repos
            .get(full_name)
            .map(|r| {
                r.pulls
                    .iter()
                    .map(|p| (p.number, p.title.clone(), p.head.clone(), p.base.clone(), p.open, p.labels.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `(name, status, conclusion, title)` of the check runs of `owner/name`.
    pub fn check_runs(&self, full_name: &str) -> Vec<(String, String, Option<String>, Option<String>)> {
        let world = self.world();
        world
            .repos
            .get(full_name)
            .map(|r| {
                r.check_runs
                    .iter()
                    .map(|c| (c.name.clone(), c.status.clone(), c.conclusion.clone(), c.title.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Names of the labels of `owner/name`.
    pub fn labels(&self, full_name: &str) -> Vec<String> {
        let world = self.world();
        world.repos.get(full_name).map(|r| r.labels.iter().map(|l| l.name.clone()).collect()).unwrap_or_default()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.shared.world()
    }

    /// The temp dir holding the bare repositories.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }
}

/// Records the call, applies latency and faults, and adds GitHub's rate-limit headers to API answers.
async fn observe(State((shared, host)): State<(Arc<Shared>, Host)>, req: Request, next: Next) -> Response {
    let full_path = req.uri().path().to_owned();
    let path = match host {
        Host::Api => full_path.strip_prefix(shared.prefix.as_str()).unwrap_or(&full_path).to_owned(),
        _ => full_path,
    };
    let route = Route::classify(host, &path);
    let auth = api::seen_auth(req.headers());
    let token = auth.token().map(str::to_owned);
    let (index, latency, fault, exhausted) = {
        let mut world = shared.world();
        world.calls.push(RecordedCall {
            host,
            route,
            method: req.method().to_string(),
            path,
            query: req.uri().query().unwrap_or("").to_owned(),
            auth,
            status: 0,
        });
        let fault = world.faults.get_mut(&route).and_then(|q| q.pop_front());
        let exhausted = world.exhausted_until.filter(|until| *until > time::now() && host == Host::Api);
        let latency = world
            .method_latency
            .get(&(route, req.method().as_str().to_owned()))
            .or_else(|| world.latency.get(&route))
            .copied();
        (world.calls.len() - 1, latency, fault, exhausted)
    };
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let t = time::now();
    let window_reset = (t / 3600 + 1) * 3600;
    let mut resp = match (fault, exhausted) {
        (Some(fault), _) => fault_response(&fault, t, window_reset),
        (None, Some(until)) if route != Route::AppToken => {
            let mut resp = api::gh_error(StatusCode::FORBIDDEN, "API rate limit exceeded for installation.");
            set_limit_headers(&mut resp, 0, until);
            resp
        }
        _ => {
            let mut resp = next.run(req).await;
            if host == Host::Api {
                let used = token.map(|t| {
                    let mut world = shared.world();
                    let n = world.used.entry(t).or_default();
                    *n += 1;
                    *n
                });
                set_limit_headers(&mut resp, 5000u64.saturating_sub(used.unwrap_or(0)), window_reset);
            }
            resp
        }
    };
    if host == Host::Api {
        resp.headers_mut().insert("x-github-api-version-selected", HeaderValue::from_static("2022-11-28"));
    }
    if let Some(call) = shared.world().calls.get_mut(index) {
        call.status = resp.status().as_u16();
    }
    resp
}

fn set_limit_headers(resp: &mut Response, remaining: u64, reset: u64) {
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", 5000u64.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-used", (5000 - remaining.min(5000)).to_string()),
        ("x-ratelimit-reset", reset.to_string()),
        ("x-ratelimit-resource", "core".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
}

fn fault_response(fault: &Fault, now: u64, window_reset: u64) -> Response {
    match fault {
        Fault::Status(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = api::gh_error(status, status.canonical_reason().unwrap_or("Error"));
            set_limit_headers(&mut resp, 4000, window_reset);
            resp
        }
        Fault::SecondaryLimit { status, retry_after_secs } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::FORBIDDEN);
            let mut resp = api::gh_error(
                status,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            set_limit_headers(&mut resp, 4000, window_reset);
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
            resp
        }
        Fault::PrimaryLimit { reset_in_secs } => {
            let mut resp = api::gh_error(StatusCode::FORBIDDEN, "API rate limit exceeded for installation.");
            set_limit_headers(&mut resp, 0, now + reset_in_secs);
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_classify() {
        let c = |p| Route::classify(Host::Api, p);
        assert_eq!(c("/app/installations/1/access_tokens"), Route::AppToken);
        assert_eq!(c("/repos/o/r"), Route::Repo);
        assert_eq!(c("/repos/o/r/actions/jobs/5/logs"), Route::JobLog);
        assert_eq!(c("/repos/o/r/actions/runs/5/attempts/1/jobs"), Route::Jobs);
        assert_eq!(c("/repos/o/r/branches/a/b"), Route::Branches);
        assert_eq!(c("/repos/o/r/issues/3/labels"), Route::IssueLabels);
        assert_eq!(c("/repos/o/r/check-runs/3"), Route::CheckRuns);
        assert_eq!(c("/nope"), Route::Unknown);
        assert_eq!(Route::classify(Host::Git, "/o/r.git/info/refs"), Route::Git);
    }
}
