//! The crate's one error enum. No variant ever holds the API key, prompt text or completion text: server
//! messages are cut short with the key removed, and authentication failures carry no server message at all
//! (OpenAI echoes part of a wrong key in it).

use std::time::Duration;

use crate::budget::BudgetExceeded;

/// What stops a chat call or a fix.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("invalid LLM configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
    #[error("the LLM server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the LLM server is unreachable: {0}")]
    Unreachable(String),
    #[error("the LLM server rate-limited the request (HTTP 429{}){}", code_suffix(.code), retry_suffix(.retry_after))]
    RateLimited { code: Option<String>, retry_after: Option<Duration> },
    #[error("the LLM server refused the credentials (HTTP {status}{})", code_suffix(.code))]
    Unauthorized { status: u16, code: Option<String> },
    #[error("the LLM server answered HTTP {status}{}: {message}", code_suffix(.code))]
    Http { status: u16, code: Option<String>, message: String },
    #[error("the LLM server's answer is not a chat completion: {0}")]
    MalformedResponse(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref().map(|c| format!(", {c}")).unwrap_or_default()
}

fn retry_suffix(after: &Option<Duration>) -> String {
    after.map(|d| format!("; retry after {} s", d.as_secs())).unwrap_or_default()
}

impl LlmError {
    /// True when the same call may succeed later (timeouts, connection failures, 429, 5xx): the caller may
    /// retry the run later; anything else needs a configuration change.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Unreachable(_) | Self::MalformedResponse(_) => true,
            Self::RateLimited { code, .. } => code.as_deref() != Some("insufficient_quota"),
            Self::Http { status, .. } => *status >= 500 || *status == 408,
            Self::Config(_) | Self::Budget(_) | Self::Unauthorized { .. } | Self::Io { .. } => false,
        }
    }

    /// A short bounded spelling for `error.type` and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Budget(_) => "budget_exceeded",
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Http { .. } => "http_error",
            Self::MalformedResponse(_) => "malformed_response",
            Self::Io { .. } => "io",
        }
    }
}

/// A server-provided text made safe for an error message: the key removed, control characters dropped, at
/// most `max` characters.
pub(crate) fn scrub(text: &str, key: Option<&str>, max: usize) -> String {
    let mut s = text.to_owned();
    if let Some(key) = key.filter(|k| !k.is_empty()) {
        s = s.replace(key, "***");
    }
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
    if s.chars().filter(|c| !c.is_control()).count() > max {
        out.push('…');
    }
    out
}

/// An identifier from a server (error `type`/`code`): only `[A-Za-z0-9_.-]`, at most 64 characters.
pub(crate) fn identifier(text: &str) -> Option<String> {
    let s: String =
        text.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')).take(64).collect();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_removes_the_key_and_bounds_the_text() {
        assert_eq!(scrub("bad key sk-123\n please", Some("sk-123"), 100), "bad key *** please");
        assert_eq!(scrub("abcdef", None, 3), "abc…");
        assert_eq!(identifier("invalid_api_key"), Some("invalid_api_key".into()));
        assert_eq!(identifier("<script>"), Some("script".into()));
        assert_eq!(identifier("\"\""), None);
    }

    #[test]
    fn messages() {
        let e = LlmError::RateLimited {
            code: Some("rate_limit_exceeded".into()),
            retry_after: Some(Duration::from_secs(20)),
        };
        assert_eq!(
            e.to_string(),
            "the LLM server rate-limited the request (HTTP 429, rate_limit_exceeded); retry after 20 s"
        );
        assert!(e.is_transient());
        let quota = LlmError::RateLimited { code: Some("insufficient_quota".into()), retry_after: None };
        assert!(!quota.is_transient());
        let auth = LlmError::Unauthorized { status: 401, code: Some("invalid_api_key".into()) };
        assert_eq!(auth.to_string(), "the LLM server refused the credentials (HTTP 401, invalid_api_key)");
        assert!(!auth.is_transient());
    }
}
