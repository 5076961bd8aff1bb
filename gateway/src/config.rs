//! The gateway's configuration: flags with environment fallbacks (docs/conventions.md), parsed once.

use std::net::SocketAddr;

use sre_service_kit::config::{Command, DataArgs, Secret};

/// The secret `--dev-insecure-webhook-secret` falls back to. Never use outside a laptop.
pub const DEV_SECRET: &str = "dev-secret";

/// sre-gateway: GitHub webhooks (HMAC-verified, deduped, stored, enqueued), the runs API, /health, /ready,
/// /metrics.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "sre-gateway", version)]
pub struct Config {
    /// Listen address of the webhook endpoint, the runs API and /metrics
    #[arg(long, env = "SRE_HTTP_ADDR", value_name = "SRE_HTTP_ADDR", default_value = "127.0.0.1:8000")]
    pub http_addr: SocketAddr,
    /// The secret configured on the GitHub webhook (or App); required unless --dev-insecure-webhook-secret
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", value_name = "GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<Secret>,
    /// Verify webhooks with the built-in dev secret "dev-secret" when no secret is set (a laptop only)
    #[arg(
        long,
        env = "SRE_DEV_INSECURE_WEBHOOK_SECRET",
        value_name = "SRE_DEV_INSECURE_WEBHOOK_SECRET",
        default_value_t = false,
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set,
    )]
    pub dev_insecure_webhook_secret: bool,
    /// The job queue
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// sqlite://... or postgres://... [default: sqlite://<data-dir>/sre-agent.db]
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis Stream of pipeline jobs (one per store)
    #[arg(long, env = "SRE_QUEUE_STREAM", value_name = "SRE_QUEUE_STREAM", default_value = sre_queue::DEFAULT_STREAM)]
    pub stream: String,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "GITHUB_WEBHOOK_SECRET is required: the secret configured on the GitHub webhook (or set \
         SRE_DEV_INSECURE_WEBHOOK_SECRET=1 for a local dev secret)"
    )]
    NoWebhookSecret,
}

impl Config {
    /// The webhook secret to verify with, and whether it is the dev fallback.
    pub fn secret(&self) -> Result<(Secret, bool), ConfigError> {
        match (&self.webhook_secret, self.dev_insecure_webhook_secret) {
            (Some(secret), _) => Ok((secret.clone(), false)),
            (None, true) => Ok((Secret::new(DEV_SECRET), true)),
            (None, false) => Err(ConfigError::NoWebhookSecret),
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| sre_store::Store::default_url(&self.data.data_dir))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_secret_is_required_unless_the_dev_flag_is_set() {
        // Fields set explicitly: the test must not depend on the environment it runs in.
        let mut config = Config::try_parse_from(["sre-gateway"]).unwrap();
        config.webhook_secret = None;
        config.dev_insecure_webhook_secret = false;
        assert!(matches!(config.secret(), Err(ConfigError::NoWebhookSecret)));
        config.dev_insecure_webhook_secret = true;
        assert_eq!(config.secret().unwrap().0.expose(), DEV_SECRET);
        let with = Config::try_parse_from(["sre-gateway", "--webhook-secret", "s3cret"]).unwrap();
        assert_eq!(with.secret().unwrap().0.expose(), "s3cret");
        assert!(!format!("{with:?}").contains("s3cret"));
        let err = Config::try_parse_from(["sre-gateway", "--http-addr", "x"]).unwrap_err().to_string();
        assert!(err.contains("SRE_HTTP_ADDR"), "{err}");
    }
}
