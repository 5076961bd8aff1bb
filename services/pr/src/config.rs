//! The pr service's configuration (docs/conventions.md), parsed once.

use sre_service_kit::config::{Command, DataArgs, ServeArgs};

/// Where pull requests go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Branches and PR records in the local repository under the repos dir (the embedded default).
    Local,
}

/// sre-pr: commits the fix on a branch and opens the pull request.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "sre-pr", version)]
pub struct Config {
    /// Where pull requests go
    #[arg(long, env = "SRE_PR_BACKEND", value_name = "SRE_PR_BACKEND", value_enum, default_value = "local")]
    pub backend: Backend,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn only_the_local_backend_exists_yet() {
        assert_eq!(Config::try_parse_from(["sre-pr", "--backend", "local"]).unwrap().backend, Backend::Local);
        let err = Config::try_parse_from(["sre-pr", "--backend", "github"]).unwrap_err().to_string();
        assert!(err.contains("SRE_PR_BACKEND") && err.contains("github"), "{err}");
    }
}
