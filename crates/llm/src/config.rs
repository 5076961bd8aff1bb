//! The backend's configuration: [`LlmConfig`] as a value (tests and callers build it directly) and
//! [`LlmArgs`], the clap flags with environment fallbacks that a binary's config flattens. The backend is off
//! unless both a base URL and a model are set.

use std::time::Duration;

use reqwest::Url;
pub use sre_service_kit::config::Secret;

use crate::error::LlmError;
use crate::prompt::PromptLimits;

/// Everything the client and the fix protocol need.
#[derive(Clone, Debug)]
pub struct LlmConfig {
    /// Base URL of an OpenAI-compatible API, up to and including the version (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1`); requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The model requested (`gen_ai.request.model`).
    pub model: String,
    /// Sent only as `Authorization: Bearer <key>`; local servers usually need none.
    pub api_key: Option<Secret>,
    /// `gen_ai.provider.name` / `gen_ai.system` on spans.
    pub provider: String,
    /// One HTTP request, connection to last byte.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// `max_tokens` of each request.
    pub max_output_tokens: u32,
    /// `temperature` of each request; `None` sends none (models that accept only their default).
    pub temperature: Option<f64>,
    /// Ask for `response_format: {"type":"json_object"}`. Answers are parsed robustly either way, and a server
    /// that rejects the field (HTTP 400 naming it) is asked again without it for the rest of the process.
    pub json_mode: bool,
    /// Tokens one run may use (prompt and completion, every answer and retry together).
    pub per_run_token_budget: u64,
    /// Tokens the process may use in any sliding hour.
    pub per_hour_token_budget: u64,
    /// Model answers per fix, the first included: an unusable answer is sent back with the error this many
    /// times minus one.
    pub max_attempts: u32,
    /// HTTP retries per answer on 429, 5xx and connection failures (timeouts are not retried).
    pub http_retries: u32,
    /// First backoff; doubled per retry unless the server says `retry-after`.
    pub retry_base_delay: Duration,
    /// Longest wait for a retry; a server asking for more is not retried.
    pub max_retry_wait: Duration,
    /// Bounds of what is sent.
    pub limits: PromptLimits,
}

