//! sre-github against sre-github-fake on loopback, with the real git CLI.

use std::path::Path;
use std::time::{Duration, Instant};

use sre_domain::Conclusion;
use sre_github::{
    AppCredentials, Auth, CheckConclusion, CheckOutput, CheckRunUpdate, Endpoint, ErrorLines, GithubClient,
    GithubConfig, GithubError, GithubMetrics, InstallationId, JobsOf, LogLimits, NewCheckRun, NewLabel, NewPullRequest,
    PullRequestUpdate, RepoRef, RetryPolicy, RunState, SecretToken, Session, StatusClass,
};
use sre_github_fake::{AppKey, FakeGithub, FakeOptions, Fault, Host, JobSpec, Route, RunSpec, SeenAuth};
use sre_telemetry::SharedRegistry;
use sre_telemetry::testing::Captured;

const APP_ID: u64 = 77;
const INSTALLATION: u64 = 42;
const REPO: &str = "octo/app";
const PLAIN_TOKEN: &str = "ghp_plainTokenForTests0123456789";

struct Env {
    fake: FakeGithub,
    gh: Session,
    metrics: GithubMetrics,
    registry: SharedRegistry,
    repo: RepoRef,
    base_sha: String,
    _key_file: tempfile::NamedTempFile,
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_transient_retries: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_rate_limit_retries: 2,
        max_rate_limit_wait: Duration::from_secs(5),
        max_pages: 5,
    }
}

/// The fake seeded with one App, one installation on octo/app, a commit, a two-attempt run and a log.
async fn seeded(options: FakeOptions) -> (FakeGithub, String) {
    let fake = FakeGithub::start_with(options).await.expect("fake starts");
    let key = AppKey::shared();
    fake.add_app(APP_ID, "sre-agent", &key.public_pem);
    fake.add_installation(INSTALLATION, APP_ID, &[REPO, "octo/other"]);
    fake.add_user("dev", "dev@example.com");
    fake.add_plain_token(PLAIN_TOKEN, "octocat");
    fake.add_repo(REPO, "main").unwrap();
    fake.add_repo("octo/other", "main").unwrap();
    let sha =
        fake.commit(REPO, "main", &[("src/lib.rs", "pub fn f() {}\n")], "initial", ("Dev", "dev@example.com")).unwrap();
    fake.add_run(
        REPO,
        RunSpec {
            id: 900,
            check_suite_id: 5900,
            workflow_name: "CI".into(),
            head_sha: sha.clone(),
            head_branch: "main".into(),
            attempts: vec![
                vec![JobSpec::completed(11, "test", "failure", &[("Set up job", "success"), ("Run tests", "failure")])],
                vec![
                    JobSpec::completed(21, "test", "failure", &[("Set up job", "success"), ("Run tests", "failure")]),
                    JobSpec::completed(22, "fmt", "success", &[("Set up job", "success"), ("cargo fmt", "success")]),
                ],
            ],
        },
    );
    (fake, sha)
}

fn config(fake: &FakeGithub, auth: Auth) -> GithubConfig {
    let mut c = GithubConfig::github_com(auth).with_base_urls(&fake.api_url(), &fake.git_url()).unwrap();
    c.retry = fast_retries();
    c
}

async fn app_env_with(options: FakeOptions) -> Env {
    let (fake, base_sha) = seeded(options).await;
    let mut key_file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut key_file, AppKey::shared().private_pem.as_bytes()).unwrap();
    let app = AppCredentials::from_pem_file(APP_ID, key_file.path()).unwrap();
    let registry = SharedRegistry::default();
    let metrics = GithubMetrics::register(&registry);
    let client = GithubClient::new(config(&fake, Auth::App(app)), metrics.clone()).unwrap();
    let gh = client.installation(InstallationId(INSTALLATION)).unwrap();
    Env { fake, gh, metrics, registry, repo: RepoRef::parse(REPO).unwrap(), base_sha, _key_file: key_file }
}

async fn app_env() -> Env {
    app_env_with(FakeOptions::default()).await
}

