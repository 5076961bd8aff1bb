//! The validator's configuration (docs/conventions.md), parsed once.

use sre_service_kit::config::{Command, DataArgs, ServeArgs};

use crate::sandbox::SandboxMode;

/// sre-validator: applies a patch in a throwaway worktree and runs the tests in a sandbox.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "sre-validator", version)]
pub struct Config {
    /// Sandbox for test commands: auto, bwrap (required) or none
    #[arg(long, env = "SRE_SANDBOX", value_name = "SRE_SANDBOX", default_value = "auto",
          value_parser = |s: &str| SandboxMode::parse(Some(s)))]
    pub sandbox: SandboxMode,
    /// Test run timeout used when a request says 0
    #[arg(long, env = "SRE_VALIDATE_TIMEOUT_SECONDS", value_name = "SRE_VALIDATE_TIMEOUT_SECONDS",
          default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=crate::service::MAX_TIMEOUT_SECS))]
    pub validate_timeout_seconds: u64,
    /// Test runs at once; more calls wait [default: the number of CPUs]
    #[arg(long, env = "SRE_VALIDATE_CONCURRENCY", value_name = "SRE_VALIDATE_CONCURRENCY",
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub validate_concurrency: Option<u64>,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}
