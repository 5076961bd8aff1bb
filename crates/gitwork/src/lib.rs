//! Git plumbing shared by the planner, scanner, validator and pr services: resolving a repository under
//! `SRE_REPOS_DIR`, reading a commit's files, and throwaway worktrees where a patch is applied and tested.
//! Everything shells out to the real `git`; nothing here edits a repository's working tree.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub mod cache;
pub mod diff;
pub mod lock;

pub use cache::{CacheError, CacheOptions, CachedRepo, Remote, RepoCache};
pub use diff::{DiffError, FilePatch, parse_diff};
pub use lock::{FileLock, LockError, LockMode};

/// Longest a single git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("invalid repository name {0:?}: expected owner/name of [A-Za-z0-9._-]")]
    InvalidName(String),
    #[error("repository {0} not found under the repos dir")]
    NotFound(String),
    #[error("invalid commit {0:?}: expected 7-64 hex characters")]
    InvalidSha(String),
    #[error("git {args}: {message}")]
    Command { args: String, message: String },
    #[error("git {0}: timed out")]
    Timeout(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Output of a git command that exited 0.
pub type GitResult<T> = Result<T, GitError>;

/// Runs `git args` in `dir`, feeding `stdin` if given; errors carry git's stderr.
pub async fn git(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> GitResult<Vec<u8>> {
    git_with(dir, args, GitOptions { stdin, ..GitOptions::default() }).await
}

/// How [`git_with`] runs git: input, extra environment (credentials as `GIT_CONFIG_*`, identities), bound.
#[derive(Clone, Copy)]
pub struct GitOptions<'a> {
    pub stdin: Option<&'a [u8]>,
    /// Set on the child only. Values may be secrets: they never appear in errors or logs.
    pub env: &'a [(String, String)],
    pub timeout: Duration,
}

impl Default for GitOptions<'_> {
    fn default() -> Self {
        Self { stdin: None, env: &[], timeout: GIT_TIMEOUT }
    }
}

impl std::fmt::Debug for GitOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("GitOptions").field("env_keys", &keys).field("timeout", &self.timeout).finish()
    }
}

/// Runs `git args` in `dir` with [`GitOptions`]; errors carry the arguments and git's stderr (never the
/// environment).
pub async fn git_with(dir: &Path, args: &[&str], opts: GitOptions<'_>) -> GitResult<Vec<u8>> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    cmd.env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C");
    cmd.envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.stdin(if opts.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd.spawn()?;
    if let (Some(input), Some(mut pipe)) = (opts.stdin, child.stdin.take()) {
        pipe.write_all(input).await?;
        drop(pipe);
    }
    let joined = args.join(" ");
    let out = tokio::time::timeout(opts.timeout, child.wait_with_output())
        .await
        .map_err(|_| GitError::Timeout(joined.clone()))??;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(GitError::Command {
            args: joined,
            message: String::from_utf8_lossy(&out.stderr).trim().chars().take(2000).collect(),
        })
    }
}

/// Splits and checks `owner/name`: two parts of `[A-Za-z0-9._-]`, neither `.` nor `..`, so that
/// `repos_dir/owner/name` can never escape the repos dir.
pub fn split_name(full_name: &str) -> GitResult<(&str, &str)> {
    let valid_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let mut parts = full_name.split('/');
    let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(GitError::InvalidName(full_name.to_owned()));
    };
    if !valid_part(owner) || !valid_part(name) {
        return Err(GitError::InvalidName(full_name.to_owned()));
    }
    Ok((owner, name))
}

/// A repository resolved from its `owner/name` under the repos dir.
#[derive(Clone, Debug)]
pub struct Repo {
    full_name: String,
    path: PathBuf,
}

impl Repo {
    /// Resolves `owner/name` to `repos_dir/owner/name`, refusing anything that could escape the dir.
    pub fn open(repos_dir: &Path, full_name: &str) -> GitResult<Self> {
        let (owner, name) = split_name(full_name)?;
        let path = repos_dir.join(owner).join(name);
        if !path.join(".git").exists() && !path.join("HEAD").exists() {
            return Err(GitError::NotFound(full_name.to_owned()));
        }
        Ok(Self { full_name: full_name.to_owned(), path })
    }

