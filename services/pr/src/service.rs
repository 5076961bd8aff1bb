//! The `sre.v1.PullRequests` gRPC edge: checks the request, names the branch, hands it to the configured
//! [`PrBackend`], and reports what happened (events, response).

use std::sync::Arc;

use sre_domain::PrLabel;
use sre_github::{GithubClient, GithubMetrics};
use sre_gitwork::RepoCache;
use sre_proto::pull_requests_server::{PullRequests, PullRequestsServer};
use sre_proto::{CreatePullRequestRequest, CreatePullRequestResponse};
use sre_service_kit::grpc::Built;
use sre_service_kit::require_context;
use sre_telemetry::{Emit, SharedRegistry};
use tonic::{Request, Response, Status};

use crate::backend::{PrBackend, PrRequest};
use crate::config::{Backend, Config};
use crate::error::PrError;
use crate::events::{PrMetrics, PullRequestDone};
use crate::github::GithubBackend;
use crate::local::LocalBackend;
use crate::store;

pub struct PullRequestService {
    backend: Arc<dyn PrBackend>,
    metrics: PrMetrics,
}

impl PullRequestService {
    pub fn new(backend: Arc<dyn PrBackend>, metrics: PrMetrics) -> Self {
        Self { backend, metrics }
    }

    /// The local backend over `repos_dir`.
    pub fn local(repos_dir: std::path::PathBuf, metrics: PrMetrics) -> Self {
        Self::new(Arc::new(LocalBackend::new(repos_dir)), metrics)
    }
}

#[tonic::async_trait]
impl PullRequests for PullRequestService {
    async fn create_pull_request(
        &self,
        request: Request<CreatePullRequestRequest>,
    ) -> Result<Response<CreatePullRequestResponse>, Status> {
        Ok(Response::new(self.create(request.into_inner()).await?))
    }
}

/// Checks the request and derives the branch, title, body and message.
fn check(req: CreatePullRequestRequest) -> Result<PrRequest, PrError> {
    let ctx = require_context(req.context.as_ref())?;
    let label = store::normalize_label(&req.label);
    tracing::Span::current().record("pr_label", label.as_str());
    if label == PrLabel::Unknown && !req.label.is_empty() {
        tracing::warn!("label is neither safe nor needs-review; stored as unknown");
    }
    if req.diff.trim().is_empty() {
        tracing::warn!("empty diff; no pull request");
        return Err(PrError::EmptyDiff);
    }
    sre_service_kit::check_diff_size(&req.diff)?;
    if ctx.run_key.trim().is_empty() {
        return Err(PrError::NoRunKey);
    }
    let head_sha = ctx.head_sha.trim().to_ascii_lowercase();
    if !(7..=64).contains(&head_sha.len()) || !head_sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(PrError::InvalidHeadSha(ctx.head_sha.clone()));
    }
    let branch = store::branch_name(&ctx.category, &ctx.run_key);
    let failure = req.failure.clone().unwrap_or_default();
    let base = if req.base_branch.is_empty() { failure.head_branch.clone() } else { req.base_branch.clone() };
    if !base.is_empty() && !store::valid_branch(&base) {
        return Err(PrError::InvalidBase(base));
    }
    if base.starts_with(store::BRANCH_PREFIX) {
        return Err(PrError::BaseIsAgentBranch(base));
    }
    let title = store::title(&req.title);
    let body = store::body(&req.body);
    let message = store::commit_message(&title, &body);
    Ok(PrRequest {
        repo: ctx.repo.clone(),
        head_sha,
        run_key: ctx.run_key.clone(),
        run_id: ctx.run_id.clone(),
        branch,
        diff: req.diff,
        title,
        body,
        message,
        label,
        base,
        draft: req.draft,
        installation_id: failure.installation_id,
    })
}

impl PullRequestService {
    async fn create(&self, req: CreatePullRequestRequest) -> Result<CreatePullRequestResponse, PrError> {
        let req = check(req)?;
        let opened = self.backend.open(&req).await?;
        self.metrics.emit(PullRequestDone {
            action: opened.action,
            label: req.label,
            number: opened.number,
            branch: &opened.branch,
            commit_sha: &opened.commit_sha,
            backend: self.backend.name(),
        });
        Ok(CreatePullRequestResponse {
            number: opened.number,
            branch: opened.branch,
            url: opened.url,
            label: req.label.as_str().to_owned(),
            commit_sha: opened.commit_sha,
            backend: self.backend.name().to_owned(),
            action: opened.action.action().into(),
            refused_reason: opened.refused_reason,
            draft: opened.draft,
        })
    }
}

