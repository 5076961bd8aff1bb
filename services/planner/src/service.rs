//! The `sre.v1.Planner` gRPC edge.

use std::path::{Component, Path, PathBuf};

use sre_domain::{Category, Label, Language};
use sre_gitwork::{Repo, diff_stat};
use sre_proto::planner_server::{Planner, PlannerServer};
use sre_proto::{FixPlan, GeneratePatchRequest, GeneratePatchResponse, GeneratePlanRequest, GeneratePlanResponse};
use sre_service_kit::grpc::Built;
use sre_service_kit::require_context;
use sre_telemetry::SharedRegistry;
use tonic::{Request, Response, Status};

use crate::config::Config;
use crate::error::PlannerError;
use crate::rules;

/// Candidate files read per plan, at most (keeps a huge repository from stalling the planner).
const MAX_FILES_SCANNED: usize = 5_000;

pub struct PlannerService {
    repos_dir: PathBuf,
}

impl PlannerService {
    pub fn new(repos_dir: PathBuf) -> Self {
        Self { repos_dir }
    }

    async fn plan(
        &self,
        repo: &Repo,
        sha: &str,
        category: Category,
        language: Language,
    ) -> Result<FixPlan, PlannerError> {
        if category != Category::Lint {
            return Ok(rules::no_rule_plan(category, language));
        }
        let files = repo.list_files(sha).await?;
        let mut found = Vec::new();
        for path in files.iter().filter(|p| rules::is_hygiene_candidate(p)).take(MAX_FILES_SCANNED) {
            let bytes = repo.read_file(sha, path).await?;
            if bytes.len() > rules::MAX_FILE_BYTES {
                continue;
            }
            let Ok(text) = std::str::from_utf8(&bytes) else { continue };
            let issues = rules::hygiene_issues(text);
            if issues.any() {
                found.push((path.clone(), issues));
            }
        }
        Ok(rules::hygiene_plan(&found))
    }
}

/// A plan step's path, if it stays inside the worktree.
fn safe_relative(path: &str) -> Option<&Path> {
    let p = Path::new(path);
    (!path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))).then_some(p)
}

/// Largest log the planner reads (the orchestrator bounds logs well below this).
const MAX_LOG_BYTES: usize = 8 * 1024 * 1024;

/// The wire form of what sre-cilog found. Log text is redacted here: the context is stored as the run's
/// `context` artifact, served by the runs API and quoted in the pull request, while a CI log may print
/// credentials (an env dump, a failing line that holds a token); only the raw `log` artifact keeps them.
fn context_message(ctx: &sre_cilog::FailureContext, diagnosis: &sre_cilog::Diagnosis) -> sre_proto::FailureContext {
    use sre_telemetry::redact::redact;
    sre_proto::FailureContext {
        step_name: redact(ctx.step_name.as_deref().unwrap_or_default()).into_owned(),
        command: redact(ctx.command.as_deref().unwrap_or_default()).into_owned(),
        exit_code: ctx.exit_code,
        lines: ctx.lines.iter().map(|l| redact(l).into_owned()).collect(),
        file_refs: ctx
            .file_refs
            .iter()
            .map(|r| sre_proto::FileRef {
                path: r.path.clone(),
                line: r.line.unwrap_or_default(),
                column: r.column.unwrap_or_default(),
            })
            .collect(),
        log_lines: ctx.log_lines as u64,
        truncated: ctx.truncated,
        category: diagnosis.category.as_str().to_owned(),
        language: diagnosis.language.as_str().to_owned(),
        tool: diagnosis.tool.as_str().to_owned(),
        summary: redact(&diagnosis.summary).into_owned(),
        autofixable: diagnosis.autofixable,
    }
}

#[tonic::async_trait]
impl Planner for PlannerService {
    async fn build_failure_context(
        &self,
        request: Request<sre_proto::BuildFailureContextRequest>,
    ) -> Result<Response<sre_proto::BuildFailureContextResponse>, Status> {
        let req = request.into_inner();
        let ctx = require_context(req.context.as_ref()).map_err(PlannerError::from)?;
        if req.log.len() > MAX_LOG_BYTES {
            return Err(PlannerError::LogTooLarge(req.log.len()).into());
        }
        // Parsing a large log is CPU work: off the async workers.
        let log = req.log;
        let (found, diagnosis) = tokio::task::spawn_blocking(move || {
            let found = sre_cilog::FailureContext::from_log(log.as_bytes());
            let diagnosis = sre_cilog::classify(&found);
            (found, diagnosis)
        })
        .await
        .map_err(|e| Status::internal(format!("diagnosis task: {e}")))?;
        let span = tracing::Span::current();
        span.record("language", diagnosis.language.as_str());
        span.record("category", diagnosis.category.as_str());
        tracing::info!(
            category = diagnosis.category.as_str(),
            language = diagnosis.language.as_str(),
            tool = diagnosis.tool.as_str(),
            context_lines = found.lines.len(),
            log_lines = found.log_lines,
            autofixable = diagnosis.autofixable,
            "failure context built"
        );
        let mut ctx = ctx.clone();
        ctx.language = diagnosis.language.as_str().to_owned();
        ctx.category = diagnosis.category.as_str().to_owned();
        ctx.tool = diagnosis.tool.as_str().to_owned();
        Ok(Response::new(sre_proto::BuildFailureContextResponse {
            context: Some(ctx),
            failure_context: Some(context_message(&found, &diagnosis)),
        }))
    }

