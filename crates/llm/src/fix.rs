//! The fix protocol: send the failure and its files, take the model's edits, check them, apply them to the
//! worktree; send an unusable answer back with its error up to `max_attempts` answers, then give up with a
//! typed skip reason.

use std::path::Path;

use sre_proto::{FixPlan, PlanStep};
use sre_telemetry::Emit;
use tracing::Instrument;
use tracing::field::Empty;

use crate::answer::{self, Checked};
use crate::budget::{BudgetExceeded, RunBudget};
use crate::client::LlmClient;
use crate::error::LlmError;
use crate::events::{FixFinished, FixOutcomeLabel, RejectReason};
use crate::files;
use crate::prompt::{self, FixRequest};

/// The plan's strategy for LLM fixes, and its one step action.
pub const STRATEGY: &str = "llm";
pub const ACTION: &str = "llm_edit";

/// What a fix did.
#[derive(Debug)]
pub enum FixOutcome {
    /// Edits were written to the worktree.
    Applied(AppliedFix),
    /// Nothing was written, for this reason (the run ends skipped with it).
    Skipped(SkipReason),
}

/// Edits written to the worktree; the caller turns the worktree into the diff.
pub struct AppliedFix {
    /// The model's one-sentence summary (model text: for the plan and the PR, never for logs).
    pub summary: String,
    /// The model's confidence, clamped to 0..=1 (0 when it gave none).
    pub confidence: f64,
    /// Repository-relative paths whose content changed, in the order the files were sent.
    pub changed_files: Vec<String>,
    /// Edits in the accepted answer.
    pub edits: usize,
    /// Answers it took (1 = the first was good).
    pub answers: u32,
    /// Tokens this fix charged to the run budget.
    pub tokens: u64,
}

impl std::fmt::Debug for AppliedFix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppliedFix")
            .field("summary_bytes", &self.summary.len())
            .field("confidence", &self.confidence)
            .field("changed_files", &self.changed_files)
            .field("edits", &self.edits)
            .field("answers", &self.answers)
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl AppliedFix {
    /// The fix as a plan: strategy `llm`, one `llm_edit` step per changed file.
    pub fn plan(&self) -> FixPlan {
        let rationale = format!("edited by the LLM planner ({} edit(s) in the accepted answer)", self.edits);
        FixPlan {
            strategy: STRATEGY.to_owned(),
            summary: self.summary.clone(),
            steps: self
                .changed_files
                .iter()
                .map(|path| PlanStep { action: ACTION.to_owned(), path: path.clone(), rationale: rationale.clone() })
                .collect(),
            confidence: self.confidence,
            ..FixPlan::default()
        }
    }
}

/// Why nothing was applied. Display is the run's skip reason: bounded words and numbers, no model text.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SkipReason {
    #[error("no file the failure points at could be sent to the model")]
    NoFiles,
    #[error(transparent)]
    Budget(BudgetExceeded),
    #[error("the model proposed no edit")]
    Declined { answers: u32 },
    #[error("the model's answers could not be applied after {answers} attempt(s) (last: {last})")]
    UnusableAnswers { answers: u32, last: RejectReason },
}

impl SkipReason {
    /// A bounded spelling for logs and span attributes.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoFiles => "no_files",
            Self::Budget(_) => "budget_exceeded",
            Self::Declined { .. } => "declined",
            Self::UnusableAnswers { .. } => "unusable_answers",
        }
    }
}

