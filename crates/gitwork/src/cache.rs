//! The repository cache: one bare clone per repository at `<root>/<owner>/<name>` (the repos dir the
//! planner, scanner, validator and pr services share, so [`Repo::open`] and worktrees work on it as on any
//! repository), cloned once and then fetched into on demand.
//!
//! - [`RepoCache::ensure`] makes a commit available: the failing `head_sha` is fetched by id
//!   (`git fetch origin <sha>`, `--depth=1` when [`CacheOptions::shallow`]); a remote that refuses to hand
//!   out a bare commit id is asked for the head branch instead, and the commit must then be in it; a commit
//!   the remote does not have (deleted by a force-push, never pushed) is [`CacheError::ShaNotFound`].
//! - Credentials come from the caller with each call ([`Remote`]: a clean URL plus environment for the git
//!   child, e.g. sre-github's `GitCredentials::git_env()`; a local path needs none). `remote.origin.url` is
//!   always the clean URL: no token is ever written to `.git/config`, a URL or an argument, and a URL that
//!   carries userinfo is refused.
//! - Locks across processes (flock on `<root>/.sre-agent-cache/locks/<owner>/<name>.lock`): users hold the
//!   repository lock shared for as long as they use the clone ([`CachedRepo`]), cloning and eviction take it
//!   exclusive; fetches into one clone are serialized by a second lock (`<name>.fetch.lock`), so two
//!   fetches never race on refs or the shallow file while readers keep reading.
//! - `git worktree prune` at every ensure drops the registrations of worktrees whose directories are gone
//!   (a process killed before it removed its worktree).
//! - A disk cap: after each ensure that cloned or fetched, when the clones the cache made exceed [`CacheOptions::max_bytes`], the
//!   least recently ensured ones are removed until the total fits, skipping every clone someone holds.
//!   Repositories the cache did not clone (no `sre-agent/cache-used` stamp) are never fetched into, counted
//!   or removed.
//! - Clones have `gc.auto=0`: objects fetched by id stay (a ref `refs/sre-agent/cache/<sha>` also keeps each
//!   ensured commit referenced, so later fetches negotiate from it); the disk cap bounds growth instead.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::lock::{FileLock, LockError, LockMode};
use crate::{GitError, GitOptions, Repo, git, git_with, split_name};

/// The cache's own directory under the root: locks, temporary clones. Not a valid GitHub owner (owners
/// cannot start with a dot), so it never collides with a repository.
const CACHE_DIR: &str = ".sre-agent-cache";
/// Marker and last-use stamp inside a clone the cache made.
const STAMP: &str = "sre-agent/cache-used";

/// Where a repository is fetched from, and the environment its git commands need (credentials). The URL is
/// stored in `remote.origin.url`; the environment never is.
#[derive(Clone)]
pub struct Remote {
    url: String,
    env: Vec<(String, String)>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Remote").field("url", &self.url).field("env_keys", &keys).finish()
    }
}

impl Remote {
    /// A URL (`https://github.com/o/r.git`) or a local path, refused when it carries credentials
    /// (`https://user:token@host/...`).
    pub fn new(url: impl Into<String>) -> Result<Self, CacheError> {
        let url = url.into();
        if url.trim().is_empty() || url.starts_with('-') || url.chars().any(char::is_control) {
            return Err(CacheError::InvalidRemote("the remote URL is empty or not a URL".to_owned()));
        }
        if let Some((_, rest)) = url.split_once("://") {
            let authority = rest.split('/').next().unwrap_or_default();
            if authority.contains('@') {
                return Err(CacheError::InvalidRemote(
                    "the remote URL carries credentials; pass them as environment instead".to_owned(),
                ));
            }
        }
        Ok(Self { url, env: Vec::new() })
    }

    /// Adds environment for the git child processes (e.g. `GIT_CONFIG_COUNT`/`KEY_0`/`VALUE_0`).
    pub fn with_env<K: Into<String>, V: Into<String>>(mut self, env: impl IntoIterator<Item = (K, V)>) -> Self {
        self.env.extend(env.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }
}

/// Bounds of a cache.
#[derive(Clone, Debug)]
pub struct CacheOptions {
    /// Bytes the cache's clones may take together before the least recently used are removed; 0: no cap.
    pub max_bytes: u64,
    /// Fetch commits with `--depth=1` (a checkout of the failing commit is all most users need).
    pub shallow: bool,
    /// Longest wait for a repository's lock.
    pub lock_timeout: Duration,
    /// Longest one clone or fetch may take.
    pub network_timeout: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024 * 1024,
            shallow: true,
            lock_timeout: Duration::from_secs(600),
            network_timeout: Duration::from_secs(600),
        }
    }
}

