//! Running an external scanner: found on a PATH, bounded by a timeout, killed with its whole process group
//! when the timeout fires.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

/// Why a tool produced no output.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start: {0}")]
    Spawn(std::io::Error),
    #[error("timed out after {0:?}; killed")]
    Timeout(Duration),
    #[error("could not collect its output: {0}")]
    Wait(std::io::Error),
}

/// The executable `name` in the first directory of `path_env` (a `PATH` value) that holds one.
pub fn which(name: &str, path_env: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_env)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// What a cached baseline remembers of a tool: where it is and which file it is. An upgrade or a replacement
/// in place (pip, apt, an image rebuild) changes its size or modification time.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ToolId {
    pub path: PathBuf,
    pub len: u64,
    pub modified_ns: u128,
}

/// The identity of the executable at `path` (symlinks resolved), or `None` when it cannot be read.
pub fn identify(path: &Path) -> Option<ToolId> {
    let path = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    let modified_ns = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    Some(ToolId { path, len: meta.len(), modified_ns })
}

/// The version a tool printed: the last word of the first non-empty line of stdout (`8.30.1` of gitleaks,
/// `Version: 0.76.0` of trivy, `syft 1.18.1`), printable ASCII only, at most 64 characters.
pub fn version_word(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    line.split_whitespace().last().unwrap_or_default().chars().filter(char::is_ascii_graphic).take(64).collect()
}

/// Runs `program args` in `cwd` with `envs` added and stdin closed, collecting stdout and stderr. The tool
/// gets its own process group; on timeout the whole group is killed.
pub async fn run(
    program: &Path,
    args: &[OsString],
    cwd: &Path,
    envs: &[(&str, &str)],
    timeout: Duration,
) -> Result<Output, RunError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let child = cmd.spawn().map_err(RunError::Spawn)?;
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out.map_err(RunError::Wait),
        Err(_) => {
            if let Some(pid) = pid {
                kill_group(pid);
            }
            Err(RunError::Timeout(timeout))
        }
    }
}

/// SIGKILL to every process in the group led by `pid` (spawned with `process_group(0)`).
pub fn kill_group(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid addresses the process group we
    // created for this child, and pgid > 1 rules out the "every process" (-1) form.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// The last non-empty line of a tool's stderr, without ANSI colour codes, at most 300 characters: enough to
/// explain a failure in `ScannerRun.detail` without echoing file contents.
pub fn last_line(stderr: &[u8]) -> String {
    let text = strip_ansi(&String::from_utf8_lossy(stderr));
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default().chars().take(300).collect()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_on_a_path() {
        let path = std::env::join_paths(["/nonexistent", "/bin", "/usr/bin"]).unwrap();
        assert!(which("sh", &path).is_some());
        assert!(which("definitely-not-a-tool-xyz", &path).is_none());
        assert!(which("sh", OsStr::new("/nonexistent")).is_none());
    }

    #[test]
    fn identifies_tools_and_reads_versions() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("t");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let a = identify(&tool).unwrap();
        std::os::unix::fs::symlink(&tool, dir.path().join("link")).unwrap();
        assert_eq!(identify(&dir.path().join("link")).unwrap(), a, "a symlink is the file it points to");
        std::fs::write(&tool, "#!/bin/sh\necho 2\n").unwrap();
        assert_ne!(identify(&tool).unwrap(), a, "replaced in place");
        assert!(identify(&dir.path().join("missing")).is_none());
        assert_eq!(version_word(b"8.30.1\n"), "8.30.1");
        assert_eq!(version_word(b"\nVersion: 0.76.0\nVulnerability DB:\n"), "0.76.0");
        assert_eq!(version_word(b"syft 1.18.1\n"), "1.18.1");
        assert_eq!(version_word(b""), "");
        assert_eq!(version_word("v1\u{1b}[0m\n".as_bytes()), "v1[0m");
    }

    #[test]
    fn cleans_stderr_lines() {
        let err = b"\x1b[90m7:33AM\x1b[0m \x1b[31mFTL\x1b[0m \x1b[1mstat /x: no such file\x1b[0m\n\n";
        assert_eq!(last_line(err), "7:33AM FTL stat /x: no such file");
        assert_eq!(last_line(b""), "");
    }

    #[tokio::test]
    async fn kills_a_hung_tool_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let start = std::time::Instant::now();
        let args: Vec<OsString> = vec!["-c".into(), script.into()];
        let err = run(Path::new("/bin/sh"), &args, Path::new("/"), &[], Duration::from_millis(500)).await.unwrap_err();
        assert!(matches!(err, RunError::Timeout(_)), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
        // The background grandchild went down with the group (gone, or a zombie awaiting its reaper).
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        assert!(stat.is_empty() || stat.contains(") Z "), "grandchild still running: {stat}");
    }

    #[tokio::test]
    async fn collects_output() {
        let args: Vec<OsString> = vec!["-c".into(), "echo out; echo err >&2; exit 3".into()];
        let out = run(Path::new("/bin/sh"), &args, Path::new("/"), &[], Duration::from_secs(10)).await.unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(last_line(&out.stderr), "err");
        assert_eq!(out.status.code(), Some(3));
    }
}
