//! The orchestrator's configuration: flags with environment fallbacks (docs/conventions.md), parsed once.

use std::net::SocketAddr;
use std::time::Duration;

use sre_github::{Backend, GithubArgs};
use sre_service_kit::config::{CacheArgs, Command, DataArgs};

/// sre-orchestrator: consumes pipeline jobs and runs the stages over gRPC.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "sre-orchestrator", version)]
pub struct Config {
    /// Listen address of /metrics, /health and /ready
    #[arg(long, env = "SRE_HTTP_ADDR", value_name = "SRE_HTTP_ADDR", default_value = "127.0.0.1:9100")]
    pub http_addr: SocketAddr,
    /// The job queue
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// sqlite://... or postgres://... [default: sqlite://<data-dir>/sre-agent.db]
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis Stream of pipeline jobs (one per store)
    #[arg(long, env = "SRE_QUEUE_STREAM", value_name = "SRE_QUEUE_STREAM", default_value = sre_queue::DEFAULT_STREAM)]
    pub stream: String,
    #[arg(long, env = "SRE_PLANNER_URL", value_name = "SRE_PLANNER_URL", default_value = "http://127.0.0.1:50051")]
    pub planner_url: String,
    #[arg(long, env = "SRE_POLICY_URL", value_name = "SRE_POLICY_URL", default_value = "http://127.0.0.1:50052")]
    pub policy_url: String,
    #[arg(long, env = "SRE_SCANNER_URL", value_name = "SRE_SCANNER_URL", default_value = "http://127.0.0.1:50053")]
    pub scanner_url: String,
    #[arg(long, env = "SRE_VALIDATOR_URL", value_name = "SRE_VALIDATOR_URL", default_value = "http://127.0.0.1:50054")]
    pub validator_url: String,
    #[arg(long, env = "SRE_PR_URL", value_name = "SRE_PR_URL", default_value = "http://127.0.0.1:50055")]
    pub pr_url: String,
    /// Pipeline runs at once in this process
    #[arg(long, env = "SRE_WORKERS", value_name = "SRE_WORKERS", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// A job whose consumer sent no heartbeat for this long is taken over by another (its worker died)
    #[arg(long, env = "SRE_RECLAIM_IDLE_SECONDS", value_name = "SRE_RECLAIM_IDLE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub reclaim_idle_seconds: u64,
    /// How often a worker renews its hold on the job it is running; at most a third of the reclaim timeout
    #[arg(long, env = "SRE_HEARTBEAT_SECONDS", value_name = "SRE_HEARTBEAT_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_seconds: u64,
    /// A queued or running run with no progress this long has lost its job and is enqueued again
    #[arg(long, env = "SRE_REQUEUE_STALE_SECONDS", value_name = "SRE_REQUEUE_STALE_SECONDS", default_value_t = 1200)]
    pub requeue_stale_seconds: u64,
    /// Runs started more often than this are blocked (the loop guard)
    #[arg(long, env = "SRE_MAX_ATTEMPTS", value_name = "SRE_MAX_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// First retry delay after a transient failure; doubles per attempt, with jitter
    #[arg(long, env = "SRE_RETRY_BASE_MS", value_name = "SRE_RETRY_BASE_MS", default_value_t = 2000)]
    pub retry_base_ms: u64,
    /// Longest retry delay
    #[arg(long, env = "SRE_RETRY_MAX_MS", value_name = "SRE_RETRY_MAX_MS", default_value_t = 300_000)]
    pub retry_max_ms: u64,
    /// Runs at once on one repository, across every orchestrator
    #[arg(long, env = "SRE_REPO_CONCURRENCY", value_name = "SRE_REPO_CONCURRENCY", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repo_concurrency: u32,
    /// Runs at once for one installation owner (user or organisation), across every orchestrator
    #[arg(long, env = "SRE_ORG_CONCURRENCY", value_name = "SRE_ORG_CONCURRENCY", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub org_concurrency: u32,
    /// Pull requests the agent may open per repository per hour
    #[arg(long, env = "SRE_PRS_PER_HOUR", value_name = "SRE_PRS_PER_HOUR", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub prs_per_hour: u32,
    /// After a failed attempt, a new attempt of the same failure waits this long
    #[arg(long, env = "SRE_COOLDOWN_SECONDS", value_name = "SRE_COOLDOWN_SECONDS", default_value_t = 1800)]
    pub cooldown_seconds: u64,
    /// Stop when the agent made the last N commits on the failing branch in a row (0: no limit)
    #[arg(long, env = "SRE_MAX_AGENT_COMMITS", value_name = "SRE_MAX_AGENT_COMMITS", default_value_t = 3)]
    pub max_agent_commits: u32,
    /// Commit authors (name, email or login) containing this are the agent
    #[arg(long, env = "SRE_AGENT_IDENTITY", value_name = "SRE_AGENT_IDENTITY", default_value = "sre-agent")]
    pub agent_identity: String,
    /// Validator test timeout passed with each run
    #[arg(long, env = "SRE_VALIDATE_TIMEOUT_SECONDS", value_name = "SRE_VALIDATE_TIMEOUT_SECONDS",
          default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub validate_timeout_seconds: u32,
    /// Where failures come from: `local` (the repos dir; the embedded default) or `github` (jobs, logs,
    /// history and check runs through the GitHub API; the same switch as the pr service's)
    #[arg(long, env = "SRE_PR_BACKEND", value_name = "SRE_PR_BACKEND", value_enum, default_value = "local")]
    pub backend: Backend,
    /// Open pull requests by the agent one repository may have; a run beyond it waits (GitHub backend)
    #[arg(long, env = "SRE_MAX_OPEN_PRS", value_name = "SRE_MAX_OPEN_PRS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_open_prs: u32,
    /// Post the agent's own check run on the failing commit, in progress then completed (GitHub backend)
    #[arg(long, env = "SRE_CHECK_RUNS", value_name = "SRE_CHECK_RUNS", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub check_runs: bool,
    /// Public root of the gateway: the check run's details link is <url>/api/v1/runs/<run_id>
    #[arg(long, env = "SRE_PUBLIC_URL", value_name = "SRE_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub github: GithubArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Consumer name prefix in the group [default: <hostname>-<pid>]
    #[arg(long, env = "SRE_CONSUMER_NAME", value_name = "SRE_CONSUMER_NAME")]
    pub consumer: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Config {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| sre_store::Store::default_url(&self.data.data_dir))
    }

    pub fn reclaim_idle(&self) -> Duration {
        Duration::from_secs(self.reclaim_idle_seconds)
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_seconds)
    }

    /// Settings that are each valid but wrong together.
    pub fn check(&self) -> Result<(), String> {
        if self.heartbeat_seconds.saturating_mul(3) > self.reclaim_idle_seconds {
            return Err(format!(
                "SRE_HEARTBEAT_SECONDS ({}) must be at most a third of SRE_RECLAIM_IDLE_SECONDS ({}), or a live \
                 worker's job could be reclaimed between two heartbeats",
                self.heartbeat_seconds, self.reclaim_idle_seconds
            ));
        }
        Ok(())
    }

    pub fn requeue_stale(&self) -> Duration {
        Duration::from_secs(self.requeue_stale_seconds)
    }

    pub fn validate_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.validate_timeout_seconds))
    }

    pub fn consumer(&self) -> String {
        self.consumer.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "local".into());
            format!("{host}-{}", std::process::id())
        })
    }

    /// The delay before retry number `attempt` (1-based): exponential from `retry_base_ms`, capped at
    /// `retry_max_ms`, with full jitter over its upper half so retries of many runs spread out.
    pub fn retry_delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self.retry_base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.retry_max_ms).max(1);
        let jittered = capped as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        Duration::from_millis(jittered as u64)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn backoff_is_exponential_jittered_and_capped() {
        let mut c = Config::try_parse_from(["sre-orchestrator"]).unwrap();
        c.retry_base_ms = 1000;
        c.retry_max_ms = 10_000;
        assert_eq!(c.retry_delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(c.retry_delay(2, 1.0), Duration::from_secs(2));
        assert_eq!(c.retry_delay(3, 0.0), Duration::from_millis(2000));
        assert_eq!(c.retry_delay(30, 1.0), Duration::from_secs(10));
        assert!(Config::try_parse_from(["sre-orchestrator", "--workers", "0"]).is_err());
        let err = Config::try_parse_from(["sre-orchestrator", "--max-attempts", "x"]).unwrap_err().to_string();
        assert!(err.contains("SRE_MAX_ATTEMPTS"), "{err}");
        assert!(c.check().is_ok(), "the defaults agree");
        let slow = Config::try_parse_from(["sre-orchestrator", "--heartbeat-seconds", "11"]).unwrap();
        let err = slow.check().unwrap_err();
        assert!(err.contains("SRE_HEARTBEAT_SECONDS") && err.contains("SRE_RECLAIM_IDLE_SECONDS"), "{err}");
    }
}
