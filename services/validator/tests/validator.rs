//! End to end: real git repositories with a `.github/workflows/ci.yml` whose step fails, a patch that fixes
//! it (or not), the real bubblewrap sandbox, the service behind a real tonic server (health, reflection,
//! telemetry layer, as in production) on 127.0.0.1:0. Every verdict: reproduced and fixed, still failing,
//! not reproduced, refused, patch failed, timeout; a step with a working directory and env; a Go formatting
//! check; no workflow at all; everything under /tmp.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sre_gitwork::testing::{git, init_repo};
use sre_proto::validator_client::ValidatorClient;
use sre_proto::validator_server::ValidatorServer;
use sre_proto::{FailureInfo, RunContext, ValidateRequest, ValidateResponse};
use sre_sandbox::{HostEnv, Limits, Sandbox, SandboxConfig, SandboxMode};
use sre_service_kit::testing::InProcess;
use sre_telemetry::SharedRegistry;
use sre_telemetry::testing::Captured;
use sre_validator::events::ValidatorMetrics;
use sre_validator::{ValidatorConfig, ValidatorService};
use tonic::Code;

const REPO: &str = "acme/app";

/// Fails (exit 1) when a file has trailing whitespace, printing the lines.
const CHECK_WS: &str = "import sys\n\
bad = [(p, n) for p in sys.argv[1:] for n, l in enumerate(open(p), 1) if l.rstrip('\\n') != l.rstrip()]\n\
for p, n in bad:\n    print(f'{p}:{n}: trailing whitespace')\n\
print('whitespace check:', 'FAILED' if bad else 'ok')\nsys.exit(1 if bad else 0)\n";

const CI: &str = r#"name: CI
on: [push, pull_request]
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
      - name: Check whitespace
        run: python3 scripts/check_ws.py app.py
"#;

/// `repos/acme/app` under `root`, empty, with a local identity.
fn new_repo(root: &Path) -> PathBuf {
    let repo = root.join(REPO);
    init_repo(&repo);
    repo
}

