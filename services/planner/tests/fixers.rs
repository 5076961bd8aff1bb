//! The deterministic fixers on real tool output: a fixture repository with a real ruff / rustfmt / gofmt /
//! prettier / eslint violation, the real tool's failing output (run here) wrapped as a GitHub Actions job log,
//! through build_failure_context → generate_plan → generate_patch with the fixers in the bubblewrap sandbox.
//! The patch is the tool's own: applied to a fresh clone, the failing check passes. Also: a fixer that
//! would touch a file the failure does not name is refused; a tool that is not installed skips the run with
//! that reason; a permissions failure is never fixed with code; a pinned version that is not available is
//! recorded in the plan; the LLM planner against a fake OpenAI-compatible server (an edit, a declined answer),
//! off unless configured.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sre_gitwork::testing::{actions_log, git, init_repo, tools_path};
use sre_planner::PlannerService;
use sre_planner::exec::FixerRuntime;
use sre_proto::planner_server::Planner;
use sre_proto::{
    BuildFailureContextRequest, FailureContext, FixPlan, GeneratePatchRequest, GeneratePatchResponse,
    GeneratePlanRequest, RunContext,
};
use sre_sandbox::{HostEnv, Limits, Sandbox, SandboxConfig, SandboxMode};
use tonic::Request;

/// Fails (never skips) when a tool the test needs is missing.
fn need(tool: &str) {
    assert!(sre_sandbox::which(tool, &tools_path()).is_some(), "{tool} is not installed: run scripts/install-tools.sh");
}

fn sandbox(path: OsString, repos: &Path) -> Sandbox {
    Sandbox::probe(SandboxConfig {
        mode: SandboxMode::Required,
        limits: Limits::default(),
        toolchains: Vec::new(),
        denied: vec![repos.to_owned()],
        host: HostEnv { path, ..HostEnv::from_process() },
    })
    .expect("bubblewrap works here (the validator's tests need it too)")
}

struct Fixture {
    repos: tempfile::TempDir,
    service: PlannerService,
}

impl Fixture {
    fn new() -> Self {
        Self::with_path(tools_path(), None)
    }

    fn with_path(path: OsString, llm: Option<sre_llm::LlmClient>) -> Self {
        let repos = tempfile::tempdir().unwrap();
        let runtime = FixerRuntime { sandbox: sandbox(path, repos.path()), fix_timeout: Duration::from_secs(120) };
        let service = PlannerService::with(repos.path().to_owned(), runtime, llm);
        Self { repos, service }
    }

