//! End to end: a real git repository in a tempdir, the real scanners (gitleaks, trivy and syft from
//! `.tools/pyvenv/bin`), the service behind a real tonic server (health, reflection and the telemetry layer
//! included, as in production) on 127.0.0.1:0. Broken scanners are small shell scripts put first on a PATH
//! of their own.

use sre_gitwork::testing::{git, init_repo};
use sre_service_kit::testing::InProcess;
use sre_telemetry::testing::Captured;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sre_proto::scanner_client::ScannerClient;
use sre_proto::scanner_server::ScannerServer;
use sre_proto::{Finding, RunContext, RunScansRequest, RunScansResponse, ScannerRun, Severity};
use sre_scanner::events::ScanMetrics;
use sre_scanner::{ScannerConfig, ScannerService};
use sre_telemetry::SharedRegistry;
use tonic::Code;

const REPO: &str = "acme/app";

/// `repos/acme/app` with one commit of `files` (path, content). Returns (tempdir, repo dir, head sha).
fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, String) {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join(REPO);
    init_repo(&repo);
    for (path, content) in files {
        let p = repo.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    (root, repo, sha)
}

/// A small Python app and its requirements.
fn fixture_repo() -> (tempfile::TempDir, String) {
    let (root, _, sha) =
        repo_with(&[("app.py", "def add(a, b):\n    return a + b\n"), ("requirements.txt", "requests==2.31.0\n")]);
    (root, sha)
}

/// The diff `edit` makes to the repository's work tree (new files included), which is then reset.
fn diff_of(repo: &Path, edit: impl FnOnce(&Path)) -> String {
    edit(repo);
    git(repo, &["add", "-A", "-N"]);
    let diff = git(repo, &["diff", "--no-color"]);
    git(repo, &["reset", "-q"]);
    git(repo, &["checkout", "-q", "--", "."]);
    git(repo, &["clean", "-qfd"]);
    assert!(!diff.is_empty(), "the edit changed nothing");
    format!("{diff}\n")
}

/// A fake AWS access key ID, assembled at run time so this file itself carries no key-shaped string.
fn fake_aws_key(tail: &str) -> String {
    ["AK", "IA", tail].concat()
}

const KEY_A: &str = "QWERTYUIOPASDFGH";
const KEY_B: &str = "ZXCVBNMLKJHGFDSA";

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

/// Where the real tool `name` is; every one of gitleaks, trivy and syft must be installed.
fn real_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    sre_scanner::tools::which(name, &path).unwrap_or_else(|| {
        panic!(
            "{name} is not on PATH: run scripts/install-tools.sh and put .tools/pyvenv/bin on PATH \
             (export PATH=\"$PWD/.tools/pyvenv/bin:$PATH\") before running these tests"
        )
    })
}

/// PATH as the test process has it, with all three real scanners on it.
fn real_path() -> OsString {
    for tool in ["gitleaks", "trivy", "syft"] {
        real_tool(tool);
    }
    std::env::var_os("PATH").unwrap_or_default()
}

