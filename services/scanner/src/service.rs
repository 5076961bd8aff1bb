//! The `sre.v1.Scanner` gRPC edge: a worktree of the patched tree, the three scanners side by side, their
//! reports parsed into findings, counted and summarised.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sre_domain::{ScanFailReason as FailReason, Severity};
use sre_gitwork::Repo;
use sre_proto::scanner_server::{Scanner, ScannerServer};
use sre_proto::{Finding, RunScansRequest, RunScansResponse, ScannerRun};
use sre_service_kit::grpc::Built;
use sre_service_kit::require_context;
use sre_telemetry::{Emit, SharedRegistry};
use tonic::{Request, Response, Status};

use crate::config::Config;
use crate::error::ScannerError;
use crate::events::{FindingsFound, ScanFailed, ScanMetrics};
use crate::parse::{self, GITLEAKS, SBOM, TRIVY};
use crate::tools::{self, RunError};

/// Findings returned per call, at most; every finding is still counted in the metrics.
const MAX_FINDINGS: usize = 500;
/// gitleaks configuration: the built-in rules only, so a patch cannot add an allowlist to the tree it is
/// scanned in.
const GITLEAKS_CONFIG: &str = "title = \"sre-agent: gitleaks built-in rules\"\n[extend]\nuseDefault = true\n";

/// What the scanner runs with.
#[derive(Clone, Debug)]
pub struct ScannerConfig {
    /// Per tool.
    pub timeout: Duration,
    /// The trivy `--scanners` list.
    pub trivy_scanners: String,
    /// Where the tools are looked up (`PATH`), on every call so a tool installed later is picked up.
    pub path_env: OsString,
}

/// One tool's outcome.
struct ToolOutcome {
    run: ScannerRun,
    findings: Vec<Finding>,
    sbom_components: u32,
    fail: Option<FailReason>,
}

impl ToolOutcome {
    fn new(scanner: &'static str, status: &str, detail: String, elapsed: Duration) -> Self {
        Self {
            run: ScannerRun {
                scanner: scanner.to_owned(),
                status: status.to_owned(),
                detail,
                duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            },
            findings: Vec::new(),
            sbom_components: 0,
            fail: None,
        }
    }

    fn skipped(scanner: &'static str, tool: &str) -> Self {
        let mut o =
            Self::new(scanner, "skipped", format!("{tool} is not installed (not found on PATH)"), Duration::ZERO);
        o.fail = Some(FailReason::Error);
        o
    }

    fn failed(scanner: &'static str, reason: FailReason, detail: String, elapsed: Duration) -> Self {
        let status = if reason == FailReason::Timeout { "timeout" } else { "error" };
        let mut o = Self::new(scanner, status, detail, elapsed);
        o.fail = Some(reason);
        o
    }

    fn ok(scanner: &'static str, findings: Vec<Finding>, elapsed: Duration) -> Self {
        let mut o = Self::new(scanner, "ok", summary(&findings), elapsed);
        o.findings = findings;
        o
    }
}

/// "3 finding(s): HIGH=2 LOW=1", or "no findings".
fn summary(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "no findings".to_owned();
    }
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        *by.entry(Severity::from(f.severity()).as_str()).or_default() += 1;
    }
    let counts: Vec<String> = by.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{} finding(s): {}", findings.len(), counts.join(" "))
}

/// The outcome of a tool that ran: its process result mapped to an outcome, or `parse` of its output.
fn outcome_of(
    scanner: &'static str,
    result: Result<std::process::Output, RunError>,
    elapsed: Duration,
    parse: impl FnOnce(&std::process::Output) -> Result<ToolOutcome, String>,
) -> ToolOutcome {
    match result {
        Err(err @ RunError::Timeout(_)) => ToolOutcome::failed(scanner, FailReason::Timeout, err.to_string(), elapsed),
        Err(err) => ToolOutcome::failed(scanner, FailReason::Error, err.to_string(), elapsed),
        // Killed by a signal it was not sent by us (the OOM killer, a crash): neither a timeout nor an error
        // the tool reported.
        Ok(out) if out.status.code().is_none() => {
            let detail = format!("terminated by {}", out.status);
            ToolOutcome::failed(scanner, FailReason::Unknown, detail, elapsed)
        }
        Ok(out) if !out.status.success() => {
            let detail = format!("exited with {}: {}", out.status, tools::last_line(&out.stderr));
            ToolOutcome::failed(scanner, FailReason::Error, detail, elapsed)
        }
        Ok(out) => {
            parse(&out).unwrap_or_else(|detail| ToolOutcome::failed(scanner, FailReason::Error, detail, elapsed))
        }
    }
}

pub struct ScannerService {
    repos_dir: PathBuf,
    config: ScannerConfig,
    metrics: ScanMetrics,
}

impl ScannerService {
    pub fn new(repos_dir: PathBuf, config: ScannerConfig, metrics: ScanMetrics) -> Self {
        Self { repos_dir, config, metrics }
    }

