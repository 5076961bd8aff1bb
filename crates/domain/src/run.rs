//! The run: one CI failure the agent works on, with everything GitHub told us about it and everything the
//! pipeline found. The store keeps it, the runs API serves it, the queue and the gRPC contexts carry its IDs.

use serde::{Deserialize, Serialize};

use crate::{Category, Conclusion, EventKind, Language, PrLabel, RunStatus, Stage, StageStatus, Tool};

/// What CI told us about a failure: the GitHub facts of the event(s) that reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `owner/name`.
    pub repo: String,
    /// The commit CI ran on.
    pub head_sha: String,
    pub head_branch: String,
    /// The event that first reported the failure.
    pub event: Option<EventKind>,
    pub conclusion: Option<Conclusion>,
    /// GitHub's `run_attempt` of the workflow run (1 for the first run, 2 after one re-run, ...).
    pub run_attempt: u32,
    /// Workflow name as shown in CI (`workflow_run.name`, `workflow_job.workflow_name`).
    pub workflow_name: String,
    pub workflow_run_id: Option<u64>,
    /// Job or check name as shown in CI.
    pub job_name: String,
    /// `workflow_job.id`, which is also the job's check run id.
    pub job_id: Option<u64>,
    pub check_suite_id: Option<u64>,
    /// The GitHub App installation that delivered the event (absent for plain webhooks and local runs).
    pub installation_id: Option<u64>,
}

impl Failure {
    /// The name CI shows for what failed: the job, else the workflow.
    pub fn display_name(&self) -> &str {
        if self.job_name.is_empty() { &self.workflow_name } else { &self.job_name }
    }

    /// The stable key of the failure, `<repo>@<head_sha>/<job>`: the unit is a failed job at a commit, so
    /// every event about it (`workflow_job`, its `check_run`, the `workflow_run` once resolved into its
    /// jobs), redelivered or re-run, maps to the same key; a re-run is a new attempt of the same key. Without
    /// a job name (a workflow-level event that cannot be resolved) the workflow name stands in.
    pub fn run_key(&self) -> String {
        format!("{}@{}/{}", self.repo, self.head_sha, self.display_name())
    }

    /// `<event>:<id>` of what failed: the job, else the workflow run, else the check suite.
    pub fn failure_id(&self) -> String {
        let event = self.event.map_or("unknown", EventKind::as_str);
        match (self.job_id, self.workflow_run_id, self.check_suite_id) {
            (Some(id), _, _) | (None, Some(id), _) | (None, None, Some(id)) => format!("{event}:{id}"),
            (None, None, None) => format!("{event}:{}", short_sha(&self.head_sha)),
        }
    }
}

/// The first 12 characters of a commit SHA (for logs and keys; never a label).
pub fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// One stage's result inside a run. Stages of every attempt are kept, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: Stage,
    pub status: StageStatus,
    /// The run attempt the stage belongs to (1-based).
    pub attempt: u32,
    pub duration_ms: u64,
    /// Why the stage ended the run, or what failed; empty when it just passed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The pull request a run opened or updated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestRef {
    pub number: u64,
    pub branch: String,
    /// Where a reviewer opens it (a GitHub URL, or a file URL for the local backend). Never logged.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub run_id: String,
    pub run_key: String,
    /// The delivery that created the run (later deliveries about the same failure only enrich it).
    pub delivery_id: String,
    pub failure_id: String,
    pub correlation_id: String,
    #[serde(flatten)]
    pub failure: Failure,
    pub status: RunStatus,
    /// Why the run ended as it did, or why it waits; empty while it simply runs.
    pub reason: String,
    pub language: Option<Language>,
    pub category: Option<Category>,
    pub tool: Option<Tool>,
    pub danger_score: Option<f64>,
    pub label: Option<PrLabel>,
    pub pr: Option<PullRequestRef>,
    pub stages: Vec<StageRecord>,
    /// How many times a worker started the run.
    pub attempts: u32,
    /// The job was handed to the queue (the outbox sweep enqueues runs where this stayed false).
    pub enqueued: bool,
    /// The trace of the ingest that created the run.
    pub trace_id: String,
    /// W3C `traceparent` of that ingest: later re-enqueues link to it, so one delivery is one story.
    #[serde(skip)]
    pub origin_traceparent: String,
    /// A delayed retry is due at this time (ms since the epoch).
    pub retry_at_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Run {
    /// A new queued run for `failure`, identified by `run_id` and the delivery that reported it.
    pub fn new(run_id: String, delivery_id: String, failure: Failure, now_ms: i64) -> Self {
        Self {
            run_key: failure.run_key(),
            failure_id: failure.failure_id(),
            correlation_id: run_id.clone(),
            run_id,
            delivery_id,
            failure,
            status: RunStatus::Queued,
            reason: String::new(),
            language: None,
            category: None,
            tool: None,
            danger_score: None,
            label: None,
            pr: None,
            stages: Vec::new(),
            attempts: 0,
            enqueued: false,
            trace_id: String::new(),
            origin_traceparent: String::new(),
            retry_at_ms: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }

    /// The business IDs every span and log line of the run carries.
    pub fn ids(&self) -> RunIds<'_> {
        RunIds {
            delivery_id: &self.delivery_id,
            run_key: &self.run_key,
            failure_id: &self.failure_id,
            run_id: &self.run_id,
            correlation_id: &self.correlation_id,
        }
    }
}

