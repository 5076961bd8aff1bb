//! The local side of `sre-agent run`: which repository under the repos dir, which commit, and (with
//! `--command`) the job log made by running the failing command in a throwaway worktree.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sre_cilog::LogBounder;
use sre_gitwork::{GitError, Repo};

use crate::error::{CliError, CliResult};

/// A physical output line longer than this is split (a progress bar that never ends its line).
const MAX_LINE_BYTES: usize = 64 * 1024;
/// How long output may keep flowing after the command exited (a background child holding the pipe).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// A repository the gateway can work on: `owner/name` and where it is.
#[derive(Clone, Debug)]
pub struct LocalRepo {
    pub full_name: String,
    pub path: PathBuf,
    pub repo: Repo,
}

/// Resolves `--repo`: `owner/name` under `repos_dir`, or a path inside `repos_dir/owner/name`.
pub fn resolve_repo(arg: &str, repos_dir: &Path) -> CliResult<LocalRepo> {
    let repos_shown = repos_dir.display();
    let looks_like_name = arg.split('/').count() == 2 && !arg.starts_with('.') && !arg.starts_with('/');
    if looks_like_name && let Ok(repo) = Repo::open(repos_dir, arg) {
        return Ok(LocalRepo { full_name: arg.to_owned(), path: repo.path().to_owned(), repo });
    }
    let as_path = Path::new(arg);
    if !as_path.exists() {
        return Err(CliError::new(if looks_like_name {
            format!(
                "no repository {arg} under the repos dir {repos_shown} (expected a git repository at \
                 {repos_shown}/{arg}; set SRE_REPOS_DIR or --repos-dir to the gateway's repos dir)"
            )
        } else {
            format!("--repo {arg:?}: no such directory, and not an owner/name")
        }));
    }
    let canonical = as_path.canonicalize().map_err(|e| CliError::new(format!("--repo {arg}: {e}")))?;
    let root = repos_dir.canonicalize().map_err(|e| {
        CliError::new(format!("the repos dir {repos_shown} ({e}): set SRE_REPOS_DIR or --repos-dir to the gateway's"))
    })?;
    let outside = || {
        CliError::new(format!(
            "--repo {arg} is not a repository under the repos dir {} (the gateway works on <repos dir>/owner/name; \
             set SRE_REPOS_DIR or --repos-dir to the gateway's)",
            root.display()
        ))
    };
    let rel = canonical.strip_prefix(&root).map_err(|_| outside())?;
    let parts: Vec<&str> = rel
        .components()
        .take(2)
        .map(|c| match c {
            Component::Normal(p) => p.to_str().unwrap_or_default(),
            _ => "",
        })
        .collect();
    let [owner, name] = parts[..] else { return Err(outside()) };
    let full_name = format!("{owner}/{name}");
    match Repo::open(&root, &full_name) {
        Ok(repo) => Ok(LocalRepo { full_name, path: repo.path().to_owned(), repo }),
        Err(GitError::InvalidName(_)) => Err(CliError::new(format!(
            "--repo {arg}: {full_name} is not a repository name the gateway accepts (owner/name of [A-Za-z0-9._-])"
        ))),
        Err(_) => Err(CliError::new(format!("--repo {arg}: {}/{full_name} is not a git repository", root.display()))),
    }
}

/// A commit of the repository: its full SHA, and the branch the revision named, if it named one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    pub branch: Option<String>,
}

/// Resolves `--sha` (any revision) with `git rev-parse` in the repository.
pub async fn resolve_commit(repo: &LocalRepo, rev: &str) -> CliResult<Commit> {
    let rev = rev.trim();
    if rev.is_empty() || rev.starts_with('-') {
        return Err(CliError::new(format!("--sha {rev:?} is not a revision")));
    }
    let git = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sre_gitwork::git(&repo.path, &args, None).await.map(|out| String::from_utf8_lossy(&out).trim().to_owned())
    };
    let sha = git(vec!["rev-parse".into(), "--verify".into(), "--quiet".into(), format!("{rev}^{{commit}}")])
        .await
        .map_err(|_| CliError::new(format!("--sha {rev}: no such commit in {}", repo.path.display())))?;
    let symbolic = if rev == "HEAD" {
        git(vec!["symbolic-ref".into(), "--quiet".into(), "HEAD".into()]).await.ok()
    } else {
        git(vec!["rev-parse".into(), "--symbolic-full-name".into(), rev.to_owned()]).await.ok()
    };
    let branch = symbolic.and_then(|s| s.strip_prefix("refs/heads/").map(str::to_owned));
    Ok(Commit { sha, branch })
}

/// What running the failing command produced.
#[derive(Debug)]
pub struct StepLog {
    /// The job log, in GitHub Actions format, bounded.
    pub log: String,
    pub exit_code: i32,
    pub output_lines: usize,
    pub elapsed: Duration,
}

/// Runs `command` with `bash -e` in a throwaway worktree of `repo` at `sha` and writes what it printed as the
/// log of a GitHub Actions job whose step ran it: a `##[group]Run` header with the script and shell, the
/// output with a timestamp per line (stdout and stderr interleaved, as the runner's pty has them), and the
/// runner's verdict. The worktree's path in the output is written as the runner's checkout,
/// `/home/runner/work/<name>/<name>`, so file references read as they would on GitHub. Refuses a command that
/// passes: there is nothing to fix.
pub async fn step_log(
    repo: &LocalRepo,
    sha: &str,
    command: &str,
    timeout: Duration,
    max_bytes: usize,
) -> CliResult<StepLog> {
    if command.trim().is_empty() {
        return Err(CliError::new("--command is empty"));
    }
    let wt = repo.repo.worktree(sha).await.map_err(|e| {
        CliError::new(format!("cannot check out {} at {sha} in a throwaway worktree: {e}", repo.full_name))
    })?;
    let name = repo.full_name.rsplit('/').next().unwrap_or_default();
    let checkout = format!("/home/runner/work/{name}/{name}");
    let dir = wt.path().to_owned();
    let command_owned = command.to_owned();
    let ran = tokio::task::spawn_blocking(move || run_step(&dir, &command_owned, timeout, &checkout, max_bytes))
        .await
        .map_err(|e| CliError::new(format!("running --command: {e}")))?;
    wt.remove().await;
    let ran = ran?;
    if ran.exit_code == 0 {
        return Err(CliError::new(format!(
            "`{command}` passed at {} (exit code 0): nothing to fix; give the command that fails in CI",
            sre_domain::short_sha(sha)
        )));
    }
    Ok(ran)
}

