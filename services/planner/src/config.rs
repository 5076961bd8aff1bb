//! The planner's configuration (docs/conventions.md), parsed once.

use sre_service_kit::config::{Command, DataArgs, ServeArgs};

/// sre-planner: failure context, classification, the fix plan and the patch.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "sre-planner", version)]
pub struct Config {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}