/// What the cache can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("invalid remote: {0}")]
    InvalidRemote(String),
    #[error("invalid branch name {0:?}")]
    InvalidBranch(String),
    #[error("commit {sha} is not in {repo}: the remote does not have it (deleted by a force-push, or never pushed)")]
    ShaNotFound { repo: String, sha: String },
    #[error(
        "{0} exists in the cache dir but was not cloned by the cache and lacks the commit; the cache does not \
         fetch into repositories it does not own"
    )]
    NotManaged(String),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{0} was evicted again and again while being ensured")]
    Busy(String),
    #[error("cache io on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io { path: path.display().to_string(), source }
}

/// A full commit id: 40 (SHA-1) or 64 (SHA-256) hex digits (a fetch by id needs the whole id).
fn check_sha(sha: &str) -> Result<(), CacheError> {
    if (sha.len() == 40 || sha.len() == 64) && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(GitError::InvalidSha(sha.to_owned()).into())
    }
}

/// A branch name that is safe on a git command line and in a refspec.
fn check_branch(branch: &str) -> Result<(), CacheError> {
    let ok = !branch.is_empty()
        && branch.len() <= 255
        && !branch.starts_with(['-', '/', '.'])
        && !branch.ends_with(['/', '.'])
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.contains("/.")
        && branch.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(CacheError::InvalidBranch(branch.to_owned())) }
}

/// Whether git's complaint means "the remote has no such commit or ref" (rather than auth or network).
fn is_missing(err: &GitError) -> bool {
    let GitError::Command { message, .. } = err else { return false };
    let m = message.to_ascii_lowercase();
    ["not our ref", "unadvertised object", "couldn't find remote ref", "no such remote ref", "bad object"]
        .iter()
        .any(|needle| m.contains(needle))
}

async fn has_commit(dir: &Path, sha: &str) -> bool {
    git(dir, &["cat-file", "-e", &format!("{sha}^{{commit}}")], None).await.is_ok()
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum()).unwrap_or(0)
}

/// A clone the cache manages, as eviction sees it.
struct Managed {
    full_name: String,
    path: PathBuf,
    bytes: u64,
    used: SystemTime,
}

/// The cache over one root directory (the repos dir). Cheap to clone; every method is safe to call from
/// many tasks and processes at once.
#[derive(Clone, Debug)]
pub struct RepoCache {
    root: PathBuf,
    options: CacheOptions,
}

/// A repository in the cache with an ensured commit, held (shared) until dropped: eviction skips it.
#[derive(Debug)]
pub struct CachedRepo {
    repo: Repo,
    sha: String,
    fetch_lock: PathBuf,
    options: CacheOptions,
    _lock: FileLock,
}

impl CachedRepo {
    /// The clone, for worktrees and reads.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// The ensured commit (full id).
    pub fn sha(&self) -> &str {
        &self.sha
    }