    async fn generate_plan(
        &self,
        request: Request<GeneratePlanRequest>,
    ) -> Result<Response<GeneratePlanResponse>, Status> {
        let req = request.into_inner();
        let ctx = require_context(req.context.as_ref()).map_err(PlannerError::from)?;
        let failure = req.failure.unwrap_or_default();
        let repo = Repo::open(&self.repos_dir, &ctx.repo).map_err(PlannerError::from)?;
        let sha = repo.resolve(&ctx.head_sha).await.map_err(PlannerError::from)?;
        let files = repo.list_files(&sha).await.map_err(PlannerError::from)?;
        // The diagnosis from the log's content when there is a log; without one, the repository's files and the
        // job's name are all there is to go on.
        let diagnosed = req.failure_context.as_ref().map(|fc| {
            (
                Language::parse(&fc.language).unwrap_or(Language::Unknown),
                Category::parse(&fc.category).unwrap_or(Category::Unknown),
            )
        });
        let (language, category) = diagnosed.unwrap_or_else(|| {
            let name = if failure.job_name.is_empty() { &failure.workflow_name } else { &failure.job_name };
            (rules::detect_language(&files), rules::classify(name))
        });
        let span = tracing::Span::current();
        span.record("language", language.as_str());
        span.record("category", category.as_str());

        let plan = self.plan(&repo, &sha, category, language).await?;
        tracing::info!(
            strategy = %plan.strategy,
            steps = plan.steps.len(),
            language = language.as_str(),
            category = category.as_str(),
            "plan generated"
        );
        let mut ctx = ctx.clone();
        ctx.language = language.as_str().to_owned();
        ctx.category = category.as_str().to_owned();
        Ok(Response::new(GeneratePlanResponse { context: Some(ctx), plan: Some(plan) }))
    }

    async fn generate_patch(
        &self,
        request: Request<GeneratePatchRequest>,
    ) -> Result<Response<GeneratePatchResponse>, Status> {
        let req = request.into_inner();
        let ctx = require_context(req.context.as_ref()).map_err(PlannerError::from)?;
        let plan = req.plan.ok_or(PlannerError::MissingPlan)?;
        if plan.steps.is_empty() {
            tracing::info!(strategy = %plan.strategy, "plan has no steps; empty patch");
            return Ok(Response::new(GeneratePatchResponse::default()));
        }
        let repo = Repo::open(&self.repos_dir, &ctx.repo).map_err(PlannerError::from)?;
        let wt = repo.worktree(&ctx.head_sha).await.map_err(PlannerError::from)?;
        let result = async {
            for step in &plan.steps {
                if step.action != "fix_whitespace" {
                    return Err(PlannerError::UnknownAction(step.action.clone()));
                }
                let rel = safe_relative(&step.path).ok_or_else(|| PlannerError::PathEscapes(step.path.clone()))?;
                let file = wt.path().join(rel);
                let text = tokio::fs::read_to_string(&file)
                    .await
                    .map_err(|source| PlannerError::Read { path: step.path.clone(), source })?;
                tokio::fs::write(&file, rules::fix_hygiene(&text))
                    .await
                    .map_err(|source| PlannerError::Write { path: step.path.clone(), source })?;
            }
            Ok(wt.diff().await?)
        }
        .await;
        wt.remove().await;
        let diff = result?;
        let stat = diff_stat(&diff);
        tracing::info!(files = stat.files.len(), added = stat.added, removed = stat.removed, "patch generated");
        Ok(Response::new(GeneratePatchResponse {
            diff,
            files_changed: stat.files,
            lines_added: stat.added,
            lines_removed: stat.removed,
        }))
    }
}

/// Builds the service from its configuration.
pub fn build(config: &Config, _registry: &SharedRegistry) -> Result<Built, PlannerError> {
    let repos_dir = config.data.repos_dir();
    let routes = tonic::service::Routes::new(PlannerServer::new(PlannerService::new(repos_dir)));
    Ok((routes, Box::pin(sre_service_kit::git_ready())))
}
