//! The scenario suite (issue 8): one fixture repository per case, generated here, whose CI step is run here
//! with the real tool to make the real failing log; every case is submitted with `POST /api/v1/runs` and
//! runs end to end through the mesh (gateway → orchestrator → planner → policy → scanner → validator → pr).
//! Each case asserts the outcome, the label, the category, the diff (the tool's own: the plan's command run
//! on a scratch checkout gives the same files), the validation evidence, the PR, and that the runs API serves
//! every artifact the run made.
//!
//! All cases share one mesh (four workers; the scans cost ~8 s a run, so they run concurrently) plus a second
//! mesh whose planner has the LLM planner on, against a fake OpenAI-compatible server, for the failing unit
//! test. Every case is checked and reported, then the test fails naming every case that did not hold.
//! Each case prints one line with its outcome, label and per-stage durations (`-- --nocapture`).
//!
//! Covered elsewhere, not repeated here: `ruff format` end to end (tests/fixer.rs), a secret the patch adds
//! blocks and a pre-existing one does not (tests/unsafe_patch.rs), each validation verdict (tests/validation.rs).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use sre_domain::{Category, PrLabel, Run, RunStatus, Stage, StageStatus, Tool};
use sre_e2e::{Mesh, MeshOptions, actions_log, commit_fixture, need, one_step_workflow, show, tools_path};
use sre_gitwork::testing::git;

const CARGO_TOML: &str = "[package]\nname = \"fx\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n";

/// How a case must end.
enum Want {
    /// A PR labelled `label`, made by `strategy` (running `command`, when a deterministic fixer), changing
    /// exactly `files`; the diff holds every `has` and none of `lacks`.
    Pr {
        label: PrLabel,
        strategy: &'static str,
        command: Option<&'static str>,
        files: &'static [&'static str],
        has: &'static [&'static str],
        lacks: &'static [&'static str],
    },
    /// Ended at `stage` with this status and exactly this reason, its plan of `strategy` with steps on
    /// `steps`; no diff, no PR.
    Ended {
        status: RunStatus,
        stage: Stage,
        reason: &'static str,
        strategy: &'static str,
        steps: &'static [&'static str],
    },
}