impl LlmConfig {
    /// A configuration with the defaults of [`LlmArgs`].
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let base_url = base_url.into();
        let provider = default_provider(&base_url);
        Self {
            base_url,
            model: model.into(),
            api_key: None,
            provider,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
            connect_timeout: Duration::from_secs(10),
            max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
            temperature: Some(0.0),
            json_mode: true,
            per_run_token_budget: DEFAULT_RUN_TOKEN_BUDGET,
            per_hour_token_budget: DEFAULT_HOUR_TOKEN_BUDGET,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            http_retries: DEFAULT_HTTP_RETRIES,
            retry_base_delay: Duration::from_millis(500),
            max_retry_wait: Duration::from_secs(30),
            limits: PromptLimits::default(),
        }
    }

    /// The chat-completions URL, after checking everything that can be checked without the network.
    pub fn endpoint(&self) -> Result<Url, LlmError> {
        let bad = |why: &str| LlmError::Config(format!("SRE_LLM_BASE_URL {why}"));
        let url = Url::parse(self.base_url.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must be http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials in a URL end up in error messages and logs; the key has its own variable.
            return Err(bad("must not carry credentials (use SRE_LLM_API_KEY)"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        let joined = format!("{}/chat/completions", url.as_str().trim_end_matches('/'));
        Url::parse(&joined).map_err(|e| bad(&format!("cannot be extended ({e})")))
    }

    /// Checks the configuration; the client refuses to start with an invalid one.
    pub fn validate(&self) -> Result<Url, LlmError> {
        let endpoint = self.endpoint()?;
        let bad = |what: &str| Err(LlmError::Config(what.to_owned()));
        if self.model.trim().is_empty() || self.model.chars().any(char::is_control) {
            return bad("SRE_LLM_MODEL must be a model name");
        }
        if self.provider.trim().is_empty() {
            return bad("SRE_LLM_PROVIDER must not be empty");
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return bad("SRE_LLM_TIMEOUT_SECONDS must be at least 1");
        }
        if self.max_output_tokens == 0 {
            return bad("SRE_LLM_MAX_OUTPUT_TOKENS must be at least 1");
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return bad("SRE_LLM_TEMPERATURE must be within 0..=2 (or \"omit\")");
        }
        if self.per_run_token_budget == 0 || self.per_hour_token_budget == 0 {
            return bad("token budgets must be at least 1");
        }
        if self.max_attempts == 0 {
            return bad("SRE_LLM_MAX_ATTEMPTS must be at least 1");
        }
        self.limits.validate().map_err(LlmError::Config)?;
        if self.api_key.is_some() && endpoint.scheme() == "http" && !is_loopback(&endpoint) {
            tracing::warn!(
                server.address = endpoint.host_str().unwrap_or_default(),
                "the LLM API key is sent over plain http to a non-loopback host"
            );
        }
        Ok(endpoint)
    }
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `openai` for OpenAI's own API, `openai_compatible` for any other server speaking its protocol.
fn default_provider(base_url: &str) -> String {
    let host = Url::parse(base_url.trim()).ok().and_then(|u| u.host_str().map(str::to_owned));
    if host.as_deref() == Some("api.openai.com") { "openai" } else { "openai_compatible" }.to_owned()
}

const DEFAULT_TIMEOUT_SECONDS: u64 = 120;
const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 4096;
const DEFAULT_RUN_TOKEN_BUDGET: u64 = 100_000;
const DEFAULT_HOUR_TOKEN_BUDGET: u64 = 1_000_000;
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
const DEFAULT_HTTP_RETRIES: u32 = 2;

/// `temperature`: a number within 0..=2, or `omit` to send none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Temperature(pub Option<f64>);

impl std::str::FromStr for Temperature {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("omit") {
            return Ok(Self(None));
        }
        match s.parse::<f64>() {
            Ok(t) if (0.0..=2.0).contains(&t) => Ok(Self(Some(t))),
            _ => Err("a number within 0..=2, or \"omit\"".to_owned()),
        }
    }
}

/// The LLM planner's flags; a binary's clap config flattens them (`#[command(flatten)] llm: LlmArgs`).
#[derive(Clone, Debug, clap::Args)]
pub struct LlmArgs {
    /// OpenAI-compatible API base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1 (the LLM
    /// planner is off unless this and the model are set)
    #[arg(long = "llm-base-url", env = "SRE_LLM_BASE_URL", value_name = "SRE_LLM_BASE_URL")]
    pub base_url: Option<String>,
    /// Model name, e.g. gpt-4o-mini, qwen2.5-coder:7b
    #[arg(long = "llm-model", env = "SRE_LLM_MODEL", value_name = "SRE_LLM_MODEL")]
    pub model: Option<String>,
    /// API key, sent only as `Authorization: Bearer` (local servers usually need none)
    #[arg(long = "llm-api-key", env = "SRE_LLM_API_KEY", value_name = "SRE_LLM_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,
    /// gen_ai.provider.name on spans [default: openai for api.openai.com, else openai_compatible]
    #[arg(long = "llm-provider", env = "SRE_LLM_PROVIDER", value_name = "SRE_LLM_PROVIDER")]
    pub provider: Option<String>,
    /// Seconds one chat-completion request may take
    #[arg(long = "llm-timeout-seconds", env = "SRE_LLM_TIMEOUT_SECONDS", value_name = "SRE_LLM_TIMEOUT_SECONDS", default_value_t = DEFAULT_TIMEOUT_SECONDS)]
    pub timeout_seconds: u64,
    /// max_tokens of each request
    #[arg(long = "llm-max-output-tokens", env = "SRE_LLM_MAX_OUTPUT_TOKENS", value_name = "SRE_LLM_MAX_OUTPUT_TOKENS", default_value_t = DEFAULT_MAX_OUTPUT_TOKENS)]
    pub max_output_tokens: u32,
    /// temperature of each request, or "omit" for models that accept only their default
    #[arg(
        long = "llm-temperature",
        env = "SRE_LLM_TEMPERATURE",
        value_name = "SRE_LLM_TEMPERATURE",
        default_value = "0"
    )]
    pub temperature: Temperature,
    /// Ask for response_format json_object (answers are parsed robustly either way)
    #[arg(long = "llm-json-mode", env = "SRE_LLM_JSON_MODE", value_name = "SRE_LLM_JSON_MODE", default_value_t = true, action = clap::ArgAction::Set)]
    pub json_mode: bool,
    /// Tokens one run may use, every answer and retry together
    #[arg(long = "llm-run-token-budget", env = "SRE_LLM_RUN_TOKEN_BUDGET", value_name = "SRE_LLM_RUN_TOKEN_BUDGET", default_value_t = DEFAULT_RUN_TOKEN_BUDGET)]
    pub run_token_budget: u64,
    /// Tokens the process may use in any sliding hour
    #[arg(long = "llm-hour-token-budget", env = "SRE_LLM_HOUR_TOKEN_BUDGET", value_name = "SRE_LLM_HOUR_TOKEN_BUDGET", default_value_t = DEFAULT_HOUR_TOKEN_BUDGET)]
    pub hour_token_budget: u64,
    /// Model answers per fix (an unusable answer is sent back with the error until this many were tried)
    #[arg(long = "llm-max-attempts", env = "SRE_LLM_MAX_ATTEMPTS", value_name = "SRE_LLM_MAX_ATTEMPTS", default_value_t = DEFAULT_MAX_ATTEMPTS)]
    pub max_attempts: u32,
    /// HTTP retries per answer on 429, 5xx and connection failures
    #[arg(long = "llm-http-retries", env = "SRE_LLM_HTTP_RETRIES", value_name = "SRE_LLM_HTTP_RETRIES", default_value_t = DEFAULT_HTTP_RETRIES)]
    pub http_retries: u32,
    /// Files sent to the model, at most
    #[arg(long = "llm-max-files", env = "SRE_LLM_MAX_FILES", value_name = "SRE_LLM_MAX_FILES", default_value_t = PromptLimits::default().max_files)]
    pub max_files: usize,
    /// Bytes of one file sent to the model (a larger file is sent as excerpts around the referenced lines)
    #[arg(long = "llm-max-file-bytes", env = "SRE_LLM_MAX_FILE_BYTES", value_name = "SRE_LLM_MAX_FILE_BYTES", default_value_t = PromptLimits::default().max_file_bytes)]
    pub max_file_bytes: usize,
    /// Bytes of one prompt, everything included
    #[arg(long = "llm-max-prompt-bytes", env = "SRE_LLM_MAX_PROMPT_BYTES", value_name = "SRE_LLM_MAX_PROMPT_BYTES", default_value_t = PromptLimits::default().max_prompt_bytes)]
    pub max_prompt_bytes: usize,
}

