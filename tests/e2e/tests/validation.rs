//! How the pipeline acts on each validation verdict, end to end through the in-process mesh (real Redis,
//! SQLite, git, the bubblewrap sandbox): a fix that cannot be reproduced still opens a PR, labelled
//! needs-review (and asked for as a draft), never safe; a failing step the sandbox refuses to run blocks the
//! run with no PR; a patch that leaves the step failing ends the run failed with no PR.

use std::path::Path;
use std::time::Duration;

use sre_domain::{PrLabel, RunStatus, Stage, StageStatus};
use sre_e2e::{Mesh, MeshOptions, workflow_job_failure};
use sre_gitwork::testing::{git, init_repo};

/// `repos/acme/<name>`: app.py with trailing whitespace (the planner's lint rule fixes it), the Makefile
/// whose `make test` checks it, and `workflow` when given. Returns HEAD.
fn repo(repos: &Path, name: &str, workflow: Option<&str>) -> String {
    let repo = repos.join("acme").join(name);
    init_repo(&repo);
    std::fs::write(repo.join("app.py"), "def add(a, b):   \n    return a + b  \n").unwrap();
    std::fs::write(repo.join("Makefile"), "test:\n\t! grep -nE '[[:space:]]+$$' app.py\n").unwrap();
    if let Some(text) = workflow {
        std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
        std::fs::write(repo.join(".github/workflows/ci.yml"), text).unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "app with trailing whitespace"]);
    git(&repo, &["rev-parse", "HEAD"])
}

fn validate_stage(run: &sre_domain::Run) -> &sre_domain::StageRecord {
    run.stages.iter().find(|s| s.stage == Stage::Validate).expect("a validate stage")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_acts_on_each_verdict() {
    let mesh = Mesh::start(MeshOptions::default()).await;
    let secrets = "name: CI\non: push\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - name: Lint\n        run: make test\n        env:\n          TOKEN: ${{ secrets.LINT_TOKEN }}\n";
    let broken = "name: CI\non: push\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - name: Lint\n        run: make test && test -f LICENSE\n";
    let cases = [
        ("unproven", repo(mesh.repos_dir(), "unproven", None), 6001),
        ("refused", repo(mesh.repos_dir(), "refused", Some(secrets)), 6002),
        ("broken", repo(mesh.repos_dir(), "broken", Some(broken)), 6003),
    ];
    let mut runs = Vec::new();
    for (name, sha, job_id) in &cases {
        let body = workflow_job_failure(&format!("acme/{name}"), sha, "lint", *job_id, 7000 + job_id);
        let (status, accepted) =
            mesh.webhook("workflow_job", &format!("8c0b7f8e-0000-4000-8000-00000000{job_id}"), &body).await;
        assert_eq!(status, 202, "{accepted}");
        runs.push(accepted["run_id"].as_str().unwrap().to_owned());
    }
    let unproven = mesh.wait_terminal(&runs[0], Duration::from_secs(90)).await;
    let refused = mesh.wait_terminal(&runs[1], Duration::from_secs(90)).await;
    let broken = mesh.wait_terminal(&runs[2], Duration::from_secs(90)).await;

    // Not reproduced (no workflow: `make test` ran with the patch only): a PR, needs-review.
    assert_eq!(unproven.status, RunStatus::Success, "{unproven:#?}");
    assert_eq!(unproven.label, Some(PrLabel::NeedsReview), "the policy said safe; validation proved nothing");
    assert!(unproven.pr.is_some());
    let stage = validate_stage(&unproven);
    assert_eq!(stage.status, StageStatus::Ok);
    assert!(stage.detail.starts_with("not reproduced: no step to re-run"), "{}", stage.detail);
    let (_, artifact) = mesh.get(&format!("/api/v1/runs/{}/artifacts/validation", runs[0])).await;
    let artifact: serde_json::Value = serde_json::from_str(&artifact).unwrap();
    assert_eq!(
        (artifact["verdict"].as_str(), artifact["test"]["command"].as_str()),
        (Some("not_reproduced"), Some("make test"))
    );

    // Refused (the step would see a secret): blocked, no PR.
    assert_eq!(refused.status, RunStatus::Blocked, "{refused:#?}");
    assert!(refused.pr.is_none());
    assert_eq!(refused.reason, "validation refused: step env TOKEN: it needs secrets (`${{ secrets.LINT_TOKEN }}`)");
    assert_eq!(validate_stage(&refused).status, StageStatus::Blocked);

    // Still failing (the step also needs a LICENSE the patch does not add): failed, no PR.
    assert_eq!(broken.status, RunStatus::Fail, "{broken:#?}");
    assert!(broken.pr.is_none());
    assert!(broken.reason.contains("still fails with it"), "{}", broken.reason);
    assert_eq!(validate_stage(&broken).status, StageStatus::Failed);

    let metrics = mesh.scrape("validator");
    for result in ["not_reproduced", "refused", "still_failing"] {
        assert!(metrics.contains(&format!("sre_agent_validation_runs_total{{result=\"{result}\"}} 1")), "{metrics}");
    }
    let pr = mesh.scrape("pr");
    assert!(pr.contains(r#"sre_agent_pr_created_total{label="needs-review"} 1"#), "{pr}");
    assert!(pr.contains(r#"sre_agent_pr_created_total{label="safe"} 0"#), "{pr}");
    mesh.stop().await;
}
