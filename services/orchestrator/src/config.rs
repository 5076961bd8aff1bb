//! Orchestrator configuration from the environment (documented in docs/conventions.md).

use std::net::SocketAddr;
use std::time::Duration;

use sre_service_kit::config::{self, ConfigError};

#[derive(Clone, Debug)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub redis_url: String,
    pub database_url: String,
    pub stream: String,
    pub planner_url: String,
    pub policy_url: String,
    pub scanner_url: String,
    pub validator_url: String,
    pub pr_url: String,
    /// Parallel pipeline runs in this process.
    pub workers: usize,
    /// A job pending this long with another consumer is taken over (longer than the slowest run).
    pub reclaim_idle: Duration,
    /// A queued or running run with no progress for this long has lost its job and is enqueued again.
    pub requeue_stale: Duration,
    /// Runs started this many times are blocked instead of tried again.
    pub max_attempts: i64,
    /// Validator test timeout passed with each run.
    pub validate_timeout: Duration,
    /// Consumer name prefix in the group (host and pid by default).
    pub consumer: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let url = |var: &str, port: u16| config::var(var).unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
        let host =
            std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "local".into());
        Ok(Self {
            http_addr: config::addr("SRE_HTTP_ADDR", "127.0.0.1:9100")?,
            redis_url: config::var("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            database_url: sre_store::Store::url_from_env(&config::data_dir()),
            stream: config::var("SRE_QUEUE_STREAM").unwrap_or_else(|| sre_queue::DEFAULT_STREAM.into()),
            planner_url: url("SRE_PLANNER_URL", 50051),
            policy_url: url("SRE_POLICY_URL", 50052),
            scanner_url: url("SRE_SCANNER_URL", 50053),
            validator_url: url("SRE_VALIDATOR_URL", 50054),
            pr_url: url("SRE_PR_URL", 50055),
            workers: config::u64_or("SRE_WORKERS", 2)?.clamp(1, 64) as usize,
            reclaim_idle: Duration::from_secs(config::u64_or("SRE_RECLAIM_IDLE_SECONDS", 900)?),
            requeue_stale: Duration::from_secs(config::u64_or("SRE_REQUEUE_STALE_SECONDS", 1200)?),
            max_attempts: config::u64_or("SRE_MAX_ATTEMPTS", 3)?.max(1) as i64,
            validate_timeout: Duration::from_secs(config::u64_or("SRE_VALIDATE_TIMEOUT_SECONDS", 300)?),
            consumer: config::var("SRE_CONSUMER_NAME").unwrap_or_else(|| format!("{host}-{}", std::process::id())),
        })
    }
}