    /// `acme/<name>` with `files`, committed; returns (path, sha).
    fn repo(&self, name: &str, files: &[(&str, &str)]) -> (PathBuf, String) {
        let dir = self.repos.path().join("acme").join(name);
        init_repo(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-q", "-m", "fixture"]);
        let sha = git(&dir, &["rev-parse", "HEAD"]);
        (dir, sha)
    }

    fn ctx(name: &str, sha: &str) -> RunContext {
        RunContext {
            repo: format!("acme/{name}"),
            head_sha: sha.to_owned(),
            run_id: "run-1".into(),
            ..Default::default()
        }
    }

    async fn context(&self, name: &str, sha: &str, log: String) -> FailureContext {
        let req = BuildFailureContextRequest { context: Some(Self::ctx(name, sha)), log, ..Default::default() };
        self.service.build_failure_context(Request::new(req)).await.unwrap().into_inner().failure_context.unwrap()
    }

    async fn plan(&self, name: &str, sha: &str, fc: &FailureContext) -> FixPlan {
        let req = GeneratePlanRequest {
            context: Some(Self::ctx(name, sha)),
            failure: None,
            failure_context: Some(fc.clone()),
        };
        self.service.generate_plan(Request::new(req)).await.unwrap().into_inner().plan.unwrap()
    }

    async fn patch(&self, name: &str, sha: &str, plan: &FixPlan, fc: &FailureContext) -> GeneratePatchResponse {
        let req = GeneratePatchRequest {
            context: Some(Self::ctx(name, sha)),
            plan: Some(plan.clone()),
            failure_context: Some(fc.clone()),
        };
        self.service.generate_patch(Request::new(req)).await.unwrap().into_inner()
    }
}

/// Applies `diff` to a fresh clone of `repo` at `sha` and runs `cmd` there: the check must pass.
fn passes_with(repo: &Path, sha: &str, diff: &str, cmd: &str) {
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("c");
    git(repo, &["worktree", "add", "-q", "--detach", clone.to_str().unwrap(), sha]);
    let mut apply = Command::new("git")
        .args(["apply", "-"])
        .current_dir(&clone)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(apply.stdin.as_mut().unwrap(), diff.as_bytes()).unwrap();
    assert!(apply.wait().unwrap().success(), "the patch applies");
    let out = Command::new("bash").arg("-c").arg(cmd).current_dir(&clone).env("PATH", tools_path()).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` passes with the patch:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    git(repo, &["worktree", "remove", "--force", clone.to_str().unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ruff_format_fixes_what_ruff_reported_and_notes_a_pinned_version() {
    need("ruff");
    let f = Fixture::new();
    let pyproject = "[project]\nname = \"app\"\nversion = \"0.1.0\"\n\n[dependency-groups]\ndev = [\"ruff==0.5.0\"]\n";
    let (dir, sha) = f.repo(
        "py",
        &[
            ("app.py", "def add(a,b):\n    return a+b\n\n\n\nx = [1,2,\n  3]\n"),
            ("ok.py", "y = 1\n"),
            ("pyproject.toml", pyproject),
        ],
    );
    let check = "ruff format --check .";
    let fc = f.context("py", &sha, actions_log(&dir, check)).await;
    assert_eq!((fc.category.as_str(), fc.tool.as_str(), fc.language.as_str()), ("format", "ruff", "python"), "{fc:#?}");

    let plan = f.plan("py", &sha, &fc).await;
    assert_eq!(plan.strategy, "ruff_format", "{plan:#?}");
    assert_eq!(plan.steps.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["app.py"], "{plan:#?}");
    assert_eq!(plan.steps[0].action, "ruff_format");
    assert_eq!(plan.command, "ruff format --no-cache -- app.py");
    assert!(plan.tool_version.starts_with("ruff 0."), "{}", plan.tool_version);
    assert!(
        plan.notes.iter().any(|n| n.contains("pins ruff ==0.5.0, which is not available here; ran ruff 0.")),
        "{:?}",
        plan.notes
    );

    let patch = f.patch("py", &sha, &plan, &fc).await;
    // Sample output for docs/diagnosis.md (`-- --nocapture`).
    println!("--- plan\n{plan:#?}\n--- patch ({}, in {})\n{}", patch.command, patch.sandbox, patch.diff);
    assert_eq!(patch.skipped_reason, "");
    assert_eq!(patch.files_changed, ["app.py"], "{}", patch.diff);
    assert_eq!((patch.command.as_str(), patch.sandbox.as_str()), ("ruff format --no-cache -- app.py", "bwrap"));
    assert!(patch.diff.contains("+def add(a, b):\n") && patch.diff.contains("+x = [1, 2, 3]\n"), "{}", patch.diff);
    passes_with(&dir, &sha, &patch.diff, check);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ruff_check_fix_selects_exactly_the_reported_rules() {
    need("ruff");
    let f = Fixture::new();
    // F401 (unused import) is reported; the unused variable (F841, not selected by CI) must stay.
    let (dir, sha) = f.repo("lint", &[("app.py", "import os\n\n\ndef f():\n    unused = 1\n    return 2\n")]);
    let check = "ruff check --select F401 --output-format concise app.py";
    let fc = f.context("lint", &sha, actions_log(&dir, check)).await;
    assert_eq!((fc.category.as_str(), fc.tool.as_str(), fc.autofixable), ("lint", "ruff", true), "{fc:#?}");
    let plan = f.plan("lint", &sha, &fc).await;
    assert_eq!(
        (plan.strategy.as_str(), plan.command.as_str()),
        ("ruff_fix", "ruff check --fix --exit-zero --no-cache --select F401 -- app.py")
    );
    let patch = f.patch("lint", &sha, &plan, &fc).await;
    assert!(patch.diff.contains("-import os\n"), "{}", patch.diff);
    assert!(!patch.diff.contains("-    unused = 1"), "{}", patch.diff);
    passes_with(&dir, &sha, &patch.diff, check);
}

const CARGO_TOML: &str = "[package]\nname = \"fx\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_fmt_fixes_a_rustfmt_failure() {
    need("cargo");
    let f = Fixture::new();
    let (dir, sha) = f.repo("rs", &[("Cargo.toml", CARGO_TOML), ("src/lib.rs", "pub fn add(a:u32,b:u32)->u32{a+b}\n")]);
    let check = "cargo fmt --all --check";
    let fc = f.context("rs", &sha, actions_log(&dir, check)).await;
    assert_eq!((fc.category.as_str(), fc.language.as_str()), ("format", "rust"), "{fc:#?}");
    let plan = f.plan("rs", &sha, &fc).await;
    assert_eq!(plan.strategy, "cargo_fmt", "{plan:#?}");
    assert_eq!(plan.steps.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["src/lib.rs"]);
    assert!(plan.tool_version.starts_with("rustfmt "), "{}", plan.tool_version);
    let patch = f.patch("rs", &sha, &plan, &fc).await;
    assert!(patch.diff.contains("+pub fn add(a: u32, b: u32) -> u32 {\n"), "{}", patch.diff);
    passes_with(&dir, &sha, &patch.diff, check);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_that_touches_a_file_the_failure_does_not_name_is_refused() {
    need("cargo");
    let f = Fixture::new();
    let (dir, sha) = f.repo(
        "scope",
        &[
            ("Cargo.toml", CARGO_TOML),
            ("src/lib.rs", "pub fn add(a:u32,b:u32)->u32{a+b}\n"),
            ("src/bin/tool.rs", "fn main(){println!(\"{}\",fx::add(1,2));}\n"),
        ],
    );
    // CI checks one file with rustfmt itself; cargo fmt --all would reformat the binary as well.
    let check = "rustfmt --edition 2021 --check src/lib.rs";
    let fc = f.context("scope", &sha, actions_log(&dir, check)).await;
    assert_eq!(fc.file_refs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["src/lib.rs"], "{fc:#?}");
    let plan = f.plan("scope", &sha, &fc).await;
    assert_eq!(plan.strategy, "cargo_fmt");
    let patch = f.patch("scope", &sha, &plan, &fc).await;
    println!("--- refused\n{}", patch.skipped_reason);
    assert_eq!(patch.diff, "", "nothing is returned");
    assert_eq!(
        patch.skipped_reason,
        "`cargo fmt --all` also changed src/bin/tool.rs, which the failure does not name (it names src/lib.rs): \
         the patch is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gofmt_fixes_the_files_it_lists_when_the_log_names_none() {
    need("gofmt");
    let f = Fixture::new();
    let (dir, sha) = f.repo(
        "go",
        &[("go.mod", "module example.com/fx\n\ngo 1.19\n"), ("main.go", "package main\nfunc main(){\nprintln(1)\n}\n")],
    );
    // Silent: the check prints nothing, only the command says it was gofmt.
    let check = "test -z \"$(gofmt -l .)\"";
    let fc = f.context("go", &sha, actions_log(&dir, check)).await;
    assert_eq!((fc.category.as_str(), fc.tool.as_str()), ("format", "gofmt"), "{fc:#?}");
    assert!(fc.file_refs.is_empty());
    let plan = f.plan("go", &sha, &fc).await;
    assert_eq!(plan.strategy, "gofmt", "{plan:#?}");
    assert_eq!(plan.steps.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["main.go"]);
    assert!(plan.steps[0].rationale.starts_with("reported by `gofmt -l .`"), "{}", plan.steps[0].rationale);
    let patch = f.patch("go", &sha, &plan, &fc).await;
    assert!(patch.diff.contains("+func main() {\n+\tprintln(1)\n"), "{}", patch.diff);
    passes_with(&dir, &sha, &patch.diff, check);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prettier_and_eslint_fix_javascript() {
    need("prettier");
    need("eslint");
    let f = Fixture::new();
    let (dir, sha) = f.repo(
        "js",
        &[
            ("package.json", "{\"name\": \"fx\", \"devDependencies\": {\"prettier\": \"^3.0.0\"}}\n"),
            ("src/a.ts", "const x = {a:1,\n  b:2}\nexport default x\n"),
        ],
    );
    let check = "prettier --check src/a.ts";
    let fc = f.context("js", &sha, actions_log(&dir, check)).await;
    assert_eq!((fc.category.as_str(), fc.tool.as_str()), ("format", "prettier"), "{fc:#?}");
    let plan = f.plan("js", &sha, &fc).await;
    assert_eq!(plan.strategy, "prettier", "{plan:#?}");
    assert!(plan.notes.iter().any(|n| n.starts_with("package.json pins prettier ^3.0.0; ran 3.")), "{:?}", plan.notes);
    let patch = f.patch("js", &sha, &plan, &fc).await;
    assert!(patch.diff.contains("+const x = { a: 1, b: 2 };\n"), "{}", patch.diff);
    passes_with(&dir, &sha, &patch.diff, check);

    let (dir, sha) = f.repo(
        "eslint",
        &[
            ("eslint.config.mjs", "export default [{ rules: { \"prefer-const\": \"error\" } }];\n"),
            ("a.js", "let x = 1;\nconsole.log(x);\n"),
        ],
    );
    let check = "eslint a.js";
    let fc = f.context("eslint", &sha, actions_log(&dir, check)).await;
    assert_eq!((fc.category.as_str(), fc.tool.as_str(), fc.autofixable), ("lint", "eslint", true), "{fc:#?}");
    let plan = f.plan("eslint", &sha, &fc).await;
    assert_eq!(plan.strategy, "eslint_fix", "{plan:#?}");
    assert_eq!(plan.steps.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["a.js"]);
    let patch = f.patch("eslint", &sha, &plan, &fc).await;
    assert!(patch.diff.contains("+const x = 1;\n"), "{}", patch.diff);
    passes_with(&dir, &sha, &patch.diff, check);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_that_is_not_installed_skips_with_the_reason() {
    need("ruff");
    let real = Fixture::new();
    let (dir, _) = real.repo("py", &[("app.py", "x = [1,2]\n")]);
    let log = actions_log(&dir, "ruff format --check app.py");
    // The same failure, for a planner whose sandbox has no ruff on PATH.
    let f = Fixture::with_path("/usr/bin:/bin".into(), None);
    let (_, sha) = f.repo("py", &[("app.py", "x = [1,2]\n")]);
    let fc = f.context("py", &sha, log).await;
    let plan = f.plan("py", &sha, &fc).await;
    assert_eq!(plan.strategy, "ruff_format");
    assert!(plan.steps.is_empty(), "{plan:#?}");
    assert_eq!(
        plan.summary,
        "ruff is not installed where the planner runs its fixers (not on PATH in the sandbox, bwrap): the \
         ruff_format fix cannot run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_and_uncovered_failures_are_not_fixed_with_code() {
    let f = Fixture::new();
    let (_, sha) = f.repo("perm", &[("app.py", "x = 1 \n")]);
    let ts = "2026-12-01T10:00:00.0000000Z";
    let log = format!(
        "{ts} ##[group]Run gh pr comment 1 --body hi\n{ts} gh pr comment 1 --body hi\n{ts} ##[endgroup]\n\
         {ts} GraphQL: Resource not accessible by integration (addComment)\n\
         {ts} ##[error]Process completed with exit code 1.\n"
    );
    let fc = f.context("perm", &sha, log).await;
    assert_eq!(fc.category, "permissions");
    let plan = f.plan("perm", &sha, &fc).await;
    assert!(plan.steps.is_empty());
    assert_eq!(
        plan.summary,
        "a permissions failure (a missing secret, token or access right) is never fixed with code"
    );
}

fn llm_client(base_url: &str) -> sre_llm::LlmClient {
    let config = sre_llm::LlmConfig::new(base_url, "fix-model");
    let registry = sre_telemetry::SharedRegistry::default();
    sre_llm::LlmClient::new(config, sre_llm::LlmMetrics::register(&registry)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_llm_planner_fixes_what_no_fixer_covers_and_a_declined_answer_skips() {
    need("pytest");
    let files: &[(&str, &str)] = &[
        ("calc.py", "def add(a, b):\n    return a + str(b)\n"),
        ("test_calc.py", "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"),
    ];
    let edit = serde_json::json!({"summary": "add numbers, not strings", "confidence": 0.8,
        "edits": [{"path": "calc.py", "search": "return a + str(b)", "replace": "return a + b"}]});
    let declined = serde_json::json!({"summary": "cannot tell", "confidence": 0, "edits": []});
    let (url, seen) = sre_llm::testing::fake_openai(vec![edit.to_string(), declined.to_string()]).await;
    let f = Fixture::with_path(tools_path(), Some(llm_client(&url)));
    let (dir, sha) = f.repo("calc", files);
    let check = "pytest -q -p no:cacheprovider test_calc.py";
    let fc = f.context("calc", &sha, actions_log(&dir, check)).await;
    assert_eq!(fc.category, "test", "{fc:#?}");
    assert!(fc.file_refs.iter().any(|r| r.path == "calc.py"), "{fc:#?}");

    let plan = f.plan("calc", &sha, &fc).await;
    assert_eq!(plan.strategy, "llm", "{plan:#?}");
    assert!(plan.steps.iter().all(|s| s.action == "llm_edit"));
    assert!(plan.confidence < 0.5, "an LLM plan needs review");
    let patch = f.patch("calc", &sha, &plan, &fc).await;
    assert_eq!(patch.files_changed, ["calc.py"], "{patch:#?}");
    assert!(patch.diff.contains("-    return a + str(b)\n+    return a + b\n"), "{}", patch.diff);
    passes_with(&dir, &sha, &patch.diff, check);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0]["model"], "fix-model");
        assert!(seen[0].to_string().contains("return a + str(b)"), "the file was sent");
    }

    // The model declines: the run is skipped with the reason, nothing is changed.
    let patch = f.patch("calc", &sha, &plan, &fc).await;
    assert_eq!((patch.diff.as_str(), patch.skipped_reason.as_str()), ("", "the model proposed no edit"));

    // Off unless configured: the same failure without a model is not planned.
    let off = Fixture::new();
    let (_, sha) = off.repo("calc", files);
    let plan = off.plan("calc", &sha, &fc).await;
    assert_eq!((plan.strategy.as_str(), plan.steps.len()), ("none", 0), "{plan:#?}");
}
