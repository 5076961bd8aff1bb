//! The local backend end to end: a bare "remote" repository under the repos dir, the service behind a real
//! tonic server (health, reflection and the telemetry layer included, as in production) on 127.0.0.1:0.

use std::path::{Path, PathBuf};

use sre_gitwork::testing::{git, init_repo};
use sre_pr::{PrMetrics, PullRequestService};
use sre_proto::pull_requests_client::PullRequestsClient;
use sre_proto::pull_requests_server::PullRequestsServer;
use sre_proto::{CreatePullRequestRequest, CreatePullRequestResponse, FailureInfo, PrAction, RunContext};
use sre_service_kit::testing::InProcess;
use sre_telemetry::SharedRegistry;
use sre_telemetry::testing::Captured;
use tonic::Code;

const REPO: &str = "acme/app";
const KEY_A: &str = "workflow_job:5001";
const KEY_B: &str = "workflow_job:5002";
const KEY_C: &str = "check_run:77";
const AGENT: &str = "sre-agent <sre-agent@users.noreply.localhost>";

struct Fixture {
    root: tempfile::TempDir,
    /// The bare remote at repos/acme/app.
    remote: PathBuf,
    sha: String,
    /// Strips app.py's trailing whitespace.
    diff: String,
    /// Strips it and fixes README.md as well.
    diff2: String,
}

/// `repos/acme/app`, a bare repository whose main has app.py with trailing whitespace, and two fixes.
fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    init_repo(&work);
    std::fs::write(work.join("app.py"), "x = 1   \nprint(x)\n").unwrap();
    std::fs::write(work.join("README.md"), "app \n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "initial"]);
    let sha = git(&work, &["rev-parse", "HEAD"]);
    std::fs::write(work.join("app.py"), "x = 1\nprint(x)\n").unwrap();
    let diff = git(&work, &["diff", "--no-color"]) + "\n";
    std::fs::write(work.join("README.md"), "app\n").unwrap();
    let diff2 = git(&work, &["diff", "--no-color"]) + "\n";
    git(&work, &["checkout", "--", "."]);
    let remote = root.path().join("repos").join(REPO);
    std::fs::create_dir_all(remote.parent().unwrap()).unwrap();
    git(root.path(), &["clone", "-q", "--bare", work.to_str().unwrap(), remote.to_str().unwrap()]);
    Fixture { root, remote, sha, diff, diff2 }
}

impl Fixture {
    fn repos(&self) -> PathBuf {
        self.root.path().join("repos")
    }

    /// A clone of the remote where someone else works.
    fn human_clone(&self) -> PathBuf {
        let dir = self.root.path().join(format!("human-{}", std::process::id()));
        if !dir.exists() {
            git(self.root.path(), &["clone", "-q", self.remote.to_str().unwrap(), dir.to_str().unwrap()]);
            git(&dir, &["config", "user.name", "Jane Doe"]);
            git(&dir, &["config", "user.email", "jane@example.com"]);
        }
        dir
    }
}

fn request(key: &str, category: &str, sha: &str, diff: &str, label: &str) -> CreatePullRequestRequest {
    CreatePullRequestRequest {
        context: Some(RunContext {
            run_key: key.to_owned(),
            run_id: format!("run-of-{key}"),
            correlation_id: format!("run-of-{key}"),
            repo: REPO.to_owned(),
            head_sha: sha.to_owned(),
            category: category.to_owned(),
            ..Default::default()
        }),
        diff: diff.to_owned(),
        title: "Fix whitespace hygiene in app.py".to_owned(),
        body: "Strips trailing whitespace.\n\nOpened by sre-agent.".to_owned(),
        label: label.to_owned(),
        base_branch: "main".to_owned(),
        draft: false,
        failure: Some(FailureInfo { head_branch: "main".to_owned(), ..Default::default() }),
    }
}

