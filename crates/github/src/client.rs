//! The transport: one [`GithubClient`] per process, [`Session`]s per installation (or for the plain token).
//!
//! Every HTTP attempt goes through [`GithubClient::execute`], which owns, in this order: the primary
//! rate-limit wait, the credential (cached installation token, fresh App JWT, or the plain token), the client
//! span and metrics of the attempt, and the classification of the answer into success, a bounded retry
//! (5xx/transport with backoff, `retry-after`, primary reset, one token refresh on 401) or a typed error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, Url};
use tracing::Instrument;
use tracing::field::Empty;

use crate::config::{Auth, GithubConfig, SecretToken};
use crate::error::{GithubError, ValidationDetail, short_message};
use crate::metrics::{Endpoint, GithubMetrics, StatusClass};
use crate::types::{ErrorBody, InstallationId, InstallationToken, RepoRef};

/// Installation tokens are renewed this long before `expires_at`.
const TOKEN_RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Largest JSON body read from an API answer.
pub(crate) const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;
/// Largest error body read (for its `message`).
const MAX_ERROR_BYTES: usize = 64 * 1024;
/// GitHub's advice when a secondary limit answer has no `retry-after`: wait at least a minute.
const SECONDARY_DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// Which credential a request carries; also the key of the primary rate-limit state (GitHub counts per
/// installation, per App and per token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Credential {
    /// An App JWT (the `/app` endpoints).
    App,
    Installation(InstallationId),
    /// The configured plain token.
    Token,
    /// Nothing: the log blob host must never see our credentials.
    None,
}

/// Where a request goes.
pub(crate) enum Target {
    /// A path under the API base, already percent-encoded.
    Api(String),
    /// An absolute URL (the log redirect target).
    Absolute(Url),
}

/// One logical call; [`GithubClient::execute`] makes up to a bounded number of attempts of it.
pub(crate) struct Request<'a> {
    pub endpoint: Endpoint,
    pub method: Method,
    /// The route template for span names (`/repos/{owner}/{repo}/pulls`), never the concrete path.
    pub route: &'static str,
    pub target: Target,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<serde_json::Value>,
    /// The repository a 403/404 is about (for [`GithubError::NotAccessible`]).
    pub repo: Option<&'a RepoRef>,
    pub credential: Credential,
    pub timeout: Option<Duration>,
}

impl<'a> Request<'a> {
    pub fn api(endpoint: Endpoint, method: Method, route: &'static str, path: String, credential: Credential) -> Self {
        Self {
            endpoint,
            method,
            route,
            target: Target::Api(path),
            query: Vec::new(),
            body: None,
            repo: None,
            credential,
            timeout: None,
        }
    }

    pub fn repo(mut self, repo: &'a RepoRef) -> Self {
        self.repo = Some(repo);
        self
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }
}

#[derive(Clone)]
struct CachedToken {
    token: SecretToken,
    expires_at: SystemTime,
}

struct Inner {
    http: reqwest::Client,
    config: GithubConfig,
    metrics: GithubMetrics,
    /// One mint at a time: concurrent callers of a cold installation wait for the same token.
    tokens: tokio::sync::Mutex<HashMap<InstallationId, CachedToken>>,
    /// Credentials whose primary limit is exhausted, and until when.
    exhausted: Mutex<HashMap<Credential, SystemTime>>,
}

/// A GitHub client: cheap to clone, one per process.
#[derive(Clone)]
pub struct GithubClient {
    inner: Arc<Inner>,
}

/// Calls made with one credential: an installation's token, or the plain token.
#[derive(Clone)]
pub struct Session {
    pub(crate) client: GithubClient,
    pub(crate) credential: Credential,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("credential", &self.credential).finish()
    }
}