/// Runs the git CLI on a blocking thread: the fake serves from this test's runtime thread meanwhile.
async fn git(dir: &Path, args: &[&str], creds: Option<&sre_github::GitCredentials>) -> Result<String, String> {
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C").arg(dir).args(args).env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C");
    cmd.env("GIT_AUTHOR_NAME", "sre-agent").env("GIT_AUTHOR_EMAIL", "bot@example.com");
    cmd.env("GIT_COMMITTER_NAME", "sre-agent").env("GIT_COMMITTER_EMAIL", "bot@example.com");
    if let Some(creds) = creds {
        creds.apply_std(&mut cmd);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.map_err(|e| e.to_string())?;
    let out = out.map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn api_calls(fake: &FakeGithub) -> Vec<sre_github_fake::RecordedCall> {
    fake.calls().into_iter().filter(|c| c.host == Host::Api).collect()
}

#[tokio::test]
async fn app_token_is_minted_once_and_reused() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    let repo = env.gh.repository(&env.repo).await.unwrap();
    assert_eq!(repo.full_name, REPO);
    env.gh.list_jobs(&env.repo, 900, JobsOf::Latest).await.unwrap();
    env.gh.job(&env.repo, 21).await.unwrap();
    let names: Vec<String> =
        env.gh.installation_repositories().await.unwrap().into_iter().map(|r| r.full_name).collect();
    assert_eq!(names, vec!["octo/app", "octo/other"]);

    let calls = api_calls(&env.fake);
    assert_eq!(calls.iter().filter(|c| c.route == Route::AppToken).count(), 1, "{calls:#?}");
    assert_eq!(calls[0].route, Route::AppToken);
    let SeenAuth::Bearer(jwt) = &calls[0].auth else { panic!("JWT expected: {:?}", calls[0].auth) };
    assert_eq!(jwt.split('.').count(), 3);
    let token = env.fake.installation_tokens().pop().unwrap();
    for call in &calls[1..] {
        assert_eq!(call.auth, SeenAuth::Bearer(token.clone()), "{call:?}");
        assert_eq!(call.status, 200);
    }
}

#[tokio::test]
async fn revoked_installation_token_is_refreshed_once() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    env.gh.repository(&env.repo).await.unwrap();
    let first = env.fake.installation_tokens().pop().unwrap();
    env.fake.revoke_token(&first);

    env.gh.repository(&env.repo).await.unwrap();
    let tokens = env.fake.installation_tokens();
    assert_eq!(tokens.len(), 2);
    let statuses: Vec<(Route, u16)> = api_calls(&env.fake).iter().map(|c| (c.route, c.status)).collect();
    assert_eq!(
        statuses,
        vec![
            (Route::AppToken, 201),
            (Route::Repo, 200),
            (Route::Repo, 401),
            (Route::AppToken, 201),
            (Route::Repo, 200)
        ]
    );

    // A second refusal right after the refresh is final: Unauthorized, not a loop.
    env.fake.fail_next(Route::Repo, 2, Fault::Status(401));
    let err = env.gh.repository(&env.repo).await.unwrap_err();
    assert!(matches!(err, GithubError::Unauthorized { endpoint: Endpoint::Repo }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(env.fake.installation_tokens().len(), 3, "exactly one refresh");
    // A JWT GitHub refuses is Unauthorized at once (no refresh loop on the App token either).
    env.fake.revoke_token(&env.fake.installation_tokens()[2]);
    env.fake.fail_next(Route::AppToken, 1, Fault::Status(401));
    let err = env.gh.repository(&env.repo).await.unwrap_err();
    assert!(matches!(err, GithubError::Unauthorized { endpoint: Endpoint::AppToken }), "{err:?}");
}

#[tokio::test]
async fn plain_token_mode() {
    let (_c, _g) = Captured::install();
    let (fake, sha) = seeded(FakeOptions::default()).await;
    let registry = SharedRegistry::default();
    let client = GithubClient::new(
        config(&fake, Auth::Token(SecretToken::new(PLAIN_TOKEN))),
        GithubMetrics::register(&registry),
    )
    .unwrap();
    assert!(matches!(client.installation(InstallationId(1)), Err(GithubError::Config(_))));
    let gh = client.with_token().unwrap();
    let repo = RepoRef::parse(REPO).unwrap();
    assert_eq!(gh.repository(&repo).await.unwrap().default_branch, "main");
    let commit = gh.commit(&repo, &sha).await.unwrap();
    assert_eq!(commit.author.unwrap().login, "dev");
    assert!(commit.parents.is_empty());
    // Check runs are App-only on GitHub.
    let err = gh
        .create_check_run(
            &repo,
            &NewCheckRun {
                name: "sre-agent".into(),
                head_sha: sha,
                status: RunState::InProgress,
                conclusion: None,
                details_url: None,
                external_id: None,
                output: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GithubError::NotAccessible { status: 403, message, .. } if message.contains("GitHub App")),
        "{err:?}"
    );
    assert!(matches!(gh.installation_repositories().await, Err(GithubError::Config(_))));
    let calls = api_calls(&fake);
    assert!(calls.iter().all(|c| c.auth == SeenAuth::Bearer(PLAIN_TOKEN.into())));
    assert!(calls.iter().all(|c| c.route != Route::AppToken));
}

#[tokio::test]
async fn jobs_and_steps() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    let latest = env.gh.list_jobs(&env.repo, 900, JobsOf::Latest).await.unwrap();
    assert_eq!(latest.iter().map(|j| j.id).collect::<Vec<_>>(), vec![21, 22]);
    let test = &latest[0];
    assert_eq!(test.conclusion, Conclusion::Failure);
    assert_eq!(test.run_attempt, Some(2));
    assert_eq!(test.failed_step().unwrap().name, "Run tests");
    assert_eq!(test.steps.len(), 2);
    assert_eq!(test.head_sha, env.base_sha);

    let all = env.gh.list_jobs(&env.repo, 900, JobsOf::All).await.unwrap();
    assert_eq!(all.iter().map(|j| j.id).collect::<Vec<_>>(), vec![11, 21, 22]);
    let first = env.gh.list_jobs(&env.repo, 900, JobsOf::Attempt(1)).await.unwrap();
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), vec![11]);
    assert_eq!(env.gh.job(&env.repo, 22).await.unwrap().conclusion, Conclusion::Success);

    let queries: Vec<String> =
        env.fake.calls_to(Route::Jobs).iter().map(|c| format!("{}?{}", c.path, c.query)).collect();
    assert!(queries[0].starts_with("/repos/octo/app/actions/runs/900/jobs?filter=latest"), "{queries:?}");
    assert!(queries[1].contains("filter=all"));
    assert!(queries[2].starts_with("/repos/octo/app/actions/runs/900/attempts/1/jobs"));

    assert!(matches!(env.gh.job(&env.repo, 999).await, Err(GithubError::NotFound { endpoint: Endpoint::Jobs })));
    assert!(matches!(env.gh.list_jobs(&env.repo, 900, JobsOf::Attempt(7)).await, Err(GithubError::NotFound { .. })));
}

