//! The embedded default without GitHub: a run submitted with its CI log (`POST /api/v1/runs`, what
//! `sre-agent run` does) is stored with the log as its artifact, the log is read into the failure context
//! (build_failure_context), and the run is diagnosed from that content.

use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use sre_domain::{Category, RunStatus};
use sre_e2e::{Mesh, MeshOptions, telemetry};
use sre_gitwork::testing::{git, init_repo};

/// The log GitHub Actions would show for `cmd` run in `dir`: the real output, with the runner's markers.
fn actions_log(dir: &std::path::Path, step: &str, cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).current_dir(dir).output().unwrap();
    assert!(!out.status.success(), "{cmd} must fail in the fixture");
    let ts = "2026-12-01T10:00:00.0000000Z";
    let mut log = format!("{ts} ##[group]Run {step}\n{ts} {cmd}\n{ts} ##[endgroup]\n");
    for line in String::from_utf8_lossy(&out.stdout).lines().chain(String::from_utf8_lossy(&out.stderr).lines()) {
        log.push_str(&format!("{ts} {line}\n"));
    }
    log.push_str(&format!("{ts} ##[error]Process completed with exit code {}.\n", out.status.code().unwrap_or(1)));
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_run_is_diagnosed_from_its_log() {
    let mesh = Mesh::start(MeshOptions::default()).await;
    let repo = mesh.repos_dir().join("acme/calc");
    init_repo(&repo);
    std::fs::write(repo.join("calc.py"), "import missing_module_xyz\n\nprint(missing_module_xyz.add(1, 2))\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "calc"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    let log = actions_log(&repo, "python3 calc.py", "python3 calc.py");

    let body =
        serde_json::json!({"repo": "acme/calc", "head_sha": sha, "head_branch": "main", "job": "run", "log": log});
    let req =
        Request::post("/api/v1/runs").header("content-type", "application/json").body(Body::from(body.to_string()));
    let (status, answer) = mesh.send(req.unwrap()).await;
    assert_eq!(status, 202, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let run_id = answer["run_id"].as_str().unwrap().to_owned();
    assert_eq!(answer["run_key"].as_str().unwrap(), format!("acme/calc@{sha}/run"));

    let run = mesh.wait_terminal(&run_id, Duration::from_secs(60)).await;
    // A missing module is a dependency failure, read from the log (the job is only called "run").
    assert_eq!(run.category, Some(Category::Dependency), "{run:#?}");
    assert_eq!(run.status, RunStatus::Skipped, "no deterministic rule fixes it yet: {run:#?}");
    let (_, stored) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/log")).await;
    assert!(stored.contains("ModuleNotFoundError"), "{stored}");
    let (_, context) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/context")).await;
    let context: serde_json::Value = serde_json::from_str(&context).unwrap();
    assert_eq!(
        (context["step_name"].as_str(), context["category"].as_str()),
        (Some("Run python3 calc.py"), Some("dependency"))
    );
    assert!(context["lines"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().contains("missing_module_xyz")));

    // Submitting the same failure again is a new attempt of the same key.
    let req =
        Request::post("/api/v1/runs").header("content-type", "application/json").body(Body::from(body.to_string()));
    let (status, again) = mesh.send(req.unwrap()).await;
    assert_eq!(status, 202, "{again}");
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!((again["run_key"].as_str(), again["attempt"].as_u64()), (answer["run_key"].as_str(), Some(2)));
    mesh.wait_terminal(again["run_id"].as_str().unwrap(), Duration::from_secs(60)).await;

    // Bad submissions are refused with a reason and store nothing.
    for bad in [
        r#"{"repo":"../etc","head_sha":"abcdef1","log":"x"}"#,
        r#"{"repo":"a/b","head_sha":"zz","log":"x"}"#,
        r#"{"repo":"a/b","head_sha":"abcdef1","log":" "}"#,
        "not json",
    ] {
        let req = Request::post("/api/v1/runs").body(Body::from(bad)).unwrap();
        let (status, text) = mesh.send(req).await;
        assert_eq!(status, 400, "{bad}: {text}");
    }
    assert_eq!(mesh.store.count_runs().await.unwrap(), 2);
    mesh.wait_metric(
        "orchestrator",
        r#"sre_agent_celery_tasks_total{task="build_failure_context",status="success"}"#,
        2.0,
    )
    .await;
    mesh.stop().await;

    telemetry().flush().await;
    let spans = telemetry().spans();
    let built = spans.iter().find(|s| s.name == "build_failure_context" && s.attributes.get("run_id") == Some(&run_id));
    let built = built.expect("a build_failure_context span for the run");
    assert_eq!(built.attributes.get("category").map(String::as_str), Some("dependency"));
    for s in &spans {
        for v in s.attributes.values() {
            assert!(!v.contains("ModuleNotFoundError"), "span {} carries the log", s.name);
        }
    }
}
