//! The unsafe paths, through the whole mesh with the real scanners:
//! - a lint failure in a repository that already has a committed AWS key and a CI workflow with trailing
//!   whitespace: the key is pre-existing (reported in the scan report, never blocking), the fix leaves the
//!   workflow alone (the agent never writes under `.github/`), so the run ends in a PR;
//! - the same failure, but the patch itself adds a GitLab token (a planner that leaks one, which the
//!   policy's simple secret check does not know and gitleaks does): blocked at run_scans, no PR;
//! - a fix the policy calls safe whose patch also vendors a GPL package (the SBOM's license finding): the
//!   scans ask for review, so the PR opens labelled needs-review.
//!
//! In the first two, no key appears in a log line, a span or an artifact.

use std::time::Duration;

use sre_domain::{PrLabel, RunStatus, Stage, StageStatus};
use sre_e2e::{Mesh, MeshOptions, lint_failure_repo, telemetry, workflow_job_failure};
use sre_gitwork::testing::{git, init_repo};
use sre_proto::planner_server::{Planner, PlannerServer};
use sre_proto::{
    BuildFailureContextRequest, BuildFailureContextResponse, GeneratePatchRequest, GeneratePatchResponse,
    GeneratePlanRequest, GeneratePlanResponse,
};
use sre_service_kit::testing::InProcess;
use tonic::{Request, Response, Status};

fn assert_tools() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in ["gitleaks", "trivy", "syft"] {
        assert!(
            std::env::split_paths(&path).any(|d| d.join(tool).is_file()),
            "{tool} is not on PATH: run scripts/install-tools.sh and put .tools/pyvenv/bin on PATH"
        );
    }
}

/// AKIA + 16 base32 characters and a 40-character secret, made here so no key sits in the source.
fn aws_key() -> (String, &'static str) {
    (format!("AKIA{}", "QX7ZP2KL4M6N3R5T"), "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEYq")
}

/// `repos/<name>`: app.py and the CI workflow with trailing whitespace (`make test` fails on app.py's), and a
/// committed settings.py holding an AWS key. Returns head_sha.
fn leaky_repo(mesh: &Mesh, name: &str) -> String {
    let repo = mesh.repos_dir().join(name);
    init_repo(&repo);
    std::fs::write(repo.join("app.py"), "def add(a, b):   \n    return a + b\n").unwrap();
    std::fs::write(repo.join("Makefile"), "test:\n\t! grep -nE '[[:space:]]+$$' app.py\n").unwrap();
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(
        repo.join(".github/workflows/lint.yml"),
        "name: lint   \non: [push]\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make test  \n",
    )
    .unwrap();
    let (key, secret) = aws_key();
    std::fs::write(
        repo.join("settings.py"),
        format!("AWS_ACCESS_KEY_ID = \"{key}\"\nAWS_SECRET_ACCESS_KEY = \"{secret}\"\n"),
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "app, CI workflow and settings"]);
    git(&repo, &["rev-parse", "HEAD"])
}

