//! The GitHub backend end to end against sre-github-fake (REST with GitHub's shapes, App JWTs and
//! installation tokens, git smart HTTP over real bare repositories): the service built from its real
//! configuration (`SRE_PR_BACKEND=github` and the GitHub flags), served by tonic on 127.0.0.1:0.

use std::time::{Duration, Instant};

use clap::Parser;
use sre_github_fake::{AppKey, FakeGithub, Fault, Host, RecordedCall, Route};
use sre_gitwork::testing::git;
use sre_proto::pull_requests_client::PullRequestsClient;
use sre_proto::{CreatePullRequestRequest, CreatePullRequestResponse, FailureInfo, PrAction, RunContext};
use sre_service_kit::testing::InProcess;
use sre_telemetry::SharedRegistry;
use sre_telemetry::testing::Captured;
use tonic::Code;

const APP_ID: u64 = 77;
const INSTALLATION: u64 = 42;
const REPO: &str = "octo/app";
const KEY: &str = "workflow_job:9001";
const BOT: &str = "sre-agent[bot]";

struct Env {
    fake: FakeGithub,
    sha: String,
    diff: String,
    diff2: String,
    repos: tempfile::TempDir,
    _key: tempfile::NamedTempFile,
    client: PullRequestsClient<tonic::transport::Channel>,
    registry: SharedRegistry,
    server: InProcess,
}

/// The fake with the App installed on octo/app, whose main has app.py with trailing whitespace; the pr
/// service configured for it.
async fn env() -> Env {
    let fake = FakeGithub::start().await.unwrap();
    fake.add_app(APP_ID, "sre-agent", &AppKey::shared().public_pem);
    fake.add_installation(INSTALLATION, APP_ID, &[REPO]);
    fake.add_user("dev", "dev@example.com");
    fake.add_repo(REPO, "main").unwrap();
    fake.add_repo("octo/elsewhere", "main").unwrap();
    let files = [("app.py", "x = 1   \nprint(x)\n"), ("README.md", "app \n")];
    let sha = fake.commit(REPO, "main", &files, "initial", ("Dev", "dev@example.com")).unwrap();
    let diff =
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n-x = 1   \n+x = 1\n print(x)\n"
            .to_owned();
    let diff2 = format!(
        "{diff}diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-app \n+app\n"
    );
    let mut key = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut key, AppKey::shared().private_pem.as_bytes()).unwrap();
    let repos = tempfile::tempdir().unwrap();
    let config = sre_pr::Config::try_parse_from([
        "sre-pr",
        "--backend",
        "github",
        "--repos-dir",
        repos.path().to_str().unwrap(),
        "--github-app-id",
        &APP_ID.to_string(),
        "--github-private-key-file",
        key.path().to_str().unwrap(),
        "--github-api-url",
        &fake.api_url(),
        "--github-git-url",
        &fake.git_url(),
    ])
    .unwrap();
    let registry = SharedRegistry::default();
    let (routes, _ready) = sre_pr::build(&config, &registry).unwrap();
    let server = InProcess::start("sre.v1.PullRequests", registry.clone(), routes).await;
    let client = PullRequestsClient::connect(server.url()).await.unwrap();
    Env { fake, sha, diff, diff2, repos, _key: key, client, registry, server }
}

fn request(sha: &str, diff: &str) -> CreatePullRequestRequest {
    CreatePullRequestRequest {
        context: Some(RunContext {
            run_key: KEY.to_owned(),
            run_id: "run-1".to_owned(),
            repo: REPO.to_owned(),
            head_sha: sha.to_owned(),
            category: "lint".to_owned(),
            ..Default::default()
        }),
        diff: diff.to_owned(),
        title: "Fix whitespace hygiene in app.py".to_owned(),
        body: "Strips trailing whitespace.\n\nOpened by sre-agent.".to_owned(),
        label: "safe".to_owned(),
        base_branch: "main".to_owned(),
        draft: false,
        failure: Some(FailureInfo {
            installation_id: INSTALLATION,
            head_branch: "main".to_owned(),
            ..Default::default()
        }),
    }
}

