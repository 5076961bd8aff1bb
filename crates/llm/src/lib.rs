//! The LLM planner's backend: what rules cannot fix, an OpenAI-compatible chat-completions model may (off
//! unless configured). It owns:
//!
//! - [`config`]: [`LlmConfig`] (a value) and [`LlmArgs`] (clap flags with `SRE_LLM_*` fallbacks to flatten
//!   into a binary's config; `None` unless a base URL and a model are set);
//! - [`client`]: [`LlmClient`], `POST {base_url}/chat/completions` with timeouts, bounded retries on 429/5xx
//!   honouring `retry-after`, `response_format: json_object` where the server takes it, typed errors that
//!   never hold the key;
//! - [`budget`]: per-run and per-hour (process-wide) token budgets, checked before each request;
//! - the fix protocol: [`FixRequest`] (failure context and file references) → [`LlmClient::fix`] reads the
//!   referenced files from a worktree (bounded, excerpts around referenced lines), asks for search/replace
//!   edits as JSON, checks them (paths among the files sent, never `.git/`/`.github/`/credentials, each search
//!   text exactly once), applies them all or none, and sends an unusable answer back with its error up to
//!   `max_attempts` times before giving up with a typed [`SkipReason`];
//! - [`events`]: [`LlmMetrics`] and the events whose `emit` logs and counts together.
//!
//! Telemetry: one `chat {model}` client span per HTTP request with the OpenTelemetry gen_ai attributes, inside
//! an `llm fix` span. Prompt text, completion text, file content and the key never reach a span, a log line
//! or an error. See docs/llm.md.

mod answer;
pub mod budget;
pub mod client;
pub mod config;
pub mod error;
pub mod events;
mod files;
mod fix;
pub mod prompt;
#[cfg(feature = "testing")]
pub mod testing;

pub use budget::{BudgetExceeded, BudgetScope, HourBudget, RunBudget};
pub use client::{Completion, LlmClient, Message, Rejection, Reply, Role, Usage};
pub use config::{LlmArgs, LlmConfig, Secret, Temperature};
pub use error::LlmError;
pub use events::{FixOutcomeLabel, LlmMetrics, RejectReason, RequestOutcome, TokenDirection};
pub use files::HARD_MAX_FILE_BYTES;
pub use fix::{ACTION, AppliedFix, FixOutcome, STRATEGY, SkipReason};
pub use prompt::{FileRef, FixRequest, PromptLimits, SYSTEM_PROMPT};