#[tokio::test]
async fn the_workflow_runs_of_a_check_suite() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    let runs = env.gh.workflow_runs_of_check_suite(&env.repo, 5900).await.unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!((run.id, run.run_attempt, run.check_suite_id), (900, Some(2), Some(5900)));
    assert_eq!((run.name.as_deref(), run.conclusion), (Some("CI"), Conclusion::Failure));
    assert_eq!(run.head_sha, env.base_sha);
    assert!(env.gh.workflow_runs_of_check_suite(&env.repo, 1).await.unwrap().is_empty());
    let calls = env.fake.calls_to(Route::Jobs);
    assert_eq!(calls[0].path, "/repos/octo/app/actions/runs");
    assert!(calls[0].query.contains("check_suite_id=5900"), "{}", calls[0].query);
}

#[tokio::test]
async fn job_log_follows_the_redirect_without_credentials_and_is_bounded() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    let mut log = String::from("\u{feff}2024-01-01T00:00:00.0000000Z ##[group]Run cargo test\n");
    for i in 0..5000 {
        log.push_str(&format!("2024-01-01T00:00:01.0000000Z test t{i:04} ... ok\n"));
        if i == 2500 {
            log.push_str("2024-01-01T00:00:01.0000000Z error[E0432]: unresolved import `foo`\n");
        }
    }
    log.push_str("2024-01-01T00:00:02.0000000Z ##[error]Process completed with exit code 101.\n");
    env.fake.set_job_log(REPO, 21, log.clone());

    let got = env.gh.job_log(&env.repo, 21, LogLimits::new(8 * 1024), &ErrorLines).await.unwrap();
    assert!(got.truncated);
    assert_eq!(got.total_bytes, log.len() as u64);
    assert_eq!(got.total_lines, 5003);
    assert!(got.lines.iter().map(|l| l.text.len() + 1).sum::<usize>() <= 8 * 1024);
    assert_eq!(got.lines[0].text, "2024-01-01T00:00:00.0000000Z ##[group]Run cargo test");
    assert!(got.lines.last().unwrap().text.ends_with("##[error]Process completed with exit code 101."));
    assert!(got.lines.iter().any(|l| l.text.contains("error[E0432]")), "the middle error line is kept");
    assert!(got.render().contains("lines omitted"));

    let redirect = env.fake.calls_to(Route::JobLog);
    assert_eq!(redirect.len(), 1);
    assert_eq!(redirect[0].status, 302);
    assert!(redirect[0].auth.is_present());
    let blob = env.fake.calls_to(Route::Blob);
    assert_eq!(blob.len(), 1);
    assert_eq!(blob[0].auth, SeenAuth::None, "no credentials to the blob host");
    assert_eq!(blob[0].status, 200);
    assert!(blob[0].query.contains("sig="));

    // A small log comes back whole.
    env.fake.set_job_log(REPO, 22, "one\ntwo\n");
    let small = env.gh.job_log(&env.repo, 22, LogLimits::default(), &ErrorLines).await.unwrap();
    assert!(!small.truncated);
    assert_eq!(small.render(), "one\ntwo\n");
    // No log: not found, the repository being visible.
    assert!(matches!(
        env.gh.job_log(&env.repo, 11, LogLimits::default(), &ErrorLines).await,
        Err(GithubError::NotFound { endpoint: Endpoint::JobLog })
    ));
}

