//! End to end: real git repositories in tempdirs, real `make`, the real sandbox, the service behind a real
//! tonic server (health, reflection, telemetry layer, as in production) on 127.0.0.1:0.

use sre_gitwork::testing::{git, init_repo};
use sre_service_kit::testing::InProcess;
use sre_telemetry::testing::Captured;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sre_proto::validator_client::ValidatorClient;
use sre_proto::validator_server::ValidatorServer;
use sre_proto::{RunContext, ValidateRequest, ValidateResponse};
use sre_telemetry::SharedRegistry;
use sre_validator::sandbox::{Sandbox, SandboxState, probe_bwrap};
use sre_validator::{ValidatorConfig, ValidatorService};
use tonic::Code;

const REPO: &str = "acme/app";

/// Fails when trailing whitespace is left in app.py.
const LINT_MAKEFILE: &str = "test:\n\t@echo checking app.py\n\t! grep -n '[[:space:]]$$' app.py\n";

/// `repos/acme/app`, empty, with a local identity.
fn empty_repo() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join(REPO);
    init_repo(&repo);
    (root, repo)
}

/// Commits `files` (path, contents) and returns the new HEAD.
fn commit(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, text) in files {
        std::fs::write(repo.join(path), text).unwrap();
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

/// The diff that turns the committed `path` into `text`, made by git itself.
fn diff_to(repo: &Path, path: &str, text: &str) -> String {
    std::fs::write(repo.join(path), text).unwrap();
    let diff = git(repo, &["diff", "--no-color"]) + "\n";
    git(repo, &["checkout", "--", path]);
    diff
}

fn ctx(sha: &str) -> RunContext {
    RunContext {
        run_id: "7d1e2a90-0000-4000-8000-000000000001".to_owned(),
        repo: REPO.to_owned(),
        head_sha: sha.to_owned(),
        ..Default::default()
    }
}

fn config() -> ValidatorConfig {
    let env = ["PATH", "HOME"].iter().filter_map(|k| std::env::var_os(k).map(|v| (OsString::from(k), v))).collect();
    ValidatorConfig {
        default_timeout: Duration::from_secs(60),
        concurrency: 2,
        env,
        path_env: std::env::var_os("PATH").unwrap_or_default(),
    }
}

/// bwrap, which CI installs; its absence fails the sandbox tests rather than skipping them.
fn bwrap() -> Sandbox {
    match probe_bwrap(&std::env::var_os("PATH").unwrap_or_default()) {
        Ok(path) => Sandbox::Bwrap(path),
        Err(reason) => panic!("bubblewrap is not usable ({reason}): run scripts/install-tools.sh (installs bwrap)"),
    }
}

struct Server {
    client: ValidatorClient<tonic::transport::Channel>,
    server: InProcess,
}

impl Server {
    async fn start(repos_dir: &Path, sandbox: Arc<SandboxState>) -> Self {
        let registry = SharedRegistry::default();
        let service = ValidatorService::new(repos_dir.to_owned(), config(), sandbox);
        let routes = tonic::service::Routes::new(ValidatorServer::new(service));
        let server = InProcess::start("sre.v1.Validator", registry, routes).await;
        let client = ValidatorClient::connect(server.url()).await.unwrap();
        Self { client, server }
    }

    async fn validate(&mut self, sha: &str, diff: &str, timeout: u32) -> Result<ValidateResponse, tonic::Status> {
        let req = ValidateRequest { context: Some(ctx(sha)), diff: diff.to_owned(), timeout_seconds: timeout };
        self.client.validate(req).await.map(tonic::Response::into_inner)
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn worktrees(repo: &Path) -> usize {
    git(repo, &["worktree", "list", "--porcelain"]).lines().filter(|l| l.starts_with("worktree ")).count()
}

#[tokio::test]
async fn a_fixing_diff_passes_and_the_broken_tree_fails() {
    let (captured, _guard) = Captured::install();
    let sandbox = bwrap();
    let (root, repo) = empty_repo();
    let sha = commit(&repo, &[("Makefile", LINT_MAKEFILE), ("app.py", "x = 1   \nprint(x)\n")], "lint fails");
    let fix = diff_to(&repo, "app.py", "x = 1\nprint(x)\n");
    let mut server = Server::start(root.path(), SandboxState::fixed(sandbox)).await;

    let ok = server.validate(&sha, &fix, 0).await.unwrap();
    assert!(ok.passed, "{ok:?}");
    assert!(ok.patch_applied);
    assert_eq!(ok.command, "make test");
    assert_eq!(ok.exit_code, 0);
    assert!(!ok.timed_out);
    assert_eq!(ok.sandbox, "bwrap");
    assert!(ok.log_tail.contains("checking app.py"), "{:?}", ok.log_tail);

    let broken = server.validate(&sha, "", 0).await.unwrap();
    assert!(!broken.passed);
    assert!(broken.patch_applied);
    assert_ne!(broken.exit_code, 0);
    assert!(broken.log_tail.contains("1:x = 1"), "grep's output is in the tail: {:?}", broken.log_tail);

    let garbage = server.validate(&sha, "--- a/nothing\n+++ b/nothing\n@@ garbage @@\n", 0).await.unwrap();
    assert!(!garbage.passed);
    assert!(!garbage.patch_applied);
    assert_eq!(garbage.exit_code, -1);
    assert!(!garbage.log_tail.is_empty(), "git's message");
    assert_eq!(garbage.command, "");

    assert_eq!(worktrees(&repo), 1, "worktrees left behind");

    // One summary line per call; the test output (log_tail) is never logged.
    let lines = captured.lines();
    assert_eq!(lines.iter().filter(|l| *l == "message=validation finished").count(), 3, "{lines:#?}");
    assert!(lines.iter().any(|l| l == "command=make test"));
    assert!(!lines.iter().any(|l| l.contains("checking app.py") || l.contains("x = 1")), "{lines:#?}");
    server.stop().await;
}

#[tokio::test]
async fn a_test_past_its_timeout_is_killed() {
    let (_captured, _guard) = Captured::install();
    let (root, repo) = empty_repo();
    let sha = commit(&repo, &[("Makefile", "test:\n\techo sleeping\n\tsleep 37.5\n")], "slow");
    for sandbox in [bwrap(), Sandbox::None] {
        let mut server = Server::start(root.path(), SandboxState::fixed(sandbox.clone())).await;
        let start = std::time::Instant::now();
        let resp = server.validate(&sha, "", 1).await.unwrap();
        assert!(resp.timed_out, "{resp:?}");
        assert!(!resp.passed);
        assert!(resp.patch_applied);
        assert!(resp.log_tail.contains("sleeping"));
        assert_eq!(resp.sandbox, sandbox.name());
        assert!(start.elapsed() < Duration::from_secs(10), "{:?} with {}", start.elapsed(), sandbox.name());
        server.stop().await;
    }
    // `make` and its `sleep` went down with the process group.
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(!ps.lines().any(|l| l.trim() == "sleep 37.5"), "a timed-out test survived:\n{ps}");
    assert_eq!(worktrees(&repo), 1);
}

/// A TCP listener on the host is reachable without the sandbox and unreachable inside it; so is Redis on
/// 6379 when it runs on this host.
#[tokio::test]
async fn the_sandbox_has_no_network() {
    let (_captured, _guard) = Captured::install();
    let sandbox = bwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut ports = vec![listener.local_addr().unwrap().port()];
    if std::net::TcpStream::connect("127.0.0.1:6379").is_ok() {
        ports.push(6379);
    }
    let (root, repo) = empty_repo();
    for port in ports {
        let makefile = format!("test:\n\t@bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' && echo connected\n");
        let sha = commit(&repo, &[("Makefile", &makefile)], &format!("connect to {port}"));

        let mut open = Server::start(root.path(), SandboxState::fixed(Sandbox::None)).await;
        let resp = open.validate(&sha, "", 10).await.unwrap();
        assert!(resp.passed, "port {port} must be reachable without a sandbox: {resp:?}");
        assert_eq!(resp.sandbox, "none");
        open.stop().await;

        let mut sandboxed = Server::start(root.path(), SandboxState::fixed(sandbox.clone())).await;
        let resp = sandboxed.validate(&sha, "", 10).await.unwrap();
        assert_eq!(resp.sandbox, "bwrap");
        assert!(!resp.passed, "port {port} reachable from inside the sandbox: {resp:?}");
        assert!(!resp.log_tail.lines().any(|l| l == "connected"), "{:?}", resp.log_tail);
        sandboxed.stop().await;
    }
}

#[tokio::test]
async fn the_sandbox_keeps_the_host_read_only() {
    let (_captured, _guard) = Captured::install();
    let sandbox = bwrap();
    let (root, repo) = empty_repo();
    // Outside /tmp (which the sandbox replaces), so the sandbox sees the real, read-only directory.
    let outside = tempfile::Builder::new().prefix("outside-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let target = outside.path().join("written");
    let makefile = format!("test:\n\ttouch inside.txt\n\ttouch {}\n", target.display());
    let sha = commit(&repo, &[("Makefile", &makefile)], "writes outside");
    let mut server = Server::start(root.path(), SandboxState::fixed(sandbox)).await;
    let resp = server.validate(&sha, "", 10).await.unwrap();
    assert!(!resp.passed, "{resp:?}");
    assert!(!target.exists(), "the test wrote outside its worktree");
    assert!(resp.log_tail.contains("Read-only file system"), "{:?}", resp.log_tail);
    assert!(!resp.log_tail.contains("'inside.txt'"), "writing in the worktree must work: {:?}", resp.log_tail);
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_statuses() {
    let (_captured, _guard) = Captured::install();
    let (root, repo) = empty_repo();
    let sha = commit(&repo, &[("README.md", "no tests here\n")], "docs only");
    let mut server = Server::start(root.path(), SandboxState::fixed(Sandbox::None)).await;

    let err = server.validate(&sha, "", 0).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().starts_with("no test command detected (looked for"), "{}", err.message());

    let err = server.client.validate(ValidateRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut missing = ctx(&sha);
    missing.repo = "acme/missing".to_owned();
    let req = ValidateRequest { context: Some(missing), ..Default::default() };
    assert_eq!(server.client.validate(req).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(server.validate("zzz", "", 0).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(worktrees(&repo), 1);
    server.stop().await;

    // SRE_SANDBOX=bwrap without a usable bwrap: calls are refused, nothing runs unsandboxed.
    let (state, _ready) =
        SandboxState::start(sre_validator::sandbox::SandboxMode::Bwrap, OsString::from("/nonexistent"));
    let mut server = Server::start(root.path(), state).await;
    let err = server.validate(&sha, "", 0).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("bubblewrap"), "{}", err.message());
    server.stop().await;
}
