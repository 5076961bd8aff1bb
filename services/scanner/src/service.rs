//! The `sre.v1.Scanner` gRPC edge: the patched tree and head_sha alone (the baseline, cached per commit)
//! each scanned by the three scanners side by side, their findings compared by fingerprint, and the verdict:
//! blocked, needs review, or clean.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sre_domain::{ScanFailReason as FailReason, Severity};
use sre_gitwork::Repo;
use sre_proto::scanner_server::{Scanner, ScannerServer};
use sre_proto::{Finding, RunScansRequest, RunScansResponse, ScannerRun};
use sre_service_kit::grpc::Built;
use sre_service_kit::require_context;
use sre_telemetry::{Emit, SharedRegistry};
use tonic::{Request, Response, Status};

use crate::cache::{Baseline, BaselineCache, BaselineKey, Cell, MAX_CACHED_FINDINGS};
use crate::config::Config;
use crate::error::ScannerError;
use crate::events::{BaselineLookup, CacheResult, FindingsFound, Origin, ScanFailed, ScanMetrics};
use crate::fingerprint::{self, Fingerprint, Fingerprinter};
use crate::parse::{self, Found, GITLEAKS, SBOM, TRIVY};
use crate::tools::{self, RunError, ToolId};

/// Findings returned per call, at most; every finding is still counted in the metrics and the totals.
const MAX_FINDINGS: usize = 500;
/// Findings named in one reason line, at most.
const MAX_NAMED: usize = 5;
/// Longest a version probe (`gitleaks version`, `trivy --version`, `syft --version`) may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(15);
/// gitleaks configuration: the built-in rules only, so a patch cannot add an allowlist to the tree it is
/// scanned in.
const GITLEAKS_CONFIG: &str = "title = \"sre-agent: gitleaks built-in rules\"\n[extend]\nuseDefault = true\n";
/// The message of the opt-out's WARN lines.
const OPTIONAL_WARNING: &str = "SRE_SCANNERS_OPTIONAL is on: a scanner that is missing, crashes, times out or prints unreadable output \
     does not block the patch (it needs review instead)";

/// What the scanner runs with.
#[derive(Clone, Debug)]
pub struct ScannerConfig {
    /// Per tool.
    pub timeout: Duration,
    /// The trivy `--scanners` list.
    pub trivy_scanners: String,
    /// Where the tools are looked up (`PATH`), on every call so a tool installed later is picked up.
    pub path_env: OsString,
    /// `SRE_SCANNERS_OPTIONAL`: a scanner that cannot judge the patch makes it need review instead of
    /// blocking it.
    pub optional: bool,
    /// Baseline scans kept in memory (0: off).
    pub cache_entries: usize,
}

impl ScannerConfig {
    /// The defaults of the configuration (120 s, `secret,misconfig`, fail closed, 256 cached baselines).
    pub fn new(path_env: OsString) -> Self {
        Self {
            timeout: Duration::from_secs(120),
            trivy_scanners: "secret,misconfig".to_owned(),
            path_env,
            optional: false,
            cache_entries: 256,
        }
    }
}

/// The three scanners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gitleaks,
    Trivy,
    /// syft's SBOM, and trivy over it for license findings.
    Sbom,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Gitleaks, Kind::Trivy, Kind::Sbom];

    fn name(self) -> &'static str {
        match self {
            Kind::Gitleaks => GITLEAKS,
            Kind::Trivy => TRIVY,
            Kind::Sbom => SBOM,
        }
    }

    fn tools(self) -> &'static [&'static str] {
        match self {
            Kind::Gitleaks => &["gitleaks"],
            Kind::Trivy => &["trivy"],
            Kind::Sbom => &["syft", "trivy"],
        }
    }

    fn label(self) -> sre_domain::Scanner {
        parse::scanner_of(self.name())
    }
}

/// Which tree a run scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Patched,
    Baseline,
}

impl Target {
    fn as_str(self) -> &'static str {
        match self {
            Target::Patched => "patched",
            Target::Baseline => "baseline",
        }
    }
}

/// A tool found on `PATH`.
#[derive(Clone, Debug)]
struct Tool {
    name: &'static str,
    path: PathBuf,
    id: Option<ToolId>,
    version: String,
}

/// One scanner's tools, or why it cannot run (a tool is not installed).
type Resolved = Result<Vec<Tool>, String>;

