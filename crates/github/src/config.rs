//! Configuration values: base URLs, credentials and retry bounds. Nothing here reads the environment; the
//! binaries build a [`GithubConfig`] from their own config and hand it over.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;

use crate::error::GithubError;

/// `https://api.github.com`.
pub const GITHUB_API: &str = "https://api.github.com";
/// `https://github.com`.
pub const GITHUB_GIT: &str = "https://github.com";

/// Everything the client needs, as values.
#[derive(Clone, Debug)]
pub struct GithubConfig {
    /// REST API root: `https://api.github.com`, or `https://HOST/api/v3` on GitHub Enterprise Server. Paths
    /// such as `/repos/{owner}/{repo}` are appended to it, so a path prefix is kept.
    pub api_base: Url,
    /// Git root for clone/fetch/push URLs: `https://github.com`, or `https://HOST` on GHES.
    pub git_base: Url,
    /// Who the client is: a GitHub App (installation tokens) or one plain token.
    pub auth: Auth,
    /// `User-Agent` of every request (GitHub rejects requests without one).
    pub user_agent: String,
    /// Bound on one API request, body included.
    pub request_timeout: Duration,
    /// Bound on one job-log download from the blob host, body included.
    pub log_download_timeout: Duration,
    /// Retry and wait bounds.
    pub retry: RetryPolicy,
}

impl GithubConfig {
    /// github.com with the given credentials and default bounds.
    pub fn github_com(auth: Auth) -> Self {
        Self {
            api_base: Url::parse(GITHUB_API).unwrap_or_else(|_| unreachable!("constant URL")),
            git_base: Url::parse(GITHUB_GIT).unwrap_or_else(|_| unreachable!("constant URL")),
            auth,
            user_agent: concat!("sre-agent/", env!("CARGO_PKG_VERSION")).to_owned(),
            request_timeout: Duration::from_secs(30),
            log_download_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }

    /// GitHub Enterprise Server at `host_url` (`https://ghe.example.com`): API at `{host_url}/api/v3`, git at
    /// `{host_url}`.
    pub fn enterprise(host_url: &str, auth: Auth) -> Result<Self, GithubError> {
        let host = host_url.trim_end_matches('/');
        Self::github_com(auth).with_base_urls(&format!("{host}/api/v3"), host)
    }

    /// Replaces both base URLs (tests point them at a fake; GHES installs may differ from the convention).
    pub fn with_base_urls(mut self, api_base: &str, git_base: &str) -> Result<Self, GithubError> {
        self.api_base = parse_base("api_base", api_base)?;
        self.git_base = parse_base("git_base", git_base)?;
        Ok(self)
    }
}

fn parse_base(field: &str, value: &str) -> Result<Url, GithubError> {
    let url = Url::parse(value.trim_end_matches('/'))
        .map_err(|e| GithubError::Config(format!("{field} {value:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(GithubError::Config(format!("{field} {value:?} must be an http(s) URL with a host")));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(GithubError::Config(format!("{field} must not carry credentials or a query")));
    }
    Ok(url)
}

/// Bounds on retries and waits. Every loop in the client is bounded by these.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after a 5xx answer or a connection error (so `max_transient_retries + 1` attempts at most).
    pub max_transient_retries: u32,
    /// First backoff after a transient failure; doubles each retry up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Retries after a rate-limit answer (secondary `retry-after`, or an exhausted primary limit).
    pub max_rate_limit_retries: u32,
    /// Longest the client sleeps for one rate-limit wait. A longer `retry-after` or primary reset is returned
    /// as [`GithubError::RateLimited`] / [`GithubError::SecondaryRateLimited`] instead of slept through.
    pub max_rate_limit_wait: Duration,
    /// Pages fetched at most by a listing call (100 items a page).
    pub max_pages: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_transient_retries: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_rate_limit_retries: 2,
            max_rate_limit_wait: Duration::from_secs(60),
            max_pages: 10,
        }
    }
}

