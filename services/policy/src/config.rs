//! The policy service's configuration (docs/conventions.md), parsed once.

use sre_service_kit::config::{Command, ServeArgs};

/// sre-policy: plan and patch checks, the danger score, safe / needs-review.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "sre-policy", version)]
pub struct Config {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}
