//! The GitHub backend end to end, against the fake GitHub (REST paths, status codes and JSON shapes of the
//! real API; smart-HTTP git): a signed, form-encoded `workflow_job` failure becomes one labelled pull request
//! with the fix, built from the job's log read through the API; the same failure told again four ways
//! changes nothing; a superseded failure and a repository outside the installation are skipped with their
//! reasons; no token reaches a span or a log line.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use sre_domain::{ArtifactKind, RunStatus};
use sre_e2e::contract::Contract;
use sre_e2e::{GithubOptions, Mesh, MeshOptions, SECRET, telemetry};
use sre_github_fake::{AppKey, FakeGithub, Host, JobSpec, RunSpec};

const APP_ID: u64 = 77;
const INSTALLATION: u64 = 42;
const REPO: &str = "octo/app";
const RUN_ID: u64 = 500;
const SUITE_ID: u64 = 5500;
const JOB_ID: u64 = 501;

/// The repository's CI: job "lint" runs ruff.
const WORKFLOW: &str = "name: CI\non: [push]\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: Lint\n        run: ruff check --select W291 --output-format concise app.py\n";

/// The job's log as GitHub Actions writes it (timestamps, groups, ruff's real output, the runner's error).
fn job_log() -> String {
    [
        "##[group]Run actions/checkout@v4",
        "Syncing repository: octo/app",
        "##[endgroup]",
        "##[group]Run ruff check --select W291 --output-format concise app.py",
        "ruff check --select W291 --output-format concise app.py",
        "shell: /usr/bin/bash -e {0}",
        "##[endgroup]",
        "app.py:1:15: W291 [*] Trailing whitespace",
        "app.py:2:17: W291 [*] Trailing whitespace",
        "Found 2 errors.",
        "[*] 2 fixable with `--fix`.",
        "##[error]Process completed with exit code 1.",
    ]
    .iter()
    .enumerate()
    .map(|(i, l)| format!("2026-12-01T10:00:{i:02}.0000000Z {l}\n"))
    .collect()
}

fn workflow_job(sha: &str, job: &str, job_id: u64) -> String {
    serde_json::json!({
        "action": "completed",
        "workflow_job": {"id": job_id, "run_id": RUN_ID, "run_attempt": 1, "name": job, "workflow_name": "CI",
                         "head_sha": sha, "head_branch": "main", "status": "completed", "conclusion": "failure"},
        "repository": {"full_name": REPO},
        "installation": {"id": INSTALLATION},
    })
    .to_string()
}

/// `application/x-www-form-urlencoded` with the JSON in `payload`, as GitHub sends it when the App's content
/// type is form; the signature covers the raw form body.
async fn form_webhook(mesh: &Mesh, event: &str, delivery: &str, json: &str) -> (u16, serde_json::Value) {
    let encoded: String = json
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let body = format!("payload={encoded}");
    let req = Request::post("/webhooks/github")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sre_gateway::webhook::sign(SECRET, body.as_bytes()))
        .body(Body::from(body))
        .unwrap();
    let (status, text) = mesh.send(req).await;
    (status.as_u16(), serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

struct Github {
    fake: FakeGithub,
    sha: String,
    _key: tempfile::NamedTempFile,
    options: GithubOptions,
}

/// octo/app on the fake, with the App installed, a commit whose `make test` fails on trailing whitespace,
/// its workflow run (one failed job, "lint") and the job's log.
async fn github() -> Github {
    let fake = FakeGithub::start().await.unwrap();
    fake.add_app(APP_ID, "sre-agent", &AppKey::shared().public_pem);
    fake.add_installation(INSTALLATION, APP_ID, &[REPO]);
    fake.add_user("dev", "dev@example.com");
    fake.add_repo(REPO, "main").unwrap();
    fake.add_repo("octo/private", "main").unwrap();
    let files = [("app.py", "def add(a, b):   \n    return a + b  \n"), (".github/workflows/lint.yml", WORKFLOW)];
    let sha = fake.commit(REPO, "main", &files, "app with trailing whitespace", ("Dev", "dev@example.com")).unwrap();
    fake.commit("octo/private", "main", &files, "initial", ("Dev", "dev@example.com")).unwrap();
    fake.add_run(
        REPO,
        RunSpec {
            id: RUN_ID,
            check_suite_id: SUITE_ID,
            workflow_name: "CI".into(),
            head_sha: sha.clone(),
            head_branch: "main".into(),
            attempts: vec![vec![
                JobSpec::completed(JOB_ID, "lint", "failure", &[("Set up job", "success"), ("Lint", "failure")]),
                JobSpec::completed(JOB_ID + 1, "build", "success", &[("Set up job", "success"), ("Build", "success")]),
            ]],
        },
    );
    fake.set_job_log(REPO, JOB_ID, job_log());
    let mut key = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut key, AppKey::shared().private_pem.as_bytes()).unwrap();
    let options = GithubOptions {
        api_url: fake.api_url(),
        git_url: fake.git_url(),
        app_id: APP_ID,
        private_key_file: key.path().to_owned(),
    };
    Github { fake, sha, _key: key, options }
}