struct Case {
    name: &'static str,
    files: Vec<(&'static str, String)>,
    job: &'static str,
    /// The CI step (the workflow's `run:`), run here for the log and by the validator in its sandbox.
    step: &'static str,
    category: Category,
    tool: Tool,
    /// On the mesh whose planner has the LLM planner.
    llm: bool,
    want: Want,
}

fn files(list: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    list.iter().map(|(p, t)| (*p, (*t).to_owned())).collect()
}

const CALC: &[(&str, &str)] = &[
    ("calc.py", "def add(a, b):\n    return a + str(b)\n"),
    ("test_calc.py", "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"),
];

fn cases() -> Vec<Case> {
    let rust = |lib: &str| files(&[("Cargo.toml", CARGO_TOML), (".gitignore", "/target\n"), ("src/lib.rs", lib)]);
    vec![
        Case {
            name: "cargo-fmt",
            files: rust("pub fn add(a:u32,b:u32)->u32{a+b}\n"),
            job: "fmt",
            step: "cargo fmt --all --check",
            category: Category::Format,
            tool: Tool::Rustfmt,
            llm: false,
            want: Want::Pr {
                label: PrLabel::Safe,
                strategy: "cargo_fmt",
                command: Some("cargo fmt --all"),
                files: &["src/lib.rs"],
                has: &["+pub fn add(a: u32, b: u32) -> u32 {\n"],
                lacks: &[],
            },
        },
        Case {
            name: "clippy",
            files: rust("pub fn one() -> u32 {\n    return 1;\n}\n"),
            job: "clippy",
            step: "cargo clippy -- -D warnings",
            category: Category::Lint,
            tool: Tool::Clippy,
            llm: false,
            want: Want::Pr {
                label: PrLabel::Safe,
                strategy: "clippy_fix",
                command: Some("cargo clippy --fix --allow-dirty --allow-staged --offline --all-targets --quiet"),
                files: &["src/lib.rs"],
                has: &["-    return 1;\n", "+    1\n"],
                lacks: &[],
            },
        },
        Case {
            name: "black",
            files: files(&[
                (
                    "pyproject.toml",
                    "[project]\nname = \"app\"\nversion = \"0.1.0\"\n\n[tool.black]\nline-length = 100\n",
                ),
                ("app.py", "TOTALS = {  'a':1,\n    'b':2 }\n"),
                ("ok.py", "X = 1\n"),
            ]),
            job: "format",
            step: "black --check .",
            category: Category::Format,
            tool: Tool::Black,
            llm: false,
            want: Want::Pr {
                label: PrLabel::Safe,
                strategy: "black",
                command: Some("black --quiet -- app.py"),
                files: &["app.py"],
                has: &["+TOTALS = {\"a\": 1, \"b\": 2}\n"],
                lacks: &[],
            },
        },
        Case {
            // F401 is what CI selects; the f-string without placeholders (F541, fixable too) is not reported,
            // so the fix must leave it.
            name: "ruff-check",
            files: files(&[("app.py", "import os\n\n\ndef greet():\n    return f\"hello\"\n")]),
            job: "lint",
            step: "ruff check --select F401 .",
            category: Category::Lint,
            tool: Tool::Ruff,
            llm: false,
            want: Want::Pr {
                label: PrLabel::Safe,
                strategy: "ruff_fix",
                command: Some("ruff check --fix --exit-zero --no-cache --select F401 -- app.py"),
                files: &["app.py"],
                has: &["-import os\n"],
                lacks: &["-    return f\"hello\"\n"],
            },
        },
        Case {
            name: "prettier",
            files: files(&[
                ("package.json", "{\"name\": \"fx\", \"devDependencies\": {\"prettier\": \"^3.0.0\"}}\n"),
                ("src/a.ts", "const x = {a:1,\n  b:2}\nexport default x\n"),
                ("src/ok.ts", "export const y = 1;\n"),
            ]),
            job: "format",
            step: "prettier --check src",
            category: Category::Format,
            tool: Tool::Prettier,
            llm: false,
            want: Want::Pr {
                label: PrLabel::Safe,
                strategy: "prettier",
                command: Some("prettier --write --log-level warn src/a.ts"),
                files: &["src/a.ts"],
                has: &["+const x = { a: 1, b: 2 };\n"],
                lacks: &[],
            },
        },
        Case {
            name: "eslint",
            files: files(&[
                ("eslint.config.mjs", "export default [{ rules: { \"prefer-const\": \"error\" } }];\n"),
                ("a.js", "let x = 1;\nconsole.log(x);\n"),
                ("b.js", "const y = 2;\nconsole.log(y);\n"),
            ]),
            job: "lint",
            step: "eslint .",
            category: Category::Lint,
            tool: Tool::Eslint,
            llm: false,
            want: Want::Pr {
                label: PrLabel::Safe,
                strategy: "eslint_fix",
                command: Some("eslint --fix a.js"),
                files: &["a.js"],
                has: &["-let x = 1;\n", "+const x = 1;\n"],
                lacks: &[],
            },
        },
        Case {
            // Silent: `gofmt -l` lists the files, the step fails when the list is not empty.
            name: "gofmt",
            files: files(&[
                ("go.mod", "module example.com/fx\n\ngo 1.19\n"),
                ("main.go", "package main\nfunc main(){\nprintln(1)\n}\n"),
            ]),
            job: "fmt",
            step: "test -z \"$(gofmt -l .)\"",
            category: Category::Format,
            tool: Tool::Gofmt,
            llm: false,
            want: Want::Pr {
                label: PrLabel::Safe,
                strategy: "gofmt",
                command: Some("gofmt -w main.go"),
                files: &["main.go"],
                has: &["+func main() {\n+\tprintln(1)\n"],
                lacks: &[],
            },
        },
        Case {
            // The model's edit (the fake server's answer) fixes the failing test; an LLM plan always needs review.
            name: "unit-test-llm",
            files: files(CALC),
            job: "test",
            step: "pytest -q -p no:cacheprovider test_calc.py",
            category: Category::Test,
            tool: Tool::Pytest,
            llm: true,
            want: Want::Pr {
                label: PrLabel::NeedsReview,
                strategy: "llm",
                command: None,
                files: &["calc.py"],
                has: &["-    return a + str(b)\n+    return a + b\n"],
                lacks: &[],
            },
        },
        Case {
            name: "unit-test",
            files: files(CALC),
            job: "test",
            step: "pytest -q -p no:cacheprovider test_calc.py",
            category: Category::Test,
            tool: Tool::Pytest,
            llm: false,
            want: Want::Ended {
                status: RunStatus::Skipped,
                stage: Stage::Plan,
                reason: "no deterministic fixer for pytest test failures in python repositories",
                strategy: "none",
                steps: &[],
            },
        },
        Case {
            name: "missing-dep",
            files: files(&[("test_app.py", "import acme_sdk\n\n\ndef test_client():\n    assert acme_sdk.Client()\n")]),
            job: "test",
            step: "pytest -q -p no:cacheprovider",
            category: Category::Dependency,
            tool: Tool::Pip,
            llm: false,
            want: Want::Ended {
                status: RunStatus::Skipped,
                stage: Stage::Plan,
                reason: "no deterministic fixer for pip dependency failures in python repositories",
                strategy: "none",
                steps: &[],
            },
        },
        Case {
            // The crate uses serde_json without depending on it: rustc's E0432 with the `cargo add` hint.
            name: "missing-crate",
            files: rust(
                "use serde_json::Value;\n\npub fn name(v: &Value) -> Option<&str> {\n    v.get(\"name\")?.as_str()\n}\n",
            ),
            job: "build",
            step: "cargo build",
            category: Category::Dependency,
            tool: Tool::Rustc,
            llm: false,
            want: Want::Ended {
                status: RunStatus::Skipped,
                stage: Stage::Plan,
                reason: "no deterministic fixer for rustc dependency failures in rust repositories",
                strategy: "none",
                steps: &[],
            },
        },
        Case {
            // The workflow runs a test directory that does not exist.
            name: "workflow-config",
            files: files(&[("tests/test_app.py", "def test_ok():\n    assert True\n")]),
            job: "test",
            step: "pytest -q -p no:cacheprovider tests/unit",
            category: Category::Config,
            tool: Tool::Pytest,
            llm: false,
            want: Want::Ended {
                status: RunStatus::Skipped,
                stage: Stage::Plan,
                reason: "no deterministic fixer for pytest config failures in python repositories",
                strategy: "none",
                steps: &[],
            },
        },
        Case {
            // `.invalid` never resolves (RFC 6761): the real resolver's failure, offline or not.
            name: "network-curl",
            files: files(&[("README.md", "fx\n")]),
            job: "fetch",
            step: "curl -fsS https://artifacts.example.invalid/tool.tar.gz -o tool.tar.gz",
            category: Category::Infra,
            tool: Tool::Unknown,
            llm: false,
            want: Want::Ended {
                status: RunStatus::Skipped,
                stage: Stage::Plan,
                reason: "an infrastructure failure (network, runner, service outage) has nothing in the code to fix",
                strategy: "none",
                steps: &[],
            },
        },
        Case {
            // pip also prints "No matching distribution found" (a dependency line); the network wins. (With
            // `--retries 0` pip prints no network line at all, and dependency is all the log can say.)
            name: "network-pip",
            files: files(&[("requirements.txt", "acme-sdk==1.2.0\n")]),
            job: "deps",
            step: "pip install --retries 1 --timeout 3 --index-url https://pypi.example.invalid/simple -r requirements.txt",
            category: Category::Infra,
            tool: Tool::Unknown,
            llm: false,
            want: Want::Ended {
                status: RunStatus::Skipped,
                stage: Stage::Plan,
                reason: "an infrastructure failure (network, runner, service outage) has nothing in the code to fix",
                strategy: "none",
                steps: &[],
            },
        },
        Case {
            // `prettier --check .` finds only the workflow file itself (single quotes): the fix would write
            // under .github/, which the policy refuses at the plan.
            name: "github-dir",
            files: files(&[("index.js", "export const x = 1;\n")]),
            job: "format",
            step: "prettier --check .",
            category: Category::Format,
            tool: Tool::Prettier,
            llm: false,
            want: Want::Ended {
                status: RunStatus::Blocked,
                stage: Stage::PolicyPlan,
                reason: "plan blocked by policy: path.github",
                strategy: "prettier",
                steps: &[".github/workflows/ci.yml"],
            },
        },
    ]
}

/// Every check of one case, collected (a failing case does not hide the others).
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn that(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.0.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }
}

