//! The pr service: turns a validated patch into a pull request.
//!
//! Backend `local` (`SRE_PR_BACKEND`, the default and, for now, the only one: any other value stops the
//! process at start with a configuration error). For a call: the diff applied on `head_sha` in a throwaway
//! worktree and committed as `sre-agent <sre-agent@localhost>` (hooks skipped), the branch
//! `sre-agent/<first 12 [a-z0-9-] characters of run_id>` created at that commit in the repository (an existing
//! branch with another change is ALREADY_EXISTS), and the PR recorded in `<git dir>/sre-agent/pulls.json`
//! (numbers from 1, atomic rewrite, one writer at a time). Idempotent by `run_id`: a retried call returns
//! the PR already opened. Labels other than `safe` and `needs-review` are stored as `unknown`.
//! Metric: `sre_agent_pr_created_total{label}`; the server span gets `pr_label`. The PR URL
//! (`file://<repo>#<branch>`) is returned, never logged.
//!
//! Layout: `store.rs` (the record file and naming rules), `events.rs`, `config.rs`, `error.rs`,
//! `service.rs` (the `sre.v1.PullRequests` gRPC edge and the git steps), `main.rs`.

pub mod config;
pub mod error;
pub mod events;
pub mod service;
pub mod store;

pub use config::Config;
pub use events::PrMetrics;
pub use service::{PullRequestService, build};
