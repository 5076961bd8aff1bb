//! Gateway configuration from the environment (documented in docs/conventions.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use sre_service_kit::config::{self, ConfigError};

/// The secret `SRE_DEV_INSECURE_WEBHOOK_SECRET=1` falls back to. Never use outside a laptop.
pub const DEV_SECRET: &str = "dev-secret";

#[derive(Clone, Debug)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub webhook_secret: String,
    /// True when the secret is the built-in dev one.
    pub insecure_dev_secret: bool,
    pub redis_url: String,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub stream: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let http_addr = config::addr("SRE_HTTP_ADDR", "127.0.0.1:8000")?;
        let dev = config::var("SRE_DEV_INSECURE_WEBHOOK_SECRET").is_some_and(|v| v == "1" || v == "true");
        let (webhook_secret, insecure_dev_secret) = match config::var("GITHUB_WEBHOOK_SECRET") {
            Some(s) => (s, false),
            None if dev => (DEV_SECRET.to_owned(), true),
            None => {
                return Err(ConfigError {
                    var: "GITHUB_WEBHOOK_SECRET".into(),
                    value: String::new(),
                    reason: "required: the secret configured on the GitHub webhook (or set \
                             SRE_DEV_INSECURE_WEBHOOK_SECRET=1 for a local dev secret)"
                        .into(),
                });
            }
        };
        let data_dir = config::data_dir();
        Ok(Self {
            http_addr,
            webhook_secret,
            insecure_dev_secret,
            redis_url: config::var("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            database_url: sre_store::Store::url_from_env(&data_dir),
            data_dir,
            stream: config::var("SRE_QUEUE_STREAM").unwrap_or_else(|| sre_queue::DEFAULT_STREAM.into()),
        })
    }
}
