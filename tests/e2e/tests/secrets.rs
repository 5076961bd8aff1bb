//! The secrets drill: credential-shaped strings planted where real ones turn up (a webhook payload field, the
//! CI log of a run, a file the fix touches, hence the patch) must appear nowhere the agent reports to: not in
//! any span (the OTLP sink), any log line of any process, any /metrics scrape (text and OpenMetrics), nor
//! any runs API answer other than the diff and log artifacts, which are those texts themselves.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use sre_domain::Label;
use sre_e2e::{LINT_WORKFLOW, Mesh, MeshOptions, telemetry};
use sre_gitwork::testing::{git, init_repo};

/// A GitHub-token-shaped string (ghp_ + 36 alphanumerics) and an AWS-access-key-shaped one (AKIA + 16): not
/// real credentials, assembled at run time so no scanner of this repository mistakes the source for a leak.
fn planted() -> [String; 2] {
    [format!("ghp_{}", "Zq7Xw2Lm9Pv4Kt6Rb1Nc8Hd3Fg5Js0Ya2Ue4Io"), format!("AKIA{}", "QW7ER4TY2UI9OP3A")]
}

/// A repository whose `make test` fails on trailing whitespace in `settings.py`, on the very lines that hold
/// the planted strings: the fix rewrites them, so the patch carries them, and so does the log (grep prints
/// the offending lines).
fn leaky_repo(repos: &std::path::Path, secrets: &[String; 2]) -> String {
    let repo = repos.join("acme/leaky");
    init_repo(&repo);
    let [gh, aws] = secrets;
    std::fs::write(repo.join("settings.py"), format!("TOKEN = \"{gh}\"   \nAWS_KEY = \"{aws}\"  \nDEBUG = False\n"))
        .unwrap();
    std::fs::write(repo.join("Makefile"), "test:\n\t! grep -nE '[[:space:]]+$$' settings.py\n").unwrap();
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join(".github/workflows/lint.yml"), LINT_WORKFLOW).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "settings with trailing whitespace"]);
    git(&repo, &["rev-parse", "HEAD"])
}

/// The CI log of `make test` in the repository, as a runner prints it.
fn ci_log(repo: &std::path::Path) -> String {
    let out = std::process::Command::new("make").arg("test").current_dir(repo).output().unwrap();
    assert!(!out.status.success(), "the fixture must fail");
    let ts = "2026-12-01T10:00:00.0000000Z";
    let mut log = format!("{ts} ##[group]Run make test\n{ts} make test\n{ts} ##[endgroup]\n");
    for line in String::from_utf8_lossy(&out.stdout).lines().chain(String::from_utf8_lossy(&out.stderr).lines()) {
        log.push_str(&format!("{ts} {line}\n"));
    }
    log.push_str(&format!("{ts} ##[error]Process completed with exit code 2.\n"));
    log
}

