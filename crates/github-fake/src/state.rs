//! The fake's in-memory world. Commits and branches are not here: they live in real bare repositories
//! ([`crate::git`]), so a push through git smart HTTP shows up in the REST answers at once.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use crate::Route;

/// Which listener a call reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// The REST API.
    Api,
    /// The log blob host (redirect target of the job-logs endpoint).
    Blob,
    /// Git smart HTTP.
    Git,
}

/// The credentials a call carried, as the fake saw them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeenAuth {
    None,
    /// `Authorization: Bearer X` or `token X`.
    Bearer(String),
    /// `Authorization: Basic` with user and password.
    Basic {
        user: String,
        password: String,
    },
    /// Anything else in `Authorization`.
    Other(String),
}

impl SeenAuth {
    pub fn is_present(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// The token carried, whichever scheme.
    pub fn token(&self) -> Option<&str> {
        match self {
            Self::Bearer(t) => Some(t),
            Self::Basic { password, .. } => Some(password),
            _ => None,
        }
    }
}

/// One request the fake received, in arrival order.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    pub host: Host,
    pub route: Route,
    pub method: String,
    /// Path without the API prefix (`/repos/o/r/pulls`).
    pub path: String,
    /// Raw query string (empty when none).
    pub query: String,
    pub auth: SeenAuth,
    /// Status answered (0 while in flight).
    pub status: u16,
}

/// A fault to answer instead of the real handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// That status with a GitHub error body (`{"message": ...}`).
    Status(u16),
    /// A secondary rate limit: `status` (403 or 429) with `retry-after: secs`.
    SecondaryLimit { status: u16, retry_after_secs: u64 },
    /// An exhausted primary limit: 403, `x-ratelimit-remaining: 0`, reset `reset_in_secs` from now.
    PrimaryLimit { reset_in_secs: u64 },
}

