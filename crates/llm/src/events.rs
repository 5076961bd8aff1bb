//! What the LLM backend logs and counts. Each notable occurrence is one type whose `emit` writes the log line
//! and moves the metrics with the same bounded label values; every bounded series exists from registration.
//!
//! Families: `sre_agent_llm_requests_total{outcome}`, `sre_agent_llm_tokens_total{direction}`,
//! `sre_agent_llm_request_duration_seconds`, `sre_agent_llm_answers_rejected_total{reason}`,
//! `sre_agent_llm_fixes_total{outcome}`. The model name is a span attribute, never a label. No event carries
//! prompt text, completion text, file content or the key: only bounded labels, counts and durations.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use sre_domain::{Label, label_enum};
use sre_telemetry::metrics::TraceExemplar;
use sre_telemetry::{InternalEvent, SharedRegistry};

use crate::budget::BudgetScope;

/// Buckets (seconds) of one chat completion: a local model on a CPU may take minutes.
pub const LLM_BUCKETS: [f64; 13] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

label_enum! {
    /// `outcome` of `sre_agent_llm_requests_total`: how one HTTP request to the chat-completions endpoint
    /// ended (or that it was never sent).
    pub enum RequestOutcome {
        /// A chat completion whose content was a usable answer.
        Ok => "ok",
        /// A chat completion whose content was not a usable answer, or a body that is no chat completion.
        Malformed => "malformed",
        /// HTTP 429.
        RateLimited => "rate_limited",
        /// Any other non-2xx status.
        HttpError => "http_error",
        /// No complete answer within the configured timeout.
        Timeout => "timeout",
        /// The connection could not be made or broke before an answer.
        Unreachable => "unreachable",
        /// Refused before sending: the request could exceed the run's or the hour's token budget.
        BudgetExceeded => "budget_exceeded",
    }
}

label_enum! {
    /// `direction` of `sre_agent_llm_tokens_total`.
    pub enum TokenDirection {
        /// Prompt tokens (`usage.prompt_tokens`).
        Input => "input",
        /// Completion tokens (`usage.completion_tokens`).
        Output => "output",
    }
}

label_enum! {
    /// `reason` of `sre_agent_llm_answers_rejected_total`: why a model's answer could not be applied.
    pub enum RejectReason {
        /// The HTTP body was not a chat completion (no choices, not JSON).
        BadResponse => "bad_response",
        /// The model refused (`message.refusal`) or returned no content.
        Empty => "empty",
        /// The output stopped at the token limit (`finish_reason: length`).
        Truncated => "truncated",
        /// No JSON object in the content.
        NotJson => "not_json",
        /// JSON, but not the answer's shape.
        WrongShape => "wrong_shape",
        /// A path that is absolute, leaves the repository, or is under `.git/` or `.github/`, or a secrets file.
        ForbiddenPath => "forbidden_path",
        /// A path that is not one of the files sent to the model (no new files are created).
        UnknownFile => "unknown_file",
        /// A whole-file rewrite of a file the model saw only an excerpt of.
        PartialFile => "partial_file",
        /// A search text that does not occur in the file.
        SearchNotFound => "search_not_found",
        /// A search text that occurs more than once.
        SearchAmbiguous => "search_ambiguous",
        /// The edits change nothing.
        NoChange => "no_change",
        /// NUL bytes, or a result beyond the file size limit.
        Binary => "binary",
        TooLarge => "too_large",
    }
}