/// A secret string (token, JWT, header value). Its `Debug` is redacted and it has no `Display`, so it cannot
/// reach a log line or an error message by formatting.
#[derive(Clone)]
pub struct SecretToken(Arc<str>);

impl SecretToken {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Arc::from(secret.into()))
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

impl PartialEq for SecretToken {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

/// How the client authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    /// A GitHub App: JWTs signed with its private key buy one-hour installation tokens.
    App(AppCredentials),
    /// One token (`GITHUB_TOKEN`, a fine-grained PAT) used for every call.
    Token(SecretToken),
}

/// A GitHub App's id and RS256 private key.
#[derive(Clone)]
pub struct AppCredentials {
    app_id: u64,
    key: jsonwebtoken::EncodingKey,
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials").field("app_id", &self.app_id).field("key", &"<redacted>").finish()
    }
}

/// App JWT lifetime: GitHub refuses `exp` more than 10 minutes ahead; 9 leaves room for clock drift.
const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);
/// `iat` is backdated so a server clock slightly behind ours still sees a past issue time.
const JWT_BACKDATE: Duration = Duration::from_secs(60);

#[derive(serde::Serialize)]
struct AppClaims {
    iat: u64,
    exp: u64,
    iss: String,
}

impl AppCredentials {
    /// From the PEM text GitHub lets you download (PKCS#1 `RSA PRIVATE KEY`, or PKCS#8).
    pub fn from_pem(app_id: u64, pem: &[u8]) -> Result<Self, GithubError> {
        // The parser's message never contains key material, but keep ours fixed anyway.
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem)
            .map_err(|_| GithubError::Config("the App private key is not an RSA PEM key".to_owned()))?;
        Ok(Self { app_id, key })
    }

    /// From a PEM file.
    pub fn from_pem_file(app_id: u64, path: &Path) -> Result<Self, GithubError> {
        let pem = std::fs::read(path)
            .map_err(|e| GithubError::Config(format!("cannot read App private key {}: {e}", path.display())))?;
        Self::from_pem(app_id, &pem)
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// A JWT for the `/app` endpoints: RS256, `iss` = app id, `iat` = now - 60 s, `exp` = now + 9 min.
    pub(crate) fn jwt(&self, now: SystemTime) -> Result<SecretToken, GithubError> {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let claims = AppClaims {
            iat: now.saturating_sub(JWT_BACKDATE).as_secs(),
            exp: (now + JWT_LIFETIME).as_secs(),
            iss: self.app_id.to_string(),
        };
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(SecretToken::new)
            .map_err(|_| GithubError::Config("signing the App JWT failed".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let token = SecretToken::new("ghs_supersecret");
        assert!(!format!("{token:?}").contains("supersecret"));
        let auth = Auth::Token(token);
        assert!(!format!("{auth:?}").contains("supersecret"));
        let config = GithubConfig::github_com(auth);
        assert!(!format!("{config:?}").contains("supersecret"));
    }

    #[test]
    fn enterprise_urls() {
        let c = GithubConfig::enterprise("https://ghe.example.com/", Auth::Token(SecretToken::new("t"))).unwrap();
        assert_eq!(c.api_base.as_str(), "https://ghe.example.com/api/v3");
        assert_eq!(c.git_base.as_str(), "https://ghe.example.com/");
    }

    #[test]
    fn base_urls_refuse_credentials_and_queries() {
        let c = GithubConfig::github_com(Auth::Token(SecretToken::new("t")));
        assert!(c.clone().with_base_urls("https://x:y@api.example.com", "https://example.com").is_err());
        assert!(c.clone().with_base_urls("https://api.example.com?a=b", "https://example.com").is_err());
        assert!(c.clone().with_base_urls("ftp://api.example.com", "https://example.com").is_err());
        assert!(c.with_base_urls("not a url", "https://example.com").is_err());
    }

    #[test]
    fn bad_pem_is_a_config_error() {
        let err = AppCredentials::from_pem(1, b"-----BEGIN RSA PRIVATE KEY-----\nnope\n").unwrap_err();
        assert!(matches!(err, GithubError::Config(_)));
    }
}
