//! End to end: a real git repository in a tempdir, the real scanners, the service behind a real tonic server
//! (health, reflection and the telemetry layer included, as in production) on 127.0.0.1:0.

use sre_gitwork::testing::{git, init_repo};
use sre_service_kit::testing::InProcess;
use sre_telemetry::testing::Captured;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sre_proto::scanner_client::ScannerClient;
use sre_proto::scanner_server::ScannerServer;
use sre_proto::{RunContext, RunScansRequest, RunScansResponse, Severity};
use sre_scanner::events::ScanMetrics;
use sre_scanner::{ScannerConfig, ScannerService};
use sre_telemetry::SharedRegistry;
use tonic::Code;

const REPO: &str = "acme/app";

/// `repos/acme/app` with one commit: a small Python app and its requirements. Returns (tempdir, head sha).
fn fixture_repo() -> (tempfile::TempDir, String) {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join(REPO);
    init_repo(&repo);
    std::fs::write(repo.join("app.py"), "def add(a, b):\n    return a + b\n").unwrap();
    std::fs::write(repo.join("requirements.txt"), "requests==2.31.0\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    (root, sha)
}

/// A fake AWS access key ID, assembled at run time so this file itself carries no key-shaped string.
fn fake_aws_key() -> String {
    let tail: String = "QWERTYUIOPASDFGH".chars().collect();
    ["AK", "IA", &tail].concat()
}

fn leak_diff(key: &str) -> String {
    format!(
        "diff --git a/settings.py b/settings.py\nnew file mode 100644\n--- /dev/null\n+++ b/settings.py\n\
         @@ -0,0 +1,2 @@\n+import os\n+AWS_KEY_ID = \"{key}\"\n"
    )
}

const CLEAN_DIFF: &str = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n\
                          -def add(a, b):\n+def add(a: int, b: int) -> int:\n     return a + b\n";

fn ctx(sha: &str) -> RunContext {
    RunContext {
        run_id: "3f2a9c1e-5b7d-4c1a-9e2f-000000000001".to_owned(),
        correlation_id: "3f2a9c1e-5b7d-4c1a-9e2f-000000000001".to_owned(),
        repo: REPO.to_owned(),
        head_sha: sha.to_owned(),
        ..Default::default()
    }
}

/// PATH as the test process has it; gitleaks must be on it (CI puts .tools/pyvenv/bin there).
fn path_with_gitleaks() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    assert!(
        sre_scanner::tools::which("gitleaks", &path).is_some(),
        "gitleaks is not on PATH: run scripts/install-tools.sh and put .tools/pyvenv/bin on PATH \
         (export PATH=\"$PWD/.tools/pyvenv/bin:$PATH\") before running these tests"
    );
    path
}

struct Server {
    client: ScannerClient<tonic::transport::Channel>,
    registry: SharedRegistry,
    server: InProcess,
}

impl Server {
    async fn start(repos_dir: PathBuf, config: ScannerConfig) -> Self {
        let registry = SharedRegistry::default();
        let service = ScannerService::new(repos_dir, config, ScanMetrics::register(&registry));
        let routes = tonic::service::Routes::new(ScannerServer::new(service));
        let server = InProcess::start("sre.v1.Scanner", registry.clone(), routes).await;
        let client = ScannerClient::connect(server.url()).await.unwrap();
        Self { client, registry, server }
    }