impl Env {
    async fn create(&mut self, req: CreatePullRequestRequest) -> Result<CreatePullRequestResponse, tonic::Status> {
        self.client.create_pull_request(req).await.map(tonic::Response::into_inner)
    }

    fn bare(&self) -> std::path::PathBuf {
        self.fake.repo_path(REPO)
    }

    fn metric(&self, series: &str) -> f64 {
        let text = self.registry.encode(false);
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
    }
}

/// `METHOD path[?query]` of each call, with the git host's requests as `git ...`.
fn shape(calls: &[RecordedCall]) -> Vec<String> {
    calls
        .iter()
        .map(|c| {
            let host = if c.host == Host::Git { "git " } else { "" };
            let query = if c.query.is_empty() { String::new() } else { format!("?{}", c.query) };
            format!("{host}{} {}{query} -> {}", c.method, c.path, c.status)
        })
        .collect()
}

fn pushes(calls: &[RecordedCall]) -> usize {
    calls.iter().filter(|c| c.host == Host::Git && c.method == "POST" && c.path.ends_with("/git-receive-pack")).count()
}

fn branch() -> String {
    // sha256("workflow_job:9001"), first 10 hex digits.
    let out =
        std::process::Command::new("sh").args(["-c", &format!("printf %s '{KEY}' | sha256sum")]).output().unwrap();
    format!("sre-agent/lint/{}", &String::from_utf8_lossy(&out.stdout)[..10])
}