/// One tool run's outcome.
struct ToolOutcome {
    run: ScannerRun,
    findings: Vec<(Fingerprint, Finding)>,
    sbom_components: u32,
    fail: Option<FailReason>,
}

impl ToolOutcome {
    fn new(kind: Kind, target: Target, status: &str, detail: String, elapsed: Duration) -> Self {
        Self {
            run: ScannerRun {
                scanner: kind.name().to_owned(),
                status: status.to_owned(),
                detail,
                duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                target: target.as_str().to_owned(),
                cached: false,
                version: String::new(),
            },
            findings: Vec::new(),
            sbom_components: 0,
            fail: None,
        }
    }

    fn missing(kind: Kind, detail: String) -> Self {
        let mut o = Self::new(kind, Target::Patched, "missing", detail, Duration::ZERO);
        o.fail = Some(FailReason::Error);
        o
    }

    fn failed(kind: Kind, target: Target, reason: FailReason, detail: String, elapsed: Duration) -> Self {
        let status = if reason == FailReason::Timeout { "timeout" } else { "error" };
        let mut o = Self::new(kind, target, status, detail, elapsed);
        o.fail = Some(reason);
        o
    }
}

/// A baseline as one call got it.
enum Base {
    /// From the cache (`hit`) or scanned for this call.
    Ready { baseline: Arc<Baseline>, hit: bool },
    /// head_sha could not be scanned.
    Failed(ToolOutcome),
    /// Not attempted: the scanner's tools are missing (its patched run says so).
    NotRun,
}

/// "3 finding(s): HIGH=2 LOW=1", or "no findings".
fn summary(findings: &[(Fingerprint, Finding)]) -> String {
    if findings.is_empty() {
        return "no findings".to_owned();
    }
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, f) in findings {
        *by.entry(Severity::from(f.severity()).as_str()).or_default() += 1;
    }
    let counts: Vec<String> = by.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{} finding(s): {}", findings.len(), counts.join(" "))
}

/// "aws-access-token at settings.py:2, ... and 3 more".
fn named(findings: &[&Finding]) -> String {
    let mut parts: Vec<String> = findings
        .iter()
        .take(MAX_NAMED)
        .map(|f| {
            if f.line > 0 {
                format!("{} at {}:{}", f.rule_id, f.path, f.line)
            } else {
                format!("{} at {}", f.rule_id, f.path)
            }
        })
        .collect();
    if findings.len() > MAX_NAMED {
        parts.push(format!("and {} more", findings.len() - MAX_NAMED));
    }
    parts.join(", ")
}

/// A process that ran: its output when it exited 0, else why it failed.
fn checked(result: Result<std::process::Output, RunError>) -> Result<std::process::Output, (FailReason, String)> {
    match result {
        Err(err @ RunError::Timeout(_)) => Err((FailReason::Timeout, err.to_string())),
        Err(err) => Err((FailReason::Error, err.to_string())),
        // Killed by a signal it was not sent by us (the OOM killer, a crash): neither a timeout nor an error
        // the tool reported.
        Ok(out) if out.status.code().is_none() => Err((FailReason::Unknown, format!("terminated by {}", out.status))),
        Ok(out) if !out.status.success() => {
            Err((FailReason::Error, format!("exited with {}: {}", out.status, tools::last_line(&out.stderr))))
        }
        Ok(out) => Ok(out),
    }
}

/// What a scanner's tools read and report.
struct Scanned {
    found: Vec<Found>,
    sbom_components: u32,
}

type ScanResult = Result<Scanned, (FailReason, String)>;

pub struct ScannerService {
    repos_dir: PathBuf,
    config: ScannerConfig,
    metrics: ScanMetrics,
    cache: BaselineCache,
    fingerprinter: Fingerprinter,
    /// Version lines of the tools seen, by identity (probed once per identity).
    versions: Mutex<HashMap<ToolId, String>>,
}

impl ScannerService {
    pub fn new(repos_dir: PathBuf, config: ScannerConfig, metrics: ScanMetrics) -> Self {
        let cache = BaselineCache::new(config.cache_entries);
        Self { repos_dir, config, metrics, cache, fingerprinter: Fingerprinter::random(), versions: Mutex::default() }
    }

