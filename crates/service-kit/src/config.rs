//! Typed configuration. Every binary declares one clap `Parser` in its own `config.rs` (each option a flag
//! with an environment fallback: the variable names are the contract in docs/conventions.md), parsed once at
//! start by [`parse_or_exit`]: a bad or missing value ends the process with exit code 2 and a message naming
//! the variable. Tests build configurations as values (or with `try_parse_from`), never with `set_var`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Subcommands every binary has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Exit 0 when this process's own HTTP /health answers 200 (container healthchecks: the images carry no
    /// curl or grpc_health_probe).
    HealthProbe,
}

/// Where a gRPC service listens, and how it drains.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// gRPC listen address [default: the service's port on 127.0.0.1, docs/conventions.md]
    #[arg(long, env = "SRE_GRPC_ADDR", value_name = "SRE_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// HTTP listen address of /metrics and /health [default: the service's port on 127.0.0.1]
    #[arg(long, env = "SRE_HTTP_ADDR", value_name = "SRE_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Milliseconds between reporting NOT_SERVING and closing the listener at shutdown
    #[arg(long, env = "SRE_DRAIN_GRACE_MS", value_name = "SRE_DRAIN_GRACE_MS", default_value_t = 500)]
    pub drain_grace_ms: u64,
}

/// The data directory and where local repositories live.
#[derive(Clone, Debug, clap::Args)]
pub struct DataArgs {
    /// SQLite file, logs, PID files and traces of the native mesh
    #[arg(long, env = "SRE_DATA_DIR", value_name = "SRE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Repository owner/name lives in <repos-dir>/owner/name (local git backend) [default: <data-dir>/repos]
    #[arg(long, env = "SRE_REPOS_DIR", value_name = "SRE_REPOS_DIR")]
    pub repos_dir: Option<PathBuf>,
}

impl DataArgs {
    pub fn repos_dir(&self) -> PathBuf {
        self.repos_dir.clone().unwrap_or_else(|| self.data_dir.join("repos"))
    }
}

/// The shared repository cache under the repos dir (sre-gitwork's `RepoCache`).
#[derive(Clone, Debug, clap::Args)]
pub struct CacheArgs {
    /// Bytes the cached clones may take together; the least recently used are removed beyond it (0: no cap)
    #[arg(long, env = "SRE_CACHE_MAX_BYTES", value_name = "SRE_CACHE_MAX_BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    pub cache_max_bytes: u64,
    /// Fetch single commits (--depth=1) instead of their whole history
    #[arg(long, env = "SRE_CACHE_SHALLOW", value_name = "SRE_CACHE_SHALLOW", default_value_t = true, action = clap::ArgAction::Set)]
    pub cache_shallow: bool,
}

impl CacheArgs {
    pub fn options(&self) -> sre_gitwork::CacheOptions {
        sre_gitwork::CacheOptions {
            max_bytes: self.cache_max_bytes,
            shallow: self.cache_shallow,
            ..sre_gitwork::CacheOptions::default()
        }
    }
}

/// A secret from the environment. Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() { Err("must not be empty".to_owned()) } else { Ok(Self(s.to_owned())) }
    }
}

/// Parses the process's configuration from its arguments and environment; on an error prints clap's message
/// (which names the flag and its variable) and exits with code 2 (0 for `--help`).
pub fn parse_or_exit<C: clap::Parser>() -> C {
    C::try_parse().unwrap_or_else(|err| err.exit())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        serve: ServeArgs,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        cache: CacheArgs,
        #[arg(long, env = "SRE_TEST_ONLY_SECRET", hide_env_values = true)]
        secret: Option<Secret>,
        #[command(subcommand)]
        command: Option<Command>,
    }

    #[test]
    fn parses_flags_and_names_the_variable_on_error() {
        let p = Probe::try_parse_from(["x", "--grpc-addr", "127.0.0.1:1", "--secret", "s3", "health-probe"]).unwrap();
        assert_eq!(p.serve.grpc_addr, Some("127.0.0.1:1".parse().unwrap()));
        assert_eq!(p.serve.drain_grace_ms, 500);
        assert_eq!(p.data.repos_dir(), PathBuf::from("data/repos"));
        assert_eq!(p.command, Some(Command::HealthProbe));
        assert_eq!((p.cache.cache_max_bytes, p.cache.cache_shallow), (10 << 30, true));
        assert!(!format!("{p:?}").contains("s3"), "secrets never print");
        let p = Probe::try_parse_from(["x", "--cache-max-bytes", "5", "--cache-shallow", "false"]).unwrap();
        assert_eq!((p.cache.options().max_bytes, p.cache.options().shallow), (5, false));
        let err = Probe::try_parse_from(["x", "--cache-max-bytes", "lots"]).unwrap_err().to_string();
        assert!(err.contains("SRE_CACHE_MAX_BYTES"), "{err}");
        let err = Probe::try_parse_from(["x", "--http-addr", "nope"]).unwrap_err().to_string();
        assert!(err.contains("SRE_HTTP_ADDR"), "{err}");
        assert!(Probe::try_parse_from(["x", "--secret", " "]).is_err());
    }
}