async fn get_json(mesh: &Mesh, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = mesh.get(path).await;
    (status.as_u16(), serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)))
}

/// Runs `command` on a scratch checkout of `repo` at `sha` (as CI would run the fixer) and returns the files.
fn tool_result(repo: &Path, sha: &str, command: &str, paths: &[&str]) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let scratch = dir.path().join("scratch");
    git(repo, &["worktree", "add", "-q", "--detach", scratch.to_str().unwrap(), sha]);
    let out = Command::new("bash")
        .arg("-c")
        .arg(command)
        .current_dir(&scratch)
        .env("PATH", tools_path())
        .output()
        .map_err(|e| e.to_string())?;
    let texts = paths.iter().map(|p| std::fs::read_to_string(scratch.join(p)).unwrap_or_default()).collect();
    git(repo, &["worktree", "remove", "--force", scratch.to_str().unwrap()]);
    if !out.status.success() {
        return Err(format!("`{command}` failed on a scratch checkout: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(texts)
}

async fn check(mesh: &Mesh, case: &Case, run: &Run, sha: &str) -> Checks {
    let mut c = Checks::default();
    let run_id = &run.run_id;
    let repo = mesh.repos_dir().join("acme").join(case.name);
    c.eq("category", run.category, Some(case.category));
    c.eq("tool", run.tool, Some(case.tool));
    let (status, api_run) = get_json(mesh, &format!("/api/v1/runs/{run_id}")).await;
    c.eq("GET run", status, 200);
    c.eq("GET run status", api_run["status"].as_str(), Some(run.status.as_str()));
    let (_, listed) = get_json(mesh, &format!("/api/v1/runs/{run_id}/artifacts")).await;
    let kinds: BTreeSet<String> = listed["artifacts"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["kind"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let (status, context) = get_json(mesh, &format!("/api/v1/runs/{run_id}/artifacts/context")).await;
    c.eq("GET context", status, 200);
    c.eq("context category", context["category"].as_str(), Some(case.category.as_str()));
    c.eq("context command", context["command"].as_str(), Some(case.step));
    let (status, plan) = get_json(mesh, &format!("/api/v1/runs/{run_id}/artifacts/plan")).await;
    c.eq("GET plan", status, 200);
    let (status, log) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/log")).await;
    c.that(status == 200 && log.contains("##[error]Process completed"), || format!("GET log: {status}"));

    match &case.want {
        Want::Pr { label, strategy, command, files, has, lacks } => {
            let want_kinds = ["context", "diff", "log", "plan", "pull_request", "scan_report", "validation"];
            c.eq("artifact kinds", kinds.iter().map(String::as_str).collect::<Vec<_>>(), want_kinds.to_vec());
            c.eq("status", run.status, RunStatus::Success);
            c.that(run.reason.is_empty(), || format!("reason: {}", run.reason));
            c.eq("label", run.label, Some(*label));
            c.eq("plan strategy", plan["strategy"].as_str(), Some(*strategy));
            if let Some(command) = command {
                c.eq("plan command", plan["command"].as_str(), Some(*command));
            }
            let (_, diff) = mesh.get(&format!("/api/v1/runs/{run_id}/diff")).await;
            let changed: Vec<&str> =
                diff.lines().filter_map(|l| l.strip_prefix("diff --git a/")?.split(" b/").next()).collect();
            c.eq("diff files", changed, files.to_vec());
            for h in *has {
                c.that(diff.contains(h), || format!("the diff lacks {h:?}:\n{diff}"));
            }
            for l in *lacks {
                c.that(!diff.contains(l), || format!("the diff has {l:?}:\n{diff}"));
            }
            let (_, scans) = get_json(mesh, &format!("/api/v1/runs/{run_id}/artifacts/scan_report")).await;
            c.eq("scans blocking", scans["blocking"].as_bool(), Some(false));
            let (_, v) = get_json(mesh, &format!("/api/v1/runs/{run_id}/artifacts/validation")).await;
            c.eq("verdict", v["verdict"].as_str(), Some("reproduced_and_fixed"));
            c.eq("reproduced, passed", (v["reproduced"].as_bool(), v["passed"].as_bool()), (Some(true), Some(true)));
            c.eq("validated command", v["command"].as_str(), Some(case.step));
            c.eq("validation sandbox", v["sandbox"].as_str(), Some("bwrap"));
            c.that(v["before"]["exit_code"].as_i64().is_some_and(|e| e != 0), || format!("before: {}", v["before"]));
            c.eq("after exit code", v["after"]["exit_code"].as_i64(), Some(0));
            let (_, pr_artifact) = get_json(mesh, &format!("/api/v1/runs/{run_id}/artifacts/pull_request")).await;
            let Some(pr) = &run.pr else {
                c.0.push("no PR".into());
                return c;
            };
            c.eq("PR artifact branch", pr_artifact["branch"].as_str(), Some(pr.branch.as_str()));
            c.eq("PR artifact label", pr_artifact["label"].as_str(), Some(label.as_str()));
            // The PR branch holds exactly the run's diff ...
            let on_branch = git(&repo, &["diff", "--name-only", sha, &pr.branch]);
            c.eq("files on the PR branch", on_branch.lines().collect::<Vec<_>>(), files.to_vec());
            // ... and it is the tool's own: the plan's command on a scratch checkout makes the same files.
            if let Some(command) = command {
                match tool_result(&repo, sha, command, files) {
                    Ok(texts) => {
                        for (path, want) in files.iter().zip(texts) {
                            let got = show(&repo, &pr.branch, path);
                            c.that(got.trim() == want.trim(), || {
                                format!("{path} on the PR branch is not what `{command}` makes:\n{got}\n---\n{want}")
                            });
                        }
                    }
                    Err(e) => c.0.push(e),
                }
            }
        }
        Want::Ended { status, stage, reason, strategy, steps } => {
            c.eq("status", run.status, *status);
            c.eq("plan strategy", plan["strategy"].as_str(), Some(*strategy));
            let planned: Vec<&str> = plan["steps"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s["path"].as_str()).collect())
                .unwrap_or_default();
            c.eq("plan steps", planned, steps.to_vec());
            c.eq("reason", run.reason.as_str(), reason);
            let last = run.stages.last().map(|s| (s.stage, s.status));
            let stage_status = if *status == RunStatus::Blocked { StageStatus::Blocked } else { StageStatus::Skipped };
            c.eq("last stage", last, Some((*stage, stage_status)));
            c.that(run.pr.is_none(), || format!("a PR: {:?}", run.pr));
            c.that(!kinds.contains("diff") && !kinds.contains("pull_request"), || format!("artifacts: {kinds:?}"));
            let branches = git(&repo, &["for-each-ref", "--format=%(refname)", "refs/heads/sre-agent"]);
            c.that(branches.is_empty(), || format!("a PR branch: {branches}"));
        }
    }
    c
}

/// The line the lead puts in the issue note: outcome, label, category and each stage's duration.
fn timing_line(case: &Case, run: &Run) -> String {
    let stages: Vec<String> = run.stages.iter().map(|s| format!("{}={}ms", s.stage.as_str(), s.duration_ms)).collect();
    let total: u64 = run.stages.iter().map(|s| s.duration_ms).sum();
    format!(
        "scenario {:<16} outcome={:<7} label={:<12} category={:<10} stages: {} (sum {total} ms, wall {} ms)",
        case.name,
        run.status.as_str(),
        run.label.map_or("-", PrLabel::as_str),
        run.category.map_or("-", Category::as_str),
        stages.join(" "),
        run.updated_at_ms - run.created_at_ms,
    )
}

async fn submit(mesh: &Mesh, case: &Case, sha: &str, log: String) -> Result<String, String> {
    let body = serde_json::json!({"repo": format!("acme/{}", case.name), "head_sha": sha, "head_branch": "main",
                                  "job": case.job, "workflow": "CI", "log": log});
    let req =
        Request::post("/api/v1/runs").header("content-type", "application/json").body(Body::from(body.to_string()));
    let (status, answer) = mesh.send(req.unwrap()).await;
    if status != 202 {
        return Err(format!("POST /api/v1/runs: {status} {answer}"));
    }
    let answer: serde_json::Value = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
    answer["run_id"].as_str().map(str::to_owned).ok_or_else(|| format!("no run_id in {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_scenario_runs_end_to_end_through_the_mesh() {
    for tool in [
        "cargo",
        "rustfmt",
        "cargo-clippy",
        "ruff",
        "black",
        "pytest",
        "prettier",
        "eslint",
        "gofmt",
        "go",
        "curl",
        "pip",
    ] {
        need(tool);
    }
    for tool in ["gitleaks", "trivy", "syft", "bwrap"] {
        need(tool);
    }
    let edit = serde_json::json!({"summary": "add numbers, not strings", "confidence": 0.8,
        "edits": [{"path": "calc.py", "search": "return a + str(b)", "replace": "return a + b"}]});
    let (llm_url, seen) = sre_llm::testing::fake_openai(vec![edit.to_string()]).await;
    let mesh = Mesh::start(MeshOptions { workers: 4, ..MeshOptions::default() }).await;
    let llm_mesh =
        Mesh::start(MeshOptions { llm: Some((llm_url, "fix-model".into())), ..MeshOptions::default() }).await;

    let cases = cases();
    let started = Instant::now();
    let mut submitted = Vec::new();
    for case in &cases {
        let m = if case.llm { &llm_mesh } else { &mesh };
        let mut list: Vec<(&str, &str)> = case.files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let workflow = one_step_workflow(case.job, case.step);
        list.push((".github/workflows/ci.yml", &workflow));
        let sha = commit_fixture(m.repos_dir(), &format!("acme/{}", case.name), &list);
        let log = actions_log(&m.repos_dir().join("acme").join(case.name), case.step);
        submitted.push((sha.clone(), submit(m, case, &sha, log).await));
    }

    // Every run to its end (they run side by side), within one deadline.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut runs: Vec<Option<Run>> = vec![None; cases.len()];
    while runs.iter().zip(&submitted).any(|(r, (_, s))| r.is_none() && s.is_ok()) && Instant::now() < deadline {
        for (i, (case, (_, id))) in cases.iter().zip(&submitted).enumerate() {
            let (Ok(id), None) = (id, &runs[i]) else { continue };
            let m = if case.llm { &llm_mesh } else { &mesh };
            if let Some(run) = m.store.get_run(id).await.unwrap().filter(Run::is_terminal) {
                runs[i] = Some(run);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("scenario suite: {} cases in {} ms", cases.len(), started.elapsed().as_millis());

    let mut failed = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let m = if case.llm { &llm_mesh } else { &mesh };
        let (sha, id) = &submitted[i];
        let problems = match (id, &runs[i]) {
            (Err(e), _) => vec![e.clone()],
            (Ok(id), None) => {
                let run = m.store.get_run(id).await.unwrap();
                vec![format!("not terminal within 240 s: {run:#?}")]
            }
            (Ok(_), Some(run)) => {
                eprintln!("{}", timing_line(case, run));
                let problems = check(m, case, run, sha).await.0;
                if problems.is_empty() { problems } else { [problems, vec![format!("{run:#?}")]].concat() }
            }
        };
        if !problems.is_empty() {
            failed.push(format!("case {}:\n  {}", case.name, problems.join("\n  ")));
        }
    }
    // The refusal of github-dir is counted once, as a path violation (the family is the bounded label).
    let policy = mesh.scrape("policy");
    if !policy.contains("sre_agent_policy_violations_total{type=\"path\"} 1\n") {
        failed.push(format!("case github-dir: the policy did not count one path violation:\n{policy}"));
    }
    {
        let seen = seen.lock().unwrap();
        if seen.len() != 1 || !seen[0].to_string().contains("return a + str(b)") {
            failed.push(format!(
                "case unit-test-llm: the model was asked {} time(s), want once with calc.py",
                seen.len()
            ));
        }
    }
    mesh.stop().await;
    llm_mesh.stop().await;
    assert!(failed.is_empty(), "{} of {} scenarios failed:\n{}", failed.len(), cases.len(), failed.join("\n"));
}
