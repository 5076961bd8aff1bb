//! The repository cache against sre-github-fake's git smart HTTP (real `git http-backend` over real bare
//! repositories) with credentials from sre-github's `GitCredentials`, and against plain local paths.

use std::path::Path;
use std::time::Duration;

use sre_github::{Auth, GithubClient, GithubConfig, GithubMetrics, RepoRef, SecretToken};
use sre_github_fake::{FakeGithub, Host, Route};
use sre_gitwork::testing::{git, init_repo};
use sre_gitwork::{CacheError, CacheOptions, Remote, Repo, RepoCache};
use sre_telemetry::SharedRegistry;

const TOKEN: &str = "ghp_cacheTestToken0123456789abcdef";
const REPO: &str = "octo/app";

fn options(max_bytes: u64, shallow: bool) -> CacheOptions {
    CacheOptions { max_bytes, shallow, lock_timeout: Duration::from_secs(60), network_timeout: Duration::from_secs(60) }
}

/// The fake with `octo/app` (three commits on main) and a plain token that can see it.
async fn fake_with_repo() -> (FakeGithub, Vec<String>) {
    let fake = FakeGithub::start().await.unwrap();
    fake.add_plain_token(TOKEN, "octocat");
    fake.add_repo(REPO, "main").unwrap();
    let mut shas = Vec::new();
    for i in 0..3 {
        let content = format!("fn v{i}() {{}}\n");
        shas.push(fake.commit(REPO, "main", &[("src/lib.rs", &content)], &format!("c{i}"), ("Dev", "d@x")).unwrap());
    }
    (fake, shas)
}

/// The `Remote` a GitHub caller builds: the clean URL and the credential environment from sre-github.
async fn github_remote(fake: &FakeGithub, full_name: &str) -> Remote {
    let config = GithubConfig::github_com(Auth::Token(SecretToken::new(TOKEN)))
        .with_base_urls(&fake.api_url(), &fake.git_url())
        .unwrap();
    let client = GithubClient::new(config, GithubMetrics::register(&SharedRegistry::default())).unwrap();
    let creds = client.with_token().unwrap().git_credentials().await.unwrap();
    let url = creds.remote_url(&RepoRef::parse(full_name).unwrap());
    Remote::new(url).unwrap().with_env(creds.git_env())
}

fn git_calls(fake: &FakeGithub) -> usize {
    fake.calls().iter().filter(|c| c.host == Host::Git).count()
}