/// Output lines collected by the reader thread.
struct Collected {
    bounder: LogBounder,
    lines: usize,
    done: bool,
}

fn run_step(dir: &Path, command: &str, timeout: Duration, checkout: &str, max_bytes: usize) -> CliResult<StepLog> {
    let started = Instant::now();
    let mut bounder = LogBounder::new(max_bytes);
    let mut header = |text: &str| bounder.feed(format!("{} {text}\n", timestamp(SystemTime::now())).as_bytes());
    let mut script = command.lines();
    header(&format!("##[group]Run {}", script.next().unwrap_or_default()));
    for line in command.lines() {
        header(line);
    }
    header("shell: /usr/bin/bash -e {0}");
    header("##[endgroup]");

    let (reader, writer) = std::io::pipe().map_err(|e| CliError::new(format!("cannot create a pipe: {e}")))?;
    let mut child = {
        let mut cmd = Command::new("bash");
        cmd.arg("-e").arg("-c").arg(command).current_dir(dir).stdin(Stdio::null());
        let stderr = writer.try_clone().map_err(|e| CliError::new(format!("cannot create a pipe: {e}")))?;
        cmd.stdout(writer).stderr(stderr);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        // `cmd` (and with it the write ends) is dropped here: the reader sees EOF once the command's done.
        cmd.spawn().map_err(|e| CliError::new(format!("cannot run bash: {e}")))?
    };
    let collected = Arc::new(Mutex::new(Collected { bounder, lines: 0, done: false }));
    let sink = Arc::clone(&collected);
    let rewrite = [dir.display().to_string(), dir.canonicalize().unwrap_or_default().display().to_string()];
    let checkout = checkout.to_owned();
    std::thread::spawn(move || read_output(reader, &sink, &rewrite, &checkout));

    let deadline = started + timeout;
    let pgid = child.id() as i32;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                kill_group(pgid);
                let _ = child.wait();
                return Err(CliError::new(format!(
                    "`{command}` did not finish within {} s and was killed: raise --command-timeout",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(CliError::new(format!("waiting for `{command}`: {e}"))),
        }
    };
    // Output still in the pipe is read; a background child that keeps it open is stopped after a grace.
    let drained = Instant::now() + DRAIN_GRACE;
    while !collected.lock().map(|c| c.done).unwrap_or(true) {
        if Instant::now() >= drained {
            kill_group(pgid);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let exit_code = std::os::unix::process::ExitStatusExt::signal(&status).map_or_else(
        || status.code().unwrap_or(1),
        |signal| 128 + signal, // as bash reports a step killed by a signal
    );
    let elapsed = started.elapsed();
    let mut guard = collected.lock().map_err(|_| CliError::new("the output reader panicked"))?;
    let lines = guard.lines;
    let mut bounder = std::mem::replace(&mut guard.bounder, LogBounder::new(0));
    drop(guard);
    let verdict = format!("##[error]Process completed with exit code {exit_code}.");
    bounder.feed(format!("{} {verdict}\n", timestamp(SystemTime::now())).as_bytes());
    Ok(StepLog { log: bounder.finish(), exit_code, output_lines: lines, elapsed })
}

/// Reads the merged output, one timestamped line at a time as it arrives.
fn read_output(mut reader: std::io::PipeReader, sink: &Mutex<Collected>, rewrite: &[String], checkout: &str) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let emit = |raw: &[u8]| {
        let mut text = String::from_utf8_lossy(raw).into_owned();
        for from in rewrite.iter().filter(|p| !p.is_empty()) {
            if text.contains(from.as_str()) {
                text = text.replace(from.as_str(), checkout);
            }
        }
        if let Ok(mut c) = sink.lock() {
            c.bounder.feed(format!("{} {text}\n", timestamp(SystemTime::now())).as_bytes());
            c.lines += 1;
        }
    };
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=i).collect();
                    emit(&line[..line.len() - 1]);
                }
                while pending.len() > MAX_LINE_BYTES {
                    let line: Vec<u8> = pending.drain(..MAX_LINE_BYTES).collect();
                    emit(&line);
                }
            }
        }
    }
    if !pending.is_empty() {
        emit(&pending);
    }
    if let Ok(mut c) = sink.lock() {
        c.done = true;
    }
}

fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the process group we created for the command.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// A GitHub Actions log timestamp: RFC 3339 in UTC with seven fractional digits.
pub fn timestamp(at: SystemTime) -> String {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:07}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos() / 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_the_runners() {
        let at = |secs: u64, nanos: u32| timestamp(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(at(1_700_000_000, 123_456_789), "2023-11-14T22:13:20.1234567Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.0000000Z");
        assert_eq!(at(4_102_444_799, 999_999_999), "2099-12-31T23:59:59.9999999Z");
        // sre-cilog strips it as a runner timestamp
        let line = format!("{} hello", at(1_700_000_000, 5));
        assert_eq!(sre_cilog::normalize::strip_timestamp(&line), ("hello", true));
    }
}
