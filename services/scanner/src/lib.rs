//! The scanner: runs the real security scanners over the patched tree and tells the orchestrator whether the
//! patch may become a PR.
//!
//! For each call: a throwaway worktree at `head_sha`, the diff applied, then side by side, each bounded by
//! `SRE_SCAN_TIMEOUT_SECONDS` (default 120, the tool's whole process group is killed on timeout):
//! - gitleaks (`gitleaks dir`, redacted, built-in rules only: repository allowlists, `.gitleaksignore` and
//!   `gitleaks:allow` comments are ignored so a patch cannot silence it); every leak is a HIGH finding;
//! - trivy (`trivy fs --scanners $SRE_TRIVY_SCANNERS`, default `secret,misconfig`, offline: no DB or check
//!   update, no version check, no telemetry);
//! - syft (`syft scan dir:` as CycloneDX JSON), whose component count is `sbom_components` (no findings).
//!
//! A tool missing from `PATH` is reported as "skipped" and counted as a failure (`reason="error"`), never
//! fatal; a tool killed by a signal we did not send counts `reason="unknown"`. The run blocks on any secret (any gitleaks finding, any trivy secret) or any HIGH/CRITICAL finding.
//! Metrics: `sre_agent_scan_findings_total{scanner,severity}`, `sre_agent_scan_fail_total{scanner,reason}`.
//! Secrets never leave the tools' reports: only rule IDs, paths, lines, severities and rule titles are kept.
//!
//! Layout: `parse.rs` (report parsers and the blocking rule, pure), `tools.rs` (finding and running a tool
//! with a timeout), `events.rs` (findings and failures, logged and counted together), `config.rs`,
//! `error.rs`, `service.rs` (the `sre.v1.Scanner` gRPC edge), `main.rs`.

pub mod config;
pub mod error;
pub mod events;
pub mod parse;
pub mod service;
pub mod tools;

pub use config::Config;
pub use service::{ScannerConfig, ScannerService, build};
