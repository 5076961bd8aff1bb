//! The git metadata a linked worktree needs inside the sandbox, and nothing more: its `.git` file points into
//! the repository's git dir (under the repos dir, which is otherwise never visible), so that one git dir is
//! bound read-only at its own path. Its `config` is replaced by a copy holding only the repository-format keys:
//! remote URLs, credential helpers, `includeIf` paths and hooks paths of the agent's clone stay outside.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::SandboxError;

/// Largest `.git` file / `commondir` file read.
const MAX_POINTER_BYTES: u64 = 4096;

/// The git dir to show and its sanitized config.
#[derive(Debug)]
pub struct GitView {
    /// The repository's common git dir (objects, refs, this worktree's admin dir), bound read-only.
    pub common_dir: PathBuf,
    /// The sanitized config, bound read-only over `common_dir/config` (the temp dir lives as long as this).
    pub config: tempfile::NamedTempFile,
}

fn read_small(p: &Path) -> Result<String, SandboxError> {
    let meta = std::fs::metadata(p).map_err(|e| SandboxError::Git(format!("{}: {e}", p.display())))?;
    if meta.len() > MAX_POINTER_BYTES {
        return Err(SandboxError::Git(format!("{} is {} bytes, not a git pointer file", p.display(), meta.len())));
    }
    std::fs::read_to_string(p).map_err(|e| SandboxError::Git(format!("{}: {e}", p.display())))
}

/// The git dir of the linked worktree `wt`, or `None` when `wt/.git` is a directory (a clone, wholly inside
/// the worktree) or absent.
pub fn common_dir(wt: &Path) -> Result<Option<PathBuf>, SandboxError> {
    let dot_git = wt.join(".git");
    let Ok(meta) = std::fs::symlink_metadata(&dot_git) else { return Ok(None) };
    if !meta.is_file() {
        return Ok(None);
    }
    let text = read_small(&dot_git)?;
    let gitdir = text
        .trim()
        .strip_prefix("gitdir:")
        .map(str::trim)
        .ok_or_else(|| SandboxError::Git(format!("{} does not start with `gitdir:`", dot_git.display())))?;
    let admin = wt.join(gitdir);
    let admin = std::fs::canonicalize(&admin).map_err(|e| SandboxError::Git(format!("{}: {e}", admin.display())))?;
    let common_file = admin.join("commondir");
    let common = if common_file.is_file() { admin.join(read_small(&common_file)?.trim()) } else { admin };
    let common = std::fs::canonicalize(&common).map_err(|e| SandboxError::Git(format!("{}: {e}", common.display())))?;
    if !common.join("objects").is_dir() {
        return Err(SandboxError::Git(format!("{} has no objects directory", common.display())));
    }
    Ok(Some(common))
}

/// Keys of a git config that describe the repository's format; everything else is left out.
fn keep_key(key: &str) -> bool {
    matches!(
        key,
        "core.repositoryformatversion"
            | "core.bare"
            | "core.filemode"
            | "core.symlinks"
            | "core.ignorecase"
            | "core.precomposeunicode"
    ) || key.starts_with("extensions.")
}

/// The sanitized config text for the `git config --list` output `listing`.
pub fn sanitized_config(listing: &str) -> String {
    let mut core = Vec::new();
    let mut extensions = Vec::new();
    for line in listing.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let key = key.to_ascii_lowercase();
        let plain =
            !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !keep_key(&key) || !plain {
            continue;
        }
        let (section, name) = key.split_once('.').unwrap_or(("", ""));
        match section {
            "core" => core.push(format!("\t{name} = {value}\n")),
            "extensions" => extensions.push(format!("\t{name} = {value}\n")),
            _ => {}
        }
    }
    let mut out = String::from("[core]\n");
    out.extend(core);
    if !extensions.is_empty() {
        out.push_str("[extensions]\n");
        out.extend(extensions);
    }
    out
}