/// Borrowed business IDs of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunIds<'a> {
    pub delivery_id: &'a str,
    pub run_key: &'a str,
    pub failure_id: &'a str,
    pub run_id: &'a str,
    pub correlation_id: &'a str,
}

impl RunIds<'_> {
    /// `(field, value)` pairs, in the order logs print them.
    pub fn fields(&self) -> [(&'static str, &str); 5] {
        [
            ("delivery_id", self.delivery_id),
            ("run_key", self.run_key),
            ("failure_id", self.failure_id),
            ("run_id", self.run_id),
            ("correlation_id", self.correlation_id),
        ]
    }
}

/// A partial update of a run: only the fields set here change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunPatch {
    pub status: Option<RunStatus>,
    pub reason: Option<String>,
    pub language: Option<Language>,
    pub category: Option<Category>,
    pub tool: Option<Tool>,
    pub danger_score: Option<f64>,
    pub label: Option<PrLabel>,
    pub pr: Option<PullRequestRef>,
    /// Replaces the stage list (it holds every attempt's stages, so a retry appends, never wipes).
    pub stages: Option<Vec<StageRecord>>,
    /// `Some(None)` clears a scheduled retry.
    pub retry_at_ms: Option<Option<i64>>,
    /// Sets the attempt count (a deferral gives back the attempt its claim counted).
    pub attempts: Option<u32>,
}

impl RunPatch {
    /// The patch that ends a run with `outcome` and `reason`.
    pub fn concluded(outcome: crate::Outcome, reason: impl Into<String>) -> Self {
        Self { status: Some(outcome.into()), reason: Some(reason.into()), retry_at_ms: Some(None), ..Self::default() }
    }

    /// Applies the patch to an in-memory run (the store does the same in SQL).
    pub fn apply(&self, run: &mut Run) {
        let Self { status, reason, language, category, tool, danger_score, label, pr, stages, retry_at_ms, attempts } =
            self;
        if let Some(v) = status {
            run.status = *v;
        }
        if let Some(v) = reason {
            run.reason.clone_from(v);
        }
        if language.is_some() {
            run.language = *language;
        }
        if category.is_some() {
            run.category = *category;
        }
        if tool.is_some() {
            run.tool = *tool;
        }
        if danger_score.is_some() {
            run.danger_score = *danger_score;
        }
        if label.is_some() {
            run.label = *label;
        }
        if pr.is_some() {
            run.pr.clone_from(pr);
        }
        if let Some(v) = stages {
            run.stages.clone_from(v);
        }
        if let Some(v) = retry_at_ms {
            run.retry_at_ms = *v;
        }
        if let Some(v) = attempts {
            run.attempts = *v;
        }
    }
}

/// Branches the agent makes start with this; a failure on one is never fixed by the agent.
pub const AGENT_BRANCH_PREFIX: &str = "sre-agent/";

/// First 10 hex digits of SHA-256(run_key): short, stable, and says nothing about the key.
pub fn short_key(run_key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(run_key.as_bytes());
    hex::encode(digest)[..10].to_owned()
}

/// The branch of a failure's fix, `sre-agent/<category>/<short key>`: one per run key (the category only
/// makes it readable).
pub fn agent_branch(category: crate::Category, run_key: &str) -> String {
    format!("{AGENT_BRANCH_PREFIX}{}/{}", category.as_str(), short_key(run_key))
}
