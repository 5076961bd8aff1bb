//! The one error type of the crate. Messages name the endpoint family and the status, never a token, a header
//! value or a query string.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metrics::Endpoint;

/// One entry of a 422 answer's `errors` array.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ValidationDetail {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Everything a GitHub call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("invalid GitHub configuration: {0}")]
    Config(String),
    #[error("invalid argument: {0}")]
    InvalidInput(String),
    /// 401 after one token refresh (or on the App JWT itself).
    #[error("{endpoint}: GitHub rejected the credentials (401)")]
    Unauthorized { endpoint: Endpoint },
    /// The repository does not exist for these credentials: outside the installation, private to others, or a
    /// permission the App lacks (`Resource not accessible by integration`).
    #[error("repository {repo} is not accessible with these credentials (HTTP {status}: {message})")]
    NotAccessible { repo: String, status: u16, message: String },
    /// 404 for an object inside a repository that is accessible (a job, a branch, a commit).
    #[error("{endpoint}: not found")]
    NotFound { endpoint: Endpoint },
    /// 422.
    #[error("{endpoint}: validation failed: {message}")]
    Validation { endpoint: Endpoint, message: String, errors: Vec<ValidationDetail> },
    /// The primary rate limit is exhausted until `retry_at`, later than the configured wait cap.
    #[error("{endpoint}: primary rate limit exhausted until unix time {}", unix(*retry_at))]
    RateLimited { endpoint: Endpoint, retry_at: SystemTime },
    /// A secondary rate limit (403/429 with `retry-after`) outlasted the retries or the wait cap.
    #[error("{endpoint}: secondary rate limit, retry after {}s", retry_after.as_secs())]
    SecondaryRateLimited { endpoint: Endpoint, retry_after: Duration },
    /// 5xx after the bounded retries.
    #[error("{endpoint}: GitHub answered HTTP {status}")]
    Server { endpoint: Endpoint, status: u16 },
    /// Connection, TLS or timeout failure after the bounded retries.
    #[error("{endpoint}: transport error: {message}")]
    Transport { endpoint: Endpoint, message: String },
    /// Any other non-success answer.
    #[error("{endpoint}: HTTP {status}: {message}")]
    Api { endpoint: Endpoint, status: u16, message: String },
    /// A success answer whose body is not what the REST description says.
    #[error("{endpoint}: unexpected response: {message}")]
    Decode { endpoint: Endpoint, message: String },
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

impl GithubError {
    /// True when the same call may succeed later without any change (5xx, network, rate limits).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Server { .. } | Self::Transport { .. } | Self::RateLimited { .. } | Self::SecondaryRateLimited { .. }
        )
    }

    /// When a rate-limited call may be tried again.
    pub fn retry_at(&self) -> Option<SystemTime> {
        match self {
            Self::RateLimited { retry_at, .. } => Some(*retry_at),
            Self::SecondaryRateLimited { retry_after, .. } => Some(SystemTime::now() + *retry_after),
            _ => None,
        }
    }
}

/// Shortens a message taken from a response body: bounded, single line.
pub(crate) fn short_message(s: &str) -> String {
    const MAX: usize = 300;
    let line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX).collect();
    line.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classification() {
        let e = Endpoint::Pulls;
        assert!(GithubError::Server { endpoint: e, status: 502 }.is_transient());
        assert!(GithubError::Transport { endpoint: e, message: "reset".into() }.is_transient());
        assert!(GithubError::RateLimited { endpoint: e, retry_at: SystemTime::now() }.is_transient());
        assert!(GithubError::SecondaryRateLimited { endpoint: e, retry_after: Duration::from_secs(1) }.is_transient());
        assert!(!GithubError::Unauthorized { endpoint: e }.is_transient());
        assert!(!GithubError::NotAccessible { repo: "o/r".into(), status: 404, message: String::new() }.is_transient());
        assert!(!GithubError::Validation { endpoint: e, message: String::new(), errors: vec![] }.is_transient());
    }

    #[test]
    fn messages_are_bounded_single_lines() {
        let long = "a\nb".repeat(500);
        let m = short_message(&long);
        assert!(m.len() <= 300 && !m.contains('\n'));
    }
}