/// What identifies one version of a config file: its inode, size, modification and change times.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Version {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// Sanitized configs already made, per config file and version: a repository's config rarely changes, and
/// every run in one of its worktrees would otherwise ask `git config --list` again.
static SANITIZED: std::sync::Mutex<Vec<(PathBuf, Version, String)>> = std::sync::Mutex::new(Vec::new());
/// Config files remembered at most (the oldest goes first).
const SANITIZED_MAX: usize = 64;

fn remembered(path: &Path, version: Version) -> Option<String> {
    let cache = SANITIZED.lock().unwrap_or_else(|e| e.into_inner());
    cache.iter().find(|(p, v, _)| p == path && *v == version).map(|(_, _, text)| text.clone())
}

fn remember(path: &Path, version: Version, text: &str) {
    let mut cache = SANITIZED.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|(p, _, _)| p != path);
    if cache.len() >= SANITIZED_MAX {
        cache.remove(0);
    }
    cache.push((path.to_owned(), version, text.to_owned()));
}

/// The sanitized config of the git dir `common` (its `config` as `git config --list` reads it).
async fn sanitized_config_of(common: &Path) -> Result<String, SandboxError> {
    let config_path = common.join("config");
    let version = std::fs::metadata(&config_path).ok().filter(|m| m.is_file()).map(|m| Version::of(&m));
    if let Some(version) = version
        && let Some(text) = remembered(&config_path, version)
    {
        return Ok(text);
    }
    let listing = if version.is_some() {
        let out = tokio::process::Command::new("git")
            .arg("config")
            .arg("--file")
            .arg(&config_path)
            .args(["--no-includes", "--list"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| SandboxError::Git(format!("git config --list: {e}")))?;
        if !out.status.success() {
            return Err(SandboxError::Git(format!(
                "git config --file {} --list: {}",
                config_path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::new()
    };
    let text = sanitized_config(&listing);
    // Remembered only when the file did not change while it was read.
    let after = std::fs::metadata(&config_path).ok().filter(|m| m.is_file()).map(|m| Version::of(&m));
    if let Some(version) = version
        && after == Some(version)
    {
        remember(&config_path, version, &text);
    }
    Ok(text)
}

/// The view for the worktree `wt`, if it is a linked worktree.
pub async fn view(wt: &Path) -> Result<Option<GitView>, SandboxError> {
    let Some(common) = common_dir(wt)? else { return Ok(None) };
    let text = sanitized_config_of(&common).await?;
    let mut config = tempfile::Builder::new().prefix("sre-sandbox-gitconfig-").tempfile()?;
    config.write_all(text.as_bytes())?;
    config.flush()?;
    Ok(Some(GitView { common_dir: common, config }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_format_keys() {
        let listing = "core.repositoryformatversion=1\ncore.filemode=true\ncore.bare=false\n\
                       core.hookspath=/srv/hooks\ncore.sshcommand=ssh -i key\n\
                       remote.origin.url=https://x-access-token:ghs_secret@github.com/a/b\n\
                       credential.helper=store\nextensions.objectformat=sha256\nuser.name=agent\n\
                       core.fsmonitor=rm -rf /\nhttp.extraheader=AUTHORIZATION: basic abc\n";
        let text = sanitized_config(listing);
        assert_eq!(
            text,
            "[core]\n\trepositoryformatversion = 1\n\tfilemode = true\n\tbare = false\n\
             [extensions]\n\tobjectformat = sha256\n"
        );
        assert_eq!(sanitized_config(""), "[core]\n");
    }

    #[test]
    fn finds_the_common_dir_of_a_linked_worktree() {
        use sre_gitwork::testing::{git, init_repo};
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("repo");
        init_repo(&repo);
        std::fs::write(repo.join("a"), "a\n").unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "a"]);
        let wt = root.path().join("wt");
        git(&repo, &["worktree", "add", "-q", "--detach", wt.to_str().unwrap()]);
        let common = common_dir(&wt).unwrap().unwrap();
        assert_eq!(common, repo.join(".git").canonicalize().unwrap());
        assert_eq!(common_dir(&repo).unwrap(), None, "a clone's .git is a directory");
        std::fs::write(wt.join(".git"), "nonsense").unwrap();
        assert!(common_dir(&wt).unwrap_err().to_string().contains("gitdir:"));
    }
}
