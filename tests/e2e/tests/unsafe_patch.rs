//! The unsafe path: a lint failure in a repository that also has a CI workflow with trailing whitespace
//! (the fix would touch `.github/workflows`: needs review) and a committed AWS key (gitleaks and trivy:
//! blocking). The run ends blocked at run_scans, labelled needs-review, opens no PR, and the key appears in
//! no log line and no span.

use std::time::Duration;

use sre_domain::{PrLabel, RunStatus, Stage, StageStatus};
use sre_e2e::{Mesh, MeshOptions, telemetry, workflow_job_failure};
use sre_gitwork::testing::{git, init_repo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_key_blocks_the_patch_and_leaks_nowhere() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    assert!(
        std::env::split_paths(&path).any(|d| d.join("gitleaks").is_file()),
        "gitleaks is not on PATH: run scripts/install-tools.sh and put .tools/pyvenv/bin on PATH"
    );
    let mesh = Mesh::start(MeshOptions::default()).await;
    let repo = mesh.repos_dir().join("acme/leaky");
    init_repo(&repo);
    std::fs::write(repo.join("app.py"), "def add(a, b):   \n    return a + b\n").unwrap();
    std::fs::write(repo.join("Makefile"), "test:\n\t! grep -nE '[[:space:]]+$$' app.py\n").unwrap();
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(
        repo.join(".github/workflows/lint.yml"),
        "name: lint   \non: [push]\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make test  \n",
    )
    .unwrap();
    // Made here, so no key sits in the source: AKIA + 16 base32 characters, and a 40-character secret.
    let key = format!("AKIA{}", "QX7ZP2KL4M6N3R5T");
    let secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEYq";
    std::fs::write(
        repo.join("settings.py"),
        format!("AWS_ACCESS_KEY_ID = \"{key}\"\nAWS_SECRET_ACCESS_KEY = \"{secret}\"\n"),
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "app, CI workflow and settings"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);

    let (status, accepted) = mesh
        .webhook(
            "workflow_job",
            "bbbbbbbb-0000-4000-8000-000000000001",
            &workflow_job_failure("acme/leaky", &sha, "lint", 3, 4),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();
    let run = mesh.wait_terminal(&run_id, Duration::from_secs(120)).await;
    assert_eq!(run.status, RunStatus::Blocked, "{run:#?}");
    let last = run.stages.last().unwrap();
    assert_eq!((last.stage, last.status), (Stage::Scans, StageStatus::Blocked), "{run:#?}");
    assert_eq!(run.label, Some(PrLabel::NeedsReview), "the patch touches .github/workflows");
    assert!(run.pr.is_none());
    let branches = git(&repo, &["for-each-ref", "--format=%(refname)", "refs/heads/sre-agent"]);
    assert!(branches.is_empty(), "a PR branch was created for a blocked run: {branches}");
    let (_, report) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/scan_report")).await;
    assert!(report.contains("gitleaks") && !report.contains(&key) && !report.contains(secret), "{report}");
    let scanner = mesh.scrape("scanner");
    assert!(scanner.contains(r#"sre_agent_scan_fail_total{scanner="gitleaks",reason="policy_block"} 1"#), "{scanner}");
    mesh.stop().await;

    telemetry().flush().await;
    for s in telemetry().spans() {
        for (k, v) in &s.attributes {
            assert!(!v.contains(&key) && !v.contains(secret), "span {} carries the key in {k}", s.name);
        }
    }
    let logs = telemetry().logs.lines();
    assert!(logs.iter().any(|l| l.contains(&run_id)), "the run's log lines were captured");
    for line in logs {
        assert!(!line.contains(&key) && !line.contains(secret), "a log line carries the key: {line}");
    }
}
