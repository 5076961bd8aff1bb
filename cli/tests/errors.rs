//! What `sre-agent run` and `runs` refuse, with the message and exit code 2, before anything is submitted:
//! a gateway that is not running, a repository that is not under the repos dir, a commit that does not exist,
//! a missing log source.

mod support;

use std::path::Path;

use sre_gitwork::testing::{git, init_repo};
use support::{Ran, sre_agent};

/// A URL where nothing listens (a port just released).
fn dead_gateway() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn repos_with_one_repo() -> tempfile::TempDir {
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("acme/app");
    init_repo(&repo);
    std::fs::write(repo.join("app.py"), "x = 1\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "app"]);
    std::fs::write(repos.path().join("job.log"), "error: boom\n").unwrap();
    repos
}

fn refused(ran: &Ran, message: &str) {
    assert_eq!(ran.code, 2, "{ran}");
    assert!(ran.stderr.starts_with("sre-agent: ") && ran.stderr.contains(message), "wanted {message:?}: {ran}");
    assert!(!ran.stdout.contains("submitted"), "{ran}");
}

#[test]
fn a_gateway_that_is_not_running() {
    let repos = repos_with_one_repo();
    let url = dead_gateway();
    let env = [("SRE_REPOS_DIR", repos.path().to_str().unwrap())];
    let log = repos.path().join("job.log");
    let message = format!("sre-agent: cannot reach the gateway at {url}: start the mesh with scripts/up.sh\n");
    let ran = sre_agent(
        &["run", "--repo", "acme/app", "--sha", "HEAD", "--log", log.to_str().unwrap(), "--gateway", &url],
        &env,
        None,
        repos.path(),
    );
    assert_eq!((ran.code, ran.stderr.as_str()), (2, message.as_str()), "{ran}");
    // The variable works as the flag does; a command is not run when there is no one to submit it to.
    let marker = repos.path().join("ran");
    let command = format!("touch {}; false", marker.display());
    let ran = sre_agent(
        &["run", "--repo", "acme/app", "--sha", "HEAD", "--command", &command],
        &[env[0], ("SRE_GATEWAY_URL", &url)],
        None,
        repos.path(),
    );
    assert_eq!((ran.code, ran.stderr.as_str()), (2, message.as_str()), "{ran}");
    assert!(!marker.exists(), "the command ran although the gateway is down");
    let ran = sre_agent(&["runs", "--gateway", &url], &[], None, repos.path());
    assert_eq!((ran.code, ran.stderr.as_str()), (2, message.as_str()), "{ran}");
    let ran = sre_agent(&["runs", "--gateway", "localhost:8000"], &[], None, repos.path());
    refused(&ran, "expected a URL such as http://127.0.0.1:8000");
}

#[test]
fn repositories_outside_the_repos_dir_and_unknown_commits() {
    let repos = repos_with_one_repo();
    let url = dead_gateway();
    let env = [("SRE_REPOS_DIR", repos.path().to_str().unwrap()), ("SRE_GATEWAY_URL", url.as_str())];
    let log = repos.path().join("job.log");
    let log = log.to_str().unwrap();
    let run = |repo: &str, sha: &str| {
        sre_agent(&["run", "--repo", repo, &format!("--sha={sha}"), "--log", log], &env, None, repos.path())
    };

    let shown = repos.path().display();
    refused(&run("acme/nope", "HEAD"), &format!("no repository acme/nope under the repos dir {shown}"));
    refused(&run("../etc", "HEAD"), "--repo \"../etc\": no such directory, and not an owner/name");
    let elsewhere = tempfile::tempdir().unwrap();
    init_repo(elsewhere.path());
    refused(&run(elsewhere.path().to_str().unwrap(), "HEAD"), "is not a repository under the repos dir");
    refused(&run(repos.path().to_str().unwrap(), "HEAD"), "is not a repository under the repos dir");
    std::fs::create_dir_all(repos.path().join("acme/plain")).unwrap();
    refused(&run(repos.path().join("acme/plain").to_str().unwrap(), "HEAD"), "acme/plain is not a git repository");
    refused(&run("acme/app", "no-such-branch"), "--sha no-such-branch: no such commit in");
    refused(&run("acme/app", "--all"), "is not a revision");
    // A repository given by its path resolves to owner/name and gets as far as the (dead) gateway.
    let ran = run(repos.path().join("acme/app").to_str().unwrap(), "main");
    refused(&ran, "cannot reach the gateway");
    // Relative to the working directory, too.
    let ran = sre_agent(&["run", "--repo", "acme/app", "--sha", "HEAD", "--log", log], &env, None, Path::new("/"));
    refused(&ran, "cannot reach the gateway");
}

#[test]
fn usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ran = sre_agent(&["run", "--repo", "acme/app", "--sha", "HEAD"], &[], None, dir.path());
    assert_eq!(ran.code, 2, "{ran}");
    assert!(ran.stderr.contains("--log <FILE>|--command <CMD>"), "{ran}");
    let ran = sre_agent(
        &["run", "--repo", "a/b", "--sha", "HEAD", "--log", "x", "--command-timeout", "5"],
        &[],
        None,
        dir.path(),
    );
    refused(&ran, "--command-timeout applies to --command only");
    let ran = sre_agent(&["runs", "abc", "--artifact", "patch"], &[], None, dir.path());
    assert_eq!(ran.code, 2, "{ran}");
    assert!(
        ran.stderr.contains("[possible values: log, context, plan, diff, scan_report, validation, pull_request]"),
        "{ran}"
    );
    let ran = sre_agent(&["runs", "../x"], &[("SRE_GATEWAY_URL", &dead_gateway())], None, dir.path());
    refused(&ran, "is not a run ID or a prefix of one");
    let ran = sre_agent(&["frobnicate"], &[], None, dir.path());
    assert_eq!(ran.code, 2, "{ran}");
}
