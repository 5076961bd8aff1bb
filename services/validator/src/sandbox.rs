//! The sandbox the tests run in: bubblewrap (read-only root, private /tmp, no network, own PID namespace) or
//! none. `SRE_SANDBOX=auto|bwrap|none`, default `auto`.
//!
//! - `auto`: bwrap when it is on `PATH` and a probe sandbox starts; otherwise none, with one WARN at start.
//! - `bwrap`: bwrap is required. Until a probe succeeds the service never reports SERVING (its ready future
//!   keeps probing and logs a WARN each time) and calls answer UNAVAILABLE: tests never run unsandboxed.
//! - `none`: no sandbox (the tests can reach the network and write wherever the service may).

use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// `SRE_SANDBOX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxMode {
    Auto,
    Bwrap,
    None,
}

impl SandboxMode {
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") => Ok(Self::Auto),
            Some("bwrap") => Ok(Self::Bwrap),
            Some("none") => Ok(Self::None),
            Some(other) => Err(format!("SRE_SANDBOX={other:?}: expected auto, bwrap or none")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Bwrap => "bwrap",
            Self::None => "none",
        }
    }
}

/// The sandbox a test command runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sandbox {
    /// bubblewrap at this path.
    Bwrap(PathBuf),
    None,
}

impl Sandbox {
    /// `ValidateResponse.sandbox`: "bwrap" or "none".
    pub fn name(&self) -> &'static str {
        match self {
            Self::Bwrap(_) => "bwrap",
            Self::None => "none",
        }
    }

    /// The argv that runs `command` with `sh -c` in `wt`. Under bwrap: the whole filesystem read-only, a
    /// private /tmp, the worktree (which lives under /tmp, hence after `--tmpfs /tmp`) and `extra_rw` writable,
    /// `extra_ro` visible again read-only (the repository the worktree's `.git` points into), no network, its
    /// own PID namespace, killed with its parent.
    pub fn argv(&self, wt: &Path, command: &str, extra_ro: &[&Path]) -> Vec<OsString> {
        let shell: [OsString; 3] = ["sh".into(), "-c".into(), command.into()];
        let Self::Bwrap(bwrap) = self else { return shell.into() };
        let mut argv: Vec<OsString> = vec![bwrap.into()];
        let mut push = |items: &[&OsStr]| argv.extend(items.iter().map(|s| s.to_os_string()));
        push(&["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"].map(OsStr::new));
        for ro in extra_ro {
            push(&[OsStr::new("--ro-bind"), ro.as_os_str(), ro.as_os_str()]);
        }
        push(&[OsStr::new("--bind"), wt.as_os_str(), wt.as_os_str()]);
        push(&["--unshare-net", "--unshare-pid", "--die-with-parent"].map(OsStr::new));
        push(&[OsStr::new("--chdir"), wt.as_os_str(), OsStr::new("--")]);
        argv.extend(shell);
        argv
    }
}

/// The executable `name` in the first directory of `path_env` that holds one.
pub fn which(name: &str, path_env: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_env)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// bwrap from `path_env`, if a probe sandbox with the production flags starts and runs `true` (bwrap may be
/// installed yet unusable, e.g. without user namespaces in an unprivileged container). Blocking; quick.
pub fn probe_bwrap(path_env: &OsStr) -> Result<PathBuf, String> {
    let bwrap = which("bwrap", path_env).ok_or("bwrap not found on PATH")?;
    let sandbox = Sandbox::Bwrap(bwrap.clone());
    let argv = sandbox.argv(Path::new("/"), "true", &[]);
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", bwrap.display()))?;
    if out.status.success() {
        Ok(bwrap)
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{} probe failed ({}): {}",
            bwrap.display(),
            out.status,
            err.trim().chars().take(300).collect::<String>()
        ))
    }
}

/// The sandbox the service uses, once known.
#[derive(Debug)]
pub struct SandboxState {
    mode: SandboxMode,
    resolved: OnceLock<Sandbox>,
    /// Why bwrap is not usable yet (mode `bwrap` only).
    pending: std::sync::Mutex<String>,
}

/// The future that resolves once the sandbox is usable.
pub type Ready = Pin<Box<dyn Future<Output = ()> + Send>>;

impl SandboxState {
    /// A state with a known sandbox (tests, or a resolved mode).
    pub fn fixed(sandbox: Sandbox) -> Arc<Self> {
        let state = Self { mode: SandboxMode::None, resolved: OnceLock::new(), pending: Default::default() };
        let _ = state.resolved.set(sandbox);
        Arc::new(state)
    }

