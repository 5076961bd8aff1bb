//! The OpenAI-compatible chat-completions client: `POST {base_url}/chat/completions`, bounded retries on 429,
//! 5xx and connection failures (honouring `retry-after-ms` / `retry-after`), budgets checked before sending,
//! one `chat {model}` client span and one [`RequestFinished`] event per HTTP request.
//!
//! The key travels only in the `Authorization` header. Spans and logs carry the gen_ai attributes, counts and
//! durations, never message or completion text.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::{Array, StringValue, Value as OtelValue};
use reqwest::Url;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use sre_telemetry::Emit;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::budget::{HourBudget, RunBudget, reserve};
use crate::config::LlmConfig;
use crate::error::{LlmError, identifier, scrub};
use crate::events::{
    BudgetRefused, LlmMetrics, RejectReason, RequestFinished, RequestOutcome, TokenDirection, TokensUsed,
};

/// Bytes of a response body read, at most.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Who speaks a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message. Its Debug shows the role and the length only.
#[derive(Clone, Serialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Message({:?}, {} bytes)", self.role, self.content.len())
    }
}

/// Tokens one request used: from the response's `usage`, or estimated when the server sent none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// What was charged to the budgets (at least input + output; `total_tokens` when larger).
    pub charged: u64,
    /// False when the counts are estimates.
    pub reported: bool,
}

/// One chat completion. Its Debug never shows the content.
#[derive(Clone)]
pub struct Completion {
    pub content: String,
    /// The model refused (`message.refusal`).
    pub refusal: bool,
    pub finish_reason: Option<String>,
    /// `id` of the response (`gen_ai.response.id`).
    pub response_id: Option<String>,
    pub response_model: Option<String>,
    pub usage: Usage,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("content_bytes", &self.content.len())
            .field("refusal", &self.refusal)
            .field("finish_reason", &self.finish_reason)
            .field("response_model", &self.response_model)
            .field("usage", &self.usage)
            .finish()
    }
}

impl Completion {
    #[cfg(test)]
    pub(crate) fn for_test(content: &str, finish_reason: Option<&str>) -> Self {
        Self {
            content: content.into(),
            refusal: false,
            finish_reason: finish_reason.map(str::to_owned),
            response_id: None,
            response_model: None,
            usage: Usage::default(),
        }
    }
}

/// Why a completion's content cannot be used. The message is written for the model (it may quote paths the
/// model gave) and is sent back to it; it is never logged, so its Debug shows the reason only.
#[derive(Clone, PartialEq, Eq)]
pub struct Rejection {
    reason: RejectReason,
    message: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
    pub fn reason(&self) -> RejectReason {
        self.reason
    }
    /// The text for the model.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Debug for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rejection({})", self.reason)
    }
}

/// A completion and what the caller's check made of it.
#[derive(Debug)]
pub struct Reply<T> {
    pub completion: Completion,
    pub verdict: Result<T, Rejection>,
}

#[derive(Serialize)]
struct ResponseFormat {
    r#type: &'static str,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat>,
    stream: bool,
}

#[derive(Deserialize)]
struct ChatResponse {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<ApiUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<ChoiceMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct ApiUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
}

/// The client. Cheap to clone; the clones share the HTTP connection pool and the hour budget, so make one
/// per process.
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: LlmConfig,
    endpoint: Url,
    host: String,
    port: u16,
    http: reqwest::Client,
    metrics: LlmMetrics,
    hour: HourBudget,
    json_mode: AtomicBool,
}

/// How one HTTP attempt ended, when it did not produce a completion.
enum AttemptError {
    /// Try again after this long (if attempts are left).
    Retry {
        error: LlmError,
        after: Option<Duration>,
    },
    /// Try again at once: the request was changed (json mode dropped).
    RetryNow(LlmError),
    Fatal(LlmError),
}