impl LlmClient {
    /// Asks the model to fix `request`'s failure by editing the referenced files in `worktree`, charging
    /// `run`. `Ok(Applied)` leaves the edits in the worktree; `Ok(Skipped)` leaves it untouched; `Err` is a
    /// server that could not be used (see [`LlmError::is_transient`]) or a worktree that could not be written.
    pub async fn fix(&self, request: &FixRequest, worktree: &Path, run: &RunBudget) -> Result<FixOutcome, LlmError> {
        let span = tracing::info_span!(
            "llm.fix",
            otel.name = "llm fix",
            sre.category = request.category.as_str(),
            sre.language = request.language.as_str(),
            sre.tool = request.tool.as_str(),
            sre.llm.files_sent = Empty,
            sre.llm.answers = Empty,
            sre.llm.outcome = Empty,
            sre.llm.skip_reason = Empty,
            sre.llm.files_changed = Empty,
            sre.llm.tokens = Empty,
            error.type = Empty,
        );
        let used_before = run.used();
        let mut answers = 0u32;
        let result = self.fix_inner(request, worktree, run, &mut answers).instrument(span.clone()).await;
        let tokens = run.used().saturating_sub(used_before);
        span.record("sre.llm.answers", answers);
        span.record("sre.llm.tokens", tokens);
        let (outcome, reason, changed) = match &result {
            Ok(FixOutcome::Applied(a)) => (FixOutcomeLabel::Applied, "none", a.changed_files.len()),
            Ok(FixOutcome::Skipped(s)) => (FixOutcomeLabel::Skipped, s.kind(), 0),
            Err(e) => (FixOutcomeLabel::Failed, e.kind(), 0),
        };
        span.record("sre.llm.outcome", outcome.as_str());
        match &result {
            Ok(FixOutcome::Applied(_)) => span.record("sre.llm.files_changed", changed),
            Ok(FixOutcome::Skipped(_)) => span.record("sre.llm.skip_reason", reason),
            Err(_) => span.record("error.type", reason).record("otel.status_code", "ERROR"),
        };
        span.in_scope(|| self.metrics().emit(FixFinished { outcome, reason, answers, files_changed: changed }));
        result.map(|outcome| match outcome {
            FixOutcome::Applied(mut a) => {
                a.tokens = tokens;
                FixOutcome::Applied(a)
            }
            skipped => skipped,
        })
    }

    async fn fix_inner(
        &self,
        request: &FixRequest,
        worktree: &Path,
        run: &RunBudget,
        answers: &mut u32,
    ) -> Result<FixOutcome, LlmError> {
        let limits = &self.config().limits;
        let context = prompt::render_context(request, limits);
        let files = files::read_files(worktree, request, limits, prompt::file_budget(&context, limits)).await?;
        tracing::Span::current().record("sre.llm.files_sent", files.files.len());
        if files.files.is_empty() {
            return Ok(FixOutcome::Skipped(SkipReason::NoFiles));
        }
        let first = prompt::messages(context, &files);
        let mut messages = first.clone();
        let max = self.config().max_attempts.max(1);
        let mut last = RejectReason::BadResponse;
        while *answers < max {
            *answers += 1;
            let reply = match self.chat(&messages, run, |c| answer::check(c, &files)).await {
                Ok(reply) => reply,
                Err(LlmError::Budget(e)) => return Ok(FixOutcome::Skipped(SkipReason::Budget(e))),
                // A body that is no chat completion: ask again, there is no answer to send back.
                Err(LlmError::MalformedResponse(_)) => {
                    last = RejectReason::BadResponse;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match reply.verdict {
                Ok(Checked::Declined) => return Ok(FixOutcome::Skipped(SkipReason::Declined { answers: *answers })),
                Ok(Checked::Edits { summary, confidence, edits, writes }) => {
                    files::write_all(&files, &writes).await?;
                    let changed_files = writes.iter().map(|(idx, _)| files.files[*idx].path.clone()).collect();
                    return Ok(FixOutcome::Applied(AppliedFix {
                        summary,
                        confidence,
                        changed_files,
                        edits,
                        answers: *answers,
                        tokens: 0,
                    }));
                }
                Err(rejection) => {
                    last = rejection.reason();
                    messages =
                        prompt::follow_up(&first, &reply.completion.content, rejection.message(), max - *answers);
                }
            }
        }
        Ok(FixOutcome::Skipped(SkipReason::UnusableAnswers { answers: *answers, last }))
    }
}