/// `sre-agent/<category>/<first 10 hex of sha256(key)>`, computed independently of the service.
fn branch_of(category: &str, key: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(key.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("sre-agent/{category}/{}", &hex[..10])
}

struct Server {
    client: PullRequestsClient<tonic::transport::Channel>,
    registry: SharedRegistry,
    server: InProcess,
}

impl Server {
    async fn start(repos_dir: &Path) -> Self {
        let registry = SharedRegistry::default();
        let service = PullRequestService::local(repos_dir.to_owned(), PrMetrics::register(&registry));
        let routes = tonic::service::Routes::new(PullRequestsServer::new(service));
        let server = InProcess::start("sre.v1.PullRequests", registry.clone(), routes).await;
        let client = PullRequestsClient::connect(server.url()).await.unwrap();
        Self { client, registry, server }
    }

    async fn create(&mut self, req: CreatePullRequestRequest) -> Result<CreatePullRequestResponse, tonic::Status> {
        self.client.create_pull_request(req).await.map(tonic::Response::into_inner)
    }

    fn metric(&self, series: &str) -> f64 {
        let text = self.registry.encode(false);
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn records(remote: &Path) -> Vec<serde_json::Value> {
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(remote.join("sre-agent/pulls.json")).unwrap()).unwrap();
    record["pulls"].as_array().unwrap().clone()
}

#[tokio::test]
async fn one_pull_request_per_failure_key_created_unchanged_updated_refused() {
    let (captured, _guard) = Captured::install();
    let f = fixture();
    let mut server = Server::start(&f.repos()).await;
    let branch_a = branch_of("lint", KEY_A);

    // Created: the branch on the remote holds the fix on top of head_sha, by the agent.
    let first = server.create(request(KEY_A, "lint", &f.sha, &f.diff, "safe")).await.unwrap();
    assert_eq!(first.action(), PrAction::Created);
    assert_eq!((first.number, first.branch.as_str(), first.label.as_str()), (1, branch_a.as_str(), "safe"));
    assert_eq!((first.backend.as_str(), first.draft, first.refused_reason.as_str()), ("local", false, ""));
    let remote_abs = std::fs::canonicalize(&f.remote).unwrap();
    assert_eq!(first.url, format!("file://{}#{branch_a}", remote_abs.display()));
    let remote = &f.remote;
    assert_eq!(git(remote, &["rev-parse", &branch_a]), first.commit_sha);
    assert_eq!(git(remote, &["rev-parse", &format!("{}^", first.commit_sha)]), f.sha);
    assert_eq!(git(remote, &["show", &format!("{branch_a}:app.py")]), "x = 1\nprint(x)");
    assert_eq!(git(remote, &["rev-parse", "main"]), f.sha, "main is untouched");
    assert_eq!(
        git(remote, &["log", "-1", "--format=%an <%ae>|%cn <%ce>", &first.commit_sha]),
        format!("{AGENT}|{AGENT}")
    );
    assert_eq!(
        git(remote, &["log", "-1", "--format=%B", &first.commit_sha]),
        "Fix whitespace hygiene in app.py\n\nStrips trailing whitespace.\n\nOpened by sre-agent."
    );
    let pulls = records(remote);
    assert_eq!(pulls.len(), 1);
    assert_eq!((pulls[0]["run_key"].as_str(), pulls[0]["base"].as_str()), (Some(KEY_A), Some("main")));
    assert_eq!(pulls[0]["labels"], serde_json::json!(["sre-agent", "safe"]));
    assert_eq!((pulls[0]["state"].as_str(), pulls[0]["draft"].as_bool()), (Some("open"), Some(false)));

    // A retry of the same failure: nothing to do.
    let again = server.create(request(KEY_A, "lint", &f.sha, &f.diff, "safe")).await.unwrap();
    assert_eq!(again.action(), PrAction::Unchanged);
    assert_eq!(CreatePullRequestResponse { action: first.action, ..again }, first);
    assert_eq!(git(remote, &["rev-parse", &branch_a]), first.commit_sha, "nothing pushed");

    // Another fix for the same failure: the agent's commit is replaced, still pull request #1.
    let updated = server.create(request(KEY_A, "lint", &f.sha, &f.diff2, "safe")).await.unwrap();
    assert_eq!(updated.action(), PrAction::Updated);
    assert_eq!((updated.number, updated.branch.as_str()), (1, branch_a.as_str()));
    assert_ne!(updated.commit_sha, first.commit_sha);
    assert_eq!(git(remote, &["rev-parse", &branch_a]), updated.commit_sha);
    assert_eq!(git(remote, &["rev-parse", &format!("{}^", updated.commit_sha)]), f.sha, "on head_sha, not stacked");
    assert_eq!(git(remote, &["show", &format!("{branch_a}:README.md")]), "app");
    // Only the title changes: the record is updated, the branch is not.
    let mut retitled = request(KEY_A, "lint", &f.sha, &f.diff2, "safe");
    retitled.title = "Fix whitespace in app.py and README.md".into();
    let r = server.create(retitled).await.unwrap();
    assert_eq!((r.action(), r.commit_sha.as_str()), (PrAction::Updated, updated.commit_sha.as_str()));
    let pulls = records(remote);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["title"], "Fix whitespace in app.py and README.md");
    assert_eq!(pulls[0]["commit_sha"], updated.commit_sha.as_str());

    // Someone else commits on the agent's branch: the agent pushes nothing and says why.
    let human = f.human_clone();
    git(&human, &["fetch", "-q", "origin"]);
    git(&human, &["checkout", "-q", "-b", "work", &format!("origin/{branch_a}")]);
    std::fs::write(human.join("app.py"), "x = 1\nprint(x)  # checked\n").unwrap();
    git(&human, &["commit", "-q", "-am", "Keep the comment"]);
    git(&human, &["push", "-q", "origin", &format!("work:{branch_a}")]);
    let human_tip = git(&human, &["rev-parse", "HEAD"]);
    let refused = server.create(request(KEY_A, "lint", &f.sha, &f.diff, "safe")).await.unwrap();
    assert_eq!(refused.action(), PrAction::Refused);
    assert_eq!(
        refused.refused_reason,
        format!("commits by Jane Doe are on {branch_a}: not updating a branch others work on")
    );
    assert_eq!((refused.number, refused.commit_sha.as_str()), (1, human_tip.as_str()));
    assert_eq!(git(remote, &["rev-parse", &branch_a]), human_tip, "the human's commit stays on top");
    assert_eq!(records(remote)[0]["commit_sha"], updated.commit_sha.as_str(), "the record is not touched");

    // A second failure: its own branch and pull request.
    let second = server.create(request(KEY_B, "format", &f.sha, &f.diff, "needs-review")).await.unwrap();
    assert_eq!((second.action(), second.number), (PrAction::Created, 2));
    assert_eq!(second.branch, branch_of("format", KEY_B));
    assert_eq!(second.label, "needs-review");
    // No category yet: "unknown"; a label that is neither safe nor needs-review asks for review.
    let mut odd = request(KEY_C, "", &f.sha, &f.diff, "ship-it");
    odd.draft = true;
    let third = server.create(odd).await.unwrap();
    assert_eq!((third.number, third.label.as_str(), third.draft), (3, "unknown", true));
    assert_eq!(third.branch, branch_of("unknown", KEY_C));
    let pulls = records(remote);
    assert_eq!(pulls[1]["labels"], serde_json::json!(["sre-agent", "needs-review"]));
    assert_eq!(pulls[2]["labels"], serde_json::json!(["sre-agent", "needs-review"]));
    assert_eq!(pulls[2]["draft"], true);

    for (series, n) in [
        (r#"sre_agent_pr_created_total{label="safe"}"#, 1.0),
        (r#"sre_agent_pr_created_total{label="needs-review"}"#, 1.0),
        (r#"sre_agent_pr_created_total{label="unknown"}"#, 1.0),
        (r#"sre_agent_pr_updates_total{action="created"}"#, 3.0),
        (r#"sre_agent_pr_updates_total{action="unchanged"}"#, 1.0),
        (r#"sre_agent_pr_updates_total{action="updated"}"#, 2.0),
        (r#"sre_agent_pr_updates_total{action="refused"}"#, 1.0),
    ] {
        assert_eq!(server.metric(series), n, "{series}");
    }
    assert_eq!(git(remote, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1, "worktrees removed");

    // The server span carries pr_label; no log line or span field carries the URL, the diff or a name.
    let lines = captured.lines();
    for label in ["safe", "needs-review", "unknown"] {
        assert!(lines.contains(&format!("pr_label={label}")), "pr_label={label} not recorded: {lines:#?}");
    }
    assert!(lines.iter().any(|l| l == "message=pull request created"));
    assert!(lines.iter().any(|l| l == "action=refused"));
    assert!(!lines.iter().any(|l| l.contains("file://") || l.contains("print(x)") || l.contains("Jane")), "{lines:#?}");

    // A fresh process finds the records: still one pull request per key, numbering continues, and an
    // existing pull request keeps its draft state.
    server.stop().await;
    let mut server = Server::start(&f.repos()).await;
    let again = server.create(request(KEY_B, "format", &f.sha, &f.diff, "needs-review")).await.unwrap();
    assert_eq!(CreatePullRequestResponse { action: second.action, ..again.clone() }, second);
    assert_eq!(again.action(), PrAction::Unchanged);
    let mut undraft = request(KEY_C, "", &f.sha, &f.diff, "ship-it");
    undraft.draft = false;
    let kept = server.create(undraft).await.unwrap();
    assert_eq!((kept.action(), kept.draft), (PrAction::Unchanged, true));
    let fourth = server.create(request("workflow_job:9", "test", &f.sha, &f.diff, "safe")).await.unwrap();
    assert_eq!((fourth.number, fourth.action()), (4, PrAction::Created));
    // A later category for a known key keeps the key's first branch.
    let recat = server.create(request(KEY_C, "lint", &f.sha, &f.diff, "ship-it")).await.unwrap();
    assert_eq!((recat.number, recat.branch.as_str()), (3, third.branch.as_str()));
    server.stop().await;
}

#[tokio::test]
async fn branches_someone_else_made_closed_records_and_concurrent_processes() {
    let (_captured, _guard) = Captured::install();
    let f = fixture();
    let branch_a = branch_of("lint", KEY_A);

    // A branch under the agent's name that only points at head_sha (nobody's commits): the fix goes on it.
    git(&f.remote, &["branch", &branch_a, &f.sha]);
    let mut server = Server::start(&f.repos()).await;
    let first = server.create(request(KEY_A, "lint", &f.sha, &f.diff, "safe")).await.unwrap();
    assert_eq!((first.action(), first.number), (PrAction::Created, 1));
    assert_eq!(git(&f.remote, &["rev-parse", &format!("{branch_a}^")]), f.sha);

    // A branch under the agent's name with someone's work on it and no record: refused, no number used.
    let branch_b = branch_of("lint", KEY_B);
    let human = f.human_clone();
    std::fs::write(human.join("notes.txt"), "mine\n").unwrap();
    git(&human, &["add", "-A"]);
    git(&human, &["commit", "-q", "-m", "My notes"]);
    git(&human, &["push", "-q", "origin", &format!("HEAD:{branch_b}")]);
    let refused = server.create(request(KEY_B, "lint", &f.sha, &f.diff, "safe")).await.unwrap();
    assert_eq!((refused.action(), refused.number, refused.url.as_str()), (PrAction::Refused, 0, ""));
    assert!(
        refused.refused_reason.starts_with("commits by Jane Doe are on sre-agent/lint/"),
        "{}",
        refused.refused_reason
    );
    let next = server.create(request(KEY_C, "lint", &f.sha, &f.diff, "safe")).await.unwrap();
    assert_eq!(next.number, 2, "a refused call does not consume a number");

    // A pull request closed by a reviewer is not reopened or pushed to.
    let path = f.remote.join("sre-agent/pulls.json");
    let text = std::fs::read_to_string(&path).unwrap().replacen("\"open\"", "\"closed\"", 1);
    std::fs::write(&path, text).unwrap();
    let closed = server.create(request(KEY_A, "lint", &f.sha, &f.diff2, "safe")).await.unwrap();
    assert_eq!((closed.action(), closed.number), (PrAction::Refused, 1));
    assert!(
        closed.refused_reason.contains("#1") && closed.refused_reason.contains("closed"),
        "{}",
        closed.refused_reason
    );
    assert_eq!(git(&f.remote, &["rev-parse", &branch_a]), first.commit_sha);
    server.stop().await;

    // Two processes (two servers over one repos dir) with the same new failure at once: one pull request.
    let mut one = Server::start(&f.repos()).await;
    let mut two = Server::start(&f.repos()).await;
    let req = request("workflow_job:race", "lint", &f.sha, &f.diff, "safe");
    let (a, b) = tokio::join!(one.create(req.clone()), two.create(req));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut actions = [a.action(), b.action()];
    actions.sort_by_key(|a| *a as i32);
    assert_eq!(actions, [PrAction::Created, PrAction::Unchanged]);
    assert_eq!((a.number, b.number), (3, 3));
    assert_eq!(records(&f.remote).len(), 3);
    one.stop().await;
    two.stop().await;

    // Someone pushes to main after the failure: the failure is superseded, nothing is pushed or recorded.
    let human = f.human_clone();
    git(&human, &["pull", "-q", "origin", "main"]);
    std::fs::write(human.join("more.txt"), "more\n").unwrap();
    git(&human, &["add", "-A"]);
    git(&human, &["commit", "-q", "-m", "More"]);
    git(&human, &["push", "-q", "origin", "HEAD:main"]);
    let main = git(&f.remote, &["rev-parse", "main"]);
    let mut server = Server::start(&f.repos()).await;
    let late = server.create(request("workflow_job:late", "lint", &f.sha, &f.diff, "safe")).await.unwrap();
    assert_eq!((late.action(), late.number), (PrAction::Refused, 0));
    assert_eq!(
        late.refused_reason,
        format!("main moved on to {} since the failure at {}: superseded, nothing pushed", &main[..12], &f.sha[..12])
    );
    assert!(git(&f.remote, &["branch", "--list", &branch_of("lint", "workflow_job:late")]).is_empty());
    assert_eq!(records(&f.remote).len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_statuses() {
    let (_captured, _guard) = Captured::install();
    let f = fixture();
    let mut server = Server::start(&f.repos()).await;

    let err = server.create(request(KEY_A, "lint", &f.sha, "", "safe")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("diff is empty"), "{}", err.message());

    let err = server.create(CreatePullRequestRequest { diff: f.diff.clone(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let err = server.create(request("", "lint", &f.sha, &f.diff, "safe")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("run_key"), "{}", err.message());

    let err = server.create(request(KEY_A, "lint", &f.sha, "garbage\n", "safe")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("does not apply"), "{}", err.message());

    let mut other_base = request(KEY_A, "lint", &f.sha, &f.diff, "safe");
    other_base.base_branch = "release".to_owned();
    let err = server.create(other_base).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("release"), "{}", err.message());

    let mut own_base = request(KEY_A, "lint", &f.sha, &f.diff, "safe");
    own_base.base_branch = branch_of("lint", KEY_B);
    assert_eq!(server.create(own_base).await.unwrap_err().code(), Code::InvalidArgument);
    let mut bad_base = request(KEY_A, "lint", &f.sha, &f.diff, "safe");
    bad_base.base_branch = "main --force".to_owned();
    assert_eq!(server.create(bad_base).await.unwrap_err().code(), Code::InvalidArgument);

    let mut missing = request(KEY_A, "lint", &f.sha, &f.diff, "safe");
    missing.context.as_mut().unwrap().repo = "acme/missing".to_owned();
    assert_eq!(server.create(missing).await.unwrap_err().code(), Code::NotFound);
    let mut escaping = request(KEY_A, "lint", &f.sha, &f.diff, "safe");
    escaping.context.as_mut().unwrap().repo = "../etc".to_owned();
    assert_eq!(server.create(escaping).await.unwrap_err().code(), Code::InvalidArgument);

    let mut unknown_sha = request(KEY_A, "lint", &"0".repeat(40), &f.diff, "safe");
    unknown_sha.context.as_mut().unwrap().run_id = "x".into();
    assert_eq!(server.create(unknown_sha).await.unwrap_err().code(), Code::FailedPrecondition);

    // The agent never writes under .github/.
    let workflow = "diff --git a/.github/workflows/ci.yml b/.github/workflows/ci.yml\nnew file mode 100644\n\
                    --- /dev/null\n+++ b/.github/workflows/ci.yml\n@@ -0,0 +1 @@\n+on: push\n";
    let err = server.create(request(KEY_A, "lint", &f.sha, workflow, "safe")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(".github/"), "{}", err.message());

    // Nothing of the failed calls is left: no branch, no record, no worktree; numbers start at 1.
    assert_eq!(git(&f.remote, &["for-each-ref", "--format=%(refname)", "refs/heads/sre-agent"]), "");
    assert!(!f.remote.join("sre-agent/pulls.json").exists());
    let first = server.create(request(KEY_A, "lint", &f.sha, &f.diff, "safe")).await.unwrap();
    assert_eq!(first.number, 1, "failed calls must not consume numbers");
    assert_eq!(server.metric(r#"sre_agent_pr_created_total{label="unknown"}"#), 0.0);
    assert_eq!(git(&f.remote, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);

    // An unreadable record is DATA_LOSS, not a second pull request.
    std::fs::write(f.remote.join("sre-agent/pulls.json"), "{not json").unwrap();
    let err = server.create(request(KEY_A, "lint", &f.sha, &f.diff, "safe")).await.unwrap_err();
    assert_eq!(err.code(), Code::DataLoss);
    server.stop().await;
}
