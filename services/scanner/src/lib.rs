//! The scanner: runs the real security scanners over the patched tree and over head_sha alone, and tells the
//! orchestrator whether what the **patch introduces** may become a PR (docs/scanning.md).
//!
//! For each call: a throwaway worktree at `head_sha` with the diff applied (the patched tree) and, unless
//! cached, one at `head_sha` alone (the baseline); then side by side, each bounded by
//! `SRE_SCAN_TIMEOUT_SECONDS` (default 120, the tool's whole process group is killed on timeout):
//! - gitleaks (`gitleaks dir`, redacted, built-in rules only: repository allowlists, `.gitleaksignore` and
//!   `gitleaks:allow` comments are ignored so a patch cannot silence it); every leak is a HIGH finding;
//! - trivy (`trivy fs --scanners $SRE_TRIVY_SCANNERS`, default `secret,misconfig`, offline: no DB or check
//!   update, no version check, no telemetry);
//! - sbom: syft (`syft scan dir:` as CycloneDX JSON, whose package count is `sbom_components`), then
//!   `trivy sbom --scanners license` over it (offline): forbidden, restricted, reciprocal and unknown
//!   licenses are `scanner="sbom"` findings.
//!
//! Findings are compared by fingerprint (`fingerprint.rs`: scanner, rule, path, package, the content of the
//! line, never its number), so a finding already at head_sha is **pre-existing**: reported, counted, never
//! blocking. Introduced findings block when they are secrets, HIGH/CRITICAL trivy findings or forbidden
//! licenses (`parse::is_blocking`), and make the patch need review otherwise. Baselines are cached in memory
//! per repository, commit, scanner, arguments and tool identity/version (`cache.rs`, `SRE_SCAN_CACHE_ENTRIES`).
//!
//! Fail closed: a scanner that is missing, crashes, times out or prints unreadable output on the patched tree
//! blocks the patch with the reason (counted `reason="error"`, `"unknown"` for a signal we did not send, or
//! `"timeout"`); `SRE_SCANNERS_OPTIONAL=1` makes it need review instead, logged at WARN at start and on every
//! call and reported as `scanners_optional`. A failed baseline only means nothing is proven pre-existing.
//!
//! Metrics: `sre_agent_scan_findings_total{scanner,severity,origin}`, `sre_agent_scan_fail_total{scanner,reason}`,
//! `sre_agent_scan_baseline_total{scanner,result}`. Secrets never leave the tools' reports: only rule IDs,
//! paths, lines, severities and rule titles are kept; a line's content is only hashed, under a per-process key.
//!
//! Layout: `parse.rs` (report parsers and the blocking rule, pure), `fingerprint.rs` (fingerprints and the
//! introduced/pre-existing comparison), `cache.rs` (the baseline cache), `tools.rs` (finding, identifying and
//! running a tool with a timeout), `events.rs` (findings, failures and cache lookups, logged and counted
//! together), `config.rs`, `error.rs`, `service.rs` (the `sre.v1.Scanner` gRPC edge and the verdict),
//! `main.rs`.

pub mod cache;
pub mod config;
pub mod error;
pub mod events;
pub mod fingerprint;
pub mod parse;
pub mod service;
pub mod tools;

pub use config::Config;
pub use service::{ScannerConfig, ScannerService, build};