    /// Fetches commit `sha` (e.g. a branch tip seen with `git ls-remote`) with its history down to what the
    /// clone has, unless it is there already. Serialized with the other fetches into this clone.
    pub async fn fetch_commit(&self, remote: &Remote, sha: &str) -> Result<(), CacheError> {
        check_sha(sha)?;
        let dir = self.repo.path();
        if has_commit(dir, sha).await {
            return Ok(());
        }
        let _fetching = FileLock::acquire(&self.fetch_lock, LockMode::Exclusive, self.options.lock_timeout).await?;
        if has_commit(dir, sha).await {
            return Ok(());
        }
        let opts = GitOptions { stdin: None, env: remote.env(), timeout: self.options.network_timeout };
        let args =
            ["-c", "credential.helper=", "fetch", "--no-tags", "--no-write-fetch-head", "--quiet", "origin", sha];
        match git_with(dir, &args, opts).await {
            Ok(_) if has_commit(dir, sha).await => Ok(()),
            Ok(_) => Err(CacheError::ShaNotFound { repo: self.repo.full_name().to_owned(), sha: sha.to_owned() }),
            Err(e) if is_missing(&e) => {
                Err(CacheError::ShaNotFound { repo: self.repo.full_name().to_owned(), sha: sha.to_owned() })
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl RepoCache {
    pub fn new(root: impl Into<PathBuf>, options: CacheOptions) -> Self {
        Self { root: root.into(), options }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn options(&self) -> &CacheOptions {
        &self.options
    }

    fn lock_path(&self, owner: &str, name: &str, suffix: &str) -> PathBuf {
        self.root.join(CACHE_DIR).join("locks").join(owner).join(format!("{name}{suffix}"))
    }

    /// Makes commit `sha` of `full_name` available in `<root>/<owner>/<name>`, cloning the repository on
    /// first use; `branch` (the branch the commit is on) is the fallback when the remote refuses a fetch by
    /// id. The returned [`CachedRepo`] holds the repository (shared) until dropped.
    pub async fn ensure(
        &self,
        full_name: &str,
        sha: &str,
        branch: Option<&str>,
        remote: &Remote,
    ) -> Result<CachedRepo, CacheError> {
        let (owner, name) = split_name(full_name)?;
        check_sha(sha)?;
        if let Some(b) = branch {
            check_branch(b)?;
        }
        let dir = self.root.join(owner).join(name);
        let use_lock = self.lock_path(owner, name, ".lock");
        let fetch_lock = self.lock_path(owner, name, ".fetch.lock");
        let timeout = self.options.lock_timeout;
        for _ in 0..3 {
            let mut lock = FileLock::acquire(&use_lock, LockMode::Shared, timeout).await?;
            let mut grew = false;
            if !dir.exists() {
                drop(lock);
                let mut exclusive = FileLock::acquire(&use_lock, LockMode::Exclusive, timeout).await?;
                if !dir.exists() {
                    self.clone_into(full_name, &dir, sha, branch, remote).await?;
                    grew = true;
                }
                exclusive.downgrade()?;
                lock = exclusive;
                if !dir.exists() {
                    // Evicted in the instant between the exclusive and the shared lock: start over.
                    continue;
                }
            }
            if !dir.join(STAMP).exists() {
                // Someone's own repository: used as it is when it has the commit, never fetched into or evicted.
                if has_commit(&dir, sha).await {
                    let repo = Repo::open(&self.root, full_name)?;
                    return Ok(CachedRepo {
                        repo,
                        sha: sha.to_ascii_lowercase(),
                        fetch_lock,
                        options: self.options.clone(),
                        _lock: lock,
                    });
                }
                return Err(CacheError::NotManaged(full_name.to_owned()));
            }
            grew |= self.refresh(full_name, &dir, &fetch_lock, sha, branch, remote).await?;
            let stamp = dir.join(STAMP);
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&stamp)
                .and_then(|f| f.set_modified(SystemTime::now()))
                .map_err(io_err(&stamp))?;
            if let Err(e) = crate::prune_worktrees(&dir).await {
                tracing::warn!(error = %e, "git worktree prune failed");
            }
            let repo = Repo::open(&self.root, full_name)?;
            let cached = CachedRepo {
                repo,
                sha: sha.to_ascii_lowercase(),
                fetch_lock,
                options: self.options.clone(),
                _lock: lock,
            };
            // Only a clone or a fetch makes the cache bigger: the sizes are walked then, not on every call.
            if grew {
                match self.evict_except(Some(full_name)).await {
                    Ok(evicted) if !evicted.is_empty() => {
                        tracing::info!(evicted = evicted.len(), "repository cache evicted");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "repository cache eviction failed"),
                }
            }
            return Ok(cached);
        }
        Err(CacheError::Busy(full_name.to_owned()))
    }

    /// Points origin at the clean URL (when it changed) and fetches the commit when it is missing; true when
    /// something was fetched.
    async fn refresh(
        &self,
        full_name: &str,
        dir: &Path,
        fetch_lock: &Path,
        sha: &str,
        branch: Option<&str>,
        remote: &Remote,
    ) -> Result<bool, CacheError> {
        let current = git(dir, &["config", "--get", "remote.origin.url"], None)
            .await
            .map(|out| String::from_utf8_lossy(&out).trim().to_owned())
            .unwrap_or_default();
        let url_changed = current != remote.url();
        if !url_changed && has_commit(dir, sha).await {
            return Ok(false);
        }
        let _fetching = FileLock::acquire(fetch_lock, LockMode::Exclusive, self.options.lock_timeout).await?;
        if url_changed {
            git(dir, &["config", "remote.origin.url", remote.url()], None).await?;
        }
        if has_commit(dir, sha).await {
            return Ok(false);
        }
        self.fetch_sha(full_name, dir, sha, branch, remote).await?;
        Ok(true)
    }

    /// A new clone in a temporary directory, renamed into place once it holds the commit.
    async fn clone_into(
        &self,
        full_name: &str,
        dir: &Path,
        sha: &str,
        branch: Option<&str>,
        remote: &Remote,
    ) -> Result<(), CacheError> {
        let tmp_root = self.root.join(CACHE_DIR).join("tmp");
        std::fs::create_dir_all(&tmp_root).map_err(io_err(&tmp_root))?;
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let tmp = tmp_root.join(format!("clone-{}-{}-{nanos}", full_name.replace('/', "__"), std::process::id()));
        let result = async {
            let tmp_arg = tmp.to_string_lossy().into_owned();
            git(&tmp_root, &["init", "--bare", "--quiet", &tmp_arg], None).await?;
            for (key, value) in [("remote.origin.url", remote.url()), ("gc.auto", "0"), ("maintenance.auto", "false")] {
                git(&tmp, &["config", key, value], None).await?;
            }
            self.fetch_sha(full_name, &tmp, sha, branch, remote).await?;
            let stamp = tmp.join(STAMP);
            if let Some(parent) = stamp.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            std::fs::write(&stamp, b"").map_err(io_err(&stamp))?;
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            std::fs::rename(&tmp, dir).map_err(io_err(dir))?;
            tracing::info!(repo = full_name, shallow = self.options.shallow, "repository cloned into the cache");
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// `git fetch origin <sha>`; when the remote refuses a bare id, the branch, which must then hold it.
    async fn fetch_sha(
        &self,
        full_name: &str,
        dir: &Path,
        sha: &str,
        branch: Option<&str>,
        remote: &Remote,
    ) -> Result<(), CacheError> {
        let opts = GitOptions { stdin: None, env: remote.env(), timeout: self.options.network_timeout };
        let keep = format!("+{sha}:refs/sre-agent/cache/{sha}");
        let mut args = vec!["-c", "credential.helper=", "fetch", "--no-tags", "--no-write-fetch-head", "--quiet"];
        if self.options.shallow {
            args.push("--depth=1");
        }
        args.extend(["origin", keep.as_str()]);
        let by_id = git_with(dir, &args, opts).await;
        if by_id.is_ok() && has_commit(dir, sha).await {
            return Ok(());
        }
        let not_found = || CacheError::ShaNotFound { repo: full_name.to_owned(), sha: sha.to_owned() };
        let by_id_err = by_id.err();
        if let Some(e) = &by_id_err {
            tracing::info!(error = %e, "fetch by commit id refused; trying the branch");
        }
        let Some(branch) = branch else {
            return match by_id_err {
                Some(e) if !is_missing(&e) => Err(e.into()),
                _ => Err(not_found()),
            };
        };
        let refspec = format!("+refs/heads/{branch}:refs/sre-agent/branches/{branch}");
        let args =
            ["-c", "credential.helper=", "fetch", "--no-tags", "--no-write-fetch-head", "--quiet", "origin", &refspec];
        match git_with(dir, &args, opts).await {
            Ok(_) => {}
            Err(e) if is_missing(&e) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        }
        if !has_commit(dir, sha).await {
            return Err(not_found());
        }
        git(dir, &["update-ref", &format!("refs/sre-agent/cache/{sha}"), sha], None).await?;
        Ok(())
    }

    /// The clones the cache made, with their sizes and last use.
    fn managed(&self) -> Vec<Managed> {
        let mut out = Vec::new();
        let Ok(owners) = std::fs::read_dir(&self.root) else { return out };
        for owner in owners.flatten() {
            let owner_name = owner.file_name().to_string_lossy().into_owned();
            if owner_name.starts_with('.') || !owner.path().is_dir() {
                continue;
            }
            let Ok(repos) = std::fs::read_dir(owner.path()) else { continue };
            for repo in repos.flatten() {
                let path = repo.path();
                let Ok(used) = std::fs::metadata(path.join(STAMP)).and_then(|m| m.modified()) else { continue };
                let full_name = format!("{owner_name}/{}", repo.file_name().to_string_lossy());
                out.push(Managed { full_name, bytes: dir_size(&path), path, used });
            }
        }
        out
    }

    /// Bytes the cache's clones take together.
    pub async fn usage(&self) -> u64 {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.managed().iter().map(|m| m.bytes).sum()).await.unwrap_or(0)
    }

    /// Removes least recently used clones until the cache fits [`CacheOptions::max_bytes`], skipping every
    /// clone someone holds; returns the names removed.
    pub async fn evict(&self) -> Result<Vec<String>, CacheError> {
        self.evict_except(None).await
    }

    async fn evict_except(&self, keep: Option<&str>) -> Result<Vec<String>, CacheError> {
        if self.options.max_bytes == 0 {
            return Ok(Vec::new());
        }
        let this = self.clone();
        let keep = keep.map(str::to_owned);
        tokio::task::spawn_blocking(move || this.evict_blocking(keep.as_deref()))
            .await
            .map_err(|e| CacheError::Io { path: self.root.display().to_string(), source: std::io::Error::other(e) })?
    }

    fn evict_blocking(&self, keep: Option<&str>) -> Result<Vec<String>, CacheError> {
        let mut repos = self.managed();
        let mut total: u64 = repos.iter().map(|m| m.bytes).sum();
        let mut evicted = Vec::new();
        if total <= self.options.max_bytes {
            return Ok(evicted);
        }
        repos.sort_by_key(|m| m.used);
        for m in repos {
            if total <= self.options.max_bytes {
                break;
            }
            if Some(m.full_name.as_str()) == keep {
                continue;
            }
            let Some((owner, name)) = m.full_name.split_once('/') else { continue };
            let Some(_lock) = FileLock::try_acquire(&self.lock_path(owner, name, ".lock"), LockMode::Exclusive)? else {
                continue;
            };
            // Out of the way first, so nobody ever opens a half-deleted clone.
            let tmp_root = self.root.join(CACHE_DIR).join("tmp");
            std::fs::create_dir_all(&tmp_root).map_err(io_err(&tmp_root))?;
            let graveyard = tmp_root.join(format!("evicted-{}-{}", m.full_name.replace('/', "__"), std::process::id()));
            let _ = std::fs::remove_dir_all(&graveyard);
            std::fs::rename(&m.path, &graveyard).map_err(io_err(&m.path))?;
            std::fs::remove_dir_all(&graveyard).map_err(io_err(&graveyard))?;
            total = total.saturating_sub(m.bytes);
            tracing::info!(repo = %m.full_name, bytes = m.bytes, "evicted from the repository cache");
            evicted.push(m.full_name);
        }
        Ok(evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_refuse_credentials() {
        assert!(Remote::new("https://github.com/o/r.git").is_ok());
        assert!(Remote::new("/srv/repos/o/r").is_ok());
        assert!(Remote::new("https://x-access-token:ghs_1@github.com/o/r.git").is_err());
        assert!(Remote::new("https://ghs_1@github.com/o/r.git").is_err());
        assert!(Remote::new("").is_err());
        assert!(Remote::new("--upload-pack=evil").is_err());
        let r = Remote::new("https://github.com/o/r.git").unwrap().with_env([("GIT_CONFIG_VALUE_0", "secret")]);
        assert!(!format!("{r:?}").contains("secret"));
    }

    #[test]
    fn branch_and_sha_checks() {
        for good in ["main", "release/1.2", "feature_x-y"] {
            assert!(check_branch(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a..b", "a b", "a:b", "/a", "a/", "a.lock", "a//b", "a/.b", "+x"] {
            assert!(check_branch(bad).is_err(), "{bad}");
        }
        assert!(check_sha(&"a".repeat(40)).is_ok());
        assert!(check_sha("abc1234").is_err());
        assert!(check_sha(&"g".repeat(40)).is_err());
    }
}