    fn tool(&self, name: &str) -> Option<PathBuf> {
        tools::which(name, &self.config.path_env)
    }

    /// A scratch directory outside the worktree (reports, config), used as the tools' working directory so
    /// no config or ignore file from the service's own directory applies.
    fn scratch() -> Result<tempfile::TempDir, String> {
        tempfile::Builder::new().prefix("sre-scan-").tempdir().map_err(|e| format!("scratch dir: {e}"))
    }

    async fn gitleaks(&self, wt: &Path) -> ToolOutcome {
        let Some(bin) = self.tool("gitleaks") else {
            return ToolOutcome::skipped(GITLEAKS, "gitleaks");
        };
        let start = Instant::now();
        let scratch = match Self::scratch() {
            Ok(d) => d,
            Err(e) => return ToolOutcome::failed(GITLEAKS, FailReason::Error, e, start.elapsed()),
        };
        let (report, cfg) = (scratch.path().join("gitleaks.json"), scratch.path().join("gitleaks.toml"));
        if let Err(e) = tokio::fs::write(&cfg, GITLEAKS_CONFIG).await {
            return ToolOutcome::failed(GITLEAKS, FailReason::Error, format!("config: {e}"), start.elapsed());
        }
        let mut args: Vec<OsString> = vec!["dir".into(), wt.into(), "--config".into(), cfg.into()];
        args.extend(["--gitleaks-ignore-path".into(), scratch.path().into(), "--ignore-gitleaks-allow".into()]);
        args.extend(["--report-format".into(), "json".into(), "--report-path".into(), report.clone().into()]);
        args.extend(["--redact", "--no-banner", "--no-color", "--exit-code", "0"].map(OsString::from));
        let result = tools::run(&bin, &args, scratch.path(), &[], self.config.timeout).await;
        let elapsed = start.elapsed();
        outcome_of(GITLEAKS, result, elapsed, |_| {
            let json = std::fs::read(&report).map_err(|e| format!("no report written: {e}"))?;
            let findings = parse::gitleaks(&json, wt).map_err(|e| e.to_string())?;
            Ok(ToolOutcome::ok(GITLEAKS, findings, elapsed))
        })
    }

    async fn trivy(&self, wt: &Path) -> ToolOutcome {
        let Some(bin) = self.tool("trivy") else {
            return ToolOutcome::skipped(TRIVY, "trivy");
        };
        let start = Instant::now();
        let scratch = match Self::scratch() {
            Ok(d) => d,
            Err(e) => return ToolOutcome::failed(TRIVY, FailReason::Error, e, start.elapsed()),
        };
        let mut args: Vec<OsString> = vec!["fs".into(), "--scanners".into(), self.config.trivy_scanners.clone().into()];
        args.extend(
            [
                "--skip-db-update",
                "--skip-check-update",
                "--skip-version-check",
                "--disable-telemetry",
                "--offline-scan",
                "--cache-backend",
                "memory",
                "--format",
                "json",
                "--quiet",
            ]
            .map(OsString::from),
        );
        args.push(wt.into());
        let result = tools::run(&bin, &args, scratch.path(), &[], self.config.timeout).await;
        let elapsed = start.elapsed();
        outcome_of(TRIVY, result, elapsed, |out| {
            let findings = parse::trivy(&out.stdout).map_err(|e| e.to_string())?;
            Ok(ToolOutcome::ok(TRIVY, findings, elapsed))
        })
    }

    async fn syft(&self, wt: &Path) -> ToolOutcome {
        let Some(bin) = self.tool("syft") else {
            return ToolOutcome::skipped(SBOM, "syft");
        };
        let start = Instant::now();
        let scratch = match Self::scratch() {
            Ok(d) => d,
            Err(e) => return ToolOutcome::failed(SBOM, FailReason::Error, e, start.elapsed()),
        };
        let mut target = OsString::from("dir:");
        target.push(wt);
        let args: Vec<OsString> = vec!["scan".into(), target, "-o".into(), "cyclonedx-json".into(), "-q".into()];
        let env = [("SYFT_CHECK_FOR_APP_UPDATE", "false")];
        let result = tools::run(&bin, &args, scratch.path(), &env, self.config.timeout).await;
        let elapsed = start.elapsed();
        outcome_of(SBOM, result, elapsed, |out| {
            let n = parse::sbom_components(&out.stdout).map_err(|e| e.to_string())?;
            let mut o = ToolOutcome::new(SBOM, "ok", format!("syft: {n} component(s)"), elapsed);
            o.sbom_components = n;
            Ok(o)
        })
    }