    /// The scanner's tools, each with its identity and version, or which one is not installed.
    async fn resolve(&self, kind: Kind) -> Resolved {
        let mut out = Vec::new();
        for &name in kind.tools() {
            let Some(path) = tools::which(name, &self.config.path_env) else {
                return Err(if kind == Kind::Sbom && name == "trivy" {
                    "trivy (which reads the SBOM's licenses) is not installed (not found on PATH)".to_owned()
                } else {
                    format!("{name} is not installed (not found on PATH)")
                });
            };
            let id = tools::identify(&path);
            let version = self.version(name, &path, id.as_ref()).await;
            out.push(Tool { name, path, id, version });
        }
        Ok(out)
    }

    /// The tool's version word, probed once per identity; empty when the probe fails (the scan itself then
    /// says what is wrong with the tool).
    async fn version(&self, name: &str, path: &Path, id: Option<&ToolId>) -> String {
        if let Some(id) = id
            && let Some(v) = self.versions.lock().unwrap_or_else(PoisonError::into_inner).get(id)
        {
            return v.clone();
        }
        let args: Vec<OsString> = vec![if name == "gitleaks" { "version" } else { "--version" }.into()];
        let Ok(scratch) = Self::scratch() else {
            return String::new();
        };
        let env = [("SYFT_CHECK_FOR_APP_UPDATE", "false")];
        let timeout = VERSION_TIMEOUT.min(self.config.timeout);
        let version = match checked(tools::run(path, &args, scratch.path(), &env, timeout).await) {
            Ok(out) => tools::version_word(&out.stdout),
            Err(_) => return String::new(),
        };
        if let Some(id) = id {
            let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
            if versions.len() >= 64 {
                versions.clear();
            }
            versions.insert(id.clone(), version.clone());
        }
        version
    }

