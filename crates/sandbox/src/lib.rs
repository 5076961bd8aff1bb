//! The sandbox sre-agent runs repository code in: the validator's re-run of a failing CI step, and the
//! planner's fixers (`cargo fmt`, `ruff`, `prettier`, ...). One [`Sandbox`] per process, made once at start
//! by [`Sandbox::probe`], which proves that bubblewrap can create its namespaces here (or fails: the process
//! does not start) and lays out what the sandbox shows ([`layout`]).
//!
//! Modes (`SRE_SANDBOX`, [`SandboxMode`]): `required` (the default) or `unsafe-none`, which runs the code
//! with the service's own user, network and filesystem, says so at WARN on every run and reports
//! `unsafe-none` in every [`Output`]. There is no silent fallback.
//!
//! Inside bubblewrap: new user (no capabilities, no nested user namespaces), PID, network (loopback only),
//! IPC, UTS and cgroup namespaces; a new session (no terminal); killed with its parent. The root is an empty
//! read-only tmpfs holding: `/usr` and the `/lib*`, `/bin`, `/sbin` links, read-only; a short list of `/etc`
//! files ([`layout::ETC`]; no `shadow`); the toolchains found, read-only; a fresh `/dev` and `/proc`; a tmpfs
//! `/tmp` and a tmpfs `HOME` (`/home/sandbox`); the worktree, the only writable host directory, at
//! `/work/repo` whatever its host path (so a checkout under `/tmp` works too); and, read-only, the one git
//! dir the worktree points into, with a sanitized config ([`git`]). Never the agent's data dir, the repos
//! dir, other repositories, or the host's home. Limits ([`Limits`]): RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE per
//! process, no core dumps, tmpfs sizes, a wall-clock timeout that kills the whole process group (and with
//! bwrap's PID namespace, everything the command started), a bounded tail of the output.
//!
//! Layout: `config.rs` (mode, limits, clap args, host facts), `layout.rs` (binds, PATH, environment),
//! `git.rs` (the worktree's git dir), `runner.rs` (process group, rlimits, timeout, output), `error.rs`.

pub mod config;
pub mod error;
pub mod git;
pub mod layout;
pub mod runner;

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use config::{HostEnv, Limits, SandboxArgs, SandboxConfig, SandboxMode};
pub use error::SandboxError;
pub use layout::Layout;

/// `Output::sandbox` for a run in bubblewrap.
pub const BWRAP: &str = "bwrap";
/// `Output::sandbox` for a run without a sandbox.
pub const UNSAFE_NONE: &str = "unsafe-none";

/// What the probe runs inside a fresh sandbox: each check names itself when it fails.
const PROBE_SCRIPT: &str = r#"
fail() { echo "sre-sandbox-probe: $1"; exit 1; }
[ "$$" -le 4 ] || fail "no PID namespace (pid $$)"
n=$(tail -n +3 /proc/net/dev | grep -vc '^ *lo:') || true
[ "$n" = 0 ] || fail "network interfaces other than lo are visible"
grep -Eq '^CapEff:[[:space:]]*0+$' /proc/self/status || fail "capabilities were not dropped"
touch /sre-probe 2>/dev/null && fail "the root is writable"
touch /usr/sre-probe 2>/dev/null && fail "/usr is writable"
touch /work/repo/.sre-probe || fail "the worktree is not writable"
rm -f /work/repo/.sre-probe
touch /tmp/sre-probe "$HOME/sre-probe" || fail "/tmp or HOME is not writable"
echo "sre-sandbox-probe: ok"
"#;

/// The executable `name` in the first directory of `path_env` that holds one.
pub fn which(name: &str, path_env: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_env)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// One command to run in a worktree.
#[derive(Clone, Debug)]
pub struct Job<'a> {
    /// The worktree on the host; the only writable host directory in the sandbox.
    pub worktree: &'a Path,
    /// Where the command starts, relative to the worktree ("" for its root); `..` and absolute paths are
    /// refused.
    pub workdir: &'a str,
    /// The command, e.g. `["bash", "-e", "-c", script]`.
    pub argv: &'a [OsString],
    /// Variables of the command (on top of the sandbox's own environment).
    pub env: &'a [(String, String)],
    pub timeout: Duration,
    /// Bytes of the output's end kept.
    pub keep_bytes: usize,
}

/// What a job did.
#[derive(Debug)]
pub struct Output {
    /// The exit code, or 128 + signal number when it was killed by a signal.
    pub exit_code: i32,
    pub timed_out: bool,
    /// The end of the combined stdout/stderr (at most twice `keep_bytes`).
    pub output: Vec<u8>,
    pub duration: Duration,
    /// [`BWRAP`] or [`UNSAFE_NONE`].
    pub sandbox: &'static str,
}

