//! The one place where the run domain meets the sre.v1 wire types.

use sre_proto as pb;

use crate::{Category, Conclusion, EventKind, Failure, Label, Language, PrLabel, Run, RunIds, Severity, Tool};

impl Run {
    /// The context every stage request carries; `attempt` is the worker's current attempt.
    pub fn context(&self) -> pb::RunContext {
        pb::RunContext {
            delivery_id: self.delivery_id.clone(),
            run_key: self.run_key.clone(),
            failure_id: self.failure_id.clone(),
            run_id: self.run_id.clone(),
            correlation_id: self.correlation_id.clone(),
            repo: self.failure.repo.clone(),
            head_sha: self.failure.head_sha.clone(),
            language: self.language.map(Language::as_str).unwrap_or_default().to_owned(),
            category: self.category.map(Category::as_str).unwrap_or_default().to_owned(),
            tool: self.tool.map(Tool::as_str).unwrap_or_default().to_owned(),
            attempt: self.attempts,
        }
    }
}

impl From<&Failure> for pb::FailureInfo {
    fn from(f: &Failure) -> Self {
        Self {
            event: f.event.map(EventKind::as_str).unwrap_or_default().to_owned(),
            conclusion: f.conclusion.map(Conclusion::as_str).unwrap_or_default().to_owned(),
            head_branch: f.head_branch.clone(),
            run_attempt: f.run_attempt,
            workflow_name: f.workflow_name.clone(),
            workflow_run_id: f.workflow_run_id.unwrap_or_default(),
            job_name: f.job_name.clone(),
            job_id: f.job_id.unwrap_or_default(),
            installation_id: f.installation_id.unwrap_or_default(),
        }
    }
}

/// A wire string that must be empty or one spelling of `L`.
fn optional<L: Label>(value: &str) -> Result<Option<L>, crate::UnknownLabel> {
    if value.is_empty() {
        return Ok(None);
    }
    L::parse(value).map(Some).ok_or_else(|| crate::UnknownLabel {
        kind: std::any::type_name::<L>().rsplit("::").next().unwrap_or("label"),
        value: value.to_owned(),
    })
}

/// Typed reads of a [`pb::RunContext`].
pub trait RunContextExt {
    fn ids(&self) -> RunIds<'_>;
    /// The language, `None` while undiagnosed; an unknown spelling is an error (a caller bug).
    fn language(&self) -> Result<Option<Language>, crate::UnknownLabel>;
    fn category(&self) -> Result<Option<Category>, crate::UnknownLabel>;
    fn tool(&self) -> Result<Option<Tool>, crate::UnknownLabel>;
}

impl RunContextExt for pb::RunContext {
    fn ids(&self) -> RunIds<'_> {
        RunIds {
            delivery_id: &self.delivery_id,
            run_key: &self.run_key,
            failure_id: &self.failure_id,
            run_id: &self.run_id,
            correlation_id: &self.correlation_id,
        }
    }
    fn language(&self) -> Result<Option<Language>, crate::UnknownLabel> {
        optional(&self.language)
    }
    fn category(&self) -> Result<Option<Category>, crate::UnknownLabel> {
        optional(&self.category)
    }
    fn tool(&self) -> Result<Option<Tool>, crate::UnknownLabel> {
        optional(&self.tool)
    }
}

impl From<Severity> for pb::Severity {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Low => Self::Low,
            Severity::Medium => Self::Medium,
            Severity::High => Self::High,
            Severity::Critical => Self::Critical,
            Severity::Unknown => Self::Unknown,
        }
    }
}

impl From<pb::Severity> for Severity {
    fn from(s: pb::Severity) -> Self {
        match s {
            pb::Severity::Low => Self::Low,
            pb::Severity::Medium => Self::Medium,
            pb::Severity::High => Self::High,
            pb::Severity::Critical => Self::Critical,
            pb::Severity::Unknown | pb::Severity::Unspecified => Self::Unknown,
        }
    }
}

/// The label of a policy decision; anything but the two review labels is `unknown`.
pub fn decision_label(decision: &pb::PolicyDecision) -> PrLabel {
    match PrLabel::parse(&decision.label) {
        Some(label @ (PrLabel::Safe | PrLabel::NeedsReview)) => label,
        _ => PrLabel::Unknown,
    }
}
