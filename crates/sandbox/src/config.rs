//! What a process says about its sandbox: the mode (`SRE_SANDBOX`), the limits of every run, extra
//! toolchain directories, and the paths that must never be visible inside (the agent's data and repository
//! directories). [`SandboxArgs`] is the clap part a binary flattens into its own configuration.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

const MIB: u64 = 1024 * 1024;

/// `SRE_SANDBOX`: whether repository code runs in bubblewrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxMode {
    /// bubblewrap, proven to work at start ([`crate::Sandbox::probe`]); where it cannot create its
    /// namespaces the process does not start.
    Required,
    /// No sandbox at all: repository code runs with the service's own user, network and filesystem.
    /// Logged at WARN on every run and reported as `unsafe-none` in every result.
    UnsafeNone,
}

impl SandboxMode {
    pub const VALID: &'static str = "required, unsafe-none";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::UnsafeNone => "unsafe-none",
        }
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SandboxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "required" => Ok(Self::Required),
            "unsafe-none" => Ok(Self::UnsafeNone),
            "auto" | "bwrap" | "none" => Err(format!(
                "{s:?} is no longer a sandbox mode (`auto` used to run without a sandbox when bubblewrap could not \
                 start): expected one of {}",
                Self::VALID
            )),
            other => Err(format!("unknown sandbox mode {other:?}: expected one of {}", Self::VALID)),
        }
    }
}

/// Resource limits of one sandboxed run (see docs/sandbox.md for why these and not a cgroup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_CPU, per process: SIGXCPU at this many CPU seconds, SIGKILL 5 s later.
    pub cpu_seconds: u64,
    /// RLIMIT_AS, per process: the address space (virtual memory) a process may map.
    pub memory_bytes: u64,
    /// RLIMIT_FSIZE: the largest file a process may write.
    pub file_size_bytes: u64,
    /// Size of each tmpfs inside the sandbox (/tmp and HOME); they live in RAM.
    pub tmpfs_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { cpu_seconds: 900, memory_bytes: 4096 * MIB, file_size_bytes: 2048 * MIB, tmpfs_bytes: 1024 * MIB }
    }
}

/// The sandbox options of a binary (flatten into its clap `Parser`).
#[derive(Clone, Debug, clap::Args)]
pub struct SandboxArgs {
    /// Sandbox for repository code: required (bubblewrap; the process does not start without it) or
    /// unsafe-none (no sandbox; logged and reported on every run)
    #[arg(long = "sandbox", env = "SRE_SANDBOX", value_name = "SRE_SANDBOX", default_value = "required")]
    pub mode: SandboxMode,
    /// Extra toolchain directories bound read-only into the sandbox, colon-separated (the rustup/cargo
    /// homes, pyenv, nvm, Go and PATH entries outside the home are found without this)
    #[arg(long, env = "SRE_SANDBOX_TOOLCHAINS", value_name = "SRE_SANDBOX_TOOLCHAINS", value_delimiter = ':')]
    pub sandbox_toolchains: Vec<PathBuf>,
    /// CPU seconds per process in the sandbox (RLIMIT_CPU)
    #[arg(long, env = "SRE_SANDBOX_CPU_SECONDS", value_name = "SRE_SANDBOX_CPU_SECONDS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub sandbox_cpu_seconds: u64,
    /// Address space per process in the sandbox, MiB (RLIMIT_AS)
    #[arg(long, env = "SRE_SANDBOX_MEMORY_MB", value_name = "SRE_SANDBOX_MEMORY_MB", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(64..=1_048_576))]
    pub sandbox_memory_mb: u64,
    /// Largest file a process in the sandbox may write, MiB (RLIMIT_FSIZE)
    #[arg(long, env = "SRE_SANDBOX_FILE_SIZE_MB", value_name = "SRE_SANDBOX_FILE_SIZE_MB", default_value_t = 2048,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub sandbox_file_size_mb: u64,
    /// Size of the sandbox's /tmp and of its HOME, MiB each (tmpfs, in RAM)
    #[arg(long, env = "SRE_SANDBOX_TMPFS_MB", value_name = "SRE_SANDBOX_TMPFS_MB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub sandbox_tmpfs_mb: u64,
}