#[tokio::test]
async fn opens_one_labelled_pull_request_and_redeliveries_change_nothing() {
    let (_captured, _guard) = Captured::install();
    let mut env = env().await;
    let branch = branch();

    let first = env.create(request(&env.sha, &env.diff)).await.unwrap();
    let calls = env.fake.calls();
    println!("one pull request, the calls in order:\n  {}", shape(&calls).join("\n  "));
    assert_eq!(first.action(), PrAction::Created);
    assert_eq!((first.number, first.branch.as_str(), first.label.as_str()), (1, branch.as_str(), "safe"));
    assert_eq!((first.backend.as_str(), first.draft), ("github", false));
    assert_eq!(first.url, format!("{}/{REPO}/pull/1", env.fake.git_url()));
    // The branch was pushed to GitHub: the fix on head_sha, by the bot.
    assert_eq!(env.fake.branch_head(REPO, &branch).as_deref(), Some(first.commit_sha.as_str()));
    let bare = env.bare();
    assert_eq!(git(&bare, &["rev-parse", &format!("{}^", first.commit_sha)]), env.sha);
    assert_eq!(git(&bare, &["show", &format!("{branch}:app.py")]), "x = 1\nprint(x)");
    let who = format!("{BOT} <{BOT}@users.noreply.127.0.0.1>");
    assert_eq!(git(&bare, &["log", "-1", "--format=%an <%ae>|%cn <%ce>", &first.commit_sha]), format!("{who}|{who}"));
    assert_eq!(
        env.fake.pulls(REPO),
        vec![(
            1,
            "Fix whitespace hygiene in app.py".to_owned(),
            branch.clone(),
            "main".to_owned(),
            true,
            vec!["sre-agent".to_owned(), "safe".to_owned()]
        )]
    );
    let labels = env.fake.labels(REPO);
    assert!(labels.contains(&"sre-agent".to_owned()) && labels.contains(&"safe".to_owned()), "{labels:?}");
    // The REST calls, in order (the git requests between them are the clone, ls-remote and push).
    let rest: Vec<(String, String, u16)> = calls
        .iter()
        .filter(|c| c.host == Host::Api)
        .map(|c| (c.method.clone(), format!("{:?}", c.route), c.status))
        .collect();
    let expect = [
        ("POST", "AppToken", 201),
        ("GET", "Repo", 200),
        ("GET", "Pulls", 200),
        ("POST", "Pulls", 201),
        ("POST", "Labels", 201),
        ("POST", "Labels", 201),
        ("POST", "IssueLabels", 200),
    ];
    let expect: Vec<(String, String, u16)> = expect.iter().map(|(m, r, s)| ((*m).into(), (*r).into(), *s)).collect();
    assert_eq!(rest, expect);
    assert_eq!(pushes(&calls), 1);
    // The repository cache holds a bare clone with a clean remote.
    let clone = env.repos.path().join(REPO);
    assert_eq!(git(&clone, &["rev-parse", "--is-bare-repository"]), "true");
    assert_eq!(git(&clone, &["config", "--get", "remote.origin.url"]), format!("{}/{REPO}.git", env.fake.git_url()));
    let config = std::fs::read_to_string(clone.join("config")).unwrap();
    for token in env.fake.installation_tokens() {
        assert!(!config.contains(&token));
    }

    // The same delivery again: nothing pushed, nothing created, nothing edited.
    env.fake.clear_calls();
    let again = env.create(request(&env.sha, &env.diff)).await.unwrap();
    assert_eq!(again.action(), PrAction::Unchanged);
    assert_eq!(CreatePullRequestResponse { action: first.action, ..again }, first);
    let calls = env.fake.calls();
    let rest: Vec<String> =
        calls.iter().filter(|c| c.host == Host::Api).map(|c| format!("{} {:?}", c.method, c.route)).collect();
    assert_eq!(rest, ["GET Repo", "GET Pulls"], "{:#?}", shape(&calls));
    assert_eq!(pushes(&calls), 0);
    assert_eq!(env.fake.pulls(REPO).len(), 1);

    // A new fix for the same failure: the agent's commit is replaced on the same branch and pull request.
    env.fake.clear_calls();
    let updated = env.create(request(&env.sha, &env.diff2)).await.unwrap();
    assert_eq!((updated.action(), updated.number), (PrAction::Updated, 1));
    assert_eq!(env.fake.branch_head(REPO, &branch).as_deref(), Some(updated.commit_sha.as_str()));
    assert_eq!(git(&bare, &["rev-parse", &format!("{}^", updated.commit_sha)]), env.sha);
    assert_eq!(pushes(&env.fake.calls()), 1);
    assert!(env.fake.calls_to(Route::Pulls).iter().all(|c| c.method == "GET"), "no second pull request");
    // A new title: PATCH, no push.
    env.fake.clear_calls();
    let mut retitled = request(&env.sha, &env.diff2);
    retitled.title = "Fix whitespace in app.py and README.md".into();
    let r = env.create(retitled).await.unwrap();
    assert_eq!((r.action(), r.commit_sha.as_str()), (PrAction::Updated, updated.commit_sha.as_str()));
    let methods: Vec<String> = env.fake.calls_to(Route::Pulls).iter().map(|c| c.method.clone()).collect();
    assert_eq!(methods, ["GET", "PATCH"]);
    assert_eq!(pushes(&env.fake.calls()), 0);
    assert_eq!(env.fake.pulls(REPO)[0].1, "Fix whitespace in app.py and README.md");

    assert_eq!(env.metric(r#"sre_agent_pr_created_total{label="safe"}"#), 1.0);
    assert_eq!(env.metric(r#"sre_agent_pr_updates_total{action="created"}"#), 1.0);
    assert_eq!(env.metric(r#"sre_agent_pr_updates_total{action="unchanged"}"#), 1.0);
    assert_eq!(env.metric(r#"sre_agent_pr_updates_total{action="updated"}"#), 2.0);
    assert!(env.metric(r#"sre_agent_github_requests_total{endpoint="pulls",status_class="2xx"}"#) >= 5.0);
    assert_eq!(env.metric(r#"sre_agent_github_requests_total{endpoint="check_runs",status_class="2xx"}"#), 0.0);
    env.server.stop().await;
}

#[tokio::test]
async fn drafts_and_needs_review() {
    let (_captured, _guard) = Captured::install();
    let mut env = env().await;
    let mut req = request(&env.sha, &env.diff);
    req.draft = true;
    req.label = "needs-review".into();
    let first = env.create(req.clone()).await.unwrap();
    assert_eq!((first.action(), first.draft, first.label.as_str()), (PrAction::Created, true, "needs-review"));
    assert_eq!(env.fake.pulls(REPO)[0].5, ["sre-agent", "needs-review"]);
    let post = env.fake.calls_to(Route::Pulls).into_iter().find(|c| c.method == "POST").unwrap();
    assert_eq!(post.status, 201);
    // An existing pull request keeps its draft state (draft ↔ ready is GraphQL-only) and reports it.
    req.draft = false;
    let again = env.create(req).await.unwrap();
    assert_eq!((again.action(), again.draft), (PrAction::Unchanged, true));
    env.server.stop().await;
}

#[tokio::test]
async fn a_foreign_commit_on_the_branch_is_refused_and_nothing_is_pushed() {
    let (captured, _guard) = Captured::install();
    let mut env = env().await;
    let branch = branch();
    let first = env.create(request(&env.sha, &env.diff)).await.unwrap();
    let files = [("app.py", "x = 1\nprint(x)  # checked\n")];
    let human = env.fake.commit(REPO, &branch, &files, "Keep the comment", ("Dev", "dev@example.com")).unwrap();

    env.fake.clear_calls();
    let refused = env.create(request(&env.sha, &env.diff2)).await.unwrap();
    assert_eq!(refused.action(), PrAction::Refused);
    assert_eq!(refused.refused_reason, format!("commits by Dev are on {branch}: not updating a branch others work on"));
    assert_eq!((refused.number, refused.url.as_str()), (1, first.url.as_str()));
    assert_eq!(refused.commit_sha, human);
    assert_eq!(env.fake.branch_head(REPO, &branch).as_deref(), Some(human.as_str()), "the human's commit stays");
    let calls = env.fake.calls();
    assert_eq!(pushes(&calls), 0, "{:#?}", shape(&calls));
    assert!(
        calls.iter().filter(|c| c.host == Host::Git).all(|c| !c.query.contains("git-receive-pack")),
        "not even a push handshake"
    );
    assert!(calls.iter().filter(|c| c.host == Host::Api).all(|c| c.method == "GET"), "nothing edited");
    assert_eq!(env.fake.pulls(REPO)[0].1, "Fix whitespace hygiene in app.py");
    assert_eq!(env.metric(r#"sre_agent_pr_updates_total{action="refused"}"#), 1.0);
    assert!(!captured.lines().iter().any(|l| l.contains("Dev")), "the refusal names people: not logged");
    env.server.stop().await;
}

#[tokio::test]
async fn outside_the_installation_and_bad_input_are_clear_errors() {
    let (_captured, _guard) = Captured::install();
    let mut env = env().await;
    let mut other = request(&env.sha, &env.diff);
    other.context.as_mut().unwrap().repo = "octo/elsewhere".into();
    let err = env.create(other).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("octo/elsewhere is not accessible"), "{}", err.message());
    assert!(
        env.fake.calls().iter().all(|c| c.host != Host::Git),
        "no git before the repository is known to be reachable"
    );
    assert!(!env.repos.path().join("octo/elsewhere").exists());

    let mut no_installation = request(&env.sha, &env.diff);
    no_installation.failure.as_mut().unwrap().installation_id = 0;
    let err = env.create(no_installation).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("installation_id"), "{}", err.message());

    let mut short = request(&env.sha, &env.diff);
    short.context.as_mut().unwrap().head_sha = env.sha[..12].to_owned();
    assert_eq!(env.create(short).await.unwrap_err().code(), Code::InvalidArgument);

    // A commit GitHub does not have.
    let err = env.create(request(&"0".repeat(40), &env.diff)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("is not in octo/app"), "{}", err.message());

    // A base branch that does not exist: refused before anything is pushed.
    let mut base = request(&env.sha, &env.diff);
    base.base_branch = "release".into();
    let err = env.create(base).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("\"release\" does not exist"), "{}", err.message());
    assert_eq!(env.fake.branch_head(REPO, &branch()), None);
    assert_eq!(pushes(&env.fake.calls()), 0);

    // Taken out of the installation after the clone: refused before any git.
    env.fake.remove_from_installation(INSTALLATION, REPO);
    env.fake.clear_calls();
    let err = env.create(request(&env.sha, &env.diff)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(env.fake.calls().iter().filter(|c| c.host == Host::Git).count(), 0);
    env.server.stop().await;
}

/// A client of the fake as a maintainer (a plain token that can see every repository).
fn maintainer(fake: &FakeGithub) -> sre_github::Session {
    fake.add_plain_token("ghp_maintainer0123456789", "maintainer");
    let auth = sre_github::Auth::Token(sre_github::SecretToken::new("ghp_maintainer0123456789"));
    let config = sre_github::GithubConfig::github_com(auth).with_base_urls(&fake.api_url(), &fake.git_url()).unwrap();
    let metrics = sre_github::GithubMetrics::register(&SharedRegistry::default());
    sre_github::GithubClient::new(config, metrics).unwrap().with_token().unwrap()
}

#[tokio::test]
async fn a_closed_pull_request_is_never_reopened_or_pushed_to() {
    let (_captured, _guard) = Captured::install();
    let mut env = env().await;
    let branch = branch();
    let first = env.create(request(&env.sha, &env.diff)).await.unwrap();
    let repo = sre_github::RepoRef::parse(REPO).unwrap();
    let close = sre_github::PullRequestUpdate { state: Some("closed".into()), ..Default::default() };
    maintainer(&env.fake).update_pull(&repo, first.number, &close).await.unwrap();

    env.fake.clear_calls();
    let refused = env.create(request(&env.sha, &env.diff2)).await.unwrap();
    assert_eq!((refused.action(), refused.number, refused.url.as_str()), (PrAction::Refused, 1, first.url.as_str()));
    assert_eq!(refused.refused_reason, "pull request #1 for this failure was closed: not reopening or pushing to it");
    assert_eq!(refused.commit_sha, first.commit_sha);
    let calls = env.fake.calls();
    let rest: Vec<String> =
        calls.iter().filter(|c| c.host == Host::Api).map(|c| format!("{} {:?}", c.method, c.route)).collect();
    assert_eq!(rest, ["GET Repo", "GET Pulls"], "{:#?}", shape(&calls));
    assert!(calls.iter().all(|c| c.host != Host::Git), "no git at all");
    assert!(calls.iter().any(|c| c.query.contains("state=all")));
    assert_eq!(env.fake.branch_head(REPO, &branch).as_deref(), Some(first.commit_sha.as_str()));
    assert_eq!(env.fake.pulls(REPO).len(), 1);
    env.server.stop().await;
}

#[tokio::test]
async fn a_base_that_moved_on_supersedes_the_failure() {
    let (_captured, _guard) = Captured::install();
    let mut env = env().await;
    let branch = branch();
    // The agent's fix was pushed (its process stopped before opening the pull request) and main was then
    // fast-forwarded to it: the failing commit is no longer main's tip, so nothing is proposed for it.
    let bare = env.bare();
    git(&bare, &["update-ref", &format!("refs/heads/{branch}"), &env.sha]);
    let email = format!("{BOT}@users.noreply.127.0.0.1");
    let tip = env.fake.commit(REPO, &branch, &[("app.py", "x = 1\nprint(x)\n")], "Fix", (BOT, &email)).unwrap();
    git(&bare, &["update-ref", "refs/heads/main", &tip]);

    let refused = env.create(request(&env.sha, &env.diff)).await.unwrap();
    assert_eq!(refused.action(), PrAction::Refused);
    assert_eq!(
        refused.refused_reason,
        format!("main moved on to {} since the failure at {}: superseded, nothing pushed", &tip[..12], &env.sha[..12])
    );
    assert!(env.fake.calls_to(Route::Pulls).iter().all(|c| c.method != "POST"), "no pull request asked for");
    assert_eq!(pushes(&env.fake.calls()), 0);
    assert!(env.fake.pulls(REPO).is_empty());
    env.server.stop().await;
}

#[tokio::test]
async fn a_secondary_rate_limit_is_waited_out() {
    let (_captured, _guard) = Captured::install();
    let mut env = env().await;
    env.fake.fail_next(Route::Pulls, 1, Fault::SecondaryLimit { status: 403, retry_after_secs: 1 });
    let started = Instant::now();
    let first = env.create(request(&env.sha, &env.diff)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
    assert_eq!(first.action(), PrAction::Created);
    let statuses: Vec<(String, u16)> =
        env.fake.calls_to(Route::Pulls).iter().map(|c| (c.method.clone(), c.status)).collect();
    assert_eq!(statuses, [("GET".into(), 403), ("GET".into(), 200), ("POST".into(), 201)]);
    // A limit longer than the client waits is RESOURCE_EXHAUSTED: the orchestrator retries later.
    env.fake.fail_next(Route::Repo, 1, Fault::SecondaryLimit { status: 429, retry_after_secs: 3600 });
    let err = env.create(request(&env.sha, &env.diff)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    env.server.stop().await;
}

#[tokio::test]
async fn a_concurrent_caller_gets_the_422_and_uses_the_existing_pull_request() {
    let (_captured, _guard) = Captured::install();
    let env = env().await;
    // Every pulls call takes 3 s: the second caller lists before the first one's create lands, then its own
    // create meets GitHub's 422 "A pull request already exists".
    env.fake.set_latency(Route::Pulls, Duration::from_secs(3));
    let mut a_client = env.client.clone();
    let mut b_client = env.client.clone();
    let req = request(&env.sha, &env.diff);
    let a_req = req.clone();
    let a = tokio::spawn(async move { a_client.create_pull_request(a_req).await.map(tonic::Response::into_inner) });
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.fake.calls_to(Route::Pulls).is_empty() {
        assert!(Instant::now() < deadline, "the first caller never listed pull requests");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = b_client.create_pull_request(req).await.map(tonic::Response::into_inner).unwrap();
    let a = a.await.unwrap().unwrap();
    assert_eq!(a.action(), PrAction::Created);
    assert!(matches!(b.action(), PrAction::Unchanged | PrAction::Updated), "{b:?}");
    assert_eq!((a.number, b.number), (1, 1));
    assert_eq!(env.fake.pulls(REPO).len(), 1);
    let posts: Vec<u16> =
        env.fake.calls_to(Route::Pulls).iter().filter(|c| c.method == "POST").map(|c| c.status).collect();
    assert_eq!(posts, [201, 422]);
    assert_eq!(pushes(&env.fake.calls()), 1, "the second caller found the branch already holding the fix");
    env.server.stop().await;
}

#[tokio::test]
async fn no_token_in_any_span_or_log_line() {
    let (captured, _guard) = Captured::install();
    let mut env = env().await;
    env.create(request(&env.sha, &env.diff)).await.unwrap();
    env.create(request(&env.sha, &env.diff)).await.unwrap();
    env.create(request(&env.sha, &env.diff2)).await.unwrap();
    env.fake.commit(REPO, &branch(), &[("x", "y\n")], "human", ("Dev", "dev@example.com")).unwrap();
    env.create(request(&env.sha, &env.diff)).await.unwrap();
    let _ = env.create(request(&"0".repeat(40), &env.diff)).await.unwrap_err();
    env.fake.revoke_token(&env.fake.installation_tokens()[0]);
    env.create(request(&env.sha, &env.diff)).await.unwrap();

    let lines = captured.lines();
    assert!(lines.len() > 50, "telemetry was captured: {}", lines.len());
    let mut secrets = env.fake.issued_tokens();
    secrets.extend(env.fake.calls().iter().filter_map(|c| c.auth.token().map(str::to_owned)));
    // The Basic header git sent: base64("x-access-token:<token>").
    for token in env.fake.installation_tokens() {
        let header = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s 'x-access-token:{token}' | base64 -w0")])
            .output()
            .unwrap();
        secrets.push(String::from_utf8(header.stdout).unwrap());
    }
    assert!(secrets.len() >= 4, "{secrets:?}");
    for line in &lines {
        for secret in &secrets {
            assert!(!line.contains(secret.as_str()), "a secret in telemetry: {line}");
        }
        assert!(!line.contains("/pull/") && !line.contains("print(x)"), "a PR URL or the diff in telemetry: {line}");
        assert!(!line.contains("extraheader") && !line.contains("Authorization"), "{line}");
    }
    assert!(lines.iter().any(|l| l == "message=pull request created"));
    assert!(lines.iter().any(|l| l == "github.endpoint=pulls"), "the client spans were captured");
    env.server.stop().await;
}