/// A PATH of one directory holding exactly `tools`: (name, Some(real tool to link) or None with a script).
fn tool_dir(tools: &[(&str, Result<PathBuf, &str>)]) -> (tempfile::TempDir, OsString) {
    let dir = tempfile::tempdir().unwrap();
    for (name, tool) in tools {
        let at = dir.path().join(name);
        match tool {
            Ok(real) => std::os::unix::fs::symlink(real, &at).unwrap(),
            Err(script) => {
                std::fs::write(&at, format!("#!/bin/sh\n{script}\n")).unwrap();
                std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
    }
    let path = dir.path().as_os_str().to_owned();
    (dir, path)
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

    fn metric(&self, sample: &str) -> f64 {
        let text = self.registry.encode(false);
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{sample} missing from\n{text}"))
            .parse()
            .unwrap()
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn config(path_env: OsString, timeout: Duration) -> ScannerConfig {
    ScannerConfig { timeout, ..ScannerConfig::new(path_env) }
}

fn worktrees(root: &Path) -> usize {
    git(&root.join(REPO), &["worktree", "list", "--porcelain"]).lines().filter(|l| l.starts_with("worktree ")).count()
}

fn run<'a>(resp: &'a RunScansResponse, scanner: &str, target: &str) -> &'a ScannerRun {
    resp.runs
        .iter()
        .find(|r| r.scanner == scanner && r.target == target)
        .unwrap_or_else(|| panic!("no {target} run of {scanner}: {:#?}", resp.runs))
}

fn of<'a>(resp: &'a RunScansResponse, scanner: &str, rule: &str) -> Vec<&'a Finding> {
    resp.findings.iter().filter(|f| f.scanner == scanner && f.rule_id == rule).collect()
}