    async fn scan(&mut self, ctx: RunContext, diff: &str) -> Result<RunScansResponse, tonic::Status> {
        let req = RunScansRequest { context: Some(ctx), diff: diff.to_owned() };
        self.client.run_scans(req).await.map(tonic::Response::into_inner)
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn config(path_env: OsString, timeout: Duration) -> ScannerConfig {
    ScannerConfig { timeout, trivy_scanners: "secret,misconfig".to_owned(), path_env }
}

fn worktrees(root: &Path) -> usize {
    git(&root.join(REPO), &["worktree", "list", "--porcelain"]).lines().filter(|l| l.starts_with("worktree ")).count()
}

#[tokio::test]
async fn a_leaked_key_is_found_and_blocks() {
    let (captured, _guard) = Captured::install();
    let path = path_with_gitleaks();
    let (root, sha) = fixture_repo();
    let mut server = Server::start(root.path().to_owned(), config(path.clone(), Duration::from_secs(120))).await;
    let key = fake_aws_key();
    let resp = server.scan(ctx(&sha), &leak_diff(&key)).await.unwrap();

    let leak = resp.findings.iter().find(|f| f.scanner == "gitleaks").expect("a gitleaks finding");
    assert_eq!(leak.rule_id, "aws-access-token");
    assert_eq!(leak.path, "settings.py");
    assert_eq!(leak.line, 2);
    assert_eq!(leak.severity(), Severity::High);
    assert!(resp.blocking);
    let gitleaks = resp.runs.iter().find(|r| r.scanner == "gitleaks").unwrap();
    assert_eq!(gitleaks.status, "ok", "{gitleaks:?}");
    assert_eq!(resp.runs.len(), 3);
    assert!(!format!("{resp:?}").contains(&key), "the secret leaked into the response");

    // trivy sees the same key as a CRITICAL secret when it is installed.
    if sre_scanner::tools::which("trivy", &path).is_some() {
        let trivy = resp.runs.iter().find(|r| r.scanner == "trivy").unwrap();
        assert_eq!(trivy.status, "ok", "{trivy:?}");
        assert!(resp.findings.iter().any(|f| f.scanner == "trivy" && f.rule_id == "secret:aws-access-key-id"));
    }

    let metrics = server.registry.encode(false);
    assert!(metrics.contains(r#"sre_agent_scan_findings_total{scanner="gitleaks",severity="HIGH"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"sre_agent_scan_fail_total{scanner="gitleaks",reason="policy_block"} 1"#));
    assert_eq!(worktrees(root.path()), 1, "the scan worktree was not removed");

    // Logs and spans: a summary per scanner, never the secret.
    let lines = captured.lines();
    assert!(lines.iter().any(|l| l == "message=scanner finished"), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "message=scans finished"));
    assert!(!lines.iter().any(|l| l.contains(&key) || l.contains(&key[4..])), "secret in logs: {lines:#?}");
    server.stop().await;
}

#[tokio::test]
async fn a_clean_diff_has_no_findings() {
    let (_captured, _guard) = Captured::install();
    let path = path_with_gitleaks();
    let (root, sha) = fixture_repo();
    let mut server = Server::start(root.path().to_owned(), config(path.clone(), Duration::from_secs(120))).await;
    let resp = server.scan(ctx(&sha), CLEAN_DIFF).await.unwrap();
    assert!(resp.findings.is_empty(), "{:?}", resp.findings);
    assert!(!resp.blocking);
    for run in &resp.runs {
        let installed = sre_scanner::tools::which(if run.scanner == "sbom" { "syft" } else { &run.scanner }, &path);
        let expected = if installed.is_some() { "ok" } else { "skipped" };
        assert_eq!(run.status, expected, "{run:?}");
    }
    if sre_scanner::tools::which("syft", &path).is_some() {
        assert_eq!(resp.sbom_components, 1, "requests from requirements.txt");
    }
    // An empty diff scans the commit as it is.
    let resp = server.scan(ctx(&sha), "").await.unwrap();
    assert!(resp.findings.is_empty() && !resp.blocking);
    let metrics = server.registry.encode(false);
    assert!(
        metrics.lines().filter(|l| !l.starts_with('#') && l.contains("policy_block")).all(|l| l.ends_with(" 0")),
        "{metrics}"
    );
    assert_eq!(worktrees(root.path()), 1);
    server.stop().await;
}

#[tokio::test]
async fn missing_tools_are_skipped_not_fatal() {
    let (_captured, _guard) = Captured::install();
    let (root, sha) = fixture_repo();
    let mut server = Server::start(root.path().to_owned(), config("/nonexistent".into(), Duration::from_secs(5))).await;
    let resp = server.scan(ctx(&sha), &leak_diff(&fake_aws_key())).await.unwrap();
    assert!(resp.findings.is_empty());
    assert!(!resp.blocking);
    let runs: Vec<(&str, &str)> = resp.runs.iter().map(|r| (r.scanner.as_str(), r.status.as_str())).collect();
    assert_eq!(runs, vec![("gitleaks", "skipped"), ("trivy", "skipped"), ("sbom", "skipped")]);
    assert!(resp.runs[0].detail.contains("not installed"));
    let metrics = server.registry.encode(false);
    for scanner in ["gitleaks", "trivy", "sbom"] {
        let line = format!(r#"sre_agent_scan_fail_total{{scanner="{scanner}",reason="error"}} 1"#);
        assert!(metrics.contains(&line), "{line} missing from\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_scanner_past_its_timeout_is_killed_and_reported() {
    let (_captured, _guard) = Captured::install();
    let path = path_with_gitleaks();
    let (root, sha) = fixture_repo();
    let mut server = Server::start(root.path().to_owned(), config(path, Duration::from_millis(1))).await;
    let start = std::time::Instant::now();
    let resp = server.scan(ctx(&sha), "").await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    let gitleaks = resp.runs.iter().find(|r| r.scanner == "gitleaks").unwrap();
    assert_eq!(gitleaks.status, "timeout", "{gitleaks:?}");
    let metrics = server.registry.encode(false);
    assert!(metrics.contains(r#"sre_agent_scan_fail_total{scanner="gitleaks",reason="timeout"} 1"#), "{metrics}");
    assert_eq!(worktrees(root.path()), 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_statuses() {
    let (_captured, _guard) = Captured::install();
    let (root, sha) = fixture_repo();
    let mut server = Server::start(root.path().to_owned(), config("/nonexistent".into(), Duration::from_secs(5))).await;

    let err = server.client.run_scans(RunScansRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("context"), "{}", err.message());

    let mut other = ctx(&sha);
    other.repo = "acme/missing".to_owned();
    assert_eq!(server.scan(other, "").await.unwrap_err().code(), Code::NotFound);

    let mut escaping = ctx(&sha);
    escaping.repo = "../etc".to_owned();
    assert_eq!(server.scan(escaping, "").await.unwrap_err().code(), Code::InvalidArgument);

    assert_eq!(server.scan(ctx("not-a-sha"), "").await.unwrap_err().code(), Code::InvalidArgument);

    let err = server.scan(ctx(&sha), "this is not a diff\n").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("does not apply"), "{}", err.message());
    let stale = CLEAN_DIFF.replace("-def add(a, b):", "-def sub(a, b):");
    assert_eq!(server.scan(ctx(&sha), &stale).await.unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(worktrees(root.path()), 1, "a failed call left its worktree behind");
    server.stop().await;
}