#[tokio::test]
async fn clone_fetch_and_push_with_the_installation_token_outside_urls() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    let creds = env.gh.git_credentials().await.unwrap();
    assert!(creds.expires_at().is_some());
    let token = env.fake.installation_tokens().pop().unwrap();
    let work = tempfile::tempdir().unwrap();
    let url = creds.remote_url(&env.repo);
    assert!(!url.contains(&token));

    // Without credentials the git host refuses.
    git(work.path(), &["clone", "-q", &url, "denied"], None).await.unwrap_err();
    let refused = env.fake.calls_to(Route::Git);
    assert!(refused.iter().all(|c| c.status == 401 && c.auth == SeenAuth::None), "{refused:?}");
    env.fake.clear_calls();

    git(work.path(), &["clone", "-q", &url, "app"], Some(&creds)).await.unwrap();
    let clone = work.path().join("app");
    let remotes = git(&clone, &["remote", "-v"], None).await.unwrap();
    assert!(remotes.contains(&url) && !remotes.contains(&token) && !remotes.contains("x-access-token"));
    let config = std::fs::read_to_string(clone.join(".git/config")).unwrap();
    assert!(!config.contains(&token) && !config.contains("extraHeader") && !config.contains("Basic"));

    // Someone else moves main on; fetch that exact sha.
    let newer = env.fake.commit(REPO, "main", &[("README.md", "hi\n")], "docs", ("Dev", "dev@example.com")).unwrap();
    git(&clone, &["fetch", "-q", "origin", &newer], Some(&creds)).await.unwrap();
    assert_eq!(git(&clone, &["rev-parse", "FETCH_HEAD"], None).await.unwrap(), newer);

    // Push a fix branch.
    git(&clone, &["checkout", "-q", "-b", "sre-agent/fix-900"], None).await.unwrap();
    std::fs::write(clone.join("src/lib.rs"), "pub fn f() {}\npub fn g() {}\n").unwrap();
    git(&clone, &["commit", "-q", "-am", "fix: add g"], None).await.unwrap();
    let pushed = git(&clone, &["rev-parse", "HEAD"], None).await.unwrap();
    git(&clone, &["push", "-q", "origin", "sre-agent/fix-900"], Some(&creds)).await.unwrap();
    assert_eq!(env.fake.branch_head(REPO, "sre-agent/fix-900").as_deref(), Some(pushed.as_str()));

    // The REST view agrees with what landed.
    let branch = env.gh.branch(&env.repo, "sre-agent/fix-900").await.unwrap().unwrap();
    assert_eq!(branch.commit.sha, pushed);
    let commits = env.gh.commits(&env.repo, "sre-agent/fix-900", 10).await.unwrap();
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0].sha, pushed);
    assert_eq!(commits[0].commit.author.as_ref().unwrap().email.as_deref(), Some("bot@example.com"));
    assert!(commits[0].author.is_none(), "no GitHub account for the bot email");
    assert_eq!(commits[1].author.as_ref().unwrap().login, "dev");
    let head = env.gh.commit(&env.repo, &pushed).await.unwrap();
    assert_eq!(head.parents.iter().map(|p| p.sha.as_str()).collect::<Vec<_>>(), vec![env.base_sha.as_str()]);
    assert!(env.gh.branch(&env.repo, "deleted-branch").await.unwrap().is_none());

    let git_calls = env.fake.calls_to(Route::Git);
    assert!(git_calls.iter().any(|c| c.path.ends_with("/git-receive-pack") && c.status == 200));
    for call in git_calls.iter().filter(|c| c.auth.is_present()) {
        assert_eq!(call.auth, SeenAuth::Basic { user: "x-access-token".into(), password: token.clone() });
        assert!(!call.query.contains(&token) && !call.path.contains(&token));
    }
}