/// Every span attribute and every captured log line is free of `needles`.
async fn assert_nowhere(run_id: &str, needles: &[&str]) {
    telemetry().flush().await;
    for s in telemetry().spans() {
        for (k, v) in &s.attributes {
            assert!(!needles.iter().any(|n| v.contains(n)), "span {} carries a key in {k}", s.name);
        }
    }
    let logs = telemetry().logs.lines();
    assert!(logs.iter().any(|l| l.contains(run_id)), "the run's log lines were captured");
    for line in logs {
        assert!(!needles.iter().any(|n| line.contains(n)), "a log line carries a key: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_already_in_the_repository_is_reported_and_does_not_block() {
    assert_tools();
    let mesh = Mesh::start(MeshOptions::default()).await;
    let sha = leaky_repo(&mesh, "acme/leaky");
    let (key, secret) = aws_key();

    let (status, accepted) = mesh
        .webhook(
            "workflow_job",
            "bbbbbbbb-0000-4000-8000-000000000001",
            &workflow_job_failure("acme/leaky", &sha, "lint", 3, 4),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();
    let run = mesh.wait_terminal(&run_id, Duration::from_secs(180)).await;
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");
    let scans = run.stages.iter().find(|s| s.stage == Stage::Scans).unwrap();
    assert_eq!(scans.status, StageStatus::Ok, "{run:#?}");
    let pr = run.pr.clone().expect("a PR");
    // The workflow file has trailing whitespace too, but the agent never writes under .github/.
    let (_, diff) = mesh.get(&format!("/api/v1/runs/{run_id}/diff")).await;
    assert!(diff.contains("app.py") && !diff.contains(".github/"), "{diff}");

    let (_, report) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/scan_report")).await;
    assert!(!report.contains(&key) && !report.contains(secret), "{report}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["blocking"], false, "{report:#}");
    assert!(report["preexisting"].as_u64().unwrap() >= 2, "gitleaks and trivy both saw the key: {report:#}");
    assert_eq!(report["introduced"], 0, "{report:#}");
    let leaks: Vec<&serde_json::Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["scanner"] == "gitleaks").collect();
    assert!(!leaks.is_empty() && leaks.iter().all(|f| f["introduced"] == false && f["path"] == "settings.py"));
    let baselines = report["runs"].as_array().unwrap().iter().filter(|r| r["target"] == "baseline").count();
    assert_eq!(baselines, 3, "{report:#}");

    let scanner = mesh.scrape("scanner");
    assert!(scanner.contains(r#"sre_agent_scan_fail_total{scanner="gitleaks",reason="policy_block"} 0"#), "{scanner}");
    assert!(
        scanner.contains(r#"sre_agent_scan_findings_total{scanner="gitleaks",severity="HIGH",origin="introduced"} 0"#),
        "{scanner}"
    );
    assert!(
        !scanner
            .contains(r#"sre_agent_scan_findings_total{scanner="gitleaks",severity="HIGH",origin="preexisting"} 0"#),
        "{scanner}"
    );
    let repo = mesh.repos_dir().join("acme/leaky");
    let message = git(&repo, &["log", "-1", "--format=%B", &pr.branch]);
    assert!(!message.contains(&key) && !message.contains(secret), "{message}");
    mesh.stop().await;
    assert_nowhere(&run_id, &[&key, secret]).await;
}

/// The real planner, except that its patch also creates `path` with `content`.
struct PlannerAdding {
    inner: sre_planner::PlannerService,
    path: &'static str,
    content: String,
}

impl PlannerAdding {
    /// Replaces the mesh's planner, on its address, by this one.
    async fn replace(mesh: &mut Mesh, path: &'static str, content: String) -> InProcess {
        let addr = mesh.services["planner"].addr;
        mesh.stop_service("planner").await;
        let inner = sre_planner::PlannerService::new(mesh.repos_dir().to_owned());
        let routes = tonic::service::Routes::new(PlannerServer::new(Self { inner, path, content }));
        InProcess::start_on(addr, "sre.v1.Planner", mesh.registries["planner"].clone(), routes).await
    }
}

#[tonic::async_trait]
impl Planner for PlannerAdding {
    async fn build_failure_context(
        &self,
        request: Request<BuildFailureContextRequest>,
    ) -> Result<Response<BuildFailureContextResponse>, Status> {
        self.inner.build_failure_context(request).await
    }

    async fn generate_plan(
        &self,
        request: Request<GeneratePlanRequest>,
    ) -> Result<Response<GeneratePlanResponse>, Status> {
        self.inner.generate_plan(request).await
    }

    async fn generate_patch(
        &self,
        request: Request<GeneratePatchRequest>,
    ) -> Result<Response<GeneratePatchResponse>, Status> {
        let mut resp = self.inner.generate_patch(request).await?.into_inner();
        let path = self.path;
        let lines: Vec<String> = self.content.lines().map(|l| format!("+{l}\n")).collect();
        resp.diff.push_str(&format!(
            "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{} @@\n{}",
            lines.len(),
            lines.concat()
        ));
        resp.files_changed.push(path.to_owned());
        resp.lines_added += u32::try_from(lines.len()).unwrap();
        Ok(Response::new(resp))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_patch_adds_blocks_the_run_at_the_scans() {
    assert_tools();
    let mut mesh = Mesh::start(MeshOptions::default()).await;
    let sha = leaky_repo(&mesh, "acme/leakier");
    let (key, secret) = aws_key();
    // glpat- and 20 characters, assembled here.
    let token = ["gl", "pat-", "Zq8Rv3Lm5Xw9Tb2Nk7Hd"].concat();
    // The planner is replaced by one that leaks the token into its patch.
    let planner = PlannerAdding::replace(&mut mesh, "deploy/config.py", format!("GITLAB_TOKEN = \"{token}\"")).await;

    let (status, accepted) = mesh
        .webhook(
            "workflow_job",
            "bbbbbbbb-0000-4000-8000-000000000002",
            &workflow_job_failure("acme/leakier", &sha, "lint", 5, 6),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();
    let run = mesh.wait_terminal(&run_id, Duration::from_secs(180)).await;
    assert_eq!(run.status, RunStatus::Blocked, "{run:#?}");
    let last = run.stages.last().unwrap();
    assert_eq!((last.stage, last.status), (Stage::Scans, StageStatus::Blocked), "{run:#?}");
    assert!(
        last.detail.contains("gitleaks: 1 introduced blocking finding(s): gitlab-pat at deploy/config.py:1"),
        "{}",
        last.detail
    );
    assert!(!last.detail.contains("aws-access-token"), "the committed key is not the patch's: {}", last.detail);
    assert!(run.pr.is_none());
    let repo = mesh.repos_dir().join("acme/leakier");
    let branches = git(&repo, &["for-each-ref", "--format=%(refname)", "refs/heads/sre-agent"]);
    assert!(branches.is_empty(), "a PR branch was created for a blocked run: {branches}");

    let (_, report) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/scan_report")).await;
    assert!(!report.contains(&token) && !report.contains(&key) && !report.contains(secret), "{report}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["blocking"], true);
    let flags: Vec<(&str, bool)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["scanner"] == "gitleaks")
        .map(|f| (f["rule_id"].as_str().unwrap(), f["introduced"].as_bool().unwrap()))
        .collect();
    assert!(flags.contains(&("gitlab-pat", true)) && flags.contains(&("aws-access-token", false)), "{flags:?}");
    let scanner = mesh.scrape("scanner");
    assert!(scanner.contains(r#"sre_agent_scan_fail_total{scanner="gitleaks",reason="policy_block"} 1"#), "{scanner}");
    mesh.stop().await;
    planner.stop().await;
    assert_nowhere(&run_id, &[&key, secret, &token]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introduced_finding_below_the_bar_makes_the_pr_need_review() {
    assert_tools();
    let mut mesh = Mesh::start(MeshOptions::default()).await;
    // The plain lint fix of the pipeline test, which the policy labels safe ...
    let sha = lint_failure_repo(mesh.repos_dir());
    // ... plus a vendored Python package under GPL-3.0 (its installed metadata, which syft reads offline; not a
    // manifest or lock file, which the policy itself would send to review): restricted, for a reviewer.
    let metadata = "Metadata-Version: 2.1\nName: gnu\nVersion: 3.0.0\nLicense: GPL-3.0\n";
    let planner = PlannerAdding::replace(&mut mesh, "vendor/gnu-3.0.0.dist-info/METADATA", metadata.to_owned()).await;

    let (status, accepted) = mesh
        .webhook(
            "workflow_job",
            "bbbbbbbb-0000-4000-8000-000000000003",
            &workflow_job_failure("acme/app", &sha, "lint", 7, 8),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();
    let run = mesh.wait_terminal(&run_id, Duration::from_secs(180)).await;
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");
    assert_eq!(run.label, Some(PrLabel::NeedsReview), "the policy said safe; the scans said review: {run:#?}");
    let scans = run.stages.iter().find(|s| s.stage == Stage::Scans).unwrap();
    assert_eq!(scans.status, StageStatus::Ok);
    assert_eq!(
        scans.detail,
        "needs review: sbom: 1 introduced finding(s) to review: license:GPL-3.0-only at vendor/gnu-3.0.0.dist-info/METADATA"
    );
    assert!(run.pr.is_some());
    let (_, pr) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/pull_request")).await;
    let pr: serde_json::Value = serde_json::from_str(&pr).unwrap();
    assert_eq!(pr["label"], "needs-review", "{pr:#}");
    let (_, report) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/scan_report")).await;
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!((report["blocking"].as_bool(), report["needs_review"].as_bool()), (Some(false), Some(true)));
    assert!(mesh.scrape("pr").contains(r#"sre_agent_pr_created_total{label="needs-review"} 1"#));
    mesh.stop().await;
    planner.stop().await;
}
