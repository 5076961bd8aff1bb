//! The guards before the pipeline, through the whole mesh: loops on the agent's own work are blocked
//! (`loop_blocked{blocked_reason_other}`), a full limit defers a run (`throttled{scope}` and
//! `retry{repo_throttled}`), a failed attempt's key cools down before a re-run (`retry{cooldown}`). Every one
//! ends as a run outcome or a scheduled retry with its reason; nothing is dropped.

use std::time::{Duration, Instant};

use sre_domain::{RunStatus, Stage, StageStatus};
use sre_e2e::{Mesh, MeshOptions, lint_failure_repo, workflow_job_failure};
use sre_gitwork::testing::git;

async fn deferred(mesh: &Mesh, run_id: &str) -> sre_domain::Run {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = mesh.store.get_run(run_id).await.unwrap().unwrap();
        if run.status == RunStatus::Queued && run.retry_at_ms.is_some() && run.reason.starts_with("deferred") {
            return run;
        }
        assert!(Instant::now() < deadline, "the run was not deferred: {run:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_never_fixes_its_own_work() {
    let mesh = Mesh::start(MeshOptions::default()).await;
    let sha = lint_failure_repo(mesh.repos_dir());
    // A failure on a branch the agent made.
    let on_agent_branch = workflow_job_failure("acme/app", &sha, "lint", 1, 1)
        .replace(r#""head_branch":"main""#, r#""head_branch":"sre-agent/format/0123456789""#);
    let (_, a) = mesh.webhook("workflow_job", "eeeeeeee-0000-4000-8000-000000000001", &on_agent_branch).await;
    let run = mesh.wait_terminal(a["run_id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(run.status, RunStatus::Blocked);
    assert!(run.reason.contains("agent's own branch"), "{}", run.reason);
    assert!(run.stages.is_empty(), "nothing ran");

    // A failing commit the agent authored.
    let repo = mesh.repos_dir().join("acme/app");
    std::fs::write(repo.join("more.py"), "y = 2  \n").unwrap();
    git(&repo, &["add", "-A"]);
    git(
        &repo,
        &["-c", "user.name=sre-agent", "-c", "user.email=sre-agent@localhost", "commit", "-q", "-m", "agent fix"],
    );
    let agent_sha = git(&repo, &["rev-parse", "HEAD"]);
    let (_, b) = mesh
        .webhook(
            "workflow_job",
            "eeeeeeee-0000-4000-8000-000000000002",
            &workflow_job_failure("acme/app", &agent_sha, "lint", 2, 2),
        )
        .await;
    let run = mesh.wait_terminal(b["run_id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(run.status, RunStatus::Blocked);
    assert!(run.reason.contains("authored by the agent"), "{}", run.reason);
    mesh.wait_metric("orchestrator", r#"sre_agent_pipeline_loop_blocked_total{reason="blocked_reason_other"}"#, 2.0)
        .await;
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_limit_defers_and_a_failed_key_cools_down() {
    let mesh = Mesh::start(MeshOptions {
        configure: |c| {
            c.prs_per_hour = 1;
            c.cooldown_seconds = 3600;
        },
        ..MeshOptions::default()
    })
    .await;
    let sha = lint_failure_repo(mesh.repos_dir());
    let (_, first) = mesh
        .webhook(
            "workflow_job",
            "ffffffff-0000-4000-8000-000000000001",
            &workflow_job_failure("acme/app", &sha, "lint", 1, 1),
        )
        .await;
    let run = mesh.wait_terminal(first["run_id"].as_str().unwrap(), Duration::from_secs(90)).await;
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");
    // The repository's one pull request of the hour is used: another failure there waits for the window.
    let (_, second) = mesh
        .webhook(
            "workflow_job",
            "ffffffff-0000-4000-8000-000000000002",
            &workflow_job_failure("acme/app", &sha, "lint-more", 3, 1),
        )
        .await;
    let second = deferred(&mesh, second["run_id"].as_str().unwrap()).await;
    assert!(second.reason.contains("per hour"), "{}", second.reason);
    assert_eq!(second.attempts, 0, "a deferral gives the attempt back");
    assert!(second.retry_at_ms.unwrap() > sre_store::now_ms() + 3_000_000, "due when the hour's window frees");
    mesh.wait_metric("orchestrator", r#"sre_agent_pipeline_throttled_total{scope="repo"}"#, 1.0).await;
    mesh.wait_metric("orchestrator", r#"sre_agent_pipeline_retry_total{reason="repo_throttled"}"#, 1.0).await;

    // A failure whose fix does not fix it: the run fails, its key cools down, and the re-run waits.
    let repo = mesh.repos_dir().join("acme/stubborn");
    sre_gitwork::testing::init_repo(&repo);
    std::fs::write(repo.join("app.py"), "x = 1   \n").unwrap();
    std::fs::write(repo.join("Makefile"), "test:\n\t! grep -nE '[[:space:]]+$$' app.py\n\tfalse\n").unwrap();
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(
        repo.join(".github/workflows/lint.yml"),
        "name: CI\non: [push]\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make test\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "stubborn"]);
    let stubborn = git(&repo, &["rev-parse", "HEAD"]);
    let body = workflow_job_failure("acme/stubborn", &stubborn, "lint", 10, 11);
    let (_, failing) = mesh.webhook("workflow_job", "ffffffff-0000-4000-8000-000000000003", &body).await;
    let run = mesh.wait_terminal(failing["run_id"].as_str().unwrap(), Duration::from_secs(90)).await;
    assert_eq!(run.status, RunStatus::Fail, "{run:#?}");
    assert_eq!(run.stages.last().map(|s| (s.stage, s.status)), Some((Stage::Validate, StageStatus::Failed)));
    let rerun = body.replace(r#""run_attempt":1"#, r#""run_attempt":2"#).replace(r#""id":10"#, r#""id":12"#);
    let (status, again) = mesh.webhook("workflow_job", "ffffffff-0000-4000-8000-000000000004", &rerun).await;
    assert_eq!(status, 202, "a re-run is a new attempt of the same key: {again}");
    let again = deferred(&mesh, again["run_id"].as_str().unwrap()).await;
    assert_eq!(again.run_key, run.run_key);
    assert!(again.reason.contains("cooling down"), "{}", again.reason);
    mesh.wait_metric("orchestrator", r#"sre_agent_pipeline_retry_total{reason="cooldown"}"#, 1.0).await;
    mesh.stop().await;
}