    fn tool<'a>(tools: &'a [Tool], name: &str) -> Option<&'a Tool> {
        tools.iter().find(|t| t.name == name)
    }

    /// A scratch directory outside the worktree (reports, config), used as the tools' working directory so
    /// no config or ignore file from the service's own directory applies.
    fn scratch() -> Result<tempfile::TempDir, String> {
        tempfile::Builder::new().prefix("sre-scan-").tempdir().map_err(|e| format!("scratch dir: {e}"))
    }

    async fn gitleaks(&self, bin: &Path, wt: &Path) -> ScanResult {
        let scratch = Self::scratch().map_err(|e| (FailReason::Error, e))?;
        let (report, cfg) = (scratch.path().join("gitleaks.json"), scratch.path().join("gitleaks.toml"));
        tokio::fs::write(&cfg, GITLEAKS_CONFIG).await.map_err(|e| (FailReason::Error, format!("config: {e}")))?;
        let mut args: Vec<OsString> = vec!["dir".into(), wt.into(), "--config".into(), cfg.into()];
        args.extend(["--gitleaks-ignore-path".into(), scratch.path().into(), "--ignore-gitleaks-allow".into()]);
        args.extend(["--report-format".into(), "json".into(), "--report-path".into(), report.clone().into()]);
        args.extend(["--redact", "--no-banner", "--no-color", "--exit-code", "0"].map(OsString::from));
        checked(tools::run(bin, &args, scratch.path(), &[], self.config.timeout).await)?;
        let json =
            tokio::fs::read(&report).await.map_err(|e| (FailReason::Error, format!("no report written: {e}")))?;
        let found = parse::gitleaks(&json, wt).map_err(|e| (FailReason::Error, e.to_string()))?;
        Ok(Scanned { found, sbom_components: 0 })
    }

    async fn trivy(&self, bin: &Path, wt: &Path) -> ScanResult {
        let scratch = Self::scratch().map_err(|e| (FailReason::Error, e))?;
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
        let out = checked(tools::run(bin, &args, scratch.path(), &[], self.config.timeout).await)?;
        let found = parse::trivy(&out.stdout).map_err(|e| (FailReason::Error, e.to_string()))?;
        Ok(Scanned { found, sbom_components: 0 })
    }

    /// syft's CycloneDX SBOM of `wt`, then `trivy sbom --scanners license` over it (offline: license
    /// classification needs no database).
    async fn sbom(&self, syft: &Path, trivy: &Path, wt: &Path) -> ScanResult {
        let scratch = Self::scratch().map_err(|e| (FailReason::Error, e))?;
        let mut target = OsString::from("dir:");
        target.push(wt);
        let args: Vec<OsString> = vec!["scan".into(), target, "-o".into(), "cyclonedx-json".into(), "-q".into()];
        let env = [("SYFT_CHECK_FOR_APP_UPDATE", "false")];
        let out = checked(tools::run(syft, &args, scratch.path(), &env, self.config.timeout).await)?;
        let bom = parse::sbom(&out.stdout).map_err(|e| (FailReason::Error, e.to_string()))?;
        let bom_path = scratch.path().join("sbom.cdx.json");
        tokio::fs::write(&bom_path, &out.stdout).await.map_err(|e| (FailReason::Error, format!("sbom: {e}")))?;
        let mut args: Vec<OsString> = ["sbom", "--scanners", "license"].map(OsString::from).to_vec();
        args.extend(
            [
                "--skip-db-update",
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
        args.push(bom_path.into());
        let out = checked(tools::run(trivy, &args, scratch.path(), &[], self.config.timeout).await)
            .map_err(|(reason, detail)| (reason, format!("trivy sbom (licenses): {detail}")))?;
        let found = parse::sbom_licenses(&out.stdout, &bom).map_err(|e| (FailReason::Error, e.to_string()))?;
        Ok(Scanned { found, sbom_components: bom.components })
    }

    /// One scanner over one tree: its findings fingerprinted against that tree.
    async fn run_one(&self, kind: Kind, tools: &[Tool], wt: &Path, target: Target) -> ToolOutcome {
        let start = Instant::now();
        let find = |name: &str| Self::tool(tools, name).map(|t| t.path.as_path());
        let result = match (kind, find("gitleaks"), find("trivy"), find("syft")) {
            (Kind::Gitleaks, Some(bin), _, _) => self.gitleaks(bin, wt).await,
            (Kind::Trivy, _, Some(bin), _) => self.trivy(bin, wt).await,
            (Kind::Sbom, _, Some(trivy), Some(syft)) => self.sbom(syft, trivy, wt).await,
            _ => Err((FailReason::Error, "a tool of this scanner was not resolved".to_owned())),
        };
        let versions: Vec<String> = tools.iter().map(|t| t.version.clone()).collect();
        let mut o = match result {
            Ok(scanned) => {
                let (fp, root) = (self.fingerprinter.clone(), wt.to_owned());
                match tokio::task::spawn_blocking(move || fp.all(&root, scanned.found)).await {
                    Ok(findings) => {
                        let mut detail = summary(&findings);
                        if kind == Kind::Sbom {
                            detail = format!("{} component(s); {detail}", scanned.sbom_components);
                        }
                        let mut o = ToolOutcome::new(kind, target, "ok", detail, start.elapsed());
                        o.findings = findings;
                        o.sbom_components = scanned.sbom_components;
                        o
                    }
                    Err(e) => {
                        let detail = format!("fingerprinting failed: {e}");
                        ToolOutcome::failed(kind, target, FailReason::Error, detail, start.elapsed())
                    }
                }
            }
            Err((reason, detail)) => ToolOutcome::failed(kind, target, reason, detail, start.elapsed()),
        };
        o.run.version = versions.join(" ");
        o
    }

    /// The scanner over the patched tree (a missing tool is reported as such).
    async fn patched(&self, kind: Kind, tools: &Resolved, wt: &Path) -> ToolOutcome {
        match tools {
            Ok(tools) => self.run_one(kind, tools, wt, Target::Patched).await,
            Err(detail) => ToolOutcome::missing(kind, detail.clone()),
        }
    }

    fn key(&self, repo: &str, sha: &str, kind: Kind, tools: &[Tool]) -> Option<BaselineKey> {
        let tools = tools.iter().map(|t| t.id.clone().map(|id| (id, t.version.clone()))).collect::<Option<Vec<_>>>()?;
        let args = if kind == Kind::Trivy { self.config.trivy_scanners.clone() } else { String::new() };
        Some(BaselineKey { repo: repo.to_owned(), sha: sha.to_owned(), scanner: kind.name(), args, tools })
    }

    /// The scanner's baseline: from `cell` when an earlier call filled it, else scanned in `wt` (and kept
    /// when it succeeded). Concurrent calls on one key share the scan.
    async fn baseline(
        &self,
        kind: Kind,
        tools: &Resolved,
        entry: Option<&(Option<BaselineKey>, Cell)>,
        wt: Option<&Path>,
    ) -> Base {
        let (Ok(tools), Some((key, cell))) = (tools, entry) else {
            return Base::NotRun;
        };
        if let Some(baseline) = cell.get() {
            self.metrics.emit(BaselineLookup { scanner: kind.label(), result: CacheResult::Hit });
            return Base::Ready { baseline: baseline.clone(), hit: true };
        }
        let Some(wt) = wt else {
            return Base::NotRun;
        };
        let ran = AtomicBool::new(false);
        let result = cell
            .get_or_try_init(|| async {
                ran.store(true, Ordering::Relaxed);
                let o = self.run_one(kind, tools, wt, Target::Baseline).await;
                if o.fail.is_some() {
                    return Err(o);
                }
                let counts = fingerprint::counts(o.findings.iter().map(|(fp, _)| fp));
                let findings = u32::try_from(o.findings.len()).unwrap_or(u32::MAX);
                Ok(Arc::new(Baseline { counts, findings, run: o.run }))
            })
            .await;
        let hit = !ran.load(Ordering::Relaxed);
        let result_label = if hit { CacheResult::Hit } else { CacheResult::Miss };
        self.metrics.emit(BaselineLookup { scanner: kind.label(), result: result_label });
        match result {
            Ok(baseline) => {
                if baseline.findings > MAX_CACHED_FINDINGS
                    && let Some(key) = key
                {
                    self.cache.forget(key);
                }
                Base::Ready { baseline: baseline.clone(), hit }
            }
            Err(o) => Base::Failed(o),
        }
    }

    /// Scans `patched` (head_sha with the diff applied) and head_sha alone with every scanner, side by side,
    /// and judges the patch.
    async fn judge(&self, repo: &Repo, sha: &str, patched: &Path) -> Result<RunScansResponse, ScannerError> {
        if self.config.optional {
            tracing::warn!(scanners_optional = true, "{OPTIONAL_WARNING}");
        }
        let resolved: [Resolved; 3] = {
            let (g, t, s) =
                tokio::join!(self.resolve(Kind::Gitleaks), self.resolve(Kind::Trivy), self.resolve(Kind::Sbom));
            [g, t, s]
        };
        let entries: Vec<Option<(Option<BaselineKey>, Cell)>> = Kind::ALL
            .iter()
            .zip(&resolved)
            .map(|(kind, tools)| {
                let tools = tools.as_ref().ok()?;
                let key = self.key(repo.full_name(), sha, *kind, tools);
                // A tool whose identity cannot be read is never cached: a fresh cell nobody else sees.
                let cell = key.as_ref().map_or_else(Cell::default, |k| self.cache.cell(k));
                Some((key, cell))
            })
            .collect();
        let need_baseline = entries.iter().flatten().any(|(_, cell)| !cell.initialized());
        let base_wt = if need_baseline { Some(repo.worktree(sha).await?) } else { None };
        let base_path = base_wt.as_ref().map(|w| w.path());
        if let Some(p) = base_path {
            // As in the patched tree: no fingerprint-based silencing.
            let _ = tokio::fs::remove_file(p.join(".gitleaksignore")).await;
        }
        let (pg, pt, ps, bg, bt, bs) = tokio::join!(
            self.patched(Kind::Gitleaks, &resolved[0], patched),
            self.patched(Kind::Trivy, &resolved[1], patched),
            self.patched(Kind::Sbom, &resolved[2], patched),
            self.baseline(Kind::Gitleaks, &resolved[0], entries[0].as_ref(), base_path),
            self.baseline(Kind::Trivy, &resolved[1], entries[1].as_ref(), base_path),
            self.baseline(Kind::Sbom, &resolved[2], entries[2].as_ref(), base_path),
        );
        if let Some(wt) = base_wt {
            wt.remove().await;
        }
        Ok(self.verdict([(Kind::Gitleaks, pg, bg), (Kind::Trivy, pt, bt), (Kind::Sbom, ps, bs)]))
    }

    /// The response from each scanner's patched run and baseline; counts and logs each.
    fn verdict(&self, sets: [(Kind, ToolOutcome, Base); 3]) -> RunScansResponse {
        let mut resp = RunScansResponse { scanners_optional: self.config.optional, ..Default::default() };
        let mut findings = Vec::new();
        // Reported after the patched runs.
        let mut baseline_runs = Vec::new();
        for (kind, mut patched, base) in sets {
            let (scanner, name) = (kind.label(), kind.name());
            // The baseline: its run reported, its failure counted.
            let baseline = match base {
                Base::Ready { baseline, hit } => {
                    let mut run = baseline.run.clone();
                    if hit {
                        run.cached = true;
                        run.duration_ms = 0;
                        run.detail = format!("cached: {}", run.detail);
                    }
                    baseline_runs.push(run);
                    Some(baseline)
                }
                Base::Failed(o) => {
                    let reason = o.fail.unwrap_or(FailReason::Unknown);
                    let detail = format!("baseline (head_sha alone): {}", o.run.detail);
                    self.metrics.emit(ScanFailed { scanner, reason, detail: &detail });
                    baseline_runs.push(o.run);
                    None
                }
                Base::NotRun => None,
            };
            // The patched tree: a scanner that could not judge it fails closed, unless opted out.
            if let Some(reason) = patched.fail {
                self.metrics.emit(ScanFailed { scanner, reason, detail: &patched.run.detail });
                let what =
                    format!("{name} could not scan the patched tree ({}): {}", patched.run.status, patched.run.detail);
                if self.config.optional {
                    resp.review_reasons.push(format!("{what}; not blocking because SRE_SCANNERS_OPTIONAL is on"));
                } else {
                    resp.blocking_reasons.push(what);
                }
                resp.runs.push(patched.run);
                continue;
            }
            let resolved = fingerprint::mark_introduced(&mut patched.findings, baseline.as_ref().map(|b| &b.counts));
            let mut by: BTreeMap<(Severity, bool), u64> = BTreeMap::new();
            for (_, f) in &patched.findings {
                *by.entry((Severity::from(f.severity()), f.introduced)).or_default() += 1;
            }
            for ((severity, introduced), count) in by {
                self.metrics.emit(FindingsFound { scanner, severity, origin: Origin::of(introduced), count });
            }
            let introduced: Vec<&Finding> = patched.findings.iter().map(|(_, f)| f).filter(|f| f.introduced).collect();
            let (blocking, review): (Vec<&Finding>, Vec<&Finding>) =
                introduced.iter().partition(|f| parse::is_blocking(f));
            let n_introduced = introduced.len();
            let n_pre = patched.findings.len() - n_introduced;
            let unproven = if baseline.is_none() && n_introduced > 0 {
                " (head_sha could not be scanned, so none is proven pre-existing)"
            } else {
                ""
            };
            if !blocking.is_empty() {
                let detail = format!("{} introduced blocking finding(s)", blocking.len());
                self.metrics.emit(ScanFailed { scanner, reason: FailReason::PolicyBlock, detail: &detail });
                resp.blocking_reasons.push(format!("{name}: {detail}{unproven}: {}", named(&blocking)));
            }
            if !review.is_empty() {
                let n = review.len();
                resp.review_reasons
                    .push(format!("{name}: {n} introduced finding(s) to review{unproven}: {}", named(&review)));
            }
            tracing::info!(
                scanner = scanner.as_str(),
                status = %patched.run.status,
                findings = patched.findings.len(),
                introduced = n_introduced,
                preexisting = n_pre,
                resolved,
                blocking_findings = blocking.len(),
                baseline = if baseline.is_some() { "ok" } else { "unavailable" },
                summary = %patched.run.detail,
                duration_ms = patched.run.duration_ms,
                "scanner finished"
            );
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            resp.introduced = resp.introduced.saturating_add(count(n_introduced));
            resp.preexisting = resp.preexisting.saturating_add(count(n_pre));
            resp.resolved = resp.resolved.saturating_add(resolved);
            resp.sbom_components = resp.sbom_components.max(patched.sbom_components);
            resp.runs.push(patched.run);
            findings.extend(patched.findings.into_iter().map(|(_, f)| f));
        }
        resp.runs.extend(baseline_runs);
        if findings.len() > MAX_FINDINGS {
            tracing::warn!(findings = findings.len(), kept = MAX_FINDINGS, "too many findings; list truncated");
            // Introduced first, then the most severe.
            findings.sort_by_key(|f| std::cmp::Reverse((f.introduced, rank(f))));
            findings.truncate(MAX_FINDINGS);
        }
        resp.findings = findings;
        resp.blocking = !resp.blocking_reasons.is_empty();
        resp.needs_review = !resp.review_reasons.is_empty();
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
        let sha = repo.resolve(&ctx.head_sha).await.map_err(ScannerError::from)?;
        let wt = repo.worktree(&sha).await.map_err(ScannerError::from)?;
        let result = async {
            if !req.diff.trim().is_empty() {
                wt.apply(&req.diff).await.map_err(|e| {
                    tracing::warn!(error = %e, "diff does not apply");
                    ScannerError::DiffDoesNotApply { sha: ctx.head_sha.clone(), message: e.to_string() }
                })?;
            }
            // A `.gitleaksignore` in the scanned root silences findings by fingerprint; the patch must not.
            let _ = tokio::fs::remove_file(wt.path().join(".gitleaksignore")).await;
            self.judge(&repo, &sha, wt.path()).await
        }
        .await;
        wt.remove().await;
        let resp = result?;
        tracing::info!(
            findings = resp.findings.len(),
            introduced = resp.introduced,
            preexisting = resp.preexisting,
            resolved = resp.resolved,
            blocking = resp.blocking,
            needs_review = resp.needs_review,
            scanners_optional = resp.scanners_optional,
            reasons = %resp.blocking_reasons.iter().chain(&resp.review_reasons).cloned().collect::<Vec<_>>().join("; "),
            sbom_components = resp.sbom_components,
            duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            "scans finished"
        );
        Ok(Response::new(resp))
    }
}

/// Builds the service from its configuration (tools are looked up on `PATH`). A missing tool is not fatal to
/// the process, but every call fails closed on it (blocked, counted) unless `SRE_SCANNERS_OPTIONAL` is on.
pub fn build(config: &Config, registry: &SharedRegistry) -> Result<Built, ScannerError> {
    let scanner = ScannerConfig {
        timeout: Duration::from_secs(config.scan_timeout_seconds),
        trivy_scanners: config.trivy_scanners.clone(),
        path_env: std::env::var_os("PATH").unwrap_or_default(),
        optional: config.scanners_optional,
        cache_entries: usize::try_from(config.scan_cache_entries).unwrap_or(usize::MAX),
    };
    if scanner.optional {
        tracing::warn!(scanners_optional = true, "{OPTIONAL_WARNING}");
    }
    for tool in ["gitleaks", "trivy", "syft"] {
        match tools::which(tool, &scanner.path_env) {
            Some(path) => tracing::info!(tool, path = %path.display(), "scanner tool found"),
            None if scanner.optional => {
                tracing::warn!(tool, "scanner tool not on PATH; patches will need review (SRE_SCANNERS_OPTIONAL)")
            }
            None => tracing::warn!(tool, "scanner tool not on PATH; every patch will be blocked until it is installed"),
        }
    }
    let service = ScannerService::new(config.data.repos_dir(), scanner, ScanMetrics::register(registry));
    Ok((
        tonic::service::Routes::new(
            ScannerServer::new(service).max_decoding_message_size(sre_service_kit::MAX_GRPC_MESSAGE_BYTES),
        ),
        Box::pin(sre_service_kit::git_ready()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_and_names_findings() {
        use sre_proto::Severity as Pb;
        let f = |s: Pb| ([0; 32], Finding { severity: s.into(), ..Default::default() });
        assert_eq!(summary(&[]), "no findings");
        assert_eq!(summary(&[f(Pb::High), f(Pb::Low), f(Pb::High)]), "3 finding(s): HIGH=2 LOW=1");
        let g =
            |rule: &str, line: u32| Finding { rule_id: rule.into(), path: "a.py".into(), line, ..Default::default() };
        let many: Vec<Finding> = (1..=7).map(|i| g("r", i)).collect();
        let refs: Vec<&Finding> = many.iter().collect();
        assert_eq!(named(&refs[..1]), "r at a.py:1");
        assert_eq!(named(&[&g("lic", 0)]), "lic at a.py");
        assert!(named(&refs).ends_with("r at a.py:5, and 2 more"), "{}", named(&refs));
    }
}