    /// Runs the three scanners side by side over `wt`, counts and logs each, and assembles the response.
    async fn scan(&self, wt: &Path) -> RunScansResponse {
        // A `.gitleaksignore` in the scanned root silences findings by fingerprint; the patch must not.
        let _ = tokio::fs::remove_file(wt.join(".gitleaksignore")).await;
        let (g, t, s) = tokio::join!(self.gitleaks(wt), self.trivy(wt), self.syft(wt));
        let mut resp = RunScansResponse::default();
        for o in [g, t, s] {
            let scanner = parse::scanner_of(&o.run.scanner);
            let mut by_severity: BTreeMap<Severity, u64> = BTreeMap::new();
            for f in &o.findings {
                *by_severity.entry(Severity::from(f.severity())).or_default() += 1;
            }
            for (severity, count) in by_severity {
                self.metrics.emit(FindingsFound { scanner, severity, count });
            }
            let blocking = o.findings.iter().filter(|f| parse::is_blocking(f)).count();
            if let Some(reason) = o.fail {
                self.metrics.emit(ScanFailed { scanner, reason, detail: &o.run.detail });
            } else {
                tracing::info!(
                    scanner = scanner.as_str(),
                    status = %o.run.status,
                    findings = o.findings.len(),
                    blocking_findings = blocking,
                    summary = %o.run.detail,
                    duration_ms = o.run.duration_ms,
                    "scanner finished"
                );
            }
            if blocking > 0 {
                let detail = format!("{blocking} blocking finding(s)");
                self.metrics.emit(ScanFailed { scanner, reason: FailReason::PolicyBlock, detail: &detail });
                resp.blocking = true;
            }
            resp.sbom_components = resp.sbom_components.max(o.sbom_components);
            resp.runs.push(o.run);
            resp.findings.extend(o.findings);
        }
        if resp.findings.len() > MAX_FINDINGS {
            tracing::warn!(findings = resp.findings.len(), kept = MAX_FINDINGS, "too many findings; list truncated");
            // Keep the most severe first.
            resp.findings.sort_by_key(|f| std::cmp::Reverse(rank(f)));
            resp.findings.truncate(MAX_FINDINGS);
        }
        resp
    }
}

fn rank(f: &Finding) -> u8 {
    use sre_proto::Severity;
    match f.severity() {
        Severity::Critical => 4,
        Severity::High => 3,
        Severity::Medium => 2,
        Severity::Low => 1,
        Severity::Unknown | Severity::Unspecified => 0,
    }
}

#[tonic::async_trait]
impl Scanner for ScannerService {
    async fn run_scans(&self, request: Request<RunScansRequest>) -> Result<Response<RunScansResponse>, Status> {
        let req = request.into_inner();
        let ctx = require_context(req.context.as_ref()).map_err(ScannerError::from)?;
        sre_service_kit::check_diff_size(&req.diff).map_err(ScannerError::from)?;
        let start = Instant::now();
        let repo = Repo::open(&self.repos_dir, &ctx.repo).map_err(ScannerError::from)?;
        let wt = repo.worktree(&ctx.head_sha).await.map_err(ScannerError::from)?;
        let result = async {
            if !req.diff.trim().is_empty() {
                wt.apply(&req.diff).await.map_err(|e| {
                    tracing::warn!(error = %e, "diff does not apply");
                    ScannerError::DiffDoesNotApply { sha: ctx.head_sha.clone(), message: e.to_string() }
                })?;
            }
            Ok::<_, ScannerError>(self.scan(wt.path()).await)
        }
        .await;
        wt.remove().await;
        let resp = result?;
        tracing::info!(
            findings = resp.findings.len(),
            blocking = resp.blocking,
            sbom_components = resp.sbom_components,
            duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            "scans finished"
        );
        Ok(Response::new(resp))
    }
}

/// Builds the service from its configuration (tools are looked up on `PATH`). Missing tools are not fatal:
/// each call reports them as "skipped" and counts a failure.
pub fn build(config: &Config, registry: &SharedRegistry) -> Result<Built, ScannerError> {
    let scanner = ScannerConfig {
        timeout: Duration::from_secs(config.scan_timeout_seconds),
        trivy_scanners: config.trivy_scanners.clone(),
        path_env: std::env::var_os("PATH").unwrap_or_default(),
    };
    for tool in ["gitleaks", "trivy", "syft"] {
        match tools::which(tool, &scanner.path_env) {
            Some(path) => tracing::info!(tool, path = %path.display(), "scanner tool found"),
            None => tracing::warn!(tool, "scanner tool not on PATH; its runs will be reported as skipped"),
        }
    }
    let service = ScannerService::new(config.data.repos_dir(), scanner, ScanMetrics::register(registry));
    Ok((tonic::service::Routes::new(ScannerServer::new(service)), Box::pin(sre_service_kit::git_ready())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_findings() {
        use sre_proto::Severity as Pb;
        let f = |s: Pb| Finding { severity: s.into(), ..Default::default() };
        assert_eq!(summary(&[]), "no findings");
        assert_eq!(summary(&[f(Pb::High), f(Pb::Low), f(Pb::High)]), "3 finding(s): HIGH=2 LOW=1");
    }
}