    pub fn full_name(&self) -> &str {
        &self.full_name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Full SHA of `rev` (a commit that must exist).
    pub async fn resolve(&self, rev: &str) -> GitResult<String> {
        if !(7..=64).contains(&rev.len()) || !rev.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(GitError::InvalidSha(rev.to_owned()));
        }
        let out = git(&self.path, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")], None).await?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Paths of every file in commit `sha`.
    pub async fn list_files(&self, sha: &str) -> GitResult<Vec<String>> {
        let out = git(&self.path, &["ls-tree", "-r", "-z", "--name-only", sha], None).await?;
        Ok(out.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect())
    }

    /// Contents of `path` at commit `sha`.
    pub async fn read_file(&self, sha: &str, path: &str) -> GitResult<Vec<u8>> {
        git(&self.path, &["show", &format!("{sha}:{path}")], None).await
    }

    /// The files (blobs: regular files and symlinks) of commit `sha`, under the directory `under` when given,
    /// with their sizes, in one `git ls-tree -r -l`. Submodules and other non-blobs are left out.
    pub async fn list_blobs(&self, sha: &str, under: Option<&str>) -> GitResult<Vec<Blob>> {
        let mut args = vec!["ls-tree", "-r", "-z", "-l", sha];
        if let Some(dir) = under {
            args.extend(["--", dir]);
        }
        let out = git(&self.path, &args, None).await?;
        Ok(parse_ls_tree(&out))
    }

    /// The contents of `blobs`, in order, read by as few `git cat-file --batch` as their sizes allow
    /// (one per [`BATCH_BYTES`] or so; a missing or non-blob object is an error).
    pub async fn read_blobs(&self, blobs: &[&Blob]) -> GitResult<Vec<Vec<u8>>> {
        let mut out = Vec::with_capacity(blobs.len());
        let mut start = 0;
        while start < blobs.len() {
            let mut end = start;
            let mut bytes = 0u64;
            while end < blobs.len() && (end == start || bytes + blobs[end].size <= BATCH_BYTES) {
                bytes += blobs[end].size;
                end += 1;
            }
            let input: String = blobs[start..end].iter().map(|b| format!("{}\n", b.oid)).collect();
            let raw = git(&self.path, &["cat-file", "--batch"], Some(input.as_bytes())).await?;
            out.extend(parse_cat_file_batch(&raw, end - start)?);
            start = end;
        }
        Ok(out)
    }

    /// A detached worktree of `sha` in a fresh temporary directory. A full object id (what
    /// [`Repo::resolve`] returns) goes to `git worktree add` as it is, which refuses anything but a commit;
    /// anything shorter is resolved first. The repository's hooks do not run (no `post-checkout` on the host).
    pub async fn worktree(&self, sha: &str) -> GitResult<Worktree> {
        let sha = if is_full_id(sha) { sha.to_owned() } else { self.resolve(sha).await? };
        let dir = tempfile::Builder::new().prefix("sre-wt-").tempdir()?;
        let wt_path = dir.path().join("wt");
        let wt = wt_path.to_string_lossy().into_owned();
        let _admin = FileLock::acquire(&worktree_lock(&self.path), LockMode::Exclusive, WORKTREE_LOCK_TIMEOUT)
            .await
            .map_err(lock_error)?;
        let args = ["-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", "--quiet", &wt, &sha];
        git(&self.path, &args, None).await?;
        Ok(Worktree { repo: self.path.clone(), path: wt_path, _dir: Some(dir), removed: false })
    }
}

/// What one `git cat-file --batch` reads at most (more blobs take another).
pub const BATCH_BYTES: u64 = 8 << 20;

/// A file of a commit: its path, blob id and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub path: String,
    pub oid: String,
    pub size: u64,
}

/// The blobs of `git ls-tree -r -z -l` output (`<mode> SP <type> SP <oid> SP+ <size> TAB <path> NUL`).
fn parse_ls_tree(out: &[u8]) -> Vec<Blob> {
    out.split(|b| *b == 0)
        .filter_map(|entry| {
            let tab = entry.iter().position(|b| *b == b'\t')?;
            let (meta, path) = (std::str::from_utf8(&entry[..tab]).ok()?, &entry[tab + 1..]);
            let mut fields = meta.split_ascii_whitespace();
            let (_mode, kind, oid, size) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
            (kind == "blob" && !path.is_empty()).then_some(())?;
            Some(Blob {
                path: String::from_utf8_lossy(path).into_owned(),
                oid: oid.to_owned(),
                size: size.parse().ok()?,
            })
        })
        .collect()
}

/// The `n` contents of `git cat-file --batch` output (`<oid> SP <type> SP <size> LF <contents> LF` each).
fn parse_cat_file_batch(raw: &[u8], n: usize) -> GitResult<Vec<Vec<u8>>> {
    let bad = |message: String| GitError::Command { args: "cat-file --batch".to_owned(), message };
    let mut out = Vec::with_capacity(n);
    let mut rest = raw;
    for _ in 0..n {
        let eol = rest.iter().position(|b| *b == b'\n').ok_or_else(|| bad("truncated output".to_owned()))?;
        let header = String::from_utf8_lossy(&rest[..eol]).into_owned();
        let mut fields = header.split(' ');
        let (oid, kind, size) = (fields.next(), fields.next(), fields.next().and_then(|s| s.parse::<usize>().ok()));
        let (Some(_), Some("blob"), Some(size)) = (oid, kind, size) else {
            return Err(bad(format!("not a blob: {header}")));
        };
        let body = &rest[eol + 1..];
        if body.len() < size + 1 || body[size] != b'\n' {
            return Err(bad("truncated output".to_owned()));
        }
        out.push(body[..size].to_vec());
        rest = &body[size + 1..];
    }
    Ok(out)
}

/// A full SHA-1 or SHA-256 object id in lowercase hex (nothing git could read as an option or a name).
fn is_full_id(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Longest wait for another task's or process's `git worktree` command on the same repository.
const WORKTREE_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// The lock serializing `git worktree add/remove/prune` on one repository. Git does not: a concurrent `add`
/// reads another's half-written `worktrees/<id>/` ("failed to read worktrees/wt/commondir") and a `prune`
/// can race either. Kept in the git directory so every process using the repository sees the same file.
fn worktree_lock(repo: &Path) -> PathBuf {
    let dot_git = repo.join(".git");
    let git_dir = if dot_git.is_dir() { dot_git } else { repo.to_path_buf() };
    git_dir.join("sre-agent-worktrees.lock")
}

/// `git worktree prune` under the worktree lock: drops registrations whose directories are gone.
pub(crate) async fn prune_worktrees(repo: &Path) -> GitResult<()> {
    let _admin = FileLock::acquire(&worktree_lock(repo), LockMode::Exclusive, WORKTREE_LOCK_TIMEOUT)
        .await
        .map_err(lock_error)?;
    git(repo, &["worktree", "prune"], None).await.map(|_| ())
}

fn lock_error(err: LockError) -> GitError {
    match err {
        LockError::Io { source, .. } => GitError::Io(source),
        LockError::Timeout { .. } => GitError::Timeout("worktree lock".to_owned()),
    }
}

/// A throwaway checkout. Remove it with [`Worktree::remove`]; dropping it removes it too (blocking).
#[derive(Debug)]
pub struct Worktree {
    repo: PathBuf,
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
    removed: bool,
}

impl Worktree {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies a unified diff (git format) to the worktree's files.
    pub async fn apply(&self, diff: &str) -> GitResult<()> {
        git(&self.path, &["apply", "--whitespace=nowarn", "-"], Some(diff.as_bytes())).await.map(|_| ())
    }

    /// The worktree's uncommitted changes as a unified diff against its commit.
    pub async fn diff(&self) -> GitResult<String> {
        let out = git(&self.path, &["diff", "--no-color", "--no-ext-diff", "HEAD"], None).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Unregisters and deletes the worktree (`git worktree remove --force`; when that fails, the directory
    /// is deleted and `git worktree prune` drops the registration).
    pub async fn remove(mut self) {
        let wt = self.path.to_string_lossy().into_owned();
        let _admin = FileLock::acquire(&worktree_lock(&self.repo), LockMode::Exclusive, WORKTREE_LOCK_TIMEOUT).await;
        if let Err(err) = git(&self.repo, &["worktree", "remove", "--force", &wt], None).await {
            tracing::warn!(error = %err, "worktree remove failed; pruning");
            let _ = std::fs::remove_dir_all(&self.path);
            let _ = git(&self.repo, &["worktree", "prune"], None).await;
        }
        self.removed = true;
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        if !self.removed {
            let _admin =
                FileLock::acquire_blocking(&worktree_lock(&self.repo), LockMode::Exclusive, WORKTREE_LOCK_TIMEOUT);
            let _ = std::process::Command::new("git")
                .arg("-C")
                .arg(&self.repo)
                .args(["worktree", "remove", "--force"])
                .arg(&self.path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Test support (feature `testing`).
#[cfg(feature = "testing")]
pub mod testing {
    use std::path::Path;

    /// Runs `git args` in `dir` synchronously, panicking with git's stderr on failure; returns trimmed stdout.
    pub fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git").arg("-C").arg(dir).args(args).output().expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `git init` of `dir` on branch main with a local test identity.
    pub fn init_repo(dir: &Path) {
        std::fs::create_dir_all(dir).expect("create repo dir");
        git(dir, &["init", "-q", "-b", "main"]);
        git(dir, &["config", "user.name", "test"]);
        git(dir, &["config", "user.email", "test@localhost"]);
    }

    /// PATH with the tool dirs of scripts/install-tools.sh after the caller's: what the fixture's CI steps run with
    /// here. (The mesh's sandboxes show the process's own PATH: `. scripts/lib/env.sh` puts the same dirs on it.)
    pub fn tools_path() -> std::ffi::OsString {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut dirs: Vec<std::path::PathBuf> =
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
        for d in [".tools/pyvenv/bin", ".tools/node/node_modules/.bin"] {
            dirs.push(root.join(d));
        }
        std::env::join_paths(dirs).expect("PATH entries without ':'")
    }

    /// Runs `cmd` with bash in `dir` (the tools on PATH, no colours); it must fail. Returns the GitHub Actions job
    /// log a runner shows for it: timestamps, the step's group, the real output with the checkout's path as the
    /// runner's, and the runner's verdict.
    pub fn actions_log(dir: &Path, cmd: &str) -> String {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(cmd)
            .current_dir(dir)
            .env("PATH", tools_path())
            .env("NO_COLOR", "1")
            .env("CARGO_TERM_COLOR", "never")
            .output()
            .unwrap_or_else(|e| panic!("bash -c `{cmd}`: {e}"));
        assert!(!out.status.success(), "`{cmd}` must fail in the fixture {}", dir.display());
        let ts = "2026-12-02T09:00:00.0000000Z";
        let mut log = format!(
            "{ts} ##[group]Run actions/checkout@v4\n{ts} Syncing repository\n{ts} ##[endgroup]\n\
             {ts} ##[group]Run {cmd}\n{ts} {cmd}\n{ts} shell: /usr/bin/bash -e {{0}}\n{ts} ##[endgroup]\n"
        );
        let dir_s = dir.to_string_lossy().into_owned();
        for line in String::from_utf8_lossy(&out.stdout).lines().chain(String::from_utf8_lossy(&out.stderr).lines()) {
            log.push_str(&format!("{ts} {}\n", line.replace(&dir_s, "/home/runner/work/app/app")));
        }
        log.push_str(&format!("{ts} ##[error]Process completed with exit code {}.\n", out.status.code().unwrap_or(1)));
        log.push_str(&format!("{ts} Post job cleanup.\n"));
        log
    }
}

/// Counts of a unified diff: files touched (b/ side, or a/ for deletions), lines added and removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffStat {
    pub files: Vec<String>,
    pub added: u32,
    pub removed: u32,
}

/// The file list and line counts of a git-format unified diff, read as `git apply` reads it ([`parse_diff`]);
/// of a malformed diff, what comes before the first error.
pub fn diff_stat(diff: &str) -> DiffStat {
    let mut stat = DiffStat::default();
    for f in diff::parse(diff).0 {
        stat.added += f.added;
        stat.removed += f.removed;
        if !f.path.is_empty() && !stat.files.contains(&f.path) {
            stat.files.push(f.path);
        }
    }
    stat
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escaping_names() {
        let dir = Path::new("/nonexistent");
        for bad in ["../etc", "a/../b", "a", "a/b/c", "a/.", "a b/c", "/a/b", ""] {
            assert!(matches!(Repo::open(dir, bad), Err(GitError::InvalidName(_))), "{bad}");
        }
        assert!(matches!(Repo::open(dir, "owner/name"), Err(GitError::NotFound(_))));
    }

    #[test]
    fn full_ids_only() {
        assert!(is_full_id(&"a".repeat(40)) && is_full_id(&"0".repeat(64)));
        for bad in ["abc1234", &"A".repeat(40), &"g".repeat(40), &"a".repeat(41), "--output=x"] {
            assert!(!is_full_id(bad), "{bad}");
        }
    }

    #[test]
    fn parses_ls_tree_and_cat_file_output() {
        let oid = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
        let listing = format!(
            "100644 blob {oid}       5\t.github/workflows/ci.yml\0160000 commit {oid}       -\tvendor/sub\0\
             120000 blob {oid}      12\tlink\0"
        );
        let blobs = parse_ls_tree(listing.as_bytes());
        let paths: Vec<&str> = blobs.iter().map(|b| b.path.as_str()).collect();
        assert_eq!(paths, [".github/workflows/ci.yml", "link"]);
        assert_eq!((blobs[0].size, blobs[0].oid.as_str()), (5, oid));

        let raw = format!("{oid} blob 3\na\nb\n{oid} blob 0\n\n");
        assert_eq!(parse_cat_file_batch(raw.as_bytes(), 2).unwrap(), [b"a\nb".to_vec(), Vec::new()]);
        assert!(parse_cat_file_batch(format!("{oid} missing\n").as_bytes(), 1).is_err());
        assert!(parse_cat_file_batch(format!("{oid} blob 9\nshort\n").as_bytes(), 1).is_err());
        assert!(parse_cat_file_batch(format!("{oid} tree 3\nabc\n").as_bytes(), 1).is_err());
    }

    #[test]
    fn counts_a_diff() {
        let diff = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n-a \n+a\n b\n\
                    diff --git a/gone b/gone\ndeleted file mode 100644\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";
        let stat = diff_stat(diff);
        assert_eq!(stat.files, vec!["x.py".to_owned(), "gone".to_owned()]);
        assert_eq!((stat.added, stat.removed), (1, 2));
    }
}