impl LlmClient {
    /// Builds the client after checking the configuration. `metrics` are the process's (register once).
    pub fn new(config: LlmConfig, metrics: LlmMetrics) -> Result<Self, LlmError> {
        let endpoint = config.validate()?;
        let host = endpoint.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = endpoint.port_or_known_default().unwrap_or(0);
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("sre-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Config(format!("HTTP client: {}", e.without_url())))?;
        let hour = HourBudget::new(config.per_hour_token_budget);
        let json_mode = AtomicBool::new(config.json_mode);
        Ok(Self { inner: Arc::new(Inner { config, endpoint, host, port, http, metrics, hour, json_mode }) })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.inner.config
    }

    pub(crate) fn metrics(&self) -> &LlmMetrics {
        &self.inner.metrics
    }

    /// A fresh budget for one run, of the configured size.
    pub fn run_budget(&self) -> RunBudget {
        RunBudget::new(self.inner.config.per_run_token_budget)
    }

    /// The process's hour budget.
    pub fn hour_budget(&self) -> &HourBudget {
        &self.inner.hour
    }

    /// The worst case of a request: its estimated prompt tokens plus `max_output_tokens`.
    pub fn estimate(&self, messages: &[Message]) -> u64 {
        estimate_input(messages) + u64::from(self.inner.config.max_output_tokens)
    }

    /// Sends `messages` and hands the completion to `check`, whose verdict decides the request's outcome
    /// (`ok` or `malformed`). Refused before sending when the worst case does not fit both budgets; retried
    /// on 429, 5xx and connection failures up to `http_retries` times.
    pub async fn chat<T>(
        &self,
        messages: &[Message],
        run: &RunBudget,
        check: impl FnOnce(&Completion) -> Result<T, Rejection>,
    ) -> Result<Reply<T>, LlmError> {
        let inner = &*self.inner;
        let input_estimate = estimate_input(messages);
        let worst = self.estimate(messages);
        let reservation = match reserve(run, &inner.hour, worst) {
            Ok(r) => r,
            Err(e) => {
                inner.metrics.emit(BudgetRefused { scope: e.scope, needed: e.needed, remaining: e.remaining });
                return Err(e.into());
            }
        };
        let mut attempt = 0u32;
        let mut retries_left = inner.config.http_retries;
        loop {
            attempt += 1;
            let span = self.span(attempt);
            let started = Instant::now();
            let result = self.attempt(messages, input_estimate, &span).instrument(span.clone()).await;
            let elapsed = started.elapsed();
            let (status, failure) = match result {
                Ok((status, completion)) => {
                    reservation.commit(completion.usage.charged);
                    record_completion(&span, &completion);
                    for (direction, tokens) in [
                        (TokenDirection::Input, completion.usage.input_tokens),
                        (TokenDirection::Output, completion.usage.output_tokens),
                    ] {
                        span.in_scope(|| {
                            inner.metrics.emit(TokensUsed { direction, tokens, reported: completion.usage.reported })
                        });
                    }
                    let verdict = check(&completion);
                    let reason = verdict.as_ref().err().map(Rejection::reason);
                    let outcome = if reason.is_some() { RequestOutcome::Malformed } else { RequestOutcome::Ok };
                    if let Some(reason) = reason {
                        span.record("sre.llm.answer_rejected", reason.as_str());
                    }
                    self.finished(&span, outcome, reason, Some(status), elapsed, attempt);
                    return Ok(Reply { completion, verdict });
                }
                Err(e) => e,
            };
            // `counted`: the retry uses one of `http_retries` (a json-mode fallback does not: it happens once).
            let (error, wait, counted) = match failure {
                AttemptError::Fatal(e) => (e, None, false),
                AttemptError::RetryNow(e) => (e, Some(Duration::ZERO), false),
                AttemptError::Retry { error, after } => {
                    let done = inner.config.http_retries - retries_left;
                    let backoff = inner.config.retry_base_delay.saturating_mul(1u32 << done.min(16));
                    let wait = after.unwrap_or(backoff);
                    let fits = retries_left > 0 && wait <= inner.config.max_retry_wait;
                    (error, fits.then_some(wait), true)
                }
            };
            let error_type = error_type(&error, status);
            span.record("error.type", error_type.as_str());
            span.record("otel.status_code", "ERROR");
            let (outcome, reason) = match &error {
                LlmError::Timeout(_) => (RequestOutcome::Timeout, None),
                LlmError::Unreachable(_) => (RequestOutcome::Unreachable, None),
                LlmError::RateLimited { .. } => (RequestOutcome::RateLimited, None),
                LlmError::MalformedResponse(_) => (RequestOutcome::Malformed, Some(RejectReason::BadResponse)),
                _ => (RequestOutcome::HttpError, None),
            };
            self.finished(&span, outcome, reason, status, elapsed, attempt);
            let Some(wait) = wait else {
                if matches!(error, LlmError::Timeout(_) | LlmError::MalformedResponse(_)) {
                    // The server may have done the work, and we cannot see how much: charge the worst case.
                    reservation.commit(worst);
                }
                return Err(error);
            };
            if counted {
                retries_left -= 1;
                tracing::info!(attempt, wait_ms = wait.as_millis() as u64, error.type = error_type, "llm request retried");
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn finished(
        &self,
        span: &tracing::Span,
        outcome: RequestOutcome,
        reason: Option<RejectReason>,
        status: Option<u16>,
        elapsed: Duration,
        attempt: u32,
    ) {
        span.in_scope(|| self.inner.metrics.emit(RequestFinished { outcome, reason, status, elapsed, attempt }));
    }

    fn span(&self, attempt: u32) -> tracing::Span {
        let c = &self.inner.config;
        let span = tracing::info_span!(
            "chat",
            otel.name = %format!("chat {}", c.model),
            otel.kind = "client",
            otel.status_code = Empty,
            gen_ai.operation.name = "chat",
            gen_ai.system = %c.provider,
            gen_ai.provider.name = %c.provider,
            gen_ai.request.model = %c.model,
            gen_ai.request.max_tokens = c.max_output_tokens,
            gen_ai.request.temperature = Empty,
            gen_ai.response.id = Empty,
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            server.address = %self.inner.host,
            server.port = self.inner.port,
            http.response.status_code = Empty,
            error.type = Empty,
            sre.llm.http_attempt = attempt,
            sre.llm.answer_rejected = Empty,
        );
        if let Some(t) = c.temperature {
            span.record("gen_ai.request.temperature", t);
        }
        span
    }

    /// One HTTP request; `Ok` carries the status and the completion of a 2xx response.
    async fn attempt(
        &self,
        messages: &[Message],
        input_estimate: u64,
        span: &tracing::Span,
    ) -> Result<(u16, Completion), (Option<u16>, AttemptError)> {
        let inner = &*self.inner;
        let c = &inner.config;
        let json_mode = inner.json_mode.load(Ordering::Relaxed);
        let body = ChatRequest {
            model: &c.model,
            messages,
            max_tokens: c.max_output_tokens,
            temperature: c.temperature,
            response_format: json_mode.then_some(ResponseFormat { r#type: "json_object" }),
            stream: false,
        };
        let mut request = inner.http.post(inner.endpoint.clone()).json(&body);
        if let Some(key) = &c.api_key {
            request = request.bearer_auth(key.expose());
        }
        let transport_failure = |e: reqwest::Error| match transport(e, c.timeout) {
            error @ LlmError::Timeout(_) => AttemptError::Fatal(error),
            error => AttemptError::Retry { error, after: None },
        };
        let mut response = request.send().await.map_err(|e| (None, transport_failure(e)))?;
        let status = response.status().as_u16();
        span.record("http.response.status_code", status);
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err((
                            Some(status),
                            AttemptError::Fatal(LlmError::MalformedResponse(format!(
                                "the body exceeds {MAX_RESPONSE_BYTES} bytes"
                            ))),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err((Some(status), transport_failure(e))),
            }
        }
        if (200..300).contains(&status) {
            let malformed = |why: String| (Some(status), AttemptError::Fatal(LlmError::MalformedResponse(why)));
            let parsed = serde_json::from_slice::<ChatResponse>(&bytes)
                .map_err(|e| malformed(format!("HTTP {status} body is {}", e.classify_name())))?;
            return completion(parsed, input_estimate).map(|c| (status, c)).map_err(malformed);
        }
        let key = c.api_key.as_ref().map(|k| k.expose());
        let (code, message) = api_error(&bytes, key);
        let failure = match status {
            401 | 403 => AttemptError::Fatal(LlmError::Unauthorized { status, code }),
            429 => {
                let after = retry_after(&headers, SystemTime::now());
                let error = LlmError::RateLimited { code: code.clone(), retry_after: after };
                if code.as_deref() == Some("insufficient_quota") {
                    AttemptError::Fatal(error)
                } else {
                    AttemptError::Retry { error, after }
                }
            }
            400 if json_mode && message.to_ascii_lowercase().contains("response_format") => {
                inner.json_mode.store(false, Ordering::Relaxed);
                tracing::warn!(
                    status,
                    "the LLM server does not accept response_format json_object; asking without it from now on"
                );
                AttemptError::RetryNow(LlmError::Http { status, code, message })
            }
            408 | 500..=599 => {
                let after = retry_after(&headers, SystemTime::now());
                AttemptError::Retry { error: LlmError::Http { status, code, message }, after }
            }
            _ => AttemptError::Fatal(LlmError::Http { status, code, message }),
        };
        Err((Some(status), failure))
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "JSON of another shape",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

/// `error.type`: the HTTP status for HTTP errors, else the error's kind.
fn error_type(error: &LlmError, status: Option<u16>) -> String {
    match (error, status) {
        (LlmError::Http { .. } | LlmError::RateLimited { .. } | LlmError::Unauthorized { .. }, Some(s)) => {
            s.to_string()
        }
        _ => error.kind().to_owned(),
    }
}

/// A transport failure as an error without the URL (and so without anything but the host).
fn transport(e: reqwest::Error, timeout: Duration) -> LlmError {
    if e.is_timeout() {
        return LlmError::Timeout(timeout);
    }
    let e = e.without_url();
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    LlmError::Unreachable(scrub(&parts.join(": "), None, 300))
}

/// The `code` (or `type`) and message of an error body: OpenAI's `{"error": {"message", "type", "code"}}`,
/// vLLM's top-level `{"message", "type", "code"}`, or `{"error": "text"}`.
fn api_error(body: &[u8], key: Option<&str>) -> (Option<String>, String) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, scrub(&String::from_utf8_lossy(&body[..body.len().min(600)]), key, 300));
    };
    let err = match v.get("error") {
        Some(serde_json::Value::String(s)) => return (None, scrub(s, key, 300)),
        Some(e @ serde_json::Value::Object(_)) => e,
        _ => &v,
    };
    let text = |k: &str| match err.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let code = text("code").and_then(|c| identifier(&c)).or_else(|| text("type").and_then(|t| identifier(&t)));
    (code, scrub(&text("message").unwrap_or_default(), key, 300))
}

/// `retry-after-ms` (OpenAI) or `retry-after` (seconds or an HTTP date).
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let secs = |v: f64| (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v.min(86_400.0)));
    if let Some(ms) =
        headers.get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok())
    {
        return secs(ms / 1000.0);
    }
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    match v.parse::<f64>() {
        Ok(s) => secs(s),
        Err(_) => httpdate::parse_http_date(v).ok().map(|at| at.duration_since(now).unwrap_or(Duration::ZERO)),
    }
}

/// Estimated prompt tokens: about three bytes a token for code and logs, plus the per-message framing.
fn estimate_input(messages: &[Message]) -> u64 {
    messages.iter().map(|m| m.content.len().div_ceil(3) as u64 + 4).sum::<u64>() + 8
}

fn completion(response: ChatResponse, input_estimate: u64) -> Result<Completion, String> {
    let ChatResponse { id, model, choices, usage } = response;
    let Some(choice) = choices.into_iter().next() else { return Err("no choices".into()) };
    let (content, refusal) = match choice.message {
        Some(m) => (m.content.unwrap_or_default(), m.refusal.is_some_and(|r| !r.is_empty())),
        None => return Err("choices[0] has no message".into()),
    };
    let usage = match usage {
        Some(ApiUsage { prompt_tokens: Some(i), completion_tokens: Some(o), total_tokens }) => {
            Usage { input_tokens: i, output_tokens: o, charged: total_tokens.unwrap_or(0).max(i + o), reported: true }
        }
        _ => {
            let o = content.len().div_ceil(3) as u64;
            Usage { input_tokens: input_estimate, output_tokens: o, charged: input_estimate + o, reported: false }
        }
    };
    Ok(Completion {
        content,
        refusal,
        finish_reason: choice.finish_reason,
        response_id: id.and_then(|i| identifier(&i)),
        response_model: model.map(|m| scrub(&m, None, 128)),
        usage,
    })
}

fn record_completion(span: &tracing::Span, c: &Completion) {
    if let Some(id) = &c.response_id {
        span.record("gen_ai.response.id", id.as_str());
    }
    if let Some(m) = &c.response_model {
        span.record("gen_ai.response.model", m.as_str());
    }
    span.record("gen_ai.usage.input_tokens", c.usage.input_tokens);
    span.record("gen_ai.usage.output_tokens", c.usage.output_tokens);
    if let Some(reason) = &c.finish_reason {
        let reason: String = reason.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(32).collect();
        span.set_attribute(
            "gen_ai.response.finish_reasons",
            OtelValue::Array(Array::String(vec![StringValue::from(reason)])),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, httpdate::fmt_http_date(now + Duration::from_secs(7)).parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "-3".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(250)));
        h.insert("retry-after-ms", "1e400".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn error_bodies() {
        let openai = br#"{"error":{"message":"Incorrect API key provided: sk-live-123.","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        assert_eq!(
            api_error(openai, Some("sk-live-123")),
            (Some("invalid_api_key".into()), "Incorrect API key provided: ***.".into())
        );
        let vllm = br#"{"object":"error","message":"model x does not exist","type":"NotFoundError","code":404}"#;
        assert_eq!(api_error(vllm, None), (Some("404".into()), "model x does not exist".into()));
        assert_eq!(api_error(br#"{"error":"model not found"}"#, None), (None, "model not found".into()));
        assert_eq!(api_error(b"<html>bad gateway</html>", None), (None, "<html>bad gateway</html>".into()));
    }

    #[test]
    fn usage_or_an_estimate() {
        let body = r#"{"id":"c1","model":"m-2024","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13}}"#;
        let c = completion(serde_json::from_str(body).unwrap(), 99).unwrap();
        assert_eq!(
            (c.content.as_str(), c.finish_reason.as_deref(), c.response_model.as_deref()),
            ("hi", Some("stop"), Some("m-2024"))
        );
        assert_eq!(c.usage, Usage { input_tokens: 11, output_tokens: 2, charged: 13, reported: true });
        let c =
            completion(serde_json::from_str(r#"{"choices":[{"message":{"content":"abcdef"}}]}"#).unwrap(), 99).unwrap();
        assert_eq!(c.usage, Usage { input_tokens: 99, output_tokens: 2, charged: 101, reported: false });
        assert!(completion(serde_json::from_str(r#"{"choices":[]}"#).unwrap(), 1).is_err());
        assert!(!format!("{c:?}").contains("abcdef"), "Debug hides the content");
    }
}