label_enum! {
    /// `outcome` of `sre_agent_llm_fixes_total`: how one fix attempt (up to `max_attempts` answers) ended.
    pub enum FixOutcomeLabel {
        /// Edits were applied to the worktree.
        Applied => "applied",
        /// No edit was applied, for a typed reason (budget, declined, unusable answers, nothing to send).
        Skipped => "skipped",
        /// The server could not be used (auth, HTTP error, timeout, unreachable) or the worktree not written.
        Failed => "failed",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The LLM backend's metric families. Register once per process and share the clone.
#[derive(Clone)]
pub struct LlmMetrics {
    requests: Family<OutcomeLabels, Counter>,
    tokens: Family<DirectionLabels, Counter>,
    duration: HistogramWithExemplars<TraceExemplar>,
    rejected: Family<ReasonLabels, Counter>,
    fixes: Family<OutcomeLabels, Counter>,
}

impl LlmMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self {
            requests: Family::default(),
            tokens: Family::default(),
            duration: HistogramWithExemplars::new(LLM_BUCKETS.into_iter()),
            rejected: Family::default(),
            fixes: Family::default(),
        };
        registry.register(
            "sre_agent_llm_requests",
            "Chat-completion requests by outcome (budget_exceeded: refused before sending)",
            this.requests.clone(),
        );
        registry.register(
            "sre_agent_llm_tokens",
            "Tokens used by chat completions, from the responses' usage",
            this.tokens.clone(),
        );
        registry.register(
            "sre_agent_llm_request_duration_seconds",
            "Duration of one chat-completion HTTP request",
            this.duration.clone(),
        );
        registry.register(
            "sre_agent_llm_answers_rejected",
            "Model answers that could not be applied, by reason",
            this.rejected.clone(),
        );
        registry.register("sre_agent_llm_fixes", "LLM fix attempts by outcome", this.fixes.clone());
        // Every bounded series starts at zero so rates and ratios mean something from the first scrape.
        for o in RequestOutcome::ALL {
            let _ = this.requests.get_or_create(&OutcomeLabels { outcome: o.as_str() });
        }
        for d in TokenDirection::ALL {
            let _ = this.tokens.get_or_create(&DirectionLabels { direction: d.as_str() });
        }
        for r in RejectReason::ALL {
            let _ = this.rejected.get_or_create(&ReasonLabels { reason: r.as_str() });
        }
        for o in FixOutcomeLabel::ALL {
            let _ = this.fixes.get_or_create(&OutcomeLabels { outcome: o.as_str() });
        }
        this
    }
}

/// One HTTP request to the chat-completions endpoint ended. `reason` is set for `malformed` only.
pub struct RequestFinished {
    pub outcome: RequestOutcome,
    pub reason: Option<RejectReason>,
    /// The HTTP status, when one arrived.
    pub status: Option<u16>,
    pub elapsed: Duration,
    /// 1-based HTTP attempt within one chat call (retries on 429/5xx).
    pub attempt: u32,
}

impl InternalEvent<LlmMetrics> for RequestFinished {
    fn emit(self, m: &LlmMetrics) {
        let outcome = self.outcome.as_str();
        let duration_ms = self.elapsed.as_millis() as u64;
        let status = self.status.unwrap_or(0);
        match (self.outcome, self.reason) {
            (RequestOutcome::Ok, _) => {
                tracing::info!(outcome, status, duration_ms, attempt = self.attempt, "llm request finished")
            }
            (_, Some(reason)) => {
                let reason = reason.as_str();
                tracing::warn!(outcome, reason, status, duration_ms, attempt = self.attempt, "llm answer rejected");
                m.rejected.get_or_create(&ReasonLabels { reason }).inc();
            }
            _ => tracing::warn!(outcome, status, duration_ms, attempt = self.attempt, "llm request failed"),
        }
        m.requests.get_or_create(&OutcomeLabels { outcome }).inc();
        m.duration.observe(self.elapsed.as_secs_f64(), TraceExemplar::current(), None);
    }
}

/// A request refused before sending because it could exceed a token budget.
pub struct BudgetRefused {
    pub scope: BudgetScope,
    pub needed: u64,
    pub remaining: u64,
}

