//! The validator: applies a patch in a throwaway worktree and runs the repository's own tests in a sandbox.
//!
//! For each call: a worktree at `head_sha`; the diff applied (a diff that does not apply is a verdict, not an
//! error: `patch_applied=false`, `exit_code=-1`, git's message as `log_tail`); the test command detected at
//! the worktree root (a Makefile `test` target → `make test`; Cargo.toml → `cargo test --offline`;
//! package.json `scripts.test` → `npm test`; pyproject.toml / setup.py / pytest.ini / tests/ →
//! `python3 -m pytest -q`; go.mod → `go test ./...`; nothing → FAILED_PRECONDITION); the command run with
//! `sh -c` in the sandbox (`SRE_SANDBOX=auto|bwrap|none`, see [`sandbox`]; with `bwrap` and no usable
//! bubblewrap the service never reports SERVING), in its own process group with a clean environment, for at
//! most the request's `timeout_seconds` (or `SRE_VALIDATE_TIMEOUT_SECONDS`, default 300; capped at 3600),
//! after which the whole group is killed (`timed_out=true`). The last 8 KiB of combined stdout and stderr
//! come back as `log_tail`, which is never logged. `SRE_VALIDATE_CONCURRENCY` (default: CPUs) bounds the
//! test runs at once.
//!
//! Layout: `detect.rs` (test command detection and the output tail, pure), `sandbox.rs` (bubblewrap),
//! `runner.rs` (process group, combined output, timeout), `service.rs` (the `sre.v1.Validator` gRPC edge),
//! `main.rs` (process scaffold from sre-service-kit).

pub mod config;
pub mod detect;
pub mod error;
pub mod runner;
pub mod sandbox;
pub mod service;

pub use config::Config;
pub use service::{ValidatorConfig, ValidatorService, build};
