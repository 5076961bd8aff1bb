//! The pr service: turns a validated patch into a pull request, **one per failure** (`context.run_key`).
//!
//! Two backends behind one trait ([`backend::PrBackend`]), chosen by `SRE_PR_BACKEND`:
//! - `local` (the default, [`local`]): the repository under the repos dir is the remote; the branch is
//!   pushed to it and pull requests are records in `<its git dir>/sre-agent/pulls.json` (numbers from 1);
//! - `github` ([`github`], the calls in order there and in docs/github.md): the repository cache under the
//!   repos dir (`SRE_CACHE_MAX_BYTES`, `SRE_CACHE_SHALLOW`), the branch pushed to GitHub with the installation
//!   token of `failure.installation_id` (as an `http.extraHeader` in git's environment, never in a URL), the
//!   pull request and its labels through the REST API. Needs the GitHub configuration (`GithubArgs`: `GITHUB_APP_ID` +
//!   `GITHUB_PRIVATE_KEY_FILE`, or `GITHUB_TOKEN`; `SRE_GITHUB_API_URL`, `SRE_GITHUB_GIT_URL`,
//!   `SRE_GITHUB_BOT_LOGIN`, `SRE_GITHUB_BOT_EMAIL`), else the process exits with code 2.
//!
//! Semantics both share ([`publish`]): the branch is `sre-agent/<context.category or unknown>/<first 10 hex
//! digits of SHA-256(run_key)>`; the diff is applied on `head_sha` in a throwaway worktree (hooks off, a
//! change under `.github/` refused) and committed as the agent (`sre-agent
//! <sre-agent@users.noreply.localhost>` locally, the bot identity on GitHub). A retried or re-delivered run
//! updates its branch and pull request instead of opening a second: the same tree on the same base is
//! UNCHANGED; a branch holding only the agent's commits gets the new commit (`--force-with-lease` to the
//! old tip): UPDATED; a branch with anyone else's commit is left alone: REFUSED with the reason; so is a
//! failure whose pull request was closed (never reopened). A missing base is refused before any push. Title and
//! body are bounded (256 characters, 60 KiB); labels are `sre-agent` plus `safe` or `needs-review` (an
//! unknown label asks for review); `draft` opens a draft (an existing pull request's draft state is kept and
//! reported). The base is `base_branch`, else `failure.head_branch`, else the repository's default branch.
//!
//! Metrics ([`events`]): `sre_agent_pr_created_total{label}` (CREATED only) and
//! `sre_agent_pr_updates_total{action}`, plus the GitHub client's `sre_agent_github_*` families; the server
//! span gets `pr_label`. The PR URL is returned, never logged; nor is the diff, a token, or the refusal
//! reason (it names people).
//!
//! Layout: `backend.rs` (the trait and the checked request), `publish.rs` (the git steps), `local.rs`,
//! `github.rs`, `store.rs` (the local record file and the naming rules), `events.rs`, `config.rs`,
//! `error.rs`, `service.rs` (the `sre.v1.PullRequests` gRPC edge and `build`), `main.rs`.

pub mod backend;
pub mod config;
pub mod error;
pub mod events;
pub mod github;
pub mod local;
pub mod publish;
pub mod service;
pub mod store;

pub use backend::{Opened, PrBackend, PrRequest};
pub use config::Config;
pub use events::PrMetrics;
pub use github::GithubBackend;
pub use local::LocalBackend;
pub use service::{PullRequestService, build};