#[derive(Debug)]
enum Kind {
    Bwrap(PathBuf),
    UnsafeNone,
}

#[derive(Debug)]
struct Inner {
    kind: Kind,
    layout: Layout,
    limits: Limits,
    host: HostEnv,
}

/// The process's sandbox (cheap to clone).
#[derive(Clone, Debug)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl Sandbox {
    /// Makes the sandbox of `config` and proves it works: in mode `required`, bwrap must be on `PATH` and a
    /// probe sandbox with the production layout must start and pass its checks (PID and network namespaces,
    /// no capabilities, read-only root, writable worktree, tmp and home). Blocking (a fraction of a second).
    pub fn probe(config: SandboxConfig) -> Result<Self, SandboxError> {
        let limits = config.limits;
        match config.mode {
            SandboxMode::UnsafeNone => {
                tracing::warn!(
                    sandbox = UNSAFE_NONE,
                    "SRE_SANDBOX=unsafe-none: unsafe: no sandbox: repository code will run with this service's \
                     user, network and filesystem"
                );
                let inner = Inner { kind: Kind::UnsafeNone, layout: Layout::default(), limits, host: config.host };
                Ok(Self { inner: Arc::new(inner) })
            }
            SandboxMode::Required => {
                let bwrap = which("bwrap", &config.host.path).ok_or(SandboxError::BwrapMissing)?;
                let layout = Layout::plan(&config.host, &config.toolchains, &config.denied)?;
                let sandbox = Self {
                    inner: Arc::new(Inner { kind: Kind::Bwrap(bwrap.clone()), layout, limits, host: config.host }),
                };
                sandbox.run_probe()?;
                for (path, why) in &sandbox.inner.layout.skipped {
                    tracing::info!(path = %path.display(), reason = %why, "sandbox: PATH entry not shown inside");
                }
                tracing::info!(
                    sandbox = BWRAP,
                    bwrap = %bwrap.display(),
                    toolchains = %sandbox.inner.layout.toolchains.iter().map(|b| b.src.display().to_string())
                        .collect::<Vec<_>>().join(":"),
                    cpu_seconds = limits.cpu_seconds,
                    memory_mb = limits.memory_bytes >> 20,
                    "sandbox ready: bubblewrap, no network, own PID namespace, only the worktree writable"
                );
                Ok(sandbox)
            }
        }
    }

    fn run_probe(&self) -> Result<(), SandboxError> {
        let wt = tempfile::Builder::new().prefix("sre-sandbox-probe-").tempdir()?;
        let argv: Vec<OsString> = vec!["sh".into(), "-c".into(), PROBE_SCRIPT.into()];
        let full = self.bwrap_argv(wt.path(), "", &argv, None)?;
        let limits = self.inner.limits;
        let mut cmd = std::process::Command::new(&full[0]);
        cmd.args(&full[1..])
            .env_clear()
            .envs(self.inner.layout.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null());
        // SAFETY: as in runner::run, the closure only calls setrlimit(2) between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || runner::set_rlimits(&limits));
        }
        let out = cmd.output().map_err(|e| SandboxError::ProbeFailed(format!("{}: {e}", full[0].display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && text.lines().any(|l| l == "sre-sandbox-probe: ok") {
            return Ok(());
        }
        let said = text.lines().find(|l| l.starts_with("sre-sandbox-probe:")).map(str::to_owned);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail =
            said.unwrap_or_else(|| format!("{} ({})", stderr.trim().chars().take(300).collect::<String>(), out.status));
        Err(SandboxError::ProbeFailed(detail))
    }

    /// [`BWRAP`] or [`UNSAFE_NONE`].
    pub fn name(&self) -> &'static str {
        match self.inner.kind {
            Kind::Bwrap(_) => BWRAP,
            Kind::UnsafeNone => UNSAFE_NONE,
        }
    }

    pub fn mode(&self) -> SandboxMode {
        match self.inner.kind {
            Kind::Bwrap(_) => SandboxMode::Required,
            Kind::UnsafeNone => SandboxMode::UnsafeNone,
        }
    }

    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// Where a command sees the worktree `worktree` (`GITHUB_WORKSPACE`): `/work/repo` in bubblewrap, the host
    /// path without a sandbox.
    pub fn workspace(&self, worktree: &Path) -> PathBuf {
        match self.inner.kind {
            Kind::Bwrap(_) => PathBuf::from(layout::WORKTREE),
            Kind::UnsafeNone => worktree.to_owned(),
        }
    }

    /// The full bwrap command line for `argv` in `worktree`/`workdir`, with `git` shown read-only.
    pub fn bwrap_argv(
        &self,
        worktree: &Path,
        workdir: &str,
        argv: &[OsString],
        git: Option<&git::GitView>,
    ) -> Result<Vec<OsString>, SandboxError> {
        let Kind::Bwrap(bwrap) = &self.inner.kind else {
            return Err(SandboxError::InvalidJob("no bwrap in mode unsafe-none".into()));
        };
        let workdir = checked_workdir(workdir)?;
        let l = &self.inner.layout;
        let tmpfs_size = self.inner.limits.tmpfs_bytes.to_string();
        let mut a: Vec<OsString> = vec![bwrap.into()];
        let mut push = |items: &[&OsStr]| a.extend(items.iter().map(|s| s.to_os_string()));
        let o = OsStr::new;
        push(&[
            o("--unshare-user"),
            o("--disable-userns"),
            o("--cap-drop"),
            o("ALL"),
            o("--unshare-pid"),
            o("--unshare-net"),
            o("--unshare-ipc"),
            o("--unshare-uts"),
            o("--unshare-cgroup-try"),
            o("--new-session"),
            o("--die-with-parent"),
        ]);
        for m in &l.system {
            match m {
                layout::SystemMount::Dir(d) => push(&[o("--ro-bind"), d.as_os_str(), d.as_os_str()]),
                layout::SystemMount::Symlink { target, path } => {
                    push(&[o("--symlink"), target.as_os_str(), path.as_os_str()]);
                }
            }
        }
        for e in &l.etc {
            push(&[o("--ro-bind-try"), e.as_os_str(), e.as_os_str()]);
        }
        push(&[o("--dev"), o("/dev"), o("--proc"), o("/proc")]);
        push(&[o("--size"), o(&tmpfs_size), o("--tmpfs"), o("/tmp")]);
        push(&[o("--size"), o(&tmpfs_size), o("--tmpfs"), o(layout::HOME)]);
        for b in &l.toolchains {
            push(&[o("--ro-bind"), b.src.as_os_str(), b.dest.as_os_str()]);
        }
        if let Some(g) = git {
            let config_dest = g.common_dir.join("config");
            push(&[o("--ro-bind"), g.common_dir.as_os_str(), g.common_dir.as_os_str()]);
            push(&[o("--ro-bind"), g.config.path().as_os_str(), config_dest.as_os_str()]);
        }
        push(&[o("--bind"), worktree.as_os_str(), o(layout::WORKTREE)]);
        // Last: everything not mounted above (the root tmpfs and the mount points on it) is read-only.
        push(&[o("--remount-ro"), o("/")]);
        let chdir = Path::new(layout::WORKTREE).join(workdir);
        push(&[o("--chdir"), chdir.as_os_str(), o("--")]);
        a.extend(argv.iter().cloned());
        Ok(a)
    }

    /// Runs `job`. A command that fails, is killed or times out is an [`Output`]; errors are a job this
    /// sandbox refuses (a workdir outside the worktree) or a command that could not start.
    pub async fn run(&self, job: &Job<'_>) -> Result<Output, SandboxError> {
        let program = job.argv.first().ok_or_else(|| SandboxError::InvalidJob("empty command".into()))?;
        let workdir = checked_workdir(job.workdir)?;
        let worktree = std::fs::canonicalize(job.worktree)
            .map_err(|e| SandboxError::InvalidJob(format!("worktree {}: {e}", job.worktree.display())))?;
        let spawn_err = |source| SandboxError::Spawn { program: program.to_string_lossy().into_owned(), source };
        let raw = match &self.inner.kind {
            Kind::Bwrap(_) => {
                let git = git::view(&worktree).await?;
                let argv = self.bwrap_argv(&worktree, job.workdir, job.argv, git.as_ref())?;
                let mut env = self.inner.layout.env.clone();
                env.extend(job.env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))));
                let raw =
                    runner::run(&argv, Path::new("/"), &env, job.timeout, job.keep_bytes, Some(self.inner.limits))
                        .await
                        .map_err(spawn_err)?;
                // The sanitized git config is bound by path: it must outlive the run. (bwrap's own refusals, e.g.
                // a --chdir into a directory that does not exist, come back as exit 1 with "bwrap: ..." output.)
                drop(git);
                raw
            }
            Kind::UnsafeNone => {
                tracing::warn!(
                    sandbox = UNSAFE_NONE,
                    "unsafe: no sandbox: running repository code with this service's user, network and filesystem"
                );
                let scratch = tempfile::Builder::new().prefix("sre-unsafe-home-").tempdir()?;
                let env = self.unsafe_env(scratch.path(), job.env);
                runner::run(
                    job.argv,
                    &worktree.join(workdir),
                    &env,
                    job.timeout,
                    job.keep_bytes,
                    Some(self.inner.limits),
                )
                .await
                .map_err(spawn_err)?
            }
        };
        Ok(Output {
            exit_code: raw.exit_code,
            timed_out: raw.timed_out,
            output: raw.output,
            duration: raw.duration,
            sandbox: self.name(),
        })
    }

    /// The environment of a run without a sandbox: the host's PATH and toolchain homes (HOME moves to a
    /// scratch directory, so the toolchain homes are spelled out), the same offline settings as inside.
    fn unsafe_env(&self, scratch: &Path, job_env: &[(String, String)]) -> Vec<(OsString, OsString)> {
        let h = &self.inner.host;
        let home = h.home.clone();
        let under_home = |p: Option<&PathBuf>, sub: &str| p.cloned().or_else(|| home.as_ref().map(|x| x.join(sub)));
        let mut env: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), h.path.clone()),
            ("HOME".into(), scratch.into()),
            ("TMPDIR".into(), scratch.into()),
            ("LANG".into(), h.lang.clone().unwrap_or_else(|| "C.UTF-8".into())),
            ("CI".into(), "true".into()),
            ("TERM".into(), "dumb".into()),
        ];
        for (k, v) in [
            ("CARGO_HOME", under_home(h.cargo_home.as_ref(), ".cargo")),
            ("RUSTUP_HOME", under_home(h.rustup_home.as_ref(), ".rustup")),
            ("PYENV_ROOT", under_home(h.pyenv_root.as_ref(), ".pyenv")),
            ("GOPATH", under_home(h.gopath.as_ref(), "go")),
            ("GOMODCACHE", h.gomodcache.clone()),
            ("GOROOT", h.goroot.clone()),
            ("NVM_DIR", h.nvm_dir.clone()),
        ] {
            if let Some(v) = v {
                env.push((k.into(), v.into()));
            }
        }
        env.extend(layout::offline_env(h));
        env.extend(job_env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))));
        env
    }
}

