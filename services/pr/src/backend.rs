//! The one trait both backends implement, and the checked request they get.

use sre_domain::PrLabel;

use crate::error::PrError;
use crate::events::PrOutcome;

/// A `CreatePullRequestRequest` after the edge checked it.
#[derive(Clone, Debug)]
pub struct PrRequest {
    /// `owner/name`.
    pub repo: String,
    pub head_sha: String,
    pub run_key: String,
    pub run_id: String,
    /// `sre-agent/<category>/<short key>`.
    pub branch: String,
    pub diff: String,
    /// Bounded ([`crate::store::title`], [`crate::store::body`]).
    pub title: String,
    pub body: String,
    /// The commit message (title and body).
    pub message: String,
    pub label: PrLabel,
    /// The base asked for: `base_branch`, else the failure's head branch; empty: the backend's default.
    pub base: String,
    pub draft: bool,
    /// `failure.installation_id` (0 when unknown).
    pub installation_id: u64,
}

/// What a backend did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// 0 when refused before any pull request existed.
    pub number: u64,
    pub branch: String,
    /// Where a reviewer opens it (never logged); empty when there is none.
    pub url: String,
    /// The branch's tip afterwards (on REFUSED: the tip left as it was).
    pub commit_sha: String,
    pub action: PrOutcome,
    pub refused_reason: String,
    /// The pull request's draft state (an existing pull request's state is reported, not changed).
    pub draft: bool,
}

/// Where pull requests go.
#[tonic::async_trait]
pub trait PrBackend: Send + Sync + 'static {
    /// `local` or `github` (the response's `backend`).
    fn name(&self) -> &'static str;

    /// Brings the run_key's branch and pull request to the request: one per run_key, idempotent.
    async fn open(&self, req: &PrRequest) -> Result<Opened, PrError>;
}
