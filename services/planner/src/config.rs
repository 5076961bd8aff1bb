//! The planner's configuration (docs/conventions.md), parsed once.

use sre_llm::LlmArgs;
use sre_sandbox::SandboxArgs;
use sre_service_kit::config::{Command, DataArgs, ServeArgs};

/// Longest a fixer's command may run, in seconds (`cargo clippy --fix` compiles the crate).
pub const MAX_FIX_TIMEOUT_SECS: u64 = 3600;

/// sre-planner: failure context, classification, the fix plan and the patch.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "sre-planner", version)]
pub struct Config {
    /// The sandbox the deterministic fixers (ruff, cargo fmt, prettier, gofmt, ...) run in
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// Budget of one fixer command (the fix itself; version and list checks get 60 s)
    #[arg(long, env = "SRE_FIX_TIMEOUT_SECONDS", value_name = "SRE_FIX_TIMEOUT_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=MAX_FIX_TIMEOUT_SECS))]
    pub fix_timeout_seconds: u64,
    /// The LLM planner for what no deterministic fixer covers (off unless SRE_LLM_BASE_URL and SRE_LLM_MODEL)
    #[command(flatten)]
    pub llm: LlmArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}
