//! The pr service's configuration (docs/conventions.md, docs/github.md), parsed once.

use sre_github::GithubArgs;
use sre_service_kit::config::{CacheArgs, Command, DataArgs, ServeArgs};

pub use sre_github::Backend;

/// sre-pr: commits the fix on the failure's branch and opens (or updates) its pull request.
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
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub github: GithubArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use sre_telemetry::SharedRegistry;

    use super::*;

    #[test]
    fn backends() {
        assert_eq!(Config::try_parse_from(["sre-pr"]).unwrap().backend, Backend::Local);
        assert_eq!(Config::try_parse_from(["sre-pr", "--backend", "github"]).unwrap().backend, Backend::Github);
        let err = Config::try_parse_from(["sre-pr", "--backend", "gitlab"]).unwrap_err().to_string();
        assert!(err.contains("SRE_PR_BACKEND") && err.contains("gitlab"), "{err}");
    }

    #[test]
    fn the_github_backend_needs_credentials() {
        let registry = SharedRegistry::default();
        let config = Config::try_parse_from(["sre-pr", "--backend", "github"]).unwrap();
        let err = crate::build(&config, &registry).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("GITHUB_APP_ID") && err.contains("GITHUB_TOKEN"), "{err}");
        let config = Config::try_parse_from(["sre-pr", "--backend", "github", "--github-app-id", "3"]).unwrap();
        let err = crate::build(&config, &SharedRegistry::default()).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("GITHUB_PRIVATE_KEY_FILE"), "{err}");
        let config = Config::try_parse_from(["sre-pr", "--backend", "github", "--github-token", "t"]).unwrap();
        assert!(crate::build(&config, &SharedRegistry::default()).is_ok());
    }
}
