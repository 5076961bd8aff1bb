//! The validator: proves a patch by re-running the CI step that failed, in the sandbox (sre-sandbox), on
//! head_sha without the patch (it must fail: the failure is reproduced) and with it (it must pass).
//!
//! For each call: the workflow files at head_sha (`.github/workflows/*.yml|yaml`, read from git objects) give
//! the job and the step the failure names ([`workflow`]: by step name, by command, or the job's last `run:`
//! step) and its command (`run:` with its shell, working directory and plain env); a step that needs secrets,
//! services, an action, another shell or an unresolvable `${{ }}` expression is refused (a verdict, not an
//! error). The step runs in a fresh worktree without the patch, then in a fresh worktree with it (a diff
//! that does not apply is the verdict `patch_failed`), then the request's test command, if any, with the
//! patch. With no step to re-run, the test command (configured, else detected: [`detect`]) runs with the
//! patch and the failure counts as not reproduced. [`verdict`] turns what ran into one of
//! `reproduced_and_fixed`, `not_reproduced`, `still_failing`, `refused`, `patch_failed`, `timeout`; the
//! response carries it with the evidence of every run (command, exit code, duration, timeout, output tail,
//! sandbox), and [`events`] logs and counts it (never a command's output). `timeout_seconds` (default
//! `SRE_VALIDATE_TIMEOUT_SECONDS`, 300; capped at 3600) is the budget of the whole validation;
//! `SRE_VALIDATE_CONCURRENCY` (default: CPUs) bounds the validations at once. The sandbox is proven at start
//! (`SRE_SANDBOX=required`, the default): without a working bubblewrap the process exits 2 with the reason.
//!
//! Layout: `workflow.rs` (the step and its command, pure), `verdict.rs` (the verdict, pure), `detect.rs`
//! (fallback test command, output tail), `service.rs` (the `sre.v1.Validator` gRPC edge), `events.rs`,
//! `config.rs`, `error.rs`, `main.rs` (process scaffold from sre-service-kit).

pub mod config;
pub mod detect;
pub mod error;
pub mod events;
pub mod service;
pub mod verdict;
pub mod workflow;

pub use config::Config;
pub use service::{ValidatorConfig, ValidatorService, build};