impl InternalEvent<LlmMetrics> for BudgetRefused {
    fn emit(self, m: &LlmMetrics) {
        let outcome = RequestOutcome::BudgetExceeded.as_str();
        tracing::warn!(
            outcome,
            scope = self.scope.as_str(),
            needed = self.needed,
            remaining = self.remaining,
            "llm request refused: token budget"
        );
        m.requests.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

/// Tokens a response reported (or, without `usage`, that were estimated), one direction.
pub struct TokensUsed {
    pub direction: TokenDirection,
    pub tokens: u64,
    /// False when the server sent no `usage` and the count is an estimate.
    pub reported: bool,
}

impl InternalEvent<LlmMetrics> for TokensUsed {
    fn emit(self, m: &LlmMetrics) {
        let direction = self.direction.as_str();
        tracing::debug!(direction, tokens = self.tokens, reported = self.reported, "llm tokens used");
        m.tokens.get_or_create(&DirectionLabels { direction }).inc_by(self.tokens);
    }
}

/// One fix attempt ended. `reason` is the skip reason or the error type (bounded spellings).
pub struct FixFinished {
    pub outcome: FixOutcomeLabel,
    pub reason: &'static str,
    pub answers: u32,
    pub files_changed: usize,
}

impl InternalEvent<LlmMetrics> for FixFinished {
    fn emit(self, m: &LlmMetrics) {
        let outcome = self.outcome.as_str();
        let (answers, files_changed, reason) = (self.answers, self.files_changed, self.reason);
        match self.outcome {
            FixOutcomeLabel::Applied => tracing::info!(outcome, answers, files_changed, "llm fix applied"),
            FixOutcomeLabel::Skipped => tracing::info!(outcome, reason, answers, "llm fix skipped"),
            FixOutcomeLabel::Failed => tracing::warn!(outcome, reason, answers, "llm fix failed"),
        }
        m.fixes.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

#[cfg(test)]
mod tests {
    use sre_telemetry::Emit;
    use sre_telemetry::testing::{assert_event_agrees, parse_exposition};

    use super::*;

    #[test]
    fn every_series_exists_at_zero() {
        let registry = SharedRegistry::default();
        let _m = LlmMetrics::register(&registry);
        let samples = parse_exposition(&registry.encode(false));
        let count = |name: &str, label: &str, value: &str| {
            samples
                .iter()
                .filter(|((n, l), v)| n == name && l.get(label).map(String::as_str) == Some(value) && **v == 0.0)
                .count()
        };
        for o in RequestOutcome::ALL {
            assert_eq!(count("sre_agent_llm_requests_total", "outcome", o.as_str()), 1, "{o}");
        }
        for d in TokenDirection::ALL {
            assert_eq!(count("sre_agent_llm_tokens_total", "direction", d.as_str()), 1, "{d}");
        }
        for r in RejectReason::ALL {
            assert_eq!(count("sre_agent_llm_answers_rejected_total", "reason", r.as_str()), 1, "{r}");
        }
        for o in FixOutcomeLabel::ALL {
            assert_eq!(count("sre_agent_llm_fixes_total", "outcome", o.as_str()), 1, "{o}");
        }
        assert!(samples.keys().any(|(n, _)| n == "sre_agent_llm_request_duration_seconds_count"));
    }

    #[test]
    fn every_event_logs_what_it_counts() {
        let registry = SharedRegistry::default();
        let m = LlmMetrics::register(&registry);
        let elapsed = Duration::from_millis(1500);
        for outcome in RequestOutcome::ALL.iter().filter(|o| **o != RequestOutcome::BudgetExceeded) {
            let changed = assert_event_agrees(&registry, || {
                m.emit(RequestFinished { outcome: *outcome, reason: None, status: Some(200), elapsed, attempt: 1 })
            });
            assert!(changed.iter().any(|(n, _)| n == "sre_agent_llm_request_duration_seconds_count"));
        }
        for reason in RejectReason::ALL {
            let changed = assert_event_agrees(&registry, || {
                m.emit(RequestFinished {
                    outcome: RequestOutcome::Malformed,
                    reason: Some(*reason),
                    status: Some(200),
                    elapsed,
                    attempt: 2,
                })
            });
            assert!(changed.iter().any(|(n, l)| n == "sre_agent_llm_answers_rejected_total"
                && l.get("reason").map(String::as_str) == Some(reason.as_str())));
        }
        for scope in BudgetScope::ALL {
            assert_event_agrees(&registry, || m.emit(BudgetRefused { scope: *scope, needed: 10, remaining: 3 }));
        }
        for direction in TokenDirection::ALL {
            assert_event_agrees(&registry, || m.emit(TokensUsed { direction: *direction, tokens: 7, reported: true }));
        }
        for outcome in FixOutcomeLabel::ALL {
            assert_event_agrees(&registry, || {
                m.emit(FixFinished { outcome: *outcome, reason: "none", answers: 1, files_changed: 1 })
            });
        }
    }
}