fn assert_absent(secrets: &[String; 2], place: &str, text: &str) {
    for secret in secrets {
        if let Some(at) = text.find(secret.as_str()) {
            let from = text[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
            panic!("{place} carries a planted secret: ...{}", &text[from..(at + secret.len()).min(text.len())]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_appear_in_no_span_log_metric_or_api_answer() {
    let secrets = planted();
    let redacted_before = sre_telemetry::redact::redacted_lines();
    let mesh = Mesh::start(MeshOptions::default()).await;
    let sha = leaky_repo(mesh.repos_dir(), &secrets);
    let log = ci_log(&mesh.repos_dir().join("acme/leaky"));
    assert!(secrets.iter().all(|s| log.contains(s.as_str())), "the log carries the planted strings: {log}");
    let [gh, aws] = &secrets;
    let mut answers = Vec::new();

    // 1. A webhook whose payload carries them in fields GitHub fills from user content.
    let payload = serde_json::json!({
        "action": "completed",
        "workflow_job": {"id": 9101, "run_id": 9100, "run_attempt": 1, "name": "lint", "workflow_name": "CI",
            "head_sha": sha, "head_branch": "main", "conclusion": "failure", "runner_name": format!("runner {gh}"),
            "steps": [{"name": format!("export AWS_ACCESS_KEY_ID={aws}"), "conclusion": "failure", "number": 1}]},
        "repository": {"full_name": "acme/leaky", "description": format!("deploys with {gh} and {aws}")},
        "sender": {"login": "octocat"}
    })
    .to_string();
    let (status, answer) = mesh.webhook("workflow_job", "secrets-drill-1", &payload).await;
    assert_eq!(status, 202, "{answer}");
    let webhook_run = answer["run_id"].as_str().unwrap().to_owned();
    answers.push(("webhook answer".to_owned(), answer.to_string()));
    // The same payload refused (unsigned, then not the event's shape): what the refusals say and log.
    let req = Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", "workflow_job")
        .header("x-github-delivery", "secrets-drill-2")
        .body(Body::from(payload.clone()))
        .unwrap();
    answers.push(("unsigned webhook answer".to_owned(), mesh.send(req).await.1));
    let shapeless = format!(r#"{{"action":"completed","workflow_job":{{"id":"{gh}"}}}}"#);
    let (status, answer) = mesh.webhook("workflow_job", "secrets-drill-3", &shapeless).await;
    assert_eq!(status, 400, "{answer}");
    answers.push(("malformed webhook answer".to_owned(), answer.to_string()));

    // 2. A run submitted with its CI log (what `sre-agent run` sends).
    let submission =
        serde_json::json!({"repo": "acme/leaky", "head_sha": sha, "job": "lint", "workflow": "CI", "log": log});
    let req = Request::post("/api/v1/runs").header("content-type", "application/json");
    let (status, answer) = mesh.send(req.body(Body::from(submission.to_string())).unwrap()).await;
    assert_eq!(status, 202, "{answer}");
    let submitted_run =
        serde_json::from_str::<serde_json::Value>(&answer).unwrap()["run_id"].as_str().unwrap().to_owned();
    answers.push(("submission answer".to_owned(), answer));

    // 3. Both runs to their end: the fix rewrites the planted lines, so the patch carries them.
    for run_id in [&webhook_run, &submitted_run] {
        let run = mesh.wait_terminal(run_id, Duration::from_secs(120)).await;
        println!("run {run_id}: {:?} {:?}", run.status, run.reason);
        let (_, diff) = mesh.get(&format!("/api/v1/runs/{run_id}/diff")).await;
        println!("diff of {run_id}: {} bytes, carries the planted strings: {}", diff.len(), diff.contains(gh.as_str()));
        for path in [format!("/api/v1/runs/{run_id}"), format!("/api/v1/runs/{run_id}/artifacts")] {
            let (_, body) = mesh.get(&path).await;
            answers.push((format!("GET {path}"), body));
        }
        for kind in sre_domain::ArtifactKind::spellings() {
            if matches!(kind, "diff" | "log") {
                continue;
            }
            let path = format!("/api/v1/runs/{run_id}/artifacts/{kind}");
            let (status, body) = mesh.get(&path).await;
            answers.push((format!("GET {path} ({status})"), body));
        }
    }
    let (_, list) = mesh.get("/api/v1/runs?limit=500").await;
    answers.push(("GET /api/v1/runs".to_owned(), list));

    // Everything the mesh reported.
    telemetry().flush().await;
    let spans = telemetry().spans();
    for name in ["ingest_webhook", "build_failure_context", "generate_patch", "policy_check_patch"] {
        assert!(spans.iter().any(|s| s.name == name), "no {name} span arrived");
    }
    for span in &spans {
        let text = serde_json::to_string(span).unwrap();
        assert_absent(&secrets, &format!("span {} of {}", span.name, span.service), &text);
    }
    let lines = telemetry().logs.lines();
    for line in &lines {
        assert_absent(&secrets, "a log line", line);
    }
    let mut scrapes = 0;
    for (process, registry) in &mesh.registries {
        for openmetrics in [false, true] {
            assert_absent(&secrets, &format!("/metrics of {process}"), &registry.encode(openmetrics));
            scrapes += 1;
        }
    }
    for (place, body) in &answers {
        assert_absent(&secrets, place, body);
    }
    let redacted = sre_telemetry::redact::redacted_lines() - redacted_before;
    println!(
        "checked {} spans, {} log lines, {scrapes} scrapes, {} API answers; log lines the redaction had to change: {redacted}",
        spans.len(),
        lines.len(),
        answers.len()
    );
    mesh.stop().await;
}
