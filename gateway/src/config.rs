//! The gateway's configuration: flags with environment fallbacks (docs/conventions.md), parsed once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// The bearer token every /api/v1/* request must carry (or --api-token-file)
    #[arg(long, env = "SRE_API_TOKEN", value_name = "SRE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// A file holding the runs API token (one line); excludes --api-token
    #[arg(long, env = "SRE_API_TOKEN_FILE", value_name = "SRE_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Serve the runs API without a token; refused unless --http-addr is a loopback address (a laptop only)
    #[arg(
        long,
        env = "SRE_API_INSECURE_LOOPBACK",
        value_name = "SRE_API_INSECURE_LOOPBACK",
        default_value_t = false,
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set,
    )]
    pub api_insecure_loopback: bool,
    /// Largest request body accepted (413 beyond)
    #[arg(long, env = "SRE_MAX_BODY_BYTES", value_name = "SRE_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Seconds a client has to send its request line and headers; the connection is closed after
    #[arg(
        long,
        env = "SRE_HTTP_HEADER_TIMEOUT_SECONDS",
        value_name = "SRE_HTTP_HEADER_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub header_timeout_seconds: u64,
    /// Seconds a client has to send its whole body (408 and the connection closed after)
    #[arg(
        long,
        env = "SRE_HTTP_BODY_TIMEOUT_SECONDS",
        value_name = "SRE_HTTP_BODY_TIMEOUT_SECONDS",
        default_value_t = 30
    )]
    pub body_timeout_seconds: u64,
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

/// GitHub caps payloads at 25 MB; workflow events are a few tens of KB, a local run's log at most 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "GITHUB_WEBHOOK_SECRET is required: the secret configured on the GitHub webhook (or set \
         SRE_DEV_INSECURE_WEBHOOK_SECRET=1 for a local dev secret)"
    )]
    NoWebhookSecret,
    #[error(
        "SRE_API_TOKEN or SRE_API_TOKEN_FILE is required: the bearer token of the runs API (or, on a loopback \
         address only, SRE_API_INSECURE_LOOPBACK=1)"
    )]
    NoApiToken,
    #[error("SRE_API_TOKEN and SRE_API_TOKEN_FILE are both set: set one")]
    TwoApiTokens,
    #[error("SRE_API_TOKEN_FILE {0}: {1}")]
    ApiTokenFile(String, String),
    #[error("SRE_API_INSECURE_LOOPBACK=1 needs a loopback SRE_HTTP_ADDR; {0} is not one: set SRE_API_TOKEN")]
    InsecureNotLoopback(SocketAddr),
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
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

    /// How the runs API is guarded: the token (from the variable or the file), or, on loopback with the
    /// opt-out, nothing.
    pub fn api_auth(&self) -> Result<crate::auth::ApiAuth, ConfigError> {
        let inline = self.api_token.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let token = match (inline, &self.api_token_file) {
            (Some(_), Some(_)) => return Err(ConfigError::TwoApiTokens),
            (Some(token), None) => Some(token.to_owned()),
            (None, Some(path)) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::ApiTokenFile(shown.clone(), e.to_string()))?;
                let token = text.trim();
                if token.is_empty() || token.contains(char::is_whitespace) {
                    return Err(ConfigError::ApiTokenFile(shown, "must hold one token on one line".into()));
                }
                Some(token.to_owned())
            }
            (None, None) => None,
        };
        match token {
            Some(token) => Ok(crate::auth::ApiAuth::token(&token)),
            None if self.api_insecure_loopback && self.http_addr.ip().is_loopback() => {
                Ok(crate::auth::ApiAuth::InsecureLoopback)
            }
            None if self.api_insecure_loopback => Err(ConfigError::InsecureNotLoopback(self.http_addr)),
            None => Err(ConfigError::NoApiToken),
        }
    }

    /// Body size and client timeouts.
    pub fn limits(&self) -> Result<crate::Limits, ConfigError> {
        let nonzero = |v: u64, name| if v == 0 { Err(ConfigError::Zero(name)) } else { Ok(v) };
        if self.max_body_bytes == 0 {
            return Err(ConfigError::Zero("SRE_MAX_BODY_BYTES"));
        }
        Ok(crate::Limits {
            max_body_bytes: self.max_body_bytes,
            header_timeout: Duration::from_secs(nonzero(
                self.header_timeout_seconds,
                "SRE_HTTP_HEADER_TIMEOUT_SECONDS",
            )?),
            body_timeout: Duration::from_secs(nonzero(self.body_timeout_seconds, "SRE_HTTP_BODY_TIMEOUT_SECONDS")?),
        })
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

    fn bare(args: &[&str]) -> Config {
        let mut config = Config::try_parse_from(std::iter::once("sre-gateway").chain(args.iter().copied())).unwrap();
        // Only what the test passes counts, whatever the environment holds.
        let (token, file, insecure) =
            (config.api_token.take(), config.api_token_file.take(), config.api_insecure_loopback);
        config.api_insecure_loopback = false;
        for (flag, value) in args.iter().zip(args.iter().skip(1)) {
            match *flag {
                "--api-token" => config.api_token.clone_from(&token),
                "--api-token-file" => config.api_token_file.clone_from(&file),
                "--api-insecure-loopback" => config.api_insecure_loopback = insecure && *value == "true",
                _ => {}
            }
        }
        config
    }

    #[test]
    fn the_api_token_is_required_unless_loopback_opts_out() {
        use crate::auth::ApiAuth;
        assert!(matches!(bare(&[]).api_auth(), Err(ConfigError::NoApiToken)));
        assert!(matches!(bare(&["--api-token", "t0k"]).api_auth(), Ok(ApiAuth::Token(t)) if &*t == b"t0k"));
        assert!(matches!(bare(&["--api-token", "  "]).api_auth(), Err(ConfigError::NoApiToken)), "blank is none");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let f = file.to_str().unwrap();
        assert!(matches!(bare(&["--api-token-file", f]).api_auth(), Ok(ApiAuth::Token(t)) if &*t == b"from-file"));
        assert!(matches!(
            bare(&["--api-token", "t0k", "--api-token-file", f]).api_auth(),
            Err(ConfigError::TwoApiTokens)
        ));
        let missing = dir.path().join("nope");
        let err = bare(&["--api-token-file", missing.to_str().unwrap()]).api_auth().unwrap_err().to_string();
        assert!(err.starts_with("SRE_API_TOKEN_FILE ") && err.contains("nope"), "{err}");
        std::fs::write(&file, "two words\n").unwrap();
        assert!(matches!(bare(&["--api-token-file", f]).api_auth(), Err(ConfigError::ApiTokenFile(..))));
        let insecure = ["--api-insecure-loopback", "true"];
        assert!(matches!(bare(&insecure).api_auth(), Ok(ApiAuth::InsecureLoopback)));
        let public = ["--api-insecure-loopback", "true", "--http-addr", "0.0.0.0:8000"];
        let err = bare(&public).api_auth().unwrap_err();
        assert!(matches!(err, ConfigError::InsecureNotLoopback(_)), "{err}");
        let v6 = ["--api-insecure-loopback", "true", "--http-addr", "[::1]:8000"];
        assert!(matches!(bare(&v6).api_auth(), Ok(ApiAuth::InsecureLoopback)));
        assert!(format!("{:?}", bare(&["--api-token", "t0k"]).api_auth().unwrap()).contains("***"));
    }
}
