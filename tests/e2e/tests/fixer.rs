//! A real `ruff format --check` failure end to end: the repository's CI step run here (the real tool's real
//! output) as a GitHub Actions job log, submitted with `POST /api/v1/runs`; the planner chooses ruff from
//! the log's content, runs `ruff format` in the sandbox on the file ruff named, and the PR's diff is ruff's
//! own; the validator re-ran the failing step without and with the patch (reproduced_and_fixed).

use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use sre_domain::{RunStatus, Stage, StageStatus};
use sre_e2e::{Mesh, MeshOptions, actions_log, need, show, tools_path};
use sre_gitwork::testing::{git, init_repo};

const WORKFLOW: &str = "name: CI\non: [push]\njobs:\n  format:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: Format\n        run: ruff format --check .\n";

const APP: &str = "def add(a,b):\n    return a+b\n\n\n\nTOTALS = {'a':1,\n  'b':2}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ruff_format_failure_becomes_a_pr_with_ruffs_own_diff() {
    // The process's PATH is what the planner's and the validator's sandboxes show.
    need("ruff");
    let mesh = Mesh::start(MeshOptions::default()).await;
    let repo = mesh.repos_dir().join("acme/fmt");
    init_repo(&repo);
    std::fs::write(repo.join("app.py"), APP).unwrap();
    std::fs::write(repo.join("util.py"), "X = 1\n").unwrap();
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join(".github/workflows/ci.yml"), WORKFLOW).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "app"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    let log = actions_log(&repo, "ruff format --check .");

    let body = serde_json::json!({"repo": "acme/fmt", "head_sha": sha, "head_branch": "main", "job": "format",
                                  "workflow": "CI", "log": log});
    let req =
        Request::post("/api/v1/runs").header("content-type", "application/json").body(Body::from(body.to_string()));
    let (status, answer) = mesh.send(req.unwrap()).await;
    assert_eq!(status, 202, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let run_id = answer["run_id"].as_str().unwrap().to_owned();
    let run = mesh.wait_terminal(&run_id, Duration::from_secs(120)).await;
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");
    let statuses: Vec<_> = run.stages.iter().map(|s| (s.stage, s.status)).collect();
    assert_eq!(statuses[0], (Stage::Plan, StageStatus::Ok));

    let (_, plan) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/plan")).await;
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(plan["strategy"], "ruff_format", "{plan}");
    assert_eq!(plan["command"], "ruff format --no-cache -- app.py", "{plan}");
    assert!(plan["tool_version"].as_str().unwrap().starts_with("ruff "), "{plan}");

    // The diff is ruff's: the file on the PR branch is what ruff format makes of app.py.
    let pr = run.pr.clone().expect("a PR");
    let fixed = show(&repo, &pr.branch, "app.py");
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("app.py"), APP).unwrap();
    let ran = Command::new("ruff")
        .args(["format", "--no-cache", "app.py"])
        .current_dir(scratch.path())
        .env("PATH", tools_path())
        .status()
        .unwrap();
    assert!(ran.success());
    let want = std::fs::read_to_string(scratch.path().join("app.py")).unwrap();
    assert_eq!(format!("{fixed}\n"), want);
    let (_, diff) = mesh.get(&format!("/api/v1/runs/{run_id}/diff")).await;
    assert!(diff.starts_with("diff --git a/app.py b/app.py\n") && !diff.contains("util.py"), "{diff}");

    let (_, validation) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/validation")).await;
    let validation: serde_json::Value = serde_json::from_str(&validation).unwrap();
    assert_eq!(
        (validation["verdict"].as_str(), validation["command"].as_str(), validation["sandbox"].as_str()),
        (Some("reproduced_and_fixed"), Some("ruff format --check ."), Some("bwrap")),
        "{validation}"
    );
    assert_ne!(validation["before"]["exit_code"], 0);
    assert_eq!(validation["after"]["exit_code"], 0);
    mesh.stop().await;
}