/// `workdir` as a relative path that stays inside the worktree.
fn checked_workdir(workdir: &str) -> Result<PathBuf, SandboxError> {
    let p = Path::new(workdir);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(SandboxError::InvalidJob(format!(
                    "working directory {workdir:?} is not a relative path inside the worktree"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdirs_stay_inside_the_worktree() {
        assert_eq!(checked_workdir("").unwrap(), PathBuf::new());
        assert_eq!(checked_workdir("./a/b/").unwrap(), PathBuf::from("a/b"));
        for bad in ["../x", "a/../../b", "/etc", "a/.."] {
            assert!(checked_workdir(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_bwrap_argv_mounts_the_worktree_at_a_fixed_path_last() {
        let inner = Inner {
            kind: Kind::Bwrap("/usr/bin/bwrap".into()),
            layout: Layout {
                system: vec![
                    layout::SystemMount::Dir("/usr".into()),
                    layout::SystemMount::Symlink { target: "usr/bin".into(), path: "/bin".into() },
                ],
                etc: vec!["/etc/passwd".into()],
                toolchains: vec![layout::Bind { src: "/opt/go".into(), dest: "/opt/go".into() }],
                ..Layout::default()
            },
            limits: Limits { tmpfs_bytes: 1024, ..Limits::default() },
            host: HostEnv::default(),
        };
        let sandbox = Sandbox { inner: Arc::new(inner) };
        let argv =
            sandbox.bwrap_argv(Path::new("/tmp/sre-wt-x/wt"), "sub", &["make".into(), "test".into()], None).unwrap();
        let argv: Vec<&str> = argv.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(
            argv.join(" "),
            "/usr/bin/bwrap --unshare-user --disable-userns --cap-drop ALL --unshare-pid --unshare-net \
             --unshare-ipc --unshare-uts --unshare-cgroup-try --new-session --die-with-parent \
             --ro-bind /usr /usr --symlink usr/bin /bin --ro-bind-try /etc/passwd /etc/passwd \
             --dev /dev --proc /proc --size 1024 --tmpfs /tmp --size 1024 --tmpfs /home/sandbox \
             --ro-bind /opt/go /opt/go --bind /tmp/sre-wt-x/wt /work/repo --remount-ro / \
             --chdir /work/repo/sub -- make test"
        );
        assert!(sandbox.bwrap_argv(Path::new("/w"), "../x", &["true".into()], None).is_err());
    }
}