    /// Resolves `mode` against `path_env` now where it can, and returns the future that resolves once the
    /// sandbox is usable (at once for `auto` and `none`; for `bwrap`, when a probe first succeeds).
    pub fn start(mode: SandboxMode, path_env: OsString) -> (Arc<Self>, Ready) {
        let state = Arc::new(Self { mode, resolved: OnceLock::new(), pending: Default::default() });
        match mode {
            SandboxMode::None => {
                tracing::warn!("SRE_SANDBOX=none: tests run without a sandbox (network and host filesystem reachable)");
                let _ = state.resolved.set(Sandbox::None);
            }
            SandboxMode::Auto => match probe_bwrap(&path_env) {
                Ok(bwrap) => {
                    tracing::info!(bwrap = %bwrap.display(), "sandbox: bwrap");
                    let _ = state.resolved.set(Sandbox::Bwrap(bwrap));
                }
                Err(reason) => {
                    tracing::warn!(%reason, "SRE_SANDBOX=auto: bwrap not usable; tests run WITHOUT a sandbox");
                    let _ = state.resolved.set(Sandbox::None);
                }
            },
            SandboxMode::Bwrap => match probe_bwrap(&path_env) {
                Ok(bwrap) => {
                    tracing::info!(bwrap = %bwrap.display(), "sandbox: bwrap");
                    let _ = state.resolved.set(Sandbox::Bwrap(bwrap));
                }
                Err(reason) => {
                    tracing::warn!(%reason, "SRE_SANDBOX=bwrap: bwrap not usable; not ready until it is");
                    *state.pending.lock().unwrap_or_else(|e| e.into_inner()) = reason;
                    let waiting = state.clone();
                    return (state, Box::pin(waiting.wait_for_bwrap(path_env)));
                }
            },
        }
        (state, Box::pin(async {}))
    }

    async fn wait_for_bwrap(self: Arc<Self>, path_env: OsString) {
        let mut delay = Duration::from_secs(1);
        loop {
            tokio::time::sleep(delay).await;
            let path = path_env.clone();
            match tokio::task::spawn_blocking(move || probe_bwrap(&path)).await {
                Ok(Ok(bwrap)) => {
                    tracing::info!(bwrap = %bwrap.display(), "sandbox: bwrap now usable");
                    let _ = self.resolved.set(Sandbox::Bwrap(bwrap));
                    return;
                }
                Ok(Err(reason)) => {
                    tracing::warn!(%reason, "SRE_SANDBOX=bwrap: bwrap still not usable; not ready");
                    *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = reason;
                }
                Err(err) => tracing::warn!(error = %err, "bwrap probe task failed"),
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    /// The sandbox, or why there is none yet.
    pub fn get(&self) -> Result<&Sandbox, String> {
        self.resolved.get().ok_or_else(|| {
            let reason = self.pending.lock().unwrap_or_else(|e| e.into_inner()).clone();
            format!("SRE_SANDBOX={} requires bubblewrap, which is not usable: {reason}", self.mode.name())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes() {
        assert_eq!(SandboxMode::parse(None).unwrap(), SandboxMode::Auto);
        assert_eq!(SandboxMode::parse(Some("BWRAP")).unwrap(), SandboxMode::Bwrap);
        assert_eq!(SandboxMode::parse(Some("none")).unwrap(), SandboxMode::None);
        assert!(SandboxMode::parse(Some("docker")).unwrap_err().contains("auto, bwrap or none"));
    }

    #[test]
    fn builds_the_bwrap_argv_with_the_worktree_after_tmp() {
        let wt = Path::new("/tmp/sre-wt-x/wt");
        let repo = Path::new("/tmp/repos/acme/app");
        let argv = Sandbox::Bwrap("/usr/bin/bwrap".into()).argv(wt, "make test", &[repo]);
        let argv: Vec<&str> = argv.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(
            argv.join(" "),
            "/usr/bin/bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp \
             --ro-bind /tmp/repos/acme/app /tmp/repos/acme/app --bind /tmp/sre-wt-x/wt /tmp/sre-wt-x/wt \
             --unshare-net --unshare-pid --die-with-parent --chdir /tmp/sre-wt-x/wt -- sh -c make test"
        );
        let none = Sandbox::None.argv(wt, "make test", &[repo]);
        assert_eq!(none, vec![OsString::from("sh"), "-c".into(), "make test".into()]);
    }

    #[test]
    fn bwrap_mode_without_bwrap_is_not_ready() {
        let (state, _ready) = SandboxState::start(SandboxMode::Bwrap, "/nonexistent".into());
        let err = state.get().unwrap_err();
        assert!(err.contains("bwrap not found on PATH"), "{err}");
        let (state, _) = SandboxState::start(SandboxMode::Auto, "/nonexistent".into());
        assert_eq!(state.get().unwrap(), &Sandbox::None);
    }
}
