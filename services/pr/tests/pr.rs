//! End to end: a real git repository in a tempdir, the local backend behind a real tonic server (health,
//! reflection and the telemetry layer included, as in production) on 127.0.0.1:0.

use sre_gitwork::testing::{git, init_repo};
use sre_service_kit::testing::InProcess;
use sre_telemetry::testing::Captured;
use std::path::{Path, PathBuf};

use sre_pr::{PrMetrics, PullRequestService};
use sre_proto::pull_requests_client::PullRequestsClient;
use sre_proto::pull_requests_server::PullRequestsServer;
use sre_proto::{CreatePullRequestRequest, CreatePullRequestResponse, RunContext};
use sre_telemetry::SharedRegistry;
use tonic::Code;

const REPO: &str = "acme/app";
const RUN_A: &str = "3f2a9c1e-5b7d-4c1a-9e2f-00000000000a";
const RUN_B: &str = "9b0c7d6e-1a2b-4c3d-8e9f-00000000000b";
const RUN_C: &str = "c0ffee00-0000-4000-8000-00000000000c";

/// `repos/acme/app` on `main` with app.py carrying trailing whitespace, and the diff that fixes it.
fn fixture() -> (tempfile::TempDir, PathBuf, String, String) {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join(REPO);
    init_repo(&repo);
    std::fs::write(repo.join("app.py"), "x = 1   \nprint(x)\n").unwrap();
    std::fs::write(repo.join("README.md"), "app\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("app.py"), "x = 1\nprint(x)\n").unwrap();
    let diff = git(&repo, &["diff", "--no-color"]) + "\n";
    git(&repo, &["checkout", "--", "app.py"]);
    (root, repo, sha, diff)
}

fn request(run_id: &str, sha: &str, diff: &str, label: &str) -> CreatePullRequestRequest {
    CreatePullRequestRequest {
        context: Some(RunContext {
            run_id: run_id.to_owned(),
            correlation_id: run_id.to_owned(),
            repo: REPO.to_owned(),
            head_sha: sha.to_owned(),
            ..Default::default()
        }),
        diff: diff.to_owned(),
        title: "Fix whitespace hygiene in app.py".to_owned(),
        body: "Strips trailing whitespace.\n\nOpened by sre-agent.".to_owned(),
        label: label.to_owned(),
        base_branch: "main".to_owned(),
        draft: false,
    }
}

struct Server {
    client: PullRequestsClient<tonic::transport::Channel>,
    registry: SharedRegistry,
    server: InProcess,
}

impl Server {
    async fn start(repos_dir: &Path) -> Self {
        let registry = SharedRegistry::default();
        let service = PullRequestService::new(repos_dir.to_owned(), PrMetrics::register(&registry));
        let routes = tonic::service::Routes::new(PullRequestsServer::new(service));
        let server = InProcess::start("sre.v1.PullRequests", registry.clone(), routes).await;
        let client = PullRequestsClient::connect(server.url()).await.unwrap();
        Self { client, registry, server }
    }

    async fn create(&mut self, req: CreatePullRequestRequest) -> Result<CreatePullRequestResponse, tonic::Status> {
        self.client.create_pull_request(req).await.map(tonic::Response::into_inner)
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

#[tokio::test]
async fn opens_numbered_idempotent_pull_requests() {
    let (captured, _guard) = Captured::install();
    let (root, repo, sha, diff) = fixture();
    let mut server = Server::start(root.path()).await;

    let first = server.create(request(RUN_A, &sha, &diff, "safe")).await.unwrap();
    assert_eq!(first.number, 1);
    assert_eq!(first.branch, "sre-agent/3f2a9c1e-5b7");
    assert_eq!(first.label, "safe");
    assert_eq!(first.backend, "local");
    let repo_abs = std::fs::canonicalize(&repo).unwrap();
    assert_eq!(first.url, format!("file://{}#sre-agent/3f2a9c1e-5b7", repo_abs.display()));

    // The branch holds the fix on top of head_sha; main and the checkout are untouched.
    assert_eq!(git(&repo, &["rev-parse", "sre-agent/3f2a9c1e-5b7"]), first.commit_sha);
    assert_eq!(git(&repo, &["rev-parse", &format!("{}^", first.commit_sha)]), sha);
    assert_eq!(git(&repo, &["show", "sre-agent/3f2a9c1e-5b7:app.py"]), "x = 1\nprint(x)");
    assert_eq!(git(&repo, &["rev-parse", "main"]), sha);
    assert_eq!(git(&repo, &["show", "main:app.py"]), "x = 1   \nprint(x)");
    assert_eq!(std::fs::read_to_string(repo.join("app.py")).unwrap(), "x = 1   \nprint(x)\n");
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    assert_eq!(git(&repo, &["log", "-1", "--format=%an <%ae>", &first.commit_sha]), "sre-agent <sre-agent@localhost>");
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%B", &first.commit_sha]),
        "Fix whitespace hygiene in app.py\n\nStrips trailing whitespace.\n\nOpened by sre-agent."
    );

    // A retry of the same run returns the same PR.
    let again = server.create(request(RUN_A, &sha, &diff, "safe")).await.unwrap();
    assert_eq!(again, first);

    let second = server.create(request(RUN_B, &sha, &diff, "needs-review")).await.unwrap();
    assert_eq!(second.number, 2);
    assert_eq!(second.branch, "sre-agent/9b0c7d6e-1a2");
    assert_eq!(second.label, "needs-review");

    let odd = server.create(request(RUN_C, &sha, &diff, "ship-it")).await.unwrap();
    assert_eq!(odd.number, 3);
    assert_eq!(odd.label, "unknown");

    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join(".git/sre-agent/pulls.json")).unwrap()).unwrap();
    let pulls = record["pulls"].as_array().unwrap();
    assert_eq!(pulls.len(), 3);
    assert_eq!(pulls[2]["label"], "unknown");
    assert_eq!(pulls[0]["run_id"], RUN_A);
    assert_eq!(pulls[0]["base"], "main");

    let metrics = server.registry.encode(false);
    for (label, n) in [("safe", 1), ("needs-review", 1), ("unknown", 1)] {
        let line = format!(r#"sre_agent_pr_created_total{{label="{label}"}} {n}"#);
        assert!(metrics.contains(&line), "{line} missing from\n{metrics}");
    }
    assert_eq!(git(&repo, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);

    // The server span carries pr_label; no log line or span field carries the PR URL or the diff.
    let lines = captured.lines();
    for label in ["safe", "needs-review", "unknown"] {
        assert!(lines.contains(&format!("pr_label={label}")), "pr_label={label} not recorded: {lines:#?}");
    }
    assert!(lines.iter().any(|l| l == "message=pull request created"));
    assert!(!lines.iter().any(|l| l.contains("file://") || l.contains("print(x)")), "{lines:#?}");

    // A fresh process finds the record on disk: still idempotent, numbering continues.
    server.stop().await;
    let mut server = Server::start(root.path()).await;
    assert_eq!(server.create(request(RUN_B, &sha, &diff, "needs-review")).await.unwrap(), second);
    let fourth = server.create(request("d00d0000-0000-4000-8000-00000000000d", &sha, &diff, "")).await.unwrap();
    assert_eq!((fourth.number, fourth.label.as_str()), (4, "unknown"));
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_statuses() {
    let (_captured, _guard) = Captured::install();
    let (root, repo, sha, diff) = fixture();
    let mut server = Server::start(root.path()).await;

    let err = server.create(request(RUN_A, &sha, "", "safe")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("diff is empty"), "{}", err.message());

    let err = server.create(CreatePullRequestRequest { diff: diff.clone(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    assert_eq!(server.create(request("", &sha, &diff, "safe")).await.unwrap_err().code(), Code::InvalidArgument);

    let err = server.create(request(RUN_A, &sha, "garbage\n", "safe")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("does not apply"), "{}", err.message());

    let mut other_base = request(RUN_A, &sha, &diff, "safe");
    other_base.base_branch = "release".to_owned();
    let err = server.create(other_base).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("release"), "{}", err.message());

    let mut missing = request(RUN_A, &sha, &diff, "safe");
    missing.context.as_mut().unwrap().repo = "acme/missing".to_owned();
    assert_eq!(server.create(missing).await.unwrap_err().code(), Code::NotFound);

    // A branch made by someone else under our name is not overwritten.
    git(&repo, &["branch", "sre-agent/3f2a9c1e-5b7", &sha]);
    let err = server.create(request(RUN_A, &sha, &diff, "safe")).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(git(&repo, &["rev-parse", "sre-agent/3f2a9c1e-5b7"]), sha);

    // Another run whose run_id starts the same way cannot take over a recorded PR's branch.
    let first = server.create(request(RUN_B, &sha, &diff, "safe")).await.unwrap();
    assert_eq!(first.number, 1, "failed calls must not consume numbers");
    let twin = RUN_B.replace("00b", "0bb");
    let err = server.create(request(&twin, &sha, &diff, "safe")).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("#1"), "{}", err.message());

    assert!(server.registry.encode(false).contains(r#"sre_agent_pr_created_total{label="unknown"} 0"#));
    assert_eq!(git(&repo, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
    server.stop().await;
}