#[tokio::test]
async fn a_leaked_key_the_patch_adds_is_introduced_and_blocks() {
    let (captured, _guard) = Captured::install();
    let path = real_path();
    let (root, sha) = fixture_repo();
    let mut server = Server::start(root.path().to_owned(), config(path, Duration::from_secs(120))).await;
    let key = fake_aws_key(KEY_A);
    let resp = server.scan(ctx(&sha), &leak_diff(&key)).await.unwrap();

    let leak = of(&resp, "gitleaks", "aws-access-token");
    assert_eq!(leak.len(), 1, "{resp:#?}");
    assert_eq!((leak[0].path.as_str(), leak[0].line, leak[0].severity()), ("settings.py", 2, Severity::High));
    assert!(leak[0].introduced);
    let trivy = of(&resp, "trivy", "secret:aws-access-key-id");
    assert!(trivy.len() == 1 && trivy[0].introduced && trivy[0].severity() == Severity::Critical, "{resp:#?}");
    assert!(resp.blocking && !resp.scanners_optional);
    assert_eq!((resp.introduced, resp.preexisting, resp.resolved), (2, 0, 0));
    assert!(
        resp.blocking_reasons
            .contains(&"gitleaks: 1 introduced blocking finding(s): aws-access-token at settings.py:2".to_owned()),
        "{:?}",
        resp.blocking_reasons
    );
    assert!(resp.blocking_reasons.iter().any(|r| r.starts_with("trivy: 1 introduced blocking")));
    assert_eq!(resp.runs.len(), 6, "three scanners, patched and baseline: {:#?}", resp.runs);
    for scanner in ["gitleaks", "trivy", "sbom"] {
        for target in ["patched", "baseline"] {
            let r = run(&resp, scanner, target);
            assert_eq!(r.status, "ok", "{r:?}");
            assert!(!r.cached && !r.version.is_empty(), "{r:?}");
        }
    }
    assert_eq!(run(&resp, "gitleaks", "patched").version, "8.30.1");
    assert!(!format!("{resp:?}").contains(&key), "the secret leaked into the response");

    assert_eq!(
        server.metric(r#"sre_agent_scan_findings_total{scanner="gitleaks",severity="HIGH",origin="introduced"}"#),
        1.0
    );
    assert_eq!(
        server.metric(r#"sre_agent_scan_findings_total{scanner="gitleaks",severity="HIGH",origin="preexisting"}"#),
        0.0
    );
    assert_eq!(server.metric(r#"sre_agent_scan_fail_total{scanner="gitleaks",reason="policy_block"}"#), 1.0);
    assert_eq!(worktrees(root.path()), 1, "a scan worktree was not removed");

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
    let (root, sha) = fixture_repo();
    let mut server = Server::start(root.path().to_owned(), config(real_path(), Duration::from_secs(120))).await;
    let resp = server.scan(ctx(&sha), CLEAN_DIFF).await.unwrap();
    assert!(resp.findings.is_empty(), "{:?}", resp.findings);
    assert!(!resp.blocking && !resp.needs_review, "{resp:#?}");
    assert!(resp.blocking_reasons.is_empty() && resp.review_reasons.is_empty());
    assert!(resp.runs.iter().all(|r| r.status == "ok"), "{:#?}", resp.runs);
    assert_eq!(resp.sbom_components, 1, "requests from requirements.txt");
    assert!(run(&resp, "sbom", "patched").detail.starts_with("1 component(s); no findings"), "{:?}", resp.runs);
    // An empty diff scans the commit as it is (its baseline now from the cache).
    let resp = server.scan(ctx(&sha), "").await.unwrap();
    assert!(resp.findings.is_empty() && !resp.blocking && !resp.needs_review);
    let metrics = server.registry.encode(false);
    assert!(
        metrics.lines().filter(|l| !l.starts_with('#') && l.contains("policy_block")).all(|l| l.ends_with(" 0")),
        "{metrics}"
    );
    assert_eq!(worktrees(root.path()), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_secret_already_in_the_base_commit_is_reported_not_blocking() {
    let (_captured, _guard) = Captured::install();
    let key = fake_aws_key(KEY_A);
    let settings = format!("import os\nAWS_KEY_ID = \"{key}\"\n");
    let (root, repo, sha) = repo_with(&[("app.py", "def add(a, b):\n    return a + b\n"), ("settings.py", &settings)]);
    let mut server = Server::start(root.path().to_owned(), config(real_path(), Duration::from_secs(120))).await;
    let resp = server.scan(ctx(&sha), CLEAN_DIFF).await.unwrap();
    let leak = of(&resp, "gitleaks", "aws-access-token");
    assert_eq!(leak.len(), 1, "{resp:#?}");
    assert!(!leak[0].introduced, "{resp:#?}");
    assert!(of(&resp, "trivy", "secret:aws-access-key-id").iter().all(|f| !f.introduced));
    assert!(!resp.blocking && !resp.needs_review, "{resp:#?}");
    assert_eq!((resp.introduced, resp.preexisting), (0, 2));
    assert_eq!(
        server.metric(r#"sre_agent_scan_findings_total{scanner="gitleaks",severity="HIGH",origin="preexisting"}"#),
        1.0
    );
    assert_eq!(server.metric(r#"sre_agent_scan_fail_total{scanner="gitleaks",reason="policy_block"}"#), 0.0);

    // A second key the patch adds next to it: that one blocks, the old one is still pre-existing.
    let second = fake_aws_key(KEY_B);
    let diff = diff_of(&repo, |r| {
        std::fs::write(r.join("settings.py"), format!("{settings}AWS_OTHER_ID = \"{second}\"\n")).unwrap();
    });
    let resp = server.scan(ctx(&sha), &diff).await.unwrap();
    let leaks = of(&resp, "gitleaks", "aws-access-token");
    let flags: Vec<(u32, bool)> = leaks.iter().map(|f| (f.line, f.introduced)).collect();
    assert_eq!(flags, [(2, false), (3, true)], "{resp:#?}");
    assert!(resp.blocking);
    assert!(resp.blocking_reasons.iter().any(|r| r.ends_with("aws-access-token at settings.py:3")), "{resp:#?}");
    assert!(!format!("{resp:?}").contains(&key) && !format!("{resp:?}").contains(&second));
    server.stop().await;
}

#[tokio::test]
async fn a_patch_that_shifts_lines_above_an_existing_secret_leaves_it_preexisting() {
    let (_captured, _guard) = Captured::install();
    let key = fake_aws_key(KEY_A);
    // Trailing whitespace on the key's line, as a hygiene fix would strip.
    let settings = format!("import os\nAWS_KEY_ID = \"{key}\"   \n");
    let (root, repo, sha) = repo_with(&[("settings.py", &settings)]);
    let mut server = Server::start(root.path().to_owned(), config(real_path(), Duration::from_secs(120))).await;
    let diff = diff_of(&repo, |r| {
        let shifted = format!("\"\"\"Settings.\"\"\"\n\nimport logging\nimport os\nAWS_KEY_ID = \"{key}\"\n");
        std::fs::write(r.join("settings.py"), shifted).unwrap();
    });
    let resp = server.scan(ctx(&sha), &diff).await.unwrap();
    let leak = of(&resp, "gitleaks", "aws-access-token");
    assert_eq!(leak.len(), 1, "{resp:#?}");
    assert_eq!(leak[0].line, 5, "the finding moved from line 2 to line 5");
    assert!(!leak[0].introduced, "{resp:#?}");
    assert!(!resp.blocking, "{resp:#?}");
    assert_eq!(resp.introduced, 0, "{resp:#?}");
    server.stop().await;
}

#[tokio::test]
async fn the_baseline_is_scanned_once_per_commit() {
    let (_captured, _guard) = Captured::install();
    let (root, sha) = fixture_repo();
    // gitleaks behind a wrapper that logs each invocation, so the runs are counted where they happen.
    let calls = root.path().join("gitleaks-calls");
    let wrapper = format!("echo \"$1\" >> '{}'\nexec '{}' \"$@\"", calls.display(), real_tool("gitleaks").display());
    let (_dir, path) = tool_dir(&[
        ("gitleaks", Err(wrapper.as_str())),
        ("trivy", Ok(real_tool("trivy"))),
        ("syft", Ok(real_tool("syft"))),
    ]);
    let mut server = Server::start(root.path().to_owned(), config(path, Duration::from_secs(120))).await;
    let dir_runs = || std::fs::read_to_string(&calls).unwrap_or_default().lines().filter(|l| *l == "dir").count();

    let first = server.scan(ctx(&sha), CLEAN_DIFF).await.unwrap();
    assert!(!run(&first, "gitleaks", "baseline").cached);
    assert_eq!(dir_runs(), 2, "patched tree and baseline");
    let second = server.scan(ctx(&sha), &leak_diff(&fake_aws_key(KEY_A))).await.unwrap();
    assert_eq!(dir_runs(), 3, "the second call scanned only the patched tree");
    for scanner in ["gitleaks", "trivy", "sbom"] {
        let r = run(&second, scanner, "baseline");
        assert!(r.cached && r.status == "ok" && r.detail.starts_with("cached: "), "{r:?}");
        let hit = format!(r#"sre_agent_scan_baseline_total{{scanner="{scanner}",result="hit"}}"#);
        let miss = format!(r#"sre_agent_scan_baseline_total{{scanner="{scanner}",result="miss"}}"#);
        assert_eq!((server.metric(&hit), server.metric(&miss)), (1.0, 1.0), "{scanner}");
    }
    assert!(second.blocking, "the cached baseline still tells the new key apart");
    assert_eq!(worktrees(root.path()), 1);

    // Another commit is another baseline.
    let repo = root.path().join(REPO);
    std::fs::write(repo.join("README"), "x\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "readme"]);
    let next = git(&repo, &["rev-parse", "HEAD"]);
    let third = server.scan(ctx(&next), "").await.unwrap();
    assert!(!run(&third, "gitleaks", "baseline").cached);
    assert_eq!(dir_runs(), 5);
    server.stop().await;
}

#[tokio::test]
async fn a_missing_scanner_fails_closed() {
    let (_captured, _guard) = Captured::install();
    let (root, sha) = fixture_repo();
    // gitleaks only: trivy and syft are not on this PATH.
    let (_dir, path) = tool_dir(&[("gitleaks", Ok(real_tool("gitleaks")))]);
    let mut server = Server::start(root.path().to_owned(), config(path, Duration::from_secs(60))).await;
    let resp = server.scan(ctx(&sha), CLEAN_DIFF).await.unwrap();
    assert!(resp.blocking, "{resp:#?}");
    assert!(!resp.scanners_optional);
    assert_eq!(
        resp.blocking_reasons,
        [
            "trivy could not scan the patched tree (missing): trivy is not installed (not found on PATH)",
            "sbom could not scan the patched tree (missing): syft is not installed (not found on PATH)",
        ]
    );
    assert_eq!(run(&resp, "gitleaks", "patched").status, "ok");
    assert_eq!(run(&resp, "trivy", "patched").status, "missing");
    assert_eq!(run(&resp, "sbom", "patched").status, "missing");
    assert_eq!(resp.runs.len(), 4, "no baseline of a missing scanner: {:#?}", resp.runs);
    assert_eq!(server.metric(r#"sre_agent_scan_fail_total{scanner="trivy",reason="error"}"#), 1.0);
    assert_eq!(server.metric(r#"sre_agent_scan_fail_total{scanner="sbom",reason="error"}"#), 1.0);
    assert_eq!(server.metric(r#"sre_agent_scan_fail_total{scanner="gitleaks",reason="error"}"#), 0.0);

    server.stop().await;

    // syft without trivy: the SBOM's licenses cannot be read, so the SBOM scanner fails closed too.
    let (_dir, path) = tool_dir(&[("gitleaks", Ok(real_tool("gitleaks"))), ("syft", Ok(real_tool("syft")))]);
    let mut server = Server::start(root.path().to_owned(), config(path, Duration::from_secs(60))).await;
    let resp = server.scan(ctx(&sha), "").await.unwrap();
    assert!(
        resp.blocking_reasons.iter().any(|r| r.contains("trivy (which reads the SBOM's licenses) is not installed"))
    );
    server.stop().await;

    // Nothing installed at all.
    let mut server = Server::start(root.path().to_owned(), config("/nonexistent".into(), Duration::from_secs(5))).await;
    let resp = server.scan(ctx(&sha), &leak_diff(&fake_aws_key(KEY_A))).await.unwrap();
    assert!(resp.blocking && resp.findings.is_empty());
    let runs: Vec<(&str, &str)> = resp.runs.iter().map(|r| (r.scanner.as_str(), r.status.as_str())).collect();
    assert_eq!(runs, [("gitleaks", "missing"), ("trivy", "missing"), ("sbom", "missing")]);
    assert_eq!(resp.blocking_reasons.len(), 3);
    assert_eq!(worktrees(root.path()), 1);
    server.stop().await;
}

#[tokio::test]
async fn scanners_optional_lets_a_missing_scanner_through_with_the_reason() {
    let (captured, _guard) = Captured::install();
    let (root, sha) = fixture_repo();
    let (_dir, path) = tool_dir(&[("gitleaks", Ok(real_tool("gitleaks")))]);
    let mut server = Server::start(
        root.path().to_owned(),
        ScannerConfig { optional: true, ..config(path, Duration::from_secs(60)) },
    )
    .await;
    let resp = server.scan(ctx(&sha), CLEAN_DIFF).await.unwrap();
    assert!(!resp.blocking && resp.blocking_reasons.is_empty(), "{resp:#?}");
    assert!(resp.scanners_optional && resp.needs_review, "{resp:#?}");
    assert_eq!(
        resp.review_reasons,
        [
            "trivy could not scan the patched tree (missing): trivy is not installed (not found on PATH); \
             not blocking because SRE_SCANNERS_OPTIONAL is on",
            "sbom could not scan the patched tree (missing): syft is not installed (not found on PATH); \
             not blocking because SRE_SCANNERS_OPTIONAL is on",
        ]
    );
    assert_eq!(server.metric(r#"sre_agent_scan_fail_total{scanner="trivy",reason="error"}"#), 1.0);
    // The opt-out is logged at WARN on every call.
    let warns = captured
        .events()
        .into_iter()
        .filter(|e| {
            e.level == "WARN" && e.fields.get("message").is_some_and(|m| m.contains("SRE_SCANNERS_OPTIONAL is on"))
        })
        .count();
    assert_eq!(warns, 1);
    server.scan(ctx(&sha), "").await.unwrap();
    let warns = captured
        .events()
        .into_iter()
        .filter(|e| {
            e.level == "WARN" && e.fields.get("message").is_some_and(|m| m.contains("SRE_SCANNERS_OPTIONAL is on"))
        })
        .count();
    assert_eq!(warns, 2);
    // Opting out does not let an introduced secret through: gitleaks ran.
    let resp = server.scan(ctx(&sha), &leak_diff(&fake_aws_key(KEY_A))).await.unwrap();
    assert!(resp.blocking, "{resp:#?}");
    server.stop().await;
}

#[tokio::test]
async fn a_crashing_or_garbled_scanner_fails_closed() {
    let (_captured, _guard) = Captured::install();
    let (root, sha) = fixture_repo();
    let (_dir, path) = tool_dir(&[
        ("gitleaks", Ok(real_tool("gitleaks"))),
        // Dies by a signal it was not sent by us.
        ("trivy", Err("kill -SEGV $$")),
        // Exits 0 with something that is not an SBOM.
        ("syft", Err("echo 'syft: all good, trust me'")),
    ]);
    let mut server = Server::start(root.path().to_owned(), config(path, Duration::from_secs(60))).await;
    let resp = server.scan(ctx(&sha), CLEAN_DIFF).await.unwrap();
    assert!(resp.blocking, "{resp:#?}");
    let trivy = run(&resp, "trivy", "patched");
    assert_eq!(trivy.status, "error");
    assert!(trivy.detail.starts_with("terminated by signal: 11"), "{trivy:?}");
    let sbom = run(&resp, "sbom", "patched");
    assert_eq!(sbom.status, "error");
    assert!(sbom.detail.starts_with("unparsable sbom JSON"), "{sbom:?}");
    assert!(
        resp.blocking_reasons
            .iter()
            .any(|r| r.starts_with("trivy could not scan the patched tree (error): terminated"))
    );
    assert!(
        resp.blocking_reasons.iter().any(|r| r.starts_with("sbom could not scan the patched tree (error): unparsable"))
    );
    // Patched tree and baseline both failed, each counted; the failed baselines were not kept.
    assert_eq!(server.metric(r#"sre_agent_scan_fail_total{scanner="trivy",reason="unknown"}"#), 2.0);
    assert_eq!(server.metric(r#"sre_agent_scan_fail_total{scanner="sbom",reason="error"}"#), 2.0);
    let again = server.scan(ctx(&sha), CLEAN_DIFF).await.unwrap();
    assert!(!run(&again, "trivy", "baseline").cached && run(&again, "gitleaks", "baseline").cached);
    assert_eq!(worktrees(root.path()), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_scanner_past_its_timeout_is_killed_and_fails_closed() {
    let (_captured, _guard) = Captured::install();
    let (root, sha) = fixture_repo();
    let mut server = Server::start(root.path().to_owned(), config(real_path(), Duration::from_millis(1))).await;
    let start = std::time::Instant::now();
    let resp = server.scan(ctx(&sha), "").await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    let gitleaks = run(&resp, "gitleaks", "patched");
    assert_eq!(gitleaks.status, "timeout", "{gitleaks:?}");
    assert!(resp.blocking);
    assert!(resp.blocking_reasons.iter().any(|r| r.starts_with("gitleaks could not scan the patched tree (timeout)")));
    assert_eq!(server.metric(r#"sre_agent_scan_fail_total{scanner="gitleaks",reason="timeout"}"#), 2.0);
    assert_eq!(worktrees(root.path()), 1);
    server.stop().await;
}

/// A package-lock.json (v3) whose packages are `deps` (name, version, license).
fn lockfile(deps: &[(&str, &str, &str)]) -> String {
    let mut packages = vec![r#""": {"name": "web", "version": "1.0.0", "license": "MIT"}"#.to_owned()];
    for (name, version, license) in deps {
        packages.push(format!(r#""node_modules/{name}": {{"version": "{version}", "license": "{license}"}}"#));
    }
    format!(
        "{{\"name\": \"web\", \"version\": \"1.0.0\", \"lockfileVersion\": 3, \"requires\": true,\n\"packages\": {{\n{}\n}}}}\n",
        packages.join(",\n")
    )
}

#[tokio::test]
async fn sbom_license_findings_block_when_forbidden_and_need_review_otherwise() {
    let (_captured, _guard) = Captured::install();
    let base = lockfile(&[("left", "1.0.0", "MIT"), ("moz", "1.0.0", "MPL-2.0")]);
    let (root, repo, sha) = repo_with(&[("package-lock.json", &base)]);
    let mut server = Server::start(root.path().to_owned(), config(real_path(), Duration::from_secs(120))).await;

    // The MPL package is bumped (pre-existing: same package, same license); an AGPL one is added.
    let diff = diff_of(&repo, |r| {
        let lock = lockfile(&[("left", "1.0.0", "MIT"), ("moz", "1.1.0", "MPL-2.0"), ("viral", "2.0.0", "AGPL-3.0")]);
        std::fs::write(r.join("package-lock.json"), lock).unwrap();
    });
    let resp = server.scan(ctx(&sha), &diff).await.unwrap();
    assert_eq!(resp.sbom_components, 4, "{resp:#?}");
    let sbom: Vec<(&str, Severity, bool, &str)> = resp
        .findings
        .iter()
        .filter(|f| f.scanner == "sbom")
        .map(|f| (f.rule_id.as_str(), f.severity(), f.introduced, f.path.as_str()))
        .collect();
    assert_eq!(
        sbom,
        [
            ("license:MPL-2.0", Severity::Medium, false, "package-lock.json"),
            ("license:AGPL-3.0-only", Severity::Critical, true, "package-lock.json"),
        ],
        "{resp:#?}"
    );
    assert!(resp.findings.iter().any(|f| f.title == "viral 2.0.0: license AGPL-3.0-only (forbidden)"));
    assert!(resp.blocking);
    assert_eq!(
        resp.blocking_reasons,
        ["sbom: 1 introduced blocking finding(s): license:AGPL-3.0-only at package-lock.json"]
    );
    assert_eq!(
        server.metric(r#"sre_agent_scan_findings_total{scanner="sbom",severity="CRITICAL",origin="introduced"}"#),
        1.0
    );
    assert_eq!(
        server.metric(r#"sre_agent_scan_findings_total{scanner="sbom",severity="MEDIUM",origin="preexisting"}"#),
        1.0
    );
    assert_eq!(server.metric(r#"sre_agent_scan_fail_total{scanner="sbom",reason="policy_block"}"#), 1.0);

    // A GPL package: restricted, for a reviewer to judge; not blocking.
    let diff = diff_of(&repo, |r| {
        let lock = lockfile(&[("left", "1.0.0", "MIT"), ("moz", "1.0.0", "MPL-2.0"), ("gnu", "3.0.0", "GPL-3.0")]);
        std::fs::write(r.join("package-lock.json"), lock).unwrap();
    });
    let resp = server.scan(ctx(&sha), &diff).await.unwrap();
    assert!(!resp.blocking && resp.needs_review, "{resp:#?}");
    assert_eq!(
        resp.review_reasons,
        ["sbom: 1 introduced finding(s) to review: license:GPL-3.0-only at package-lock.json"]
    );
    assert_eq!(
        server.metric(r#"sre_agent_scan_findings_total{scanner="sbom",severity="HIGH",origin="introduced"}"#),
        1.0
    );
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