impl GithubClient {
    pub fn new(config: GithubConfig, metrics: GithubMetrics) -> Result<Self, GithubError> {
        let http = reqwest::Client::builder()
            // Redirects are followed by hand: only the log download has one, and it must drop credentials.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GithubError::Config(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                metrics,
                tokens: tokio::sync::Mutex::new(HashMap::new()),
                exhausted: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &GithubConfig {
        &self.inner.config
    }

    /// Calls as the App installation `id` (App auth only).
    pub fn installation(&self, id: InstallationId) -> Result<Session, GithubError> {
        match self.inner.config.auth {
            Auth::App(_) => Ok(Session { client: self.clone(), credential: Credential::Installation(id) }),
            Auth::Token(_) => Err(GithubError::Config("installation sessions need App credentials".to_owned())),
        }
    }

    /// Calls with the configured plain token (token auth only).
    pub fn with_token(&self) -> Result<Session, GithubError> {
        match self.inner.config.auth {
            Auth::Token(_) => Ok(Session { client: self.clone(), credential: Credential::Token }),
            Auth::App(_) => Err(GithubError::Config("the client is configured with App credentials".to_owned())),
        }
    }

    /// The token a credential sends, minting an installation token when none is cached or it expires soon.
    pub(crate) async fn token_for(&self, credential: Credential) -> Result<Option<SecretToken>, GithubError> {
        match (credential, &self.inner.config.auth) {
            (Credential::None, _) => Ok(None),
            (Credential::Token, Auth::Token(token)) => Ok(Some(token.clone())),
            (Credential::App, Auth::App(app)) => app.jwt(SystemTime::now()).map(Some),
            (Credential::Installation(id), Auth::App(_)) => {
                let mut tokens = self.inner.tokens.lock().await;
                if let Some(cached) = tokens.get(&id)
                    && cached.expires_at > SystemTime::now() + TOKEN_RENEW_BEFORE
                {
                    return Ok(Some(cached.token.clone()));
                }
                let minted = Box::pin(self.mint(id)).await?;
                tokens.insert(id, minted.clone());
                Ok(Some(minted.token))
            }
            _ => Err(GithubError::Config("credential does not match the configured auth".to_owned())),
        }
    }

    /// `POST /app/installations/{id}/access_tokens` with the App JWT.
    async fn mint(&self, id: InstallationId) -> Result<CachedToken, GithubError> {
        let req = Request::api(
            Endpoint::AppToken,
            Method::POST,
            "/app/installations/{installation_id}/access_tokens",
            format!("/app/installations/{}/access_tokens", id.0),
            Credential::App,
        );
        let resp = self.execute(&req).await?;
        let body: InstallationToken = read_json(resp, Endpoint::AppToken).await?;
        let expires_at = crate::time::parse_rfc3339(&body.expires_at).ok_or_else(|| GithubError::Decode {
            endpoint: Endpoint::AppToken,
            message: "expires_at is not an ISO 8601 timestamp".to_owned(),
        })?;
        tracing::info!(installation_id = id.0, "github installation token minted");
        Ok(CachedToken { token: SecretToken::new(body.token), expires_at })
    }

    /// Forgets an installation token GitHub refused, unless another caller already replaced it.
    async fn invalidate(&self, id: InstallationId, refused: &SecretToken) {
        let mut tokens = self.inner.tokens.lock().await;
        if tokens.get(&id).is_some_and(|c| &c.token == refused) {
            tokens.remove(&id);
        }
    }

    /// The installation token's expiry as cached (for git credentials).
    pub(crate) async fn cached_expiry(&self, id: InstallationId) -> Option<SystemTime> {
        self.inner.tokens.lock().await.get(&id).map(|c| c.expires_at)
    }

    fn url(&self, req: &Request<'_>) -> Result<Url, GithubError> {
        let mut url = match &req.target {
            Target::Absolute(url) => url.clone(),
            Target::Api(path) => {
                let base = self.inner.config.api_base.as_str().trim_end_matches('/');
                Url::parse(&format!("{base}{path}")).map_err(|e| GithubError::InvalidInput(format!("path: {e}")))?
            }
        };
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(req.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// Runs `req` until it succeeds (2xx/3xx) or fails for good. Bounded: at most
    /// `max_transient_retries` retries after 5xx/transport errors, `max_rate_limit_retries` waits for rate
    /// limits, each at most `max_rate_limit_wait`, and one token refresh.
    pub(crate) async fn execute(&self, req: &Request<'_>) -> Result<reqwest::Response, GithubError> {
        let policy = &self.inner.config.retry;
        let url = self.url(req)?;
        let mut transient_retries = 0u32;
        let mut rate_waits = 0u32;
        let mut refreshed = false;
        let mut resend = 0u32;
        loop {
            self.wait_for_primary(req.credential, req.endpoint).await?;
            let token = self.token_for(req.credential).await?;
            let started = Instant::now();
            let span = client_span(req, &url, resend);
            let sent = self.send(req, &url, token.as_ref()).instrument(span.clone()).await;
            resend += 1;
            let resp = match sent {
                Ok(resp) => resp,
                Err(err) => {
                    let message = transport_message(err);
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", "transport");
                    self.inner.metrics.observe(req.endpoint, StatusClass::Error, secs(started), &span);
                    if transient_retries < policy.max_transient_retries {
                        let wait = backoff(policy.initial_backoff, policy.max_backoff, transient_retries);
                        transient_retries += 1;
                        tracing::warn!(parent: &span, endpoint = %req.endpoint, error = %message, wait_ms = wait.as_millis() as u64, "github call failed to connect; retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(GithubError::Transport { endpoint: req.endpoint, message });
                }
            };
            let status = resp.status().as_u16();
            span.record("http.response.status_code", status);
            self.inner.metrics.observe(req.endpoint, StatusClass::of(status), secs(started), &span);
            if req.credential != Credential::None {
                self.note_rate_limit(req.credential, resp.headers());
            }
            if status < 400 {
                return Ok(resp);
            }
            span.record("otel.status_code", "ERROR");
            span.record("error.type", status.to_string());
            let headers = resp.headers().clone();
            let body = error_body(resp).await;

            match status {
                401 => {
                    if let (Credential::Installation(id), Some(token), false) = (req.credential, &token, refreshed) {
                        refreshed = true;
                        tracing::warn!(parent: &span, endpoint = %req.endpoint, installation_id = id.0, "github refused the installation token; minting a new one");
                        self.invalidate(id, token).await;
                        continue;
                    }
                    return Err(GithubError::Unauthorized { endpoint: req.endpoint });
                }
                403 | 429 => {
                    if let Some(limit) = rate_limit_kind(status, &headers, &body.message) {
                        let (wait, error) = match limit {
                            Limit::Secondary(wait) => {
                                (wait, GithubError::SecondaryRateLimited { endpoint: req.endpoint, retry_after: wait })
                            }
                            Limit::Primary(reset) => (
                                reset.duration_since(SystemTime::now()).unwrap_or_default(),
                                GithubError::RateLimited { endpoint: req.endpoint, retry_at: reset },
                            ),
                        };
                        if rate_waits >= policy.max_rate_limit_retries || wait > policy.max_rate_limit_wait {
                            return Err(error);
                        }
                        rate_waits += 1;
                        tracing::warn!(parent: &span, endpoint = %req.endpoint, status, wait_ms = wait.as_millis() as u64, "github rate limit; waiting");
                        tokio::time::sleep(wait).await;
                        self.clear_exhausted(req.credential);
                        continue;
                    }
                    return Err(match req.repo {
                        Some(repo) => {
                            GithubError::NotAccessible { repo: repo.to_string(), status, message: body.message }
                        }
                        None => GithubError::Api { endpoint: req.endpoint, status, message: body.message },
                    });
                }
                404 => return Err(self.not_found(req).await),
                422 => {
                    return Err(GithubError::Validation {
                        endpoint: req.endpoint,
                        message: body.message,
                        errors: body.errors,
                    });
                }
                500..=599 => {
                    if transient_retries < policy.max_transient_retries {
                        let wait = backoff(policy.initial_backoff, policy.max_backoff, transient_retries);
                        transient_retries += 1;
                        tracing::warn!(parent: &span, endpoint = %req.endpoint, status, wait_ms = wait.as_millis() as u64, "github server error; retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(GithubError::Server { endpoint: req.endpoint, status });
                }
                _ => return Err(GithubError::Api { endpoint: req.endpoint, status, message: body.message }),
            }
        }
    }

    fn send(
        &self,
        req: &Request<'_>,
        url: &Url,
        token: Option<&SecretToken>,
    ) -> impl Future<Output = Result<reqwest::Response, reqwest::Error>> + use<> {
        let mut builder = self.inner.http.request(req.method.clone(), url.clone());
        let mut headers = HeaderMap::new();
        if let Ok(ua) = HeaderValue::from_str(&self.inner.config.user_agent) {
            headers.insert(USER_AGENT, ua);
        }
        if matches!(req.target, Target::Api(_)) {
            headers.insert(ACCEPT, HeaderValue::from_static("application/vnd.github+json"));
            headers.insert("x-github-api-version", HeaderValue::from_static("2022-11-28"));
        }
        if let Some(token) = token
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        {
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        builder = builder.headers(headers);
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        if let Some(timeout) = req.timeout {
            builder = builder.timeout(timeout);
        }
        builder.send()
    }

    /// A 404 inside a repository means "not found" only if the repository itself is visible; otherwise
    /// GitHub is hiding the repository (outside the installation, or private): one probe tells which.
    async fn not_found(&self, req: &Request<'_>) -> GithubError {
        let Some(repo) = req.repo else {
            return GithubError::NotFound { endpoint: req.endpoint };
        };
        let inaccessible =
            |status| GithubError::NotAccessible { repo: repo.to_string(), status, message: "Not Found".to_owned() };
        if req.endpoint == Endpoint::Repo {
            return inaccessible(404);
        }
        let probe =
            Request::api(Endpoint::Repo, Method::GET, "/repos/{owner}/{repo}", repo_path(repo, ""), req.credential)
                .repo(repo);
        match Box::pin(self.execute(&probe)).await {
            Ok(_) => GithubError::NotFound { endpoint: req.endpoint },
            Err(err) => err,
        }
    }

    fn note_rate_limit(&self, credential: Credential, headers: &HeaderMap) {
        let remaining = header_u64(headers, "x-ratelimit-remaining");
        let reset = header_u64(headers, "x-ratelimit-reset");
        let mut exhausted = self.inner.exhausted.lock().unwrap_or_else(|e| e.into_inner());
        match (remaining, reset) {
            (Some(0), Some(reset)) => {
                exhausted.insert(credential, UNIX_EPOCH + Duration::from_secs(reset));
            }
            (Some(_), _) => {
                exhausted.remove(&credential);
            }
            _ => {}
        }
    }

    fn clear_exhausted(&self, credential: Credential) {
        self.inner.exhausted.lock().unwrap_or_else(|e| e.into_inner()).remove(&credential);
    }

    /// Before sending: if the last answer for this credential said `x-ratelimit-remaining: 0`, wait for the
    /// reset (bounded) or fail with [`GithubError::RateLimited`].
    async fn wait_for_primary(&self, credential: Credential, endpoint: Endpoint) -> Result<(), GithubError> {
        let until = self.inner.exhausted.lock().unwrap_or_else(|e| e.into_inner()).get(&credential).copied();
        let Some(until) = until else { return Ok(()) };
        let Ok(wait) = until.duration_since(SystemTime::now()) else {
            self.clear_exhausted(credential);
            return Ok(());
        };
        if wait > self.inner.config.retry.max_rate_limit_wait {
            return Err(GithubError::RateLimited { endpoint, retry_at: until });
        }
        tracing::info!(endpoint = %endpoint, wait_ms = wait.as_millis() as u64, "github primary rate limit exhausted; waiting for the reset");
        tokio::time::sleep(wait).await;
        self.clear_exhausted(credential);
        Ok(())
    }
}

enum Limit {
    Secondary(Duration),
    Primary(SystemTime),
}

/// Tells a rate-limit 403/429 from a permission 403. Primary: `x-ratelimit-remaining: 0` (wait for
/// `x-ratelimit-reset`). Secondary: `retry-after`, or a 429 / "secondary rate limit" message without it
/// (wait a minute, as GitHub advises).
fn rate_limit_kind(status: u16, headers: &HeaderMap, message: &str) -> Option<Limit> {
    if let Some(secs) = header_u64(headers, RETRY_AFTER.as_str()) {
        return Some(Limit::Secondary(Duration::from_secs(secs)));
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
        let reset = header_u64(headers, "x-ratelimit-reset").map(|s| UNIX_EPOCH + Duration::from_secs(s));
        return Some(Limit::Primary(reset.unwrap_or_else(|| SystemTime::now() + SECONDARY_DEFAULT_WAIT)));
    }
    if status == 429 || message.to_ascii_lowercase().contains("secondary rate limit") {
        return Some(Limit::Secondary(SECONDARY_DEFAULT_WAIT));
    }
    None
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn secs(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

/// `initial * 2^n`, capped, with up to 25% jitter so retries of many callers spread out.
fn backoff(initial: Duration, max: Duration, n: u32) -> Duration {
    let base = initial.saturating_mul(1u32 << n.min(16)).min(max);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

/// A transport error as text: no URL (a redirect target carries a signature in its query) and its causes.
fn transport_message(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut message = if err.is_timeout() { "timed out".to_owned() } else { err.to_string() };
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    short_message(&message)
}

/// The span of one HTTP attempt (OpenTelemetry HTTP client conventions). `url.full` has no query string
/// and no userinfo: redirect targets carry signatures in their queries.
fn client_span(req: &Request<'_>, url: &Url, resend: u32) -> tracing::Span {
    let mut clean = url.clone();
    clean.set_query(None);
    clean.set_fragment(None);
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    let span = tracing::info_span!(
        "github.request",
        otel.name = %format!("{} {}", req.method, req.route),
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = %req.method,
        http.response.status_code = Empty,
        http.request.resend_count = Empty,
        url.full = %clean,
        server.address = clean.host_str().unwrap_or_default(),
        server.port = clean.port_or_known_default().unwrap_or_default(),
        github.endpoint = req.endpoint.as_str(),
        error.type = Empty,
    );
    if resend > 0 {
        span.record("http.request.resend_count", resend);
    }
    span
}

struct ParsedError {
    message: String,
    errors: Vec<ValidationDetail>,
}

async fn error_body(resp: reqwest::Response) -> ParsedError {
    let bytes = read_bounded(resp, MAX_ERROR_BYTES).await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => ParsedError {
            message: short_message(&body.message),
            errors: body
                .errors
                .into_iter()
                .map(|e| match e {
                    // Some endpoints send plain strings in `errors`.
                    serde_json::Value::String(s) => ValidationDetail { message: Some(s), ..Default::default() },
                    other => serde_json::from_value(other).unwrap_or_default(),
                })
                .collect(),
        },
        Err(_) => ParsedError { message: short_message(&String::from_utf8_lossy(&bytes)), errors: Vec::new() },
    }
}

/// Reads a body up to `limit` bytes; `None` if it is longer or the connection fails.
async fn read_bounded(mut resp: reqwest::Response, limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.ok()? {
        if out.len() + chunk.len() > limit {
            return None;
        }
        out.extend_from_slice(&chunk);
    }
    Some(out)
}

/// Decodes a JSON success body, bounded by [`MAX_JSON_BYTES`].
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    endpoint: Endpoint,
) -> Result<T, GithubError> {
    let bytes = read_bounded(resp, MAX_JSON_BYTES)
        .await
        .ok_or_else(|| GithubError::Decode { endpoint, message: "body unreadable or too large".to_owned() })?;
    serde_json::from_slice(&bytes).map_err(|e| GithubError::Decode { endpoint, message: short_message(&e.to_string()) })
}

/// The `Location` of a redirect, resolved against the request URL.
pub(crate) fn location(resp: &reqwest::Response) -> Option<Url> {
    let value = resp.headers().get(LOCATION)?.to_str().ok()?;
    resp.url().join(value).ok()
}

/// `/repos/{owner}/{repo}{rest}`.
pub(crate) fn repo_path(repo: &RepoRef, rest: &str) -> String {
    format!("/repos/{}/{}{rest}", repo.owner(), repo.name())
}

/// Percent-encodes a branch or ref for a path, keeping `/` (GitHub's ref routes take the rest of the path).
pub(crate) fn encode_ref(reference: &str) -> String {
    let mut out = String::with_capacity(reference.len());
    for b in reference.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_encoded_for_paths() {
        assert_eq!(encode_ref("sre-agent/fix-1"), "sre-agent/fix-1");
        assert_eq!(encode_ref("a b?c#d%"), "a%20b%3Fc%23d%25");
        assert_eq!(encode_ref("ü"), "%C3%BC");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(1));
        assert!(backoff(i, m, 0) >= i && backoff(i, m, 0) <= i.mul_f64(1.25));
        assert!(backoff(i, m, 2) >= Duration::from_millis(400));
        assert!(backoff(i, m, 30) <= m.mul_f64(1.25));
    }

    #[test]
    fn rate_limit_kinds() {
        let mut h = HeaderMap::new();
        assert!(rate_limit_kind(403, &h, "Resource not accessible by integration").is_none());
        assert!(matches!(
            rate_limit_kind(403, &h, "You have exceeded a secondary rate limit"),
            Some(Limit::Secondary(d)) if d == SECONDARY_DEFAULT_WAIT
        ));
        assert!(matches!(rate_limit_kind(429, &h, ""), Some(Limit::Secondary(_))));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1700000000"));
        assert!(matches!(
            rate_limit_kind(403, &h, ""),
            Some(Limit::Primary(t)) if t == UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        ));
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert!(matches!(rate_limit_kind(403, &h, ""), Some(Limit::Secondary(d)) if d == Duration::from_secs(3)));
    }
}
