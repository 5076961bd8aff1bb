//! The validator's configuration (docs/conventions.md), parsed once.

use sre_sandbox::SandboxArgs;
use sre_service_kit::config::{Command, DataArgs, ServeArgs};

/// sre-validator: proves a patch by re-running the failed CI step in a sandbox, without and with the patch.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "sre-validator", version)]
pub struct Config {
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// Budget of one validation (every command it runs) when a request says 0
    #[arg(long, env = "SRE_VALIDATE_TIMEOUT_SECONDS", value_name = "SRE_VALIDATE_TIMEOUT_SECONDS",
          default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=crate::service::MAX_TIMEOUT_SECS))]
    pub validate_timeout_seconds: u64,
    /// Validations at once; more calls wait [default: the number of CPUs]
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