/// Every file under `dir`, as bytes (to look for secrets anywhere in a clone).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap_or_default());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_once_fetches_shas_on_demand_and_never_stores_the_token() {
    let (fake, shas) = fake_with_repo().await;
    let root = tempfile::tempdir().unwrap();
    let cache = RepoCache::new(root.path(), options(0, true));
    let remote = github_remote(&fake, REPO).await;

    let first = cache.ensure(REPO, &shas[0], Some("main"), &remote).await.unwrap();
    let dir = root.path().join(REPO);
    assert_eq!(first.repo().path(), dir);
    assert_eq!(first.sha(), shas[0]);
    assert_eq!(git(&dir, &["rev-parse", "--is-bare-repository"]), "true");
    assert_eq!(git(&dir, &["rev-parse", "--is-shallow-repository"]), "true");
    assert_eq!(git(&dir, &["cat-file", "-t", &shas[0]]), "commit");
    // Other services open it as any repository and make worktrees from it.
    let repo = Repo::open(root.path(), REPO).unwrap();
    let wt = repo.worktree(&shas[0]).await.unwrap();
    assert_eq!(std::fs::read_to_string(wt.path().join("src/lib.rs")).unwrap(), "fn v0() {}\n");
    wt.remove().await;
    drop(first);

    // The same commit again: no network at all.
    let before = git_calls(&fake);
    drop(cache.ensure(REPO, &shas[0], Some("main"), &remote).await.unwrap());
    assert_eq!(git_calls(&fake), before, "an ensured commit is not fetched again");

    // A newer commit: fetched into the same clone (no second clone).
    let newer = cache.ensure(REPO, &shas[2], Some("main"), &remote).await.unwrap();
    assert!(git_calls(&fake) > before);
    assert_eq!(git(&dir, &["cat-file", "-t", &shas[2]]), "commit");
    assert_eq!(git(&dir, &["for-each-ref", "--format=%(refname)", "refs/sre-agent/cache"]).lines().count(), 2);
    drop(newer);
    let clone_dirs = std::fs::read_dir(root.path().join("octo")).unwrap().count();
    assert_eq!(clone_dirs, 1);

    // The token is nowhere in the clone: not in config, not in the remote URL, not in any file.
    let url = git(&dir, &["config", "--get", "remote.origin.url"]);
    assert_eq!(url, format!("{}/{REPO}.git", fake.git_url()));
    assert!(!url.contains('@'));
    let config = std::fs::read_to_string(dir.join("config")).unwrap();
    assert!(!config.contains(TOKEN) && !config.to_lowercase().contains("extraheader"), "{config}");
    let header = remote.env().iter().find(|(k, _)| k == "GIT_CONFIG_VALUE_0").unwrap().1.clone();
    let encoded = header.strip_prefix("Authorization: Basic ").unwrap().to_owned();
    let bytes = all_bytes(&dir);
    assert!(!contains(&bytes, TOKEN) && !contains(&bytes, &encoded), "a credential was written into the clone");
    // Every git request carried the credential as a header.
    for call in fake.calls().iter().filter(|c| c.host == Host::Git) {
        assert_eq!(call.auth.token(), Some(TOKEN), "{call:?}");
        assert!(!call.query.contains(TOKEN) && !call.path.contains(TOKEN));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_deleted_commits_are_typed_errors() {
    let (fake, shas) = fake_with_repo().await;
    let root = tempfile::tempdir().unwrap();
    let cache = RepoCache::new(root.path(), options(0, true));
    let remote = github_remote(&fake, REPO).await;
    drop(cache.ensure(REPO, &shas[0], Some("main"), &remote).await.unwrap());

    // A commit only on a branch that was then deleted and garbage-collected (a force-push made it
    // unreachable; GitHub serves unreachable commits by id until its gc removes them).
    let orphan = fake.commit(REPO, "tmp", &[("x", "y\n")], "gone soon", ("Dev", "d@x")).unwrap();
    let bare = fake.repo_path(REPO);
    git(&bare, &["update-ref", "-d", "refs/heads/tmp"]);
    git(&bare, &["reflog", "expire", "--expire=now", "--all"]);
    git(&bare, &["gc", "--quiet", "--prune=now"]);
    for branch in [Some("main"), None, Some("no-such-branch")] {
        let err = cache.ensure(REPO, &orphan, branch, &remote).await.unwrap_err();
        assert!(
            matches!(&err, CacheError::ShaNotFound { repo, sha } if repo == REPO && sha == &orphan),
            "{branch:?}: {err:?}"
        );
        assert!(err.to_string().contains("not in octo/app"), "{err}");
    }
    let never = "0123456789abcdef0123456789abcdef01234567";
    assert!(matches!(cache.ensure(REPO, never, Some("main"), &remote).await, Err(CacheError::ShaNotFound { .. })));
    // The clone still works after the failed fetches.
    drop(cache.ensure(REPO, &shas[2], Some("main"), &remote).await.unwrap());
    git(&root.path().join(REPO), &["fsck", "--no-progress"]);

    // Bad input is refused before any git command.
    assert!(matches!(cache.ensure("../etc", &shas[0], None, &remote).await, Err(CacheError::Git(_))));
    assert!(matches!(cache.ensure(REPO, "abc123", None, &remote).await, Err(CacheError::Git(_))));
    assert!(matches!(cache.ensure(REPO, &shas[0], Some("-x"), &remote).await, Err(CacheError::InvalidBranch(_))));
    // A repository outside what the credentials may see is git's error, not a missing commit.
    fake.add_repo("octo/private", "main").unwrap();
    let sha = fake.commit("octo/private", "main", &[("a", "b\n")], "c", ("Dev", "d@x")).unwrap();
    let other = github_remote(&fake, "octo/private").await;
    let bad = Remote::new(other.url()).unwrap(); // no credentials
    let err = cache.ensure("octo/private", &sha, Some("main"), &bad).await.unwrap_err();
    assert!(matches!(err, CacheError::Git(_)), "{err:?}");
    assert!(!root.path().join("octo/private").exists(), "a failed clone leaves nothing behind");
    let leftovers = std::fs::read_dir(root.path().join(".sre-agent-cache/tmp")).unwrap().count();
    assert_eq!(leftovers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ensures_of_one_repository_do_not_corrupt_it() {
    let (fake, mut shas) = fake_with_repo().await;
    for i in 3..8 {
        let content = format!("fn v{i}() {{}}\n");
        shas.push(fake.commit(REPO, "main", &[("src/lib.rs", &content)], &format!("c{i}"), ("Dev", "d@x")).unwrap());
    }
    let root = tempfile::tempdir().unwrap();
    let remote = github_remote(&fake, REPO).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        // Two caches over one root: as two processes would have.
        let cache = RepoCache::new(root.path(), options(0, i % 3 == 0));
        let remote = remote.clone();
        let sha = shas[i % shas.len()].clone();
        tasks.push(tokio::spawn(async move {
            let cached = cache.ensure(REPO, &sha, Some("main"), &remote).await?;
            let wt = cached.repo().worktree(&sha).await?;
            let content = std::fs::read_to_string(wt.path().join("src/lib.rs")).unwrap();
            wt.remove().await;
            Ok::<_, CacheError>(content)
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let content = task.await.unwrap().unwrap();
        assert_eq!(content, format!("fn v{}() {{}}\n", i % shas.len()));
    }
    let dir = root.path().join(REPO);
    git(&dir, &["fsck", "--no-progress"]);
    for sha in &shas {
        assert_eq!(git(&dir, &["cat-file", "-t", sha]), "commit");
    }
    assert_eq!(git(&dir, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
    assert_eq!(std::fs::read_dir(root.path().join(".sre-agent-cache/tmp")).unwrap().count(), 0);
}

/// A local bare repository with one commit holding `bytes` of incompressible content.
fn local_remote(dir: &Path, bytes: usize) -> String {
    let work = dir.with_extension("work");
    init_repo(&work);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ bytes as u64 ^ dir.as_os_str().len() as u64;
    let data: Vec<u8> = (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state & 0xff) as u8
        })
        .collect();
    std::fs::write(work.join("blob.bin"), data).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "data"]);
    git(dir.parent().unwrap(), &["clone", "-q", "--bare", work.to_str().unwrap(), dir.to_str().unwrap()]);
    git(&work, &["rev-parse", "HEAD"])
}

#[tokio::test]
async fn evicts_least_recently_used_clones_but_never_a_held_one() {
    let remotes = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut shas = Vec::new();
    for name in ["a", "b", "c"] {
        shas.push(local_remote(&remotes.path().join(format!("{name}.git")), 300 * 1024));
    }
    let remote = |name: &str| Remote::new(remotes.path().join(format!("{name}.git")).to_string_lossy()).unwrap();
    // Someone's own repository in the same dir: never counted, never removed.
    init_repo(&root.path().join("mine/own"));

    let unbounded = RepoCache::new(root.path(), options(0, false));
    drop(unbounded.ensure("acme/a", &shas[0], None, &remote("a")).await.unwrap());
    let one = unbounded.usage().await;
    assert!(one > 300 * 1024, "a clone holds the blob: {one}");
    // Room for two clones, not three.
    let cache = RepoCache::new(root.path(), options(one * 5 / 2, false));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let held_b = cache.ensure("acme/b", &shas[1], None, &remote("b")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(root.path().join("acme/a").exists() && root.path().join("acme/b").exists());
    let held_c = cache.ensure("acme/c", &shas[2], None, &remote("c")).await.unwrap();
    assert!(!root.path().join("acme/a").exists(), "the least recently used clone goes first");
    assert!(root.path().join("acme/b").exists() && root.path().join("acme/c").exists());
    drop(held_c);

    // Over a tiny cap everything unheld goes; the held clone stays and keeps working.
    let tiny = RepoCache::new(root.path(), options(1, false));
    assert_eq!(tiny.evict().await.unwrap(), vec!["acme/c".to_owned()]);
    assert!(root.path().join("acme/b").exists());
    let wt = held_b.repo().worktree(&shas[1]).await.unwrap();
    wt.remove().await;
    drop(held_b);
    assert_eq!(tiny.evict().await.unwrap(), vec!["acme/b".to_owned()]);
    assert!(root.path().join("mine/own/.git").exists(), "a repository the cache did not clone is left alone");
    assert_eq!(tiny.usage().await, 0);
    // An evicted repository is cloned again on demand.
    drop(tiny.ensure("acme/a", &shas[0], None, &remote("a")).await.unwrap());
    assert!(root.path().join("acme/a").exists(), "the ensured clone itself is never evicted");
}

#[tokio::test]
async fn local_paths_full_clones_and_the_branch_fallback() {
    let remotes = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let bare = remotes.path().join("app.git");
    let first = local_remote(&bare, 1024);
    let work = bare.with_extension("work");
    std::fs::write(work.join("more.txt"), "more\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "more"]);
    let second = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);

    // Not shallow: the whole history of the commit.
    let cache = RepoCache::new(root.path(), options(0, false));
    let remote = Remote::new(bare.to_string_lossy()).unwrap();
    let cached = cache.ensure("acme/app", &second, Some("main"), &remote).await.unwrap();
    let dir = cached.repo().path().to_owned();
    assert_eq!(git(&dir, &["rev-parse", "--is-shallow-repository"]), "false");
    assert_eq!(git(&dir, &["rev-list", "--count", &second]), "2");
    assert!(git(&dir, &["cat-file", "-t", &first]) == "commit");
    drop(cached);

    // A remote that refuses commits by id (protocol v0, uploadpack.allowAnySHA1InWant unset): the branch
    // is fetched instead and must hold the commit.
    let root2 = tempfile::tempdir().unwrap();
    let cache = RepoCache::new(root2.path(), options(0, true));
    let v0 = Remote::new(bare.to_string_lossy()).unwrap().with_env([
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", "protocol.version"),
        ("GIT_CONFIG_VALUE_0", "0"),
    ]);
    let cached = cache.ensure("acme/app", &first, Some("main"), &v0).await.unwrap();
    let dir = cached.repo().path().to_owned();
    assert_eq!(git(&dir, &["rev-parse", "refs/sre-agent/branches/main"]), second, "the fallback fetched the branch");
    assert_eq!(git(&dir, &["cat-file", "-t", &first]), "commit");
    drop(cached);
    // Without a branch to fall back on, the refusal is a missing commit.
    let root3 = tempfile::tempdir().unwrap();
    let err = RepoCache::new(root3.path(), options(0, true)).ensure("acme/app", &first, None, &v0).await.unwrap_err();
    assert!(matches!(err, CacheError::ShaNotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn held_repositories_fetch_more_commits() {
    let (fake, shas) = fake_with_repo().await;
    let root = tempfile::tempdir().unwrap();
    let cache = RepoCache::new(root.path(), options(0, true));
    let remote = github_remote(&fake, REPO).await;
    let cached = cache.ensure(REPO, &shas[0], Some("main"), &remote).await.unwrap();
    let tip = fake.commit(REPO, "feature", &[("f", "1\n")], "feature", ("Dev", "d@x")).unwrap();
    cached.fetch_commit(&remote, &tip).await.unwrap();
    assert_eq!(git(cached.repo().path(), &["cat-file", "-t", &tip]), "commit");
    let before = fake.calls_to(Route::Git).len();
    cached.fetch_commit(&remote, &tip).await.unwrap();
    assert_eq!(fake.calls_to(Route::Git).len(), before, "present commits are not fetched");
    let err = cached.fetch_commit(&remote, "0123456789abcdef0123456789abcdef01234567").await.unwrap_err();
    assert!(matches!(err, CacheError::ShaNotFound { .. }), "{err:?}");
}
