//! Running a fixer's commands in the sandbox (crates/sandbox, the validator's policy: `SRE_SANDBOX=required`
//! or `unsafe-none`, never a silent unsandboxed run) on a throwaway worktree: is the tool there and which
//! version, what the repository pins, which files it reports, and the fix itself.

use std::ffi::OsString;
use std::time::Duration;

use sre_gitwork::Worktree;
use sre_sandbox::{Job, Output, Sandbox, SandboxError};

use crate::fixers::{self, Fixer};

/// Output bytes kept of a fixer's command (its end).
const KEEP_BYTES: usize = 64 * 1024;
/// Budget of a version or list command.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// The variables every fixer command gets: no colours, no cache writes outside the worktree, no toolchain
/// downloads (the sandbox has no network; rustup would otherwise try to install a pinned toolchain).
const FIXED_ENV: &[(&str, &str)] = &[
    ("NO_COLOR", "1"),
    ("FORCE_COLOR", "0"),
    ("CARGO_TERM_COLOR", "never"),
    ("RUSTUP_AUTO_INSTALL", "0"),
    ("RUFF_NO_CACHE", "true"),
];

/// The sandbox the fixers run in, and their time budget.
#[derive(Clone, Debug)]
pub struct FixerRuntime {
    pub sandbox: Sandbox,
    pub fix_timeout: Duration,
}

/// A tool found in the sandbox: its version, the environment its commands need, what a reviewer should
/// know about the version.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    /// The tool's own words, first line (`ruff 0.17.5`).
    pub version: String,
    pub env: Vec<(String, String)>,
    pub notes: Vec<String>,
}

/// What a command printed and how it ended.
pub struct Ran {
    pub exit_code: i32,
    pub timed_out: bool,
    pub output: String,
    pub duration: Duration,
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(120)
        .collect()
}