/// Builds the service from its configuration: the local backend, or the GitHub backend (which needs the
/// GitHub configuration: without it, a configuration error ends the process with exit code 2). The GitHub
/// client's metric families are registered either way, so the process's families do not depend on the
/// backend (docs/observability.md).
pub fn build(config: &Config, registry: &SharedRegistry) -> Result<Built, PrError> {
    let metrics = PrMetrics::register(registry);
    let github_metrics = GithubMetrics::register(registry);
    let backend: Arc<dyn PrBackend> = match config.backend {
        Backend::Local => Arc::new(LocalBackend::new(config.data.repos_dir())),
        Backend::Github => {
            let github = config.github.config().map_err(|e| PrError::Config(e.to_string()))?.ok_or_else(|| {
                PrError::Config(
                    "SRE_PR_BACKEND=github needs GitHub credentials: GITHUB_APP_ID with GITHUB_PRIVATE_KEY_FILE, or \
                     GITHUB_TOKEN"
                        .to_owned(),
                )
            })?;
            let bot = config.github.bot_identity().map_err(|e| PrError::Config(e.to_string()))?;
            let client = GithubClient::new(github, github_metrics).map_err(|e| PrError::Config(e.to_string()))?;
            let cache = RepoCache::new(config.data.repos_dir(), config.cache.options());
            Arc::new(GithubBackend::new(client, cache, bot))
        }
    };
    let service = PullRequestService::new(backend, metrics);
    Ok((
        tonic::service::Routes::new(
            PullRequestsServer::new(service).max_decoding_message_size(sre_service_kit::MAX_GRPC_MESSAGE_BYTES),
        ),
        Box::pin(sre_service_kit::git_ready()),
    ))
}

#[cfg(test)]
mod tests {
    use sre_proto::{FailureInfo, RunContext};

    use super::*;

    fn request() -> CreatePullRequestRequest {
        CreatePullRequestRequest {
            context: Some(RunContext {
                run_key: "workflow_job:123".into(),
                run_id: "r".into(),
                repo: "o/r".into(),
                head_sha: "A".repeat(40),
                category: "lint".into(),
                ..Default::default()
            }),
            diff: "diff --git a/x b/x\n".into(),
            title: "Fix lint\nmore".into(),
            body: " body ".into(),
            label: "safe".into(),
            failure: Some(FailureInfo { head_branch: "feature/x".into(), installation_id: 42, ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn checks_and_derives() {
        let req = check(request()).unwrap();
        assert_eq!(req.branch, "sre-agent/lint/0ee8250c07");
        assert_eq!((req.title.as_str(), req.body.as_str()), ("Fix lint", "body"));
        assert_eq!(req.message, "Fix lint\n\nbody\n");
        assert_eq!(req.base, "feature/x", "the failing head branch when base_branch is empty");
        assert_eq!(req.head_sha, "a".repeat(40));
        assert_eq!(req.installation_id, 42);

        let with = |f: fn(&mut CreatePullRequestRequest)| {
            let mut r = request();
            f(&mut r);
            check(r).map(|_| ()).unwrap_err()
        };
        assert!(matches!(with(|r| r.context.as_mut().unwrap().run_key.clear()), PrError::NoRunKey));
        // A head_sha that is not hex is refused by the shared context check first (INVALID_ARGUMENT either way).
        assert!(matches!(
            with(|r| r.context.as_mut().unwrap().head_sha = "xyz1234".into()),
            PrError::Request(_) | PrError::InvalidHeadSha(_)
        ));
        assert!(matches!(with(|r| r.diff = " \n".into()), PrError::EmptyDiff));
        assert!(matches!(with(|r| r.base_branch = "a..b".into()), PrError::InvalidBase(_)));
        assert!(matches!(with(|r| r.base_branch = "sre-agent/lint/x".into()), PrError::BaseIsAgentBranch(_)));
        assert!(matches!(with(|r| r.context = None), PrError::Request(_)));
    }
}