fn new_pull(branch: &str) -> NewPullRequest {
    NewPullRequest {
        title: "Fix CI: unresolved import".into(),
        head: branch.into(),
        base: "main".into(),
        body: "Automated fix.".into(),
        draft: true,
        maintainer_can_modify: true,
    }
}

#[tokio::test]
async fn pull_requests_labels_and_the_422_for_an_existing_pull() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    env.fake.commit(REPO, "sre-agent/fix-1", &[("a.txt", "a\n")], "fix", ("sre-agent", "bot@example.com")).unwrap();

    let first = env.gh.create_pull(&env.repo, &new_pull("sre-agent/fix-1")).await.unwrap();
    assert!(!first.already_existed);
    assert!(first.pull.draft);
    assert_eq!(first.pull.head.branch, "sre-agent/fix-1");
    assert_eq!(first.pull.user.as_ref().unwrap().login, "sre-agent[bot]");

    let again = env.gh.create_pull(&env.repo, &new_pull("sre-agent/fix-1")).await.unwrap();
    assert!(again.already_existed);
    assert_eq!(again.pull.number, first.pull.number);
    let pulls = env.fake.calls_to(Route::Pulls);
    assert_eq!(
        pulls.iter().map(|c| (c.method.as_str(), c.status)).collect::<Vec<_>>(),
        vec![("POST", 201), ("POST", 422), ("GET", 200)]
    );
    assert!(pulls[2].query.contains("head=octo%3Asre-agent%2Ffix-1") && pulls[2].query.contains("state=open"));
    assert_eq!(env.fake.pulls(REPO).len(), 1);

    let open = env.gh.open_pulls_for_branch(&env.repo, "octo", "sre-agent/fix-1").await.unwrap();
    assert_eq!(open.len(), 1);
    assert!(env.gh.open_pulls_for_branch(&env.repo, "octo", "nope").await.unwrap().is_empty());
    assert_eq!(env.gh.count_open_pulls_by(&env.repo, "sre-agent[bot]").await.unwrap(), 1);
    assert_eq!(env.gh.count_open_pulls_by(&env.repo, "someone").await.unwrap(), 0);

    let updated = env
        .gh
        .update_pull(
            &env.repo,
            first.pull.number,
            &PullRequestUpdate { title: Some("Fix CI (updated)".into()), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(updated.title, "Fix CI (updated)");
    assert_eq!(updated.body.as_deref(), Some("Automated fix."));

    let label =
        NewLabel { name: "sre-agent".into(), color: "0e8a16".into(), description: "Opened by sre-agent".into() };
    assert!(env.gh.ensure_label(&env.repo, &label).await.unwrap());
    assert!(!env.gh.ensure_label(&env.repo, &label).await.unwrap(), "422 already_exists is fine");
    let on_pull = env.gh.add_labels(&env.repo, first.pull.number, &["sre-agent", "ci-fix:compile"]).await.unwrap();
    let names: Vec<&str> = on_pull.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["sre-agent", "ci-fix:compile"]);
    assert_eq!(on_pull[0].color, "0e8a16");
    assert_eq!(env.fake.pulls(REPO)[0].5, vec!["sre-agent", "ci-fix:compile"]);

    // Closed: gone from the open list, still found with state=all.
    let close = PullRequestUpdate { state: Some("closed".into()), ..Default::default() };
    env.gh.update_pull(&env.repo, first.pull.number, &close).await.unwrap();
    assert!(env.gh.open_pulls_for_branch(&env.repo, "octo", "sre-agent/fix-1").await.unwrap().is_empty());
    let all = env.gh.pulls_for_branch(&env.repo, "octo", "sre-agent/fix-1", "all").await.unwrap();
    assert_eq!(
        all.iter().map(|p| (p.number, p.state.as_str())).collect::<Vec<_>>(),
        vec![(first.pull.number, "closed")]
    );
    assert!(matches!(
        env.gh.pulls_for_branch(&env.repo, "octo", "sre-agent/fix-1", "merged").await,
        Err(GithubError::InvalidInput(_))
    ));
    assert!(env.fake.calls_to(Route::Pulls).last().unwrap().query.contains("state=all"));

    // A head with nothing new: GitHub's "No commits between" stays a validation error.
    let err = env.gh.create_pull(&env.repo, &new_pull("main")).await.unwrap_err();
    assert!(
        matches!(&err, GithubError::Validation { errors, .. }
        if errors.iter().any(|e| e.message.as_deref().is_some_and(|m| m.starts_with("No commits between")))),
        "{err:?}"
    );
}