impl LlmArgs {
    /// The configuration, `None` when the backend is off (neither base URL nor model set), an error when it
    /// is half configured or invalid.
    pub fn config(&self) -> Result<Option<LlmConfig>, LlmError> {
        let set = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let (base_url, model) = match (set(&self.base_url), set(&self.model)) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(LlmError::Config("SRE_LLM_BASE_URL is set but SRE_LLM_MODEL is not".into())),
            (None, Some(_)) => return Err(LlmError::Config("SRE_LLM_MODEL is set but SRE_LLM_BASE_URL is not".into())),
            (Some(b), Some(m)) => (b, m),
        };
        let mut config = LlmConfig::new(base_url, model);
        config.api_key = self.api_key.clone();
        if let Some(p) = set(&self.provider) {
            config.provider = p;
        }
        config.timeout = Duration::from_secs(self.timeout_seconds);
        config.max_output_tokens = self.max_output_tokens;
        config.temperature = self.temperature.0;
        config.json_mode = self.json_mode;
        config.per_run_token_budget = self.run_token_budget;
        config.per_hour_token_budget = self.hour_token_budget;
        config.max_attempts = self.max_attempts;
        config.http_retries = self.http_retries;
        config.limits.max_files = self.max_files;
        config.limits.max_file_bytes = self.max_file_bytes;
        config.limits.max_prompt_bytes = self.max_prompt_bytes;
        config.limits.max_total_file_bytes = config.limits.max_total_file_bytes.min(self.max_prompt_bytes);
        config.validate()?;
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        llm: LlmArgs,
    }

    fn parse(args: &[&str]) -> Result<Option<LlmConfig>, LlmError> {
        Probe::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap().llm.config()
    }

    #[test]
    fn off_unless_base_url_and_model_are_set() {
        assert!(parse(&[]).unwrap().is_none());
        let err = parse(&["--llm-base-url", "http://127.0.0.1:11434/v1"]).unwrap_err().to_string();
        assert!(err.contains("SRE_LLM_MODEL"), "{err}");
        let c = parse(&["--llm-base-url", "http://127.0.0.1:11434/v1/", "--llm-model", "qwen2.5-coder:7b"])
            .unwrap()
            .unwrap();
        assert_eq!(c.endpoint().unwrap().as_str(), "http://127.0.0.1:11434/v1/chat/completions");
        assert_eq!((c.provider.as_str(), c.temperature, c.max_attempts), ("openai_compatible", Some(0.0), 3));
        let c = parse(&[
            "--llm-base-url",
            "https://api.openai.com/v1",
            "--llm-model",
            "gpt-4o-mini",
            "--llm-api-key",
            "sk-do-not-print",
            "--llm-temperature",
            "omit",
            "--llm-json-mode",
            "false",
        ])
        .unwrap()
        .unwrap();
        assert_eq!((c.provider.as_str(), c.temperature, c.json_mode), ("openai", None, false));
        assert!(!format!("{c:?}").contains("sk-do-not-print"), "the key never prints");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (url, why) in [
            ("ftp://h/v1", "http"),
            ("http://user:pw@h/v1", "credentials"),
            ("http://h/v1?key=x", "query"),
            ("not a url", "not a URL"),
        ] {
            let err = parse(&["--llm-base-url", url, "--llm-model", "m"]).unwrap_err().to_string();
            assert!(err.contains("SRE_LLM_BASE_URL") && err.contains(why), "{url}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
        let err = Probe::try_parse_from(["x", "--llm-temperature", "3"]).unwrap_err().to_string();
        assert!(err.contains("SRE_LLM_TEMPERATURE"), "{err}");
        let err = parse(&["--llm-base-url", "http://h/v1", "--llm-model", "m", "--llm-max-attempts", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SRE_LLM_MAX_ATTEMPTS"), "{err}");
    }
}