impl FixerRuntime {
    /// Runs `argv` at the worktree's root.
    pub async fn run(
        &self,
        wt: &Worktree,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<Ran, SandboxError> {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        let mut all: Vec<(String, String)> =
            FIXED_ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        all.extend(env.iter().cloned());
        let job = Job { worktree: wt.path(), workdir: "", argv: &argv, env: &all, timeout, keep_bytes: KEEP_BYTES };
        let Output { exit_code, timed_out, output, duration, .. } = self.sandbox.run(&job).await?;
        Ok(Ran { exit_code, timed_out, output: String::from_utf8_lossy(&output).into_owned(), duration })
    }

    /// The paths the tool prints its files under: the worktree as the sandbox shows it, and on the host.
    pub fn roots(&self, wt: &Worktree) -> Vec<String> {
        let mut roots = vec![self.sandbox.workspace(wt.path()).to_string_lossy().into_owned()];
        let host = wt.path().to_string_lossy().into_owned();
        if !roots.contains(&host) {
            roots.push(host);
        }
        roots
    }

    /// Is `fixer`'s tool in the sandbox, which version, and does it match what the repository pins? `Err`
    /// is why it cannot run (the run is skipped with it; never a fake fix).
    pub async fn probe(&self, wt: &Worktree, fixer: Fixer) -> Result<Result<Probe, String>, SandboxError> {
        let program = fixer.program();
        let mut found = self.version(wt, fixer, &[]).await?;
        let mut probe = Probe::default();
        if matches!(fixer, Fixer::CargoFmt | Fixer::ClippyFix) {
            let pin = fixers::rust_toolchain_pin(
                read(wt, "rust-toolchain.toml").as_deref(),
                read(wt, "rust-toolchain").as_deref(),
            );
            if let Some(pin) = pin {
                match found.clone() {
                    Ok(v) => probe.notes.push(format!("ran {v} from the toolchain rust-toolchain.toml pins ({pin})")),
                    Err(_) => {
                        // The pinned toolchain (or its component) is not installed: the default one, said so.
                        let default = self.default_toolchain(wt).await?;
                        let env = vec![("RUSTUP_TOOLCHAIN".to_owned(), default.clone())];
                        found = self.version(wt, fixer, &env).await?;
                        if let Ok(v) = &found {
                            probe.notes.push(format!(
                                "rust-toolchain.toml pins {pin}, which is not available here; ran {v} from {default}"
                            ));
                            probe.env = env;
                        }
                    }
                }
            }
        }
        let version = match found {
            Ok(v) => v,
            Err(why) => return Ok(Err(why)),
        };
        let pin = match fixer {
            Fixer::RuffFormat | Fixer::RuffFix | Fixer::Black => read(wt, "pyproject.toml")
                .and_then(|t| fixers::pyproject_pin(&t, program))
                .map(|p| ("pyproject.toml", p)),
            Fixer::Prettier | Fixer::EslintFix => read(wt, "package.json")
                .and_then(|t| fixers::package_json_pin(&t, program))
                .map(|p| ("package.json", p)),
            _ => None,
        };
        if let Some((file, spec)) = pin {
            let number = fixers::version_number(&version).unwrap_or_default();
            match fixers::satisfies(&spec, &number) {
                Some(true) => probe.notes.push(format!("{file} pins {program} {spec}; ran {version}")),
                Some(false) => probe
                    .notes
                    .push(format!("{file} pins {program} {spec}, which is not available here; ran {version} instead")),
                None => probe.notes.push(format!("{file} pins {program} {spec}; ran {version}")),
            }
        }
        probe.version = version;
        Ok(Ok(probe))
    }

    /// The tool's version line, or why it is not usable.
    async fn version(
        &self,
        wt: &Worktree,
        fixer: Fixer,
        env: &[(String, String)],
    ) -> Result<Result<String, String>, SandboxError> {
        let program = fixer.program();
        // `command -v` first: a missing program is exit 127, whatever the version command would print.
        let mut argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            r#"for p in "$0" $SRE_ALSO; do command -v "$p" >/dev/null 2>&1 || { echo "$p"; exit 127; }; done; exec "$@""#
                .to_owned(),
            program.to_owned(),
        ];
        argv.extend(fixer.version_argv());
        let mut env = env.to_vec();
        env.push(("SRE_ALSO".to_owned(), fixer.subcommand_program().unwrap_or("").to_owned()));
        let ran = self.run(wt, &argv, &env, PROBE_TIMEOUT).await?;
        let sandbox = self.sandbox.name();
        Ok(match (ran.exit_code, ran.timed_out) {
            (_, true) => Err(format!("`{} --version` timed out in the sandbox ({sandbox})", program)),
            (0, false) => Ok(first_line(ran.output.as_bytes())),
            (127, false) => Err(format!(
                "{} is not installed where the planner runs its fixers (not on PATH in the sandbox, {sandbox})",
                first_line(ran.output.as_bytes()).split_whitespace().next().unwrap_or(program)
            )),
            (code, false) => Err(format!(
                "`{}` failed in the sandbox (exit {code}): {}",
                fixers::display_command(&fixer.version_argv()),
                first_line(ran.output.as_bytes())
            )),
        })
    }

    /// rustup's default toolchain (`stable-x86_64-unknown-linux-gnu`), else `stable`.
    async fn default_toolchain(&self, wt: &Worktree) -> Result<String, SandboxError> {
        let argv = ["rustup".to_owned(), "default".to_owned()];
        let ran = self.run(wt, &argv, &[], PROBE_TIMEOUT).await?;
        let name = (ran.exit_code == 0)
            .then(|| ran.output.split_whitespace().next().map(str::to_owned))
            .flatten()
            .unwrap_or_else(|| "stable".to_owned());
        Ok(name)
    }

    /// The files the tool's check reports, among `files`.
    pub async fn list(
        &self,
        wt: &Worktree,
        argv: &[String],
        probe: &Probe,
        files: &[String],
    ) -> Result<Vec<String>, SandboxError> {
        let ran = self.run(wt, argv, &probe.env, PROBE_TIMEOUT).await?;
        Ok(if ran.timed_out { Vec::new() } else { fixers::reported_files(&ran.output, &self.roots(wt), files) })
    }
}

/// A small text file at the worktree's root, if it is there.
fn read(wt: &Worktree, name: &str) -> Option<String> {
    let path = wt.path().join(name);
    let meta = std::fs::symlink_metadata(&path).ok()?;
    (meta.is_file() && meta.len() <= 256 * 1024).then(|| std::fs::read_to_string(path).ok()).flatten()
}
