//! The GitHub client of sre-agent: authentication (GitHub App or a plain token), the REST calls the agent
//! makes, bounded job-log downloads, git CLI credentials, rate-limit handling, and a client span plus metrics
//! for every HTTP attempt.
//!
//! # Why a thin reqwest client and not octocrab
//! octocrab (pinned in the shared notes) was the expected choice. This crate uses reqwest (already a workspace
//! dependency, hyper 1 / http 1, rustls with ring) and jsonwebtoken directly because what the agent needs
//! sits exactly where octocrab is opaque:
//! - the job-log download answers 302 to another host; it must be followed **without** `Authorization`,
//!   its signed query kept out of telemetry, and its body streamed through a size bound
//!   ([`log::LogCollector`]) instead of buffered whole;
//! - rate limits need one policy: `x-ratelimit-remaining: 0` waits for the reset, 403/429 with
//!   `retry-after` waits and retries, each bounded and otherwise a typed error; 5xx and connection errors
//!   retry with backoff; octocrab's `retry` layer retries on its own terms and hides the headers;
//! - one token refresh on 401, the 404-versus-not-accessible probe, and a client span and metric per
//!   attempt with a bounded `endpoint` label need a hook around each attempt;
//! - a small, typed surface (about fifteen calls) with our own structs costs less than octocrab's
//!   models (and its 2.5-minute cold build).
//!
//! # Layout
//! - [`args`] — [`GithubArgs`], the flags and variables (`GITHUB_APP_ID`, `GITHUB_PRIVATE_KEY_FILE`,
//!   `GITHUB_TOKEN`, `SRE_GITHUB_API_URL`, `SRE_GITHUB_GIT_URL`, `SRE_GITHUB_BOT_LOGIN`,
//!   `SRE_GITHUB_BOT_EMAIL`) a binary flattens into its config, giving a [`GithubConfig`] and the
//!   [`BotIdentity`];
//! - [`config`] — [`GithubConfig`] (base URLs, [`Auth`], timeouts, [`RetryPolicy`]) as plain values;
//! - [`client`] — [`GithubClient`] (shared connection pool, installation-token cache, rate-limit state) and
//!   [`Session`] (one credential); every attempt goes through one executor;
//! - [`api`] — the calls, as [`Session`] methods;
//! - [`types`] — request/response structs with just the fields used;
//! - [`log`] — bounded job logs and the [`LineFilter`] hook;
//! - [`git`] — [`GitCredentials`] for clone/fetch/push;
//! - [`metrics`] — [`GithubMetrics`] and the bounded [`Endpoint`] / [`StatusClass`] label sets;
//! - [`error`] — [`GithubError`].
//!
//! # Never
//! No token or JWT in a URL, a span field, a log line or an error message ([`SecretToken`] has a redacted
//! `Debug` and no `Display`; header values are marked sensitive); no query string in `url.full`; no
//! credentials to the log-download host; no redirect followed automatically.
//!
//! # Draft pull requests
//! Pull requests can be opened as drafts ([`NewPullRequest::draft`]); turning a draft into a ready pull
//! request (and back) is GraphQL-only on GitHub (`markPullRequestReadyForReview`), not done here.

pub mod api;
pub mod args;
pub mod client;
pub mod config;
pub mod error;
pub mod git;
pub mod log;
pub mod metrics;
pub mod time;
pub mod types;

pub use args::{Backend, BotIdentity, GithubArgs, TokenArg};
pub use client::{GithubClient, Session};
pub use config::{AppCredentials, Auth, GithubConfig, RetryPolicy, SecretToken};
pub use error::{GithubError, ValidationDetail};
pub use git::GitCredentials;
pub use log::{ErrorLines, JobLog, LineFilter, LogCollector, LogLimits, LogLine};
pub use metrics::{Endpoint, GithubMetrics, StatusClass};
pub use types::{
    Account, Branch, CheckConclusion, CheckOutput, CheckRun, CheckRunUpdate, Commit, CreatedPull, InstallationId, Job,
    JobsOf, Label, NewCheckRun, NewLabel, NewPullRequest, PullRequest, PullRequestUpdate, RepoRef, Repository,
    RunState, Step, WorkflowRun,
};