/// Writes `files` (creating directories), commits, returns HEAD.
fn commit(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, text) in files {
        let p = repo.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
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

fn worktrees(repo: &Path) -> usize {
    git(repo, &["worktree", "list", "--porcelain"]).lines().filter(|l| l.starts_with("worktree ")).count()
}

fn sandbox(mode: SandboxMode, repos_dir: &Path) -> Sandbox {
    let config = SandboxConfig {
        mode,
        limits: Limits::default(),
        toolchains: Vec::new(),
        denied: vec![repos_dir.to_owned()],
        host: HostEnv::from_process(),
    };
    Sandbox::probe(config).unwrap_or_else(|e| panic!("bubblewrap is not usable ({e}): run scripts/install-tools.sh"))
}

struct Server {
    client: ValidatorClient<tonic::transport::Channel>,
    registry: SharedRegistry,
    server: InProcess,
}

impl Server {
    async fn start(repos_dir: &Path, mode: SandboxMode) -> Self {
        let registry = SharedRegistry::default();
        let config = ValidatorConfig { default_timeout: Duration::from_secs(120), concurrency: 2 };
        let metrics = ValidatorMetrics::register(&registry);
        let service = ValidatorService::new(repos_dir.to_owned(), config, sandbox(mode, repos_dir), metrics);
        let routes = tonic::service::Routes::new(ValidatorServer::new(service));
        let server = InProcess::start("sre.v1.Validator", registry.clone(), routes).await;
        let client = ValidatorClient::connect(server.url()).await.unwrap();
        Self { client, registry, server }
    }

    async fn call(&mut self, req: ValidateRequest) -> Result<ValidateResponse, tonic::Status> {
        self.client.validate(req).await.map(tonic::Response::into_inner)
    }

    /// A failure of job `job` (step `step`) in workflow CI, validated with `diff`.
    async fn validate(&mut self, sha: &str, diff: &str, job: &str, step: &str) -> ValidateResponse {
        self.call(request(sha, diff, job, step)).await.expect("validate")
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn request(sha: &str, diff: &str, job: &str, step: &str) -> ValidateRequest {
    ValidateRequest {
        context: Some(RunContext {
            run_id: "7d1e2a90-0000-4000-8000-000000000001".to_owned(),
            repo: REPO.to_owned(),
            head_sha: sha.to_owned(),
            ..Default::default()
        }),
        diff: diff.to_owned(),
        timeout_seconds: 0,
        failure: Some(FailureInfo {
            event: "workflow_job".into(),
            workflow_name: "CI".into(),
            job_name: job.into(),
            ..Default::default()
        }),
        failing_step: step.to_owned(),
        ..Default::default()
    }
}

/// The whitespace fixture: app.py with trailing whitespace, its fix, and a patch that fixes something else.
fn whitespace_repo(root: &Path) -> (PathBuf, String, String, String) {
    let repo = new_repo(root);
    let sha = commit(
        &repo,
        &[
            (".github/workflows/ci.yml", CI),
            ("scripts/check_ws.py", CHECK_WS),
            ("app.py", "x = 1   \nprint(x)\n"),
            ("README.md", "app\n"),
        ],
        "app with trailing whitespace",
    );
    let fix = diff_to(&repo, "app.py", "x = 1\nprint(x)\n");
    let unrelated = diff_to(&repo, "README.md", "app, documented\n");
    (repo, sha, fix, unrelated)
}

#[tokio::test]
async fn a_fix_is_proven_by_the_failing_step_failing_then_passing() {
    let (captured, _guard) = Captured::install();
    let root = tempfile::tempdir().unwrap();
    let (repo, sha, fix, _) = whitespace_repo(root.path());
    let mut server = Server::start(root.path(), SandboxMode::Required).await;

    let r = server.validate(&sha, &fix, "lint", "Check whitespace").await;
    assert_eq!(
        (r.verdict.as_str(), r.reproduced, r.passed, r.patch_applied),
        ("reproduced_and_fixed", true, true, true),
        "{r:#?}"
    );
    assert_eq!(r.reason, "the step fails without the patch (exit 1) and passes with it");
    assert!(r.refusal_reason.is_empty());
    let step = r.step.clone().unwrap();
    assert_eq!(
        (
            step.workflow.as_str(),
            step.job_id.as_str(),
            step.step_name.as_str(),
            step.step_index,
            step.matched_by.as_str()
        ),
        (".github/workflows/ci.yml", "lint", "Check whitespace", 3, "name")
    );
    let before = r.before.clone().unwrap();
    assert_eq!((before.exit_code, before.timed_out, before.patched), (1, false, false));
    assert_eq!(before.command, "python3 scripts/check_ws.py app.py");
    assert_eq!(before.shell, "bash -e {0}");
    assert_eq!(before.sandbox, "bwrap");
    assert!(before.log_tail.contains("app.py:1: trailing whitespace"), "{:?}", before.log_tail);
    let after = r.after.clone().unwrap();
    assert_eq!((after.exit_code, after.patched), (0, true));
    assert!(after.log_tail.contains("whitespace check: ok"), "{:?}", after.log_tail);
    assert!(r.test.is_none());
    assert_eq!(
        (r.command.as_str(), r.exit_code, r.sandbox.as_str()),
        ("python3 scripts/check_ws.py app.py", 0, "bwrap")
    );

    // Counted and logged once, without any command output.
    let metrics = server.registry.encode(false);
    assert!(metrics.contains("sre_agent_validation_runs_total{result=\"reproduced_and_fixed\"} 1"), "{metrics}");
    assert!(metrics.contains("sre_agent_validation_runs_total{result=\"refused\"} 0"), "{metrics}");
    let lines = captured.lines();
    assert_eq!(lines.iter().filter(|l| *l == "message=validation finished").count(), 1, "{lines:#?}");
    assert!(lines.iter().any(|l| l == "result=reproduced_and_fixed"), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("trailing whitespace") || l.contains("x = 1")), "{lines:#?}");
    assert_eq!(worktrees(&repo), 1, "worktrees left behind");
    server.stop().await;
}

#[tokio::test]
async fn a_patch_that_does_not_fix_the_step_is_still_failing() {
    let (_c, _g) = Captured::install();
    let root = tempfile::tempdir().unwrap();
    let (repo, sha, fix, unrelated) = whitespace_repo(root.path());
    let mut server = Server::start(root.path(), SandboxMode::Required).await;
    let r = server.validate(&sha, &unrelated, "lint", "Check whitespace").await;
    assert_eq!((r.verdict.as_str(), r.reproduced, r.passed), ("still_failing", true, false), "{r:#?}");
    assert_eq!(r.reason, "the step fails without the patch (exit 1) and still fails with it (exit 1)");
    assert_eq!(r.exit_code, 1);
    assert!(r.log_tail.contains("app.py:1: trailing whitespace"));

    // The step passes, the configured test command does not: still failing, with the test's evidence.
    let mut req = request(&sha, &fix, "lint", "Check whitespace");
    req.test_command = "grep -q documented README.md".into();
    let r = server.call(req.clone()).await.unwrap();
    assert_eq!((r.verdict.as_str(), r.passed), ("still_failing", false), "{r:#?}");
    let test = r.test.unwrap();
    assert_eq!((test.command.as_str(), test.exit_code, test.patched), ("grep -q documented README.md", 1, true));
    req.test_command = "grep -q app README.md".into();
    let r = server.call(req).await.unwrap();
    assert_eq!(r.verdict, "reproduced_and_fixed", "{r:#?}");
    assert_eq!(r.test.unwrap().exit_code, 0);
    assert!(r.reason.ends_with("and the test command passes"), "{}", r.reason);
    assert_eq!(worktrees(&repo), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_step_that_passes_without_the_patch_is_not_reproduced() {
    let (_c, _g) = Captured::install();
    let root = tempfile::tempdir().unwrap();
    let repo = new_repo(root.path());
    let sha = commit(
        &repo,
        &[
            (".github/workflows/ci.yml", CI),
            ("scripts/check_ws.py", CHECK_WS),
            ("app.py", "x = 1\n"),
            ("README.md", "a\n"),
        ],
        "clean app",
    );
    let patch = diff_to(&repo, "README.md", "b\n");
    let mut server = Server::start(root.path(), SandboxMode::Required).await;
    let r = server.validate(&sha, &patch, "lint", "Check whitespace").await;
    assert_eq!((r.verdict.as_str(), r.reproduced, r.passed), ("not_reproduced", false, true), "{r:#?}");
    assert_eq!(r.reason, "the step passes without the patch too: the failure was not reproduced");
    assert_eq!((r.before.unwrap().exit_code, r.after.unwrap().exit_code), (0, 0));
    assert!(server.registry.encode(false).contains("sre_agent_validation_runs_total{result=\"not_reproduced\"} 1"));
    server.stop().await;
}

#[tokio::test]
async fn steps_the_sandbox_cannot_run_are_refused_without_running() {
    let (_c, _g) = Captured::install();
    let root = tempfile::tempdir().unwrap();
    let repo = new_repo(root.path());
    let wf = r#"name: CI
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - name: Upload
        run: 'curl -fsS -H "Authorization: $TOKEN" https://example.invalid'
        env:
          TOKEN: ${{ secrets.DEPLOY_TOKEN }}
      - name: Lint action
        uses: golangci/golangci-lint-action@v6
      - name: Windows-ish
        shell: pwsh
        run: Write-Output hi
      - name: Event
        run: echo ${{ github.event.head_commit.message }}
"#;
    let sha = commit(&repo, &[(".github/workflows/ci.yml", wf), ("a.txt", "a\n")], "deploy");
    let patch = diff_to(&repo, "a.txt", "b\n");
    let mut server = Server::start(root.path(), SandboxMode::Required).await;
    for (step, want) in [
        ("Upload", "it needs secrets (`${{ secrets.DEPLOY_TOKEN }}`)"),
        ("Lint action", "the step is an action (uses: golangci/golangci-lint-action@v6)"),
        ("Windows-ish", "shell \"pwsh\" is not supported (bash, sh, python)"),
        ("Event", "`${{ github.event.head_commit.message }}` cannot be resolved"),
    ] {
        let r = server.validate(&sha, &patch, "deploy", step).await;
        assert_eq!((r.verdict.as_str(), r.reproduced, r.passed), ("refused", false, false), "{step}: {r:#?}");
        assert!(r.refusal_reason.contains(want), "{step}: {}", r.refusal_reason);
        assert!(r.before.is_none() && r.after.is_none() && r.test.is_none(), "nothing runs: {r:#?}");
        assert_eq!(r.step.unwrap().step_name, step);
        assert_eq!(r.exit_code, -1);
    }
    assert!(server.registry.encode(false).contains("sre_agent_validation_runs_total{result=\"refused\"} 4"));
    assert_eq!(worktrees(&repo), 1);
    server.stop().await;
}

/// `make check` in `pkg/` (the step's working-directory) with env from the workflow, the job and the step
/// (a number, an `${{ env.X }}` reference): only the right value in pkg/value.txt passes.
#[tokio::test]
async fn a_step_runs_in_its_working_directory_with_its_env() {
    let (_c, _g) = Captured::install();
    let root = tempfile::tempdir().unwrap();
    let repo = new_repo(root.path());
    let wf = r#"name: CI
on: push
env:
  PREFIX: answer
jobs:
  check:
    name: Value check
    runs-on: ubuntu-latest
    env:
      EXPECTED: 42
    defaults:
      run:
        working-directory: pkg
    steps:
      - uses: actions/checkout@v4
      - run: make check
        env:
          LABEL: ${{ env.PREFIX }}-${{ runner.os }}
"#;
    let makefile =
        "check:\n\t@echo \"$$LABEL in $$(pwd) at $$GITHUB_SHA\"\n\ttest \"$$(cat value.txt)\" = \"$$EXPECTED\"\n";
    let sha = commit(
        &repo,
        &[(".github/workflows/ci.yml", wf), ("pkg/Makefile", makefile), ("pkg/value.txt", "41\n")],
        "wrong value",
    );
    let fix = diff_to(&repo, "pkg/value.txt", "42\n");
    let mut server = Server::start(root.path(), SandboxMode::Required).await;
    let r = server.validate(&sha, &fix, "Value check", "Run make check").await;
    assert_eq!(r.verdict, "reproduced_and_fixed", "{r:#?}");
    let (before, after) = (r.before.unwrap(), r.after.unwrap());
    assert_eq!((before.working_directory.as_str(), before.exit_code), ("pkg", 2));
    assert!(after.log_tail.contains(&format!("answer-Linux in /work/repo/pkg at {sha}")), "{:?}", after.log_tail);
    assert_eq!(r.step.unwrap().job_id, "check");
    server.stop().await;
}

/// The formatter check CI uses for Go: `gofmt -l` prints file names and exits 0, so `test -z` fails.
#[tokio::test]
async fn a_gofmt_check_is_reproduced_and_fixed() {
    let (_c, _g) = Captured::install();
    let root = tempfile::tempdir().unwrap();
    let repo = new_repo(root.path());
    let wf = r#"name: CI
on: push
jobs:
  fmt:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@v5
      - name: gofmt
        run: |
          gofmt -l .
          test -z "$(gofmt -l .)"
"#;
    let sha = commit(
        &repo,
        &[
            (".github/workflows/ci.yml", wf),
            ("go.mod", "module example.com/app\n\ngo 1.19\n"),
            ("main.go", "package main\nfunc main(){}\n"),
        ],
        "unformatted go",
    );
    let fix = diff_to(&repo, "main.go", "package main\n\nfunc main() {}\n");
    let mut server = Server::start(root.path(), SandboxMode::Required).await;
    let r = server.validate(&sha, &fix, "fmt", "gofmt").await;
    assert_eq!(r.verdict, "reproduced_and_fixed", "{r:#?} (is golang-go installed? scripts/install-tools.sh go)");
    assert_eq!(r.before.unwrap().log_tail, "main.go\n");
    server.stop().await;
}

#[tokio::test]
async fn no_workflow_falls_back_to_the_test_command_and_is_not_reproduced() {
    let (_c, _g) = Captured::install();
    let root = tempfile::tempdir().unwrap();
    let repo = new_repo(root.path());
    let sha =
        commit(&repo, &[("Makefile", "test:\n\t! grep -n '[[:space:]]$$' app.py\n"), ("app.py", "x = 1  \n")], "no CI");
    let fix = diff_to(&repo, "app.py", "x = 1\n");
    let mut server = Server::start(root.path(), SandboxMode::Required).await;
    let r = server.validate(&sha, &fix, "lint", "").await;
    assert_eq!((r.verdict.as_str(), r.reproduced, r.passed), ("not_reproduced", false, true), "{r:#?}");
    assert!(r.reason.starts_with("no step to re-run (the commit has no workflow files"), "{}", r.reason);
    assert!(r.before.is_none() && r.after.is_none());
    let test = r.test.unwrap();
    assert_eq!((test.command.as_str(), test.exit_code, test.patched), ("make test", 0, true));
    assert_eq!((r.command.as_str(), r.exit_code), ("make test", 0));
    server.stop().await;
}

#[tokio::test]
async fn timeouts_and_patches_that_do_not_apply_are_verdicts() {
    let (_c, _g) = Captured::install();
    let root = tempfile::tempdir().unwrap();
    let repo = new_repo(root.path());
    let wf = "name: CI\non: push\njobs:\n  slow:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo sleeping; sleep 37.5\n";
    let sha = commit(&repo, &[(".github/workflows/ci.yml", wf), ("a.txt", "a\n")], "slow");
    let patch = diff_to(&repo, "a.txt", "b\n");
    let mut server = Server::start(root.path(), SandboxMode::Required).await;
    let start = std::time::Instant::now();
    let mut req = request(&sha, &patch, "slow", "");
    req.timeout_seconds = 2;
    let r = server.call(req).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    assert_eq!((r.verdict.as_str(), r.passed), ("timeout", false), "{r:#?}");
    let before = r.before.unwrap();
    assert!(before.timed_out && before.log_tail.contains("sleeping"));
    assert!(r.after.is_none(), "no run with the patch after the budget is spent");
    assert_eq!(r.step.unwrap().matched_by, "last_run_step");

    let r = server.validate(&sha, "--- a/nothing\n+++ b/nothing\n@@ garbage @@\n", "slow", "").await;
    assert_eq!((r.verdict.as_str(), r.patch_applied, r.exit_code), ("patch_failed", false, -1), "{r:#?}");
    assert!(!r.log_tail.is_empty(), "git's message");
    assert!(r.before.is_none());
    assert_eq!(worktrees(&repo), 1);
    server.stop().await;
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).lines().any(|l| l.trim() == "sleep 37.5"),
        "a timed-out step survived"
    );
}

/// The whole repository, its worktrees and the sandbox's denied paths under /tmp, which the sandbox replaces
/// with its own tmpfs: the step still sees its worktree and proves the fix.
#[tokio::test]
async fn everything_under_tmp_still_validates() {
    let (_c, _g) = Captured::install();
    let root = tempfile::Builder::new().prefix("sre-validator-under-tmp-").tempdir_in("/tmp").unwrap();
    let (repo, sha, fix, _) = whitespace_repo(root.path());
    let mut server = Server::start(root.path(), SandboxMode::Required).await;
    let r = server.validate(&sha, &fix, "lint", "Check whitespace").await;
    assert_eq!(r.verdict, "reproduced_and_fixed", "{r:#?}");
    assert_eq!(worktrees(&repo), 1);
    server.stop().await;
}

#[tokio::test]
async fn unsafe_none_is_reported_in_every_response() {
    let (captured, _g) = Captured::install();
    let root = tempfile::tempdir().unwrap();
    let (_repo, sha, fix, _) = whitespace_repo(root.path());
    let mut server = Server::start(root.path(), SandboxMode::UnsafeNone).await;
    let r = server.validate(&sha, &fix, "lint", "Check whitespace").await;
    assert_eq!((r.verdict.as_str(), r.sandbox.as_str()), ("reproduced_and_fixed", "unsafe-none"), "{r:#?}");
    assert_eq!((r.before.unwrap().sandbox.as_str(), r.after.unwrap().sandbox.as_str()), ("unsafe-none", "unsafe-none"));
    let warns = captured
        .events()
        .into_iter()
        .filter(|e| e.level == "WARN" && e.fields.get("message").is_some_and(|m| m.contains("unsafe: no sandbox")))
        .count();
    assert_eq!(warns, 3, "the start and each of the two runs");
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_statuses() {
    let (_c, _g) = Captured::install();
    let root = tempfile::tempdir().unwrap();
    let repo = new_repo(root.path());
    let sha = commit(&repo, &[("README.md", "no tests here\n")], "docs only");
    let mut server = Server::start(root.path(), SandboxMode::Required).await;

    // Nothing to run at all: not reproduced, nothing passed.
    let r = server.validate(&sha, "", "lint", "").await;
    assert_eq!((r.verdict.as_str(), r.passed), ("not_reproduced", false), "{r:#?}");
    assert!(r.reason.ends_with("and no test command: nothing proves the fix"), "{}", r.reason);

    let err = server.call(ValidateRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut missing = request(&sha, "", "lint", "");
    missing.context.as_mut().unwrap().repo = "acme/missing".into();
    assert_eq!(server.call(missing).await.unwrap_err().code(), Code::NotFound);
    let mut bad_sha = request(&sha, "", "lint", "");
    bad_sha.context.as_mut().unwrap().head_sha = "zzz".into();
    assert_eq!(server.call(bad_sha).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(worktrees(&repo), 1);
    server.stop().await;
}
