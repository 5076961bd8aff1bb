//! Running one command: its own process group, stdout and stderr into one pipe (so the tail keeps their
//! interleaving), rlimits set in the child before exec (inherited by everything it starts), a wall-clock
//! timeout that kills the whole group, and a bounded buffer of the output's end.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::config::Limits;

/// How long the output pipe may stay open after the command ended (a straggler holding it) before the
/// tail is taken as it is.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What a command did.
#[derive(Debug)]
pub struct RawRun {
    /// The exit code, or 128 + signal number when it was killed by a signal.
    pub exit_code: i32,
    pub timed_out: bool,
    /// The end of the combined stdout/stderr (at most `keep` bytes, up to twice that while reading).
    pub output: Vec<u8>,
    pub duration: Duration,
}

/// Runs `argv` in `cwd` with exactly `env` (the service's own environment is not inherited), stdin closed
/// and `limits` applied. On timeout the process group is killed; any process left in the group after the
/// command ends is killed too.
pub async fn run(
    argv: &[OsString],
    cwd: &Path,
    env: &[(OsString, OsString)],
    timeout: Duration,
    keep: usize,
    limits: Option<Limits>,
) -> std::io::Result<RawRun> {
    let (program, args) = argv.split_first().ok_or_else(|| std::io::Error::other("empty command"))?;
    let (reader, writer) = std::io::pipe()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .kill_on_drop(true)
        .process_group(0);
    if let Some(limits) = limits {
        // SAFETY: the closure runs in the forked child before exec and only calls setrlimit(2), which is
        // async-signal-safe; it allocates nothing and touches no lock.
        unsafe {
            cmd.pre_exec(move || set_rlimits(&limits));
        }
    }
    let start = Instant::now();
    let spawned = cmd.spawn();
    // Our copies of the pipe's write end go with the Command, so EOF comes when the command's side closes.
    drop(cmd);
    let mut child = spawned?;
    let pid = child.id();

    let buf = Arc::new(Mutex::new(Vec::new()));
    let rx = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let drain = tokio::spawn(drain(rx, buf.clone(), keep));

    let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => (status?, false),
        Err(_) => {
            if let Some(pid) = pid {
                kill_group(pid);
            }
            (child.wait().await?, true)
        }
    };
    let duration = start.elapsed();
    if let Some(pid) = pid {
        // Background processes the command left behind (none survive bwrap's PID namespace anyway).
        kill_group(pid);
    }
    if tokio::time::timeout(DRAIN_GRACE, drain).await.is_err() {
        tracing::warn!("output pipe still open after the command ended; tail taken as is");
    }
    let output = std::mem::take(&mut *buf.lock().unwrap_or_else(|e| e.into_inner()));
    let exit_code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(RawRun { exit_code, timed_out, output, duration })
}

/// Applies `limits` to the calling process (meant for a child between fork and exec). CPU: SIGXCPU at the
/// soft limit, SIGKILL 5 s later; address space; largest file written; no core dumps.
pub(crate) fn set_rlimits(limits: &Limits) -> std::io::Result<()> {
    let set = |resource, soft: u64, hard: u64| {
        let lim = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard as libc::rlim_t };
        // SAFETY: setrlimit reads the struct we pass by pointer for the duration of the call.
        if unsafe { libc::setrlimit(resource, &lim) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    };
    set(libc::RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds.saturating_add(5))?;
    set(libc::RLIMIT_AS, limits.memory_bytes, limits.memory_bytes)?;
    set(libc::RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes)?;
    set(libc::RLIMIT_CORE, 0, 0)
}

async fn drain(mut rx: tokio::net::unix::pipe::Receiver, buf: Arc<Mutex<Vec<u8>>>, keep: usize) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match rx.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                b.extend_from_slice(&chunk[..n]);
                if b.len() > 2 * keep {
                    let cut = b.len() - keep;
                    b.drain(..cut);
                }
            }
        }
    }
}

/// SIGKILL to every process in the group led by `pid` (spawned with `process_group(0)`).
pub fn kill_group(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else { return };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid addresses the process group we
    // created for this child, and pgid > 1 rules out the "every process" (-1) form.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<OsString> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    fn path_env() -> Vec<(OsString, OsString)> {
        vec![("PATH".into(), "/usr/bin:/bin".into())]
    }

    #[tokio::test]
    async fn combines_stdout_and_stderr_in_order() {
        let run = run(
            &sh("echo one; echo two >&2; echo three; exit 4"),
            Path::new("/"),
            &path_env(),
            Duration::from_secs(10),
            8192,
            None,
        )
        .await
        .unwrap();
        assert_eq!(run.output, b"one\ntwo\nthree\n");
        assert_eq!(run.exit_code, 4);
        assert!(!run.timed_out);
    }

    #[tokio::test]
    async fn does_not_inherit_the_service_environment() {
        let run = run(&sh("env"), Path::new("/"), &path_env(), Duration::from_secs(10), 8192, None).await.unwrap();
        let env = String::from_utf8(run.output).unwrap();
        assert!(env.contains("PATH=/usr/bin:/bin"));
        assert!(!env.contains("CARGO_PKG_NAME"), "{env}");
    }

    #[tokio::test]
    async fn keeps_only_the_end_of_long_output() {
        let run =
            run(&sh("seq 1 200000"), Path::new("/"), &path_env(), Duration::from_secs(30), 1024, None).await.unwrap();
        assert!(run.output.len() <= 2048);
        assert!(run.output.ends_with(b"199999\n200000\n"));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let start = Instant::now();
        // The grandchild keeps the pipe open: only a group kill ends the wait.
        let run = run(
            &sh("echo started; sleep 30 & sleep 30"),
            Path::new("/"),
            &path_env(),
            Duration::from_millis(500),
            8192,
            None,
        )
        .await
        .unwrap();
        assert!(run.timed_out);
        assert_eq!(run.exit_code, 128 + libc::SIGKILL);
        assert_eq!(run.output, b"started\n");
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn applies_the_limits_in_the_child() {
        let limits = Limits { cpu_seconds: 7, memory_bytes: 512 << 20, file_size_bytes: 1 << 20, tmpfs_bytes: 0 };
        let run = run(
            &sh("ulimit -t; ulimit -v; ulimit -f; ulimit -c; head -c 2000000 /dev/zero > big; echo rc=$?; rm -f big"),
            &std::env::temp_dir(),
            &path_env(),
            Duration::from_secs(10),
            8192,
            Some(limits),
        )
        .await
        .unwrap();
        let out = String::from_utf8_lossy(&run.output);
        // sh reports -v and -f in KiB and 512-byte blocks.
        assert!(out.starts_with("7\n524288\n2048\n0\n"), "{out}");
        assert!(out.contains("rc=") && !out.contains("rc=0"), "a 2 MB write past a 1 MiB RLIMIT_FSIZE: {out}");
    }
}