#[tokio::test]
async fn check_run_create_and_update() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    let run = env
        .gh
        .create_check_run(
            &env.repo,
            &NewCheckRun {
                name: "sre-agent".into(),
                head_sha: env.base_sha.clone(),
                status: RunState::InProgress,
                conclusion: None,
                details_url: Some("https://sre.example.com/runs/1".into()),
                external_id: Some("run-1".into()),
                output: Some(CheckOutput { title: Some("Diagnosing".into()), summary: Some("Reading the log".into()) }),
            },
        )
        .await
        .unwrap();
    assert_eq!(run.status, RunState::InProgress);
    assert_eq!(run.details_url.as_deref(), Some("https://sre.example.com/runs/1"));
    let done = env
        .gh
        .update_check_run(
            &env.repo,
            run.id,
            &CheckRunUpdate {
                conclusion: Some(CheckConclusion::Failure),
                output: Some(CheckOutput {
                    title: Some("No safe fix".into()),
                    summary: Some("Blocked by policy".into()),
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, RunState::Completed);
    assert_eq!(done.conclusion, Conclusion::Failure);
    assert_eq!(done.output.title.as_deref(), Some("No safe fix"));
    assert_eq!(
        env.fake.check_runs(REPO),
        vec![("sre-agent".into(), "completed".into(), Some("failure".into()), Some("No safe fix".into()))]
    );
    // An unknown sha is GitHub's 422.
    let err = env
        .gh
        .create_check_run(
            &env.repo,
            &NewCheckRun {
                name: "sre-agent".into(),
                head_sha: "0".repeat(40),
                status: RunState::Queued,
                conclusion: None,
                details_url: None,
                external_id: None,
                output: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GithubError::Validation { endpoint: Endpoint::CheckRuns, .. }), "{err:?}");
}

#[tokio::test]
async fn secondary_rate_limit_waits_for_retry_after() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    env.gh.repository(&env.repo).await.unwrap();
    env.fake.fail_next(Route::Pulls, 1, Fault::SecondaryLimit { status: 403, retry_after_secs: 1 });
    env.fake.fail_next(Route::Jobs, 1, Fault::SecondaryLimit { status: 429, retry_after_secs: 1 });
    let started = Instant::now();
    env.gh.count_open_pulls_by(&env.repo, "x").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
    let started = Instant::now();
    env.gh.job(&env.repo, 21).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(env.fake.calls_to(Route::Pulls).iter().map(|c| c.status).collect::<Vec<_>>(), vec![403, 200]);
    assert_eq!(env.fake.calls_to(Route::Jobs).iter().map(|c| c.status).collect::<Vec<_>>(), vec![429, 200]);

    // A retry-after beyond the cap is returned, not slept through.
    env.fake.fail_next(Route::Pulls, 1, Fault::SecondaryLimit { status: 403, retry_after_secs: 600 });
    let started = Instant::now();
    let err = env.gh.count_open_pulls_by(&env.repo, "x").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(err, GithubError::SecondaryRateLimited { retry_after, .. } if retry_after == Duration::from_secs(600))
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn primary_rate_limit_waits_for_the_reset() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    env.gh.repository(&env.repo).await.unwrap();
    // The reset is a whole unix second: 2 s ahead is between 1 and 2 s away.
    env.fake.fail_next(Route::Repo, 1, Fault::PrimaryLimit { reset_in_secs: 2 });
    let started = Instant::now();
    env.gh.repository(&env.repo).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(4), "waited {waited:?}");
    assert_eq!(env.fake.calls_to(Route::Repo).iter().map(|c| c.status).collect::<Vec<_>>(), vec![200, 403, 200]);

    // Exhausted for an hour: a typed error with the reset time, and no hammering.
    env.fake.exhaust_primary_limit(Duration::from_secs(3600));
    env.fake.clear_calls();
    let err = env.gh.job(&env.repo, 21).await.unwrap_err();
    let GithubError::RateLimited { retry_at, .. } = err else { panic!("{err:?}") };
    assert!(retry_at > std::time::SystemTime::now() + Duration::from_secs(3000));
    let again = env.gh.job(&env.repo, 21).await.unwrap_err();
    assert!(matches!(again, GithubError::RateLimited { .. }));
    assert_eq!(api_calls(&env.fake).len(), 1, "the second call is refused before sending");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_typed() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    env.fake.fail_next(Route::Jobs, 2, Fault::Status(502));
    let jobs = env.gh.list_jobs(&env.repo, 900, JobsOf::Latest).await.unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(env.fake.calls_to(Route::Jobs).iter().map(|c| c.status).collect::<Vec<_>>(), vec![502, 502, 200]);

    env.fake.fail_next(Route::Branches, 10, Fault::Status(503));
    let err = env.gh.branch(&env.repo, "main").await.unwrap_err();
    assert!(matches!(err, GithubError::Server { endpoint: Endpoint::Branches, status: 503 }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(env.fake.calls_to(Route::Branches).len(), 4, "1 + max_transient_retries attempts");
}

#[tokio::test]
async fn connection_errors_are_typed_transient() {
    let (_c, _g) = Captured::install();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = GithubConfig::github_com(Auth::Token(SecretToken::new(PLAIN_TOKEN)))
        .with_base_urls(&format!("http://127.0.0.1:{port}"), "http://127.0.0.1:1")
        .unwrap();
    c.retry = fast_retries();
    let registry = SharedRegistry::default();
    let metrics = GithubMetrics::register(&registry);
    let gh = GithubClient::new(c, metrics.clone()).unwrap().with_token().unwrap();
    let err = gh.repository(&RepoRef::parse(REPO).unwrap()).await.unwrap_err();
    assert!(matches!(err, GithubError::Transport { endpoint: Endpoint::Repo, .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(metrics.requests_count(Endpoint::Repo, StatusClass::Error), 4);
    assert!(!err.to_string().contains(PLAIN_TOKEN));
}

#[tokio::test]
async fn repository_outside_the_installation_is_not_accessible() {
    let (_c, _g) = Captured::install();
    let env = app_env().await;
    env.gh.repository(&env.repo).await.unwrap();
    env.fake.remove_from_installation(INSTALLATION, REPO);
    let err = env.gh.repository(&env.repo).await.unwrap_err();
    assert!(matches!(&err, GithubError::NotAccessible { repo, status: 404, .. } if repo == REPO), "{err:?}");
    // A 404 inside the repository is told apart by one probe of the repository.
    let err = env.gh.list_jobs(&env.repo, 900, JobsOf::Latest).await.unwrap_err();
    assert!(matches!(err, GithubError::NotAccessible { .. }), "{err:?}");
    assert!(!err.is_transient());
    let last: Vec<Route> = api_calls(&env.fake).iter().rev().take(2).map(|c| c.route).collect();
    assert_eq!(last, vec![Route::Repo, Route::Jobs]);
    // Git refuses too.
    let creds = env.gh.git_credentials().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let err = git(work.path(), &["clone", "-q", &creds.remote_url(&env.repo), "x"], Some(&creds)).await.unwrap_err();
    assert!(err.to_lowercase().contains("not found"), "{err}");
    // A repository name that could escape the path is refused before any call.
    assert!(matches!(RepoRef::parse("octo/../x"), Err(GithubError::InvalidInput(_))));
}

#[tokio::test]
async fn enterprise_style_base_url_with_a_path_prefix() {
    let (_c, _g) = Captured::install();
    let env = app_env_with(FakeOptions { api_prefix: "/api/v3".into(), ..FakeOptions::default() }).await;
    assert!(env.fake.api_url().ends_with("/api/v3"));
    assert_eq!(env.gh.repository(&env.repo).await.unwrap().full_name, REPO);
    env.fake.set_job_log(REPO, 21, "boom\n");
    let log = env.gh.job_log(&env.repo, 21, LogLimits::default(), &ErrorLines).await.unwrap();
    assert_eq!(log.render(), "boom\n");
    assert!(api_calls(&env.fake).iter().all(|c| c.status < 400));
}

#[tokio::test]
async fn telemetry_has_no_tokens_no_query_strings_and_bounded_labels() {
    let (captured, _g) = Captured::install();
    let env = app_env().await;
    env.fake.set_job_log(REPO, 21, "##[error]boom\n");
    env.fake.fail_next(Route::Jobs, 1, Fault::Status(500));
    env.gh.list_jobs(&env.repo, 900, JobsOf::Latest).await.unwrap();
    env.gh.job_log(&env.repo, 21, LogLimits::default(), &ErrorLines).await.unwrap();
    env.gh.open_pulls_for_branch(&env.repo, "octo", "sre-agent/fix-1").await.unwrap();
    let creds = env.gh.git_credentials().await.unwrap();
    let first = env.fake.installation_tokens().pop().unwrap();
    env.fake.revoke_token(&first);
    env.gh.commits(&env.repo, "main", 5).await.unwrap();
    let _ = env.gh.job(&env.repo, 12345).await;

    let lines = captured.lines();
    assert!(!lines.is_empty());
    let mut secrets = env.fake.issued_tokens();
    secrets.push(creds.extra_header().expose_secret().to_owned());
    // The App JWTs the client sent.
    secrets.extend(env.fake.calls_to(Route::AppToken).iter().filter_map(|c| c.auth.token().map(str::to_owned)));
    assert!(secrets.len() >= 4);
    for line in &lines {
        for secret in &secrets {
            assert!(!line.contains(secret.as_str()), "secret in telemetry: {line}");
        }
        assert!(!line.contains("sig="), "signed query in telemetry: {line}");
        if let Some(url) = line.strip_prefix("url.full=") {
            assert!(!url.contains('?'), "query string in url.full: {url}");
        }
    }
    let has = |field: &str| lines.iter().any(|l| l == field);
    assert!(has("otel.kind=client"));
    assert!(has("http.request.method=GET") && has("http.request.method=POST"));
    assert!(has("otel.status_code=ERROR"));
    assert!(has("http.response.status_code=302") && has("http.response.status_code=500"));
    assert!(lines.iter().any(|l| l.starts_with("url.full=http://127.0.0.1") && l.ends_with("/actions/runs/900/jobs")));
    assert!(lines.iter().any(|l| l.starts_with("url.full=") && l.contains("/job-logs/")));
    assert!(has("server.address=127.0.0.1"));

    let m = &env.metrics;
    assert_eq!(m.requests_count(Endpoint::AppToken, StatusClass::S2xx), 2);
    assert_eq!(m.requests_count(Endpoint::Jobs, StatusClass::S5xx), 1);
    assert_eq!(m.requests_count(Endpoint::Jobs, StatusClass::S2xx), 1);
    assert_eq!(m.requests_count(Endpoint::Jobs, StatusClass::S4xx), 1);
    assert_eq!(m.requests_count(Endpoint::JobLog, StatusClass::S3xx), 1);
    assert_eq!(m.requests_count(Endpoint::JobLogBlob, StatusClass::S2xx), 1);
    assert_eq!(m.requests_count(Endpoint::Commits, StatusClass::S4xx), 1, "the revoked token's 401");
    assert_eq!(m.requests_count(Endpoint::Commits, StatusClass::S2xx), 1);
    assert_eq!(m.requests_count(Endpoint::Repo, StatusClass::S2xx), 1, "the 404 probe");
    let text = env.registry.encode(false);
    assert!(text.contains("sre_agent_github_requests_total{endpoint=\"job_log\",status_class=\"3xx\"} 1"), "{text}");
    assert!(text.contains("sre_agent_github_request_duration_seconds_count{endpoint=\"job_log_blob\"} 1"));
    assert!(text.contains("sre_agent_github_requests_total{endpoint=\"check_runs\",status_class=\"error\"} 0"));
    for line in text.lines().filter(|l| l.starts_with("sre_agent_github_requests_total{")) {
        let endpoint = line.split("endpoint=\"").nth(1).and_then(|s| s.split('"').next()).unwrap();
        assert!(<Endpoint as sre_domain::Label>::parse(endpoint).is_some(), "unbounded label {endpoint}");
    }
}