async fn wait_resolved(mesh: &Mesh, delivery: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((_, true)) = mesh.store.pending_event(delivery).await.unwrap() {
            return;
        }
        assert!(Instant::now() < deadline, "event {delivery} was never resolved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_on_github_becomes_one_labelled_pull_request() {
    let gh = github().await;
    let mesh = Mesh::start(MeshOptions { github: Some(gh.options.clone()), ..MeshOptions::default() }).await;

    let (status, accepted) = form_webhook(
        &mesh,
        "workflow_job",
        "0a000000-0000-4000-8000-000000000001",
        &workflow_job(&gh.sha, "lint", JOB_ID),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();
    let run = mesh.wait_terminal(&run_id, Duration::from_secs(120)).await;
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");

    // The log was read through the API, bounded, and diagnosed.
    let log = mesh.store.artifact(&run_id, ArtifactKind::Log).await.unwrap().expect("the job's log is stored");
    assert!(log.contains("##[error]Process completed with exit code 1."), "{log}");
    let context = mesh.store.artifact(&run_id, ArtifactKind::Context).await.unwrap().expect("a failure context");
    let context: serde_json::Value = serde_json::from_str(&context).unwrap();
    assert_eq!(context["step_name"], "Run ruff check --select W291 --output-format concise app.py", "{context}");
    assert_eq!((context["category"].as_str(), context["language"].as_str()), (Some("lint"), Some("python")));

    // The fix was proven by re-running the failed step (ruff) in the sandbox, before and after the patch.
    let validation = mesh.store.artifact(&run_id, ArtifactKind::Validation).await.unwrap().expect("a validation");
    let validation: serde_json::Value = serde_json::from_str(&validation).unwrap();
    assert_eq!(validation["verdict"], "reproduced_and_fixed", "{validation}");

    // One pull request, labelled, on the agent's branch, holding the fix on the failing commit.
    let pulls = gh.fake.pulls(REPO);
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let (number, _title, head, base, open, labels) = &pulls[0];
    assert_eq!((*number, base.as_str(), *open), (1, "main", true));
    assert!(head.starts_with("sre-agent/"), "{head}");
    assert!(labels.contains(&"sre-agent".to_owned()), "{labels:?}");
    assert!(labels.iter().any(|l| l == "safe" || l == "needs-review"), "{labels:?}");
    let tip = gh.fake.branch_head(REPO, head).expect("the branch was pushed");
    let bare = gh.fake.repo_path(REPO);
    assert_eq!(sre_gitwork::testing::git(&bare, &["rev-parse", &format!("{tip}^")]), gh.sha);
    let fixed = sre_gitwork::testing::git(&bare, &["show", &format!("{tip}:app.py")]);
    assert!(!fixed.lines().any(|l| l.ends_with(' ')), "{fixed}");
    assert_eq!(run.pr.as_ref().map(|p| p.number), Some(1));

    // The agent's check run: completed, neutral, pointing at the pull request.
    let checks = gh.fake.check_runs(REPO);
    assert_eq!(checks.len(), 1, "{checks:?}");
    let (name, status, conclusion, title) = &checks[0];
    assert_eq!((name.as_str(), status.as_str(), conclusion.as_deref()), ("sre-agent", "completed", Some("neutral")));
    assert_eq!(title.as_deref(), Some("Fix proposed in #1"));

    // The REST calls of the run, in order (git smart-HTTP calls left out).
    let rest: Vec<String> =
        gh.fake.calls().iter().filter(|c| c.host == Host::Api).map(|c| format!("{} {}", c.method, c.path)).collect();
    println!("REST calls of one run:\n  {}", rest.join("\n  "));
    for expected in [
        format!("POST /app/installations/{INSTALLATION}/access_tokens"),
        format!("GET /repos/{REPO}/commits/{}", gh.sha),
        format!("GET /repos/{REPO}/branches/main"),
        format!("GET /repos/{REPO}/actions/jobs/{JOB_ID}/logs"),
        format!("POST /repos/{REPO}/check-runs"),
        format!("POST /repos/{REPO}/pulls"),
        format!("POST /repos/{REPO}/issues/1/labels"),
    ] {
        assert!(rest.contains(&expected), "{expected} missing from {rest:#?}");
    }
    let pushes =
        || gh.fake.calls().iter().filter(|c| c.host == Host::Git && c.path.ends_with("/git-receive-pack")).count();
    let pushes_before = pushes();

    // The same failure told again: redelivered, then as its check run, its workflow run and its check suite.
    let same = workflow_job(&gh.sha, "lint", JOB_ID);
    let (status, again) = form_webhook(&mesh, "workflow_job", "0a000000-0000-4000-8000-000000000001", &same).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("duplicate")), "{again}");
    let check_run = serde_json::json!({
        "action": "completed",
        "check_run": {"id": JOB_ID, "name": "lint", "head_sha": gh.sha, "status": "completed", "conclusion": "failure",
                      "check_suite": {"id": SUITE_ID, "head_branch": "main"}},
        "repository": {"full_name": REPO}, "installation": {"id": INSTALLATION},
    });
    let workflow_run = serde_json::json!({
        "action": "completed",
        "workflow_run": {"id": RUN_ID, "name": "CI", "head_sha": gh.sha, "head_branch": "main", "run_attempt": 1,
                         "check_suite_id": SUITE_ID, "status": "completed", "conclusion": "failure"},
        "repository": {"full_name": REPO}, "installation": {"id": INSTALLATION},
    });
    let check_suite = serde_json::json!({
        "action": "completed",
        "check_suite": {"id": SUITE_ID, "head_sha": gh.sha, "head_branch": "main", "status": "completed",
                        "conclusion": "failure", "app": {"name": "GitHub Actions", "slug": "github-actions"}},
        "repository": {"full_name": REPO}, "installation": {"id": INSTALLATION},
    });
    let told = [
        ("check_run", "0a000000-0000-4000-8000-000000000002", check_run.to_string()),
        ("workflow_run", "0a000000-0000-4000-8000-000000000003", workflow_run.to_string()),
        ("check_suite", "0a000000-0000-4000-8000-000000000004", check_suite.to_string()),
    ];
    for (event, delivery, body) in &told {
        let (status, answer) = mesh.webhook(event, delivery, body).await;
        assert!(status.is_success(), "{event}: {status} {answer}");
    }
    wait_resolved(&mesh, "0a000000-0000-4000-8000-000000000003").await;
    wait_resolved(&mesh, "0a000000-0000-4000-8000-000000000004").await;
    assert_eq!(mesh.store.count_runs().await.unwrap(), 1, "one failure, one run");
    assert_eq!(gh.fake.pulls(REPO).len(), 1);
    assert_eq!(pushes(), pushes_before, "nothing pushed again");

    // A newer commit on main supersedes a failure of the old one.
    gh.fake.commit(REPO, "main", &[("NEWS", "more\n")], "more", ("Dev", "dev@example.com")).unwrap();
    let (_, late) = mesh
        .webhook("workflow_job", "0a000000-0000-4000-8000-000000000005", &workflow_job(&gh.sha, "typecheck", 509))
        .await;
    let late = mesh.wait_terminal(late["run_id"].as_str().unwrap(), Duration::from_secs(60)).await;
    assert_eq!(late.status, RunStatus::Skipped, "{late:#?}");
    assert!(late.reason.contains("moved on to") && late.reason.contains("superseded"), "{}", late.reason);

    // A repository outside the installation: skipped with GitHub's reason, nothing fetched.
    let outside = workflow_job(&gh.sha, "lint", 777).replace(REPO, "octo/private");
    let (_, other) = mesh.webhook("workflow_job", "0a000000-0000-4000-8000-000000000006", &outside).await;
    let other = mesh.wait_terminal(other["run_id"].as_str().unwrap(), Duration::from_secs(60)).await;
    assert_eq!(other.status, RunStatus::Skipped, "{other:#?}");
    assert!(other.reason.contains("not accessible"), "{}", other.reason);
    assert!(!mesh.repos_dir().join("octo/private").exists(), "nothing cloned");
    mesh.stop().await;

    // The spans of the GitHub backend are in the contract, and no token is anywhere.
    telemetry().flush().await;
    let spans = telemetry().spans();
    let root =
        spans.iter().find(|s| s.name == "ingest_webhook" && s.attributes.get("run_id") == Some(&run_id)).unwrap();
    let trace: Vec<_> = spans.iter().filter(|s| s.trace_id == root.trace_id).collect();
    let contract = Contract::load();
    let problems = contract.check_spans(&trace);
    assert!(problems.is_empty(), "{problems:#?}");
    for row in contract.spans.iter().filter(|r| r.github) {
        assert!(
            trace.iter().any(|s| row.matches(&s.name) && row.kind == s.kind),
            "no {} span in the run's trace",
            row.name
        );
    }
    let tokens = gh.fake.issued_tokens();
    assert!(!tokens.is_empty());
    let logs = telemetry().logs.lines();
    for token in &tokens {
        for s in &spans {
            assert!(s.attributes.values().all(|v| !v.contains(token.as_str())), "a token in span {}", s.name);
        }
        assert!(logs.iter().all(|l| !l.contains(token.as_str())), "a token in a log line");
    }
}