#[derive(Clone, Debug)]
pub(crate) struct App {
    pub id: u64,
    pub slug: String,
    pub public_pem: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Installation {
    pub app_id: u64,
    pub repos: BTreeSet<String>,
}

#[derive(Clone, Debug)]
pub(crate) enum TokenKind {
    Installation(u64),
    Plain { login: String },
}

#[derive(Clone, Debug)]
pub(crate) struct TokenInfo {
    pub kind: TokenKind,
    pub expires_at: Option<u64>,
    pub revoked: bool,
}

/// Who a valid API token authenticates.
#[derive(Clone, Debug)]
pub(crate) enum Principal {
    Installation { id: u64, app_id: u64 },
    User { login: String },
}

#[derive(Clone, Debug)]
pub(crate) struct LabelState {
    pub id: u64,
    pub name: String,
    pub color: String,
    pub description: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct PullState {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub head: String,
    pub base: String,
    pub draft: bool,
    pub open: bool,
    pub author: Principal,
    pub labels: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
    pub closed_at: Option<u64>,
}

#[derive(Clone, Debug)]
pub(crate) struct CheckRunState {
    pub id: u64,
    pub app_id: u64,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub details_url: Option<String>,
    pub external_id: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub text: Option<String>,
    pub started_at: u64,
    pub completed_at: Option<u64>,
}

/// A job as a test seeds it.
#[derive(Clone, Debug)]
pub struct JobSpec {
    pub id: u64,
    pub name: String,
    /// `completed`, `in_progress`, `queued`, ...
    pub status: String,
    pub conclusion: Option<String>,
    /// `(name, conclusion)` per step, numbered from 1.
    pub steps: Vec<(String, Option<String>)>,
}

impl JobSpec {
    /// A completed job with the given conclusion and steps.
    pub fn completed(id: u64, name: &str, conclusion: &str, steps: &[(&str, &str)]) -> Self {
        Self {
            id,
            name: name.to_owned(),
            status: "completed".to_owned(),
            conclusion: Some(conclusion.to_owned()),
            steps: steps.iter().map(|(n, c)| ((*n).to_owned(), Some((*c).to_owned()))).collect(),
        }
    }
}

/// A workflow run as a test seeds it: its jobs per attempt (attempt 1 first).
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub id: u64,
    /// The check suite GitHub made for the run (its `check_suite` webhooks carry this id).
    pub check_suite_id: u64,
    pub workflow_name: String,
    pub head_sha: String,
    pub head_branch: String,
    pub attempts: Vec<Vec<JobSpec>>,
}

#[derive(Clone, Debug)]
pub(crate) struct RepoState {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub owner_id: u64,
    pub default_branch: String,
    pub private: bool,
    pub created_at: u64,
    pub labels: Vec<LabelState>,
    pub pulls: Vec<PullState>,
    pub check_runs: Vec<CheckRunState>,
    pub runs: BTreeMap<u64, RunSpec>,
}

#[derive(Clone, Debug)]
pub(crate) struct Blob {
    pub job_id: u64,
    pub sig: String,
    pub expires_at: u64,
}

/// Everything behind the fake's one mutex.
#[derive(Default)]
pub(crate) struct World {
    pub apps: HashMap<u64, App>,
    pub installations: HashMap<u64, Installation>,
    pub tokens: HashMap<String, TokenInfo>,
    /// Every token the fake ever handed out or was given, for leak checks.
    pub issued: Vec<String>,
    /// Commit email → GitHub login.
    pub users: HashMap<String, String>,
    pub logins: BTreeMap<String, u64>,
    pub repos: BTreeMap<String, RepoState>,
    /// job id → (repo full name, logs).
    pub logs: HashMap<u64, (String, Vec<u8>)>,
    pub blobs: HashMap<String, Blob>,
    pub next_id: u64,
    pub calls: Vec<RecordedCall>,
    pub faults: HashMap<Route, VecDeque<Fault>>,
    pub latency: HashMap<Route, Duration>,
    /// Latency of one method of a route (`POST` pulls: creating a PR), over the route's own.
    pub method_latency: HashMap<(Route, String), Duration>,
    /// Primary limit exhausted until this unix second (every token).
    pub exhausted_until: Option<u64>,
    /// Requests per token in the current hour (for `x-ratelimit-*`).
    pub used: HashMap<String, u64>,
}

impl World {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        1000 + self.next_id
    }

    /// The numeric id of an account login, created on first use.
    pub fn login_id(&mut self, login: &str) -> u64 {
        if let Some(id) = self.logins.get(login) {
            return *id;
        }
        let id = self.next_id();
        self.logins.insert(login.to_owned(), id);
        id
    }

    /// Resolves an API token; `None` for unknown, expired or revoked tokens.
    pub fn principal(&self, token: &str, now: u64) -> Option<Principal> {
        let info = self.tokens.get(token)?;
        if info.revoked || info.expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        Some(match &info.kind {
            TokenKind::Installation(id) => {
                let inst = self.installations.get(id)?;
                Principal::Installation { id: *id, app_id: inst.app_id }
            }
            TokenKind::Plain { login } => Principal::User { login: login.clone() },
        })
    }

    pub fn can_see(&self, who: &Principal, full_name: &str) -> bool {
        if !self.repos.contains_key(full_name) {
            return false;
        }
        match who {
            Principal::Installation { id, .. } => {
                self.installations.get(id).is_some_and(|i| i.repos.contains(full_name))
            }
            Principal::User { .. } => true,
        }
    }

    /// `slug[bot]` for an installation, the login for a user.
    pub fn login_of(&self, who: &Principal) -> String {
        match who {
            Principal::Installation { app_id, .. } => {
                let slug = self.apps.get(app_id).map(|a| a.slug.clone()).unwrap_or_else(|| "app".to_owned());
                format!("{slug}[bot]")
            }
            Principal::User { login } => login.clone(),
        }
    }
}