impl SandboxArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            cpu_seconds: self.sandbox_cpu_seconds,
            memory_bytes: self.sandbox_memory_mb.saturating_mul(MIB),
            file_size_bytes: self.sandbox_file_size_mb.saturating_mul(MIB),
            tmpfs_bytes: self.sandbox_tmpfs_mb.saturating_mul(MIB),
        }
    }
}

/// The host facts the sandbox is laid out from: where the toolchains live and where the home is. Read from
/// the process environment by [`HostEnv::from_process`]; tests build one by hand.
#[derive(Clone, Debug, Default)]
pub struct HostEnv {
    pub path: OsString,
    pub home: Option<PathBuf>,
    pub cargo_home: Option<PathBuf>,
    pub rustup_home: Option<PathBuf>,
    pub rustup_toolchain: Option<OsString>,
    pub pyenv_root: Option<PathBuf>,
    pub pyenv_version: Option<OsString>,
    pub goroot: Option<PathBuf>,
    pub gopath: Option<PathBuf>,
    pub gomodcache: Option<PathBuf>,
    pub nvm_dir: Option<PathBuf>,
    pub lang: Option<OsString>,
    pub tz: Option<OsString>,
}

impl HostEnv {
    pub fn from_process() -> Self {
        let path = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Self {
            path: std::env::var_os("PATH").unwrap_or_default(),
            home: path("HOME"),
            cargo_home: path("CARGO_HOME"),
            rustup_home: path("RUSTUP_HOME"),
            rustup_toolchain: var("RUSTUP_TOOLCHAIN"),
            pyenv_root: path("PYENV_ROOT"),
            pyenv_version: var("PYENV_VERSION"),
            goroot: path("GOROOT"),
            // GOPATH may be a list; the first entry holds the module cache.
            gopath: var("GOPATH").and_then(|v| std::env::split_paths(&v).next()),
            gomodcache: path("GOMODCACHE"),
            nvm_dir: path("NVM_DIR"),
            lang: var("LANG"),
            tz: var("TZ"),
        }
    }
}

/// Everything [`crate::Sandbox::probe`] needs.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub mode: SandboxMode,
    pub limits: Limits,
    /// Extra read-only toolchain directories.
    pub toolchains: Vec<PathBuf>,
    /// Never visible inside: the agent's data dir, the repos dir (the one worktree's git objects excepted).
    pub denied: Vec<PathBuf>,
    pub host: HostEnv,
}

impl SandboxConfig {
    /// The configuration of `args`, with `denied` (the data and repos dirs) kept out and the host facts of
    /// this process.
    pub fn new(args: &SandboxArgs, denied: Vec<PathBuf>) -> Self {
        Self {
            mode: args.mode,
            limits: args.limits(),
            toolchains: args.sandbox_toolchains.clone(),
            denied,
            host: HostEnv::from_process(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes_and_lists_the_valid_ones() {
        assert_eq!("required".parse::<SandboxMode>().unwrap(), SandboxMode::Required);
        assert_eq!("unsafe-none".parse::<SandboxMode>().unwrap(), SandboxMode::UnsafeNone);
        for old in ["auto", "bwrap", "none"] {
            let err = old.parse::<SandboxMode>().unwrap_err();
            assert!(err.contains("no longer a sandbox mode") && err.contains("required, unsafe-none"), "{err}");
        }
        let err = "docker".parse::<SandboxMode>().unwrap_err();
        assert_eq!(err, "unknown sandbox mode \"docker\": expected one of required, unsafe-none");
    }

    #[test]
    fn clap_defaults_to_required_and_names_the_variable() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct P {
            #[command(flatten)]
            s: SandboxArgs,
        }
        let p = P::try_parse_from(["x"]).unwrap();
        assert_eq!(p.s.mode, SandboxMode::Required);
        assert_eq!(p.s.limits(), Limits::default());
        let p = P::try_parse_from(["x", "--sandbox", "unsafe-none", "--sandbox-toolchains", "/opt/a:/opt/b"]).unwrap();
        assert_eq!(p.s.mode, SandboxMode::UnsafeNone);
        assert_eq!(p.s.sandbox_toolchains, [PathBuf::from("/opt/a"), PathBuf::from("/opt/b")]);
        let err = P::try_parse_from(["x", "--sandbox", "auto"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("required, unsafe-none"), "{text}");
        assert!(P::try_parse_from(["x", "--sandbox-memory-mb", "1"]).is_err());
    }
}
