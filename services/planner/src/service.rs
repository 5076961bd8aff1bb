//! The `sre.v1.Planner` gRPC edge.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use sre_domain::{Category, Label, Language, Tool};
use sre_gitwork::{Repo, diff_stat};
use sre_llm::{FixOutcome, FixRequest, LlmClient, LlmMetrics};
use sre_proto::planner_server::{Planner, PlannerServer};
use sre_proto::{
    FixPlan, GeneratePatchRequest, GeneratePatchResponse, GeneratePlanRequest, GeneratePlanResponse, PlanStep,
};
use sre_sandbox::{Sandbox, SandboxConfig};
use sre_service_kit::grpc::Built;
use sre_service_kit::require_context;
use sre_telemetry::SharedRegistry;
use tonic::{Request, Response, Status};

use crate::config::Config;
use crate::error::PlannerError;
use crate::exec::FixerRuntime;
use crate::fixers::{self, Choice, Facts, Fixer};
use crate::rules;

/// Candidate files read per plan, at most (keeps a huge repository from stalling the planner).
const MAX_FILES_SCANNED: usize = 5_000;

pub struct PlannerService {
    repos_dir: PathBuf,
    /// The sandbox of the deterministic fixers; `None`: built without one, every fixer plan is skipped
    /// with that reason (never an unsandboxed run).
    fixers: Option<FixerRuntime>,
    /// The LLM planner, when configured.
    llm: Option<LlmClient>,
}

/// A plan with no steps: the run is skipped with its summary.
fn skip_plan(strategy: &str, summary: String) -> FixPlan {
    FixPlan { strategy: strategy.to_owned(), summary, ..FixPlan::default() }
}

/// A patch that was not made, and why.
fn skipped_patch(reason: String, command: String, sandbox: &str) -> GeneratePatchResponse {
    GeneratePatchResponse { skipped_reason: reason, command, sandbox: sandbox.to_owned(), ..Default::default() }
}

impl PlannerService {
    /// A planner with the whitespace rule only (no sandbox, no model).
    pub fn new(repos_dir: PathBuf) -> Self {
        Self { repos_dir, fixers: None, llm: None }
    }

    /// A planner whose fixers run in `fixers`' sandbox, with the LLM planner when `llm` is given.
    pub fn with(repos_dir: PathBuf, fixers: FixerRuntime, llm: Option<LlmClient>) -> Self {
        Self { repos_dir, fixers: Some(fixers), llm }
    }

    /// The legacy plan without a log: the job's name said lint, every hygiene candidate is scanned.
    async fn whitespace_scan(&self, repo: &Repo, sha: &str, files: &[String]) -> Result<FixPlan, PlannerError> {
        let mut found = Vec::new();
        for path in files.iter().filter(|p| rules::is_hygiene_candidate(p)).take(MAX_FILES_SCANNED) {
            if let Some(issues) = self.hygiene_of(repo, sha, path).await? {
                found.push((path.clone(), issues));
            }
        }
        Ok(rules::hygiene_plan(&found))
    }

    async fn hygiene_of(
        &self,
        repo: &Repo,
        sha: &str,
        path: &str,
    ) -> Result<Option<rules::HygieneIssues>, PlannerError> {
        let bytes = repo.read_file(sha, path).await?;
        if bytes.len() > rules::MAX_FILE_BYTES {
            return Ok(None);
        }
        let Ok(text) = std::str::from_utf8(&bytes) else { return Ok(None) };
        let issues = rules::hygiene_issues(text);
        Ok(issues.any().then_some(issues))
    }

    /// The plan for a failure diagnosed from its log.
    async fn plan_diagnosed(
        &self,
        repo: &Repo,
        sha: &str,
        files: &[String],
        fc: &sre_proto::FailureContext,
        (category, language, tool): (Category, Language, Tool),
    ) -> Result<FixPlan, PlannerError> {
        let pyproject = if files.iter().any(|f| f == "pyproject.toml") {
            String::from_utf8_lossy(&repo.read_file(sha, "pyproject.toml").await?).into_owned()
        } else {
            String::new()
        };
        let facts = Facts {
            category,
            language,
            tool,
            autofixable: fc.autofixable,
            lines: &fc.lines,
            configures_black: fixers::configures_black(&pyproject),
        };
        let referenced: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for r in &fc.file_refs {
                let p = r.path.trim_start_matches("./");
                if files.iter().any(|f| f == p) && safe_target(p) && !v.iter().any(|x| x == p) {
                    v.push(p.to_owned());
                }
            }
            v
        };
        match fixers::choose(&facts) {
            Choice::Never(why) => Ok(skip_plan("none", why)),
            Choice::Uncovered(why) => match &self.llm {
                Some(client) if !referenced.is_empty() => Ok(llm_plan(client, &referenced, category)),
                Some(_) => Ok(skip_plan("none", format!("{why}; the LLM planner needs a file the failure names"))),
                None => Ok(skip_plan("none", why)),
            },
            Choice::Whitespace => {
                let mut named = referenced.clone();
                for p in fixers::hook_fixed_files(&fc.lines, files) {
                    if !named.contains(&p) {
                        named.push(p);
                    }
                }
                let mut found = Vec::new();
                for path in named.iter().filter(|p| rules::is_hygiene_candidate(p)).take(rules::MAX_FILES) {
                    if let Some(issues) = self.hygiene_of(repo, sha, path).await? {
                        found.push((path.clone(), issues));
                    }
                }
                if found.is_empty() {
                    return Ok(skip_plan(
                        "rule:whitespace-hygiene",
                        "the log reports whitespace problems, but no file it names has any here".into(),
                    ));
                }
                Ok(rules::hygiene_plan(&found))
            }
            Choice::Tool(fixer) => self.tool_plan(repo, sha, files, fc, fixer, &referenced).await,
        }
    }

    /// The plan of a deterministic fixer: the tool is there (in the sandbox), the files it may touch.
    async fn tool_plan(
        &self,
        repo: &Repo,
        sha: &str,
        files: &[String],
        fc: &sre_proto::FailureContext,
        fixer: Fixer,
        referenced: &[String],
    ) -> Result<FixPlan, PlannerError> {
        let strategy = fixer.strategy();
        let Some(rt) = &self.fixers else {
            return Ok(skip_plan(
                strategy,
                format!("the {strategy} fixer needs the sandbox, and this planner was built without one"),
            ));
        };
        let wt = repo.worktree(sha).await?;
        let result = async {
            let probe = match rt.probe(&wt, fixer).await? {
                Ok(p) => p,
                Err(why) => return Ok(skip_plan(strategy, format!("{why}: the {strategy} fix cannot run"))),
            };
            let codes = codes_of(fixer, fc);
            let mut targets: Vec<String> = referenced.iter().filter(|p| fixer.handles(p)).cloned().collect();
            let mut source = "named by the failure".to_owned();
            if targets.is_empty()
                && let Some(list) = fixer.list_argv(&codes)
            {
                targets = rt.list(&wt, &list, &probe, files).await?;
                targets.retain(|p| fixer.handles(p) && safe_target(p));
                source = format!("reported by `{}`", fixers::display_command(&list));
            }
            targets.truncate(rules::MAX_FILES);
            if targets.is_empty() {
                return Ok(skip_plan(
                    strategy,
                    format!(
                        "the failure names no file {} works on, and the tool reports none here ({})",
                        fixer.tool(),
                        probe.version
                    ),
                ));
            }
            let command = fixers::display_command(&fixer.fix_argv(&targets, &codes));
            let steps = targets
                .iter()
                .map(|path| PlanStep {
                    action: strategy.to_owned(),
                    path: path.clone(),
                    rationale: format!("{source}; fixed by `{command}` ({})", probe.version),
                })
                .collect::<Vec<_>>();
            Ok(FixPlan {
                strategy: strategy.to_owned(),
                summary: format!("{} fixes the {} failure in {} file(s)", fixer.tool(), fc.category, steps.len()),
                steps,
                confidence: 0.9,
                command,
                tool_version: probe.version,
                notes: probe.notes,
            })
        }
        .await;
        wt.remove().await;
        result
    }

    /// Runs a fixer's plan in the sandbox and returns the diff, or why there is none.
    async fn tool_patch(
        &self,
        repo: &Repo,
        sha: &str,
        plan: &FixPlan,
        fc: &sre_proto::FailureContext,
        fixer: Fixer,
    ) -> Result<GeneratePatchResponse, PlannerError> {
        let strategy = fixer.strategy();
        let targets = plan_targets(plan)?;
        let Some(rt) = &self.fixers else {
            return Ok(skipped_patch(
                format!("the {strategy} fixer needs the sandbox, and this planner was built without one"),
                String::new(),
                "",
            ));
        };
        let sandbox = rt.sandbox.name();
        let codes = codes_of(fixer, fc);
        let argv = fixer.fix_argv(&targets, &codes);
        let command = fixers::display_command(&argv);
        let wt = repo.worktree(sha).await?;
        let result = async {
            let probe = match rt.probe(&wt, fixer).await? {
                Ok(p) => p,
                Err(why) => return Ok(skipped_patch(format!("{why}: the {strategy} fix cannot run"), command, sandbox)),
            };
            tracing::info!(strategy, sandbox, files = targets.len(), tool_version = %probe.version, "running fixer");
            let ran = rt.run(&wt, &argv, &probe.env, rt.fix_timeout).await?;
            tracing::info!(
                strategy,
                sandbox,
                exit_code = ran.exit_code,
                timed_out = ran.timed_out,
                duration_ms = u64::try_from(ran.duration.as_millis()).unwrap_or(u64::MAX),
                "fixer finished"
            );
            if ran.timed_out {
                let secs = rt.fix_timeout.as_secs();
                return Ok(skipped_patch(format!("`{command}` timed out after {secs} s in the sandbox"), command, sandbox));
            }
            if !fixer.fix_ran(ran.exit_code) {
                return Ok(skipped_patch(
                    format!("`{command}` failed in the sandbox (exit {}); nothing was changed", ran.exit_code),
                    command,
                    sandbox,
                ));
            }
            let diff = wt.diff().await?;
            if diff.trim().is_empty() {
                return Ok(skipped_patch(
                    format!("`{command}` ({}) changed nothing: the failure does not reproduce with it here", probe.version),
                    command,
                    sandbox,
                ));
            }
            let stat = diff_stat(&diff);
            let outside = fixers::out_of_scope(&stat.files, &targets);
            if !outside.is_empty() {
                tracing::warn!(strategy, outside = outside.len(), "fixer touched files outside the failure; refused");
                return Ok(skipped_patch(
                    format!(
                        "`{command}` also changed {}, which the failure does not name (it names {}): the patch is refused",
                        outside.join(", "),
                        targets.join(", ")
                    ),
                    command,
                    sandbox,
                ));
            }
            Ok(GeneratePatchResponse {
                diff,
                files_changed: stat.files,
                lines_added: stat.added,
                lines_removed: stat.removed,
                command: command.clone(),
                sandbox: sandbox.to_owned(),
                skipped_reason: String::new(),
            })
        }
        .await;
        wt.remove().await;
        result
    }

    /// Asks the model to edit the plan's files.
    async fn llm_patch(
        &self,
        repo: &Repo,
        sha: &str,
        plan: &FixPlan,
        fc: &sre_proto::FailureContext,
    ) -> Result<GeneratePatchResponse, PlannerError> {
        let targets = plan_targets(plan)?;
        let Some(client) = &self.llm else {
            return Ok(skipped_patch("the LLM planner is not configured here (SRE_LLM_*)".into(), String::new(), ""));
        };
        let references = fc
            .file_refs
            .iter()
            .filter(|r| targets.iter().any(|t| t == r.path.trim_start_matches("./")))
            .map(|r| sre_llm::FileRef::new(r.path.trim_start_matches("./"), (r.line > 0).then_some(r.line)))
            .collect();
        let request = FixRequest {
            step: fc.step_name.clone(),
            command: fc.command.clone(),
            category: Category::parse(&fc.category).unwrap_or(Category::Unknown),
            language: Language::parse(&fc.language).unwrap_or(Language::Unknown),
            tool: Tool::parse(&fc.tool).unwrap_or(Tool::Unknown),
            context_lines: fc.lines.clone(),
            references,
        };
        let wt = repo.worktree(sha).await?;
        let result = async {
            let budget = client.run_budget();
            match client.fix(&request, wt.path(), &budget).await? {
                FixOutcome::Skipped(reason) => Ok(skipped_patch(reason.to_string(), String::new(), "")),
                FixOutcome::Applied(applied) => {
                    let diff = wt.diff().await?;
                    let stat = diff_stat(&diff);
                    let outside = fixers::out_of_scope(&stat.files, &targets);
                    if !outside.is_empty() {
                        return Ok(skipped_patch(
                            format!("the model's edit changed {}, outside the plan: refused", outside.join(", ")),
                            String::new(),
                            "",
                        ));
                    }
                    tracing::info!(files = applied.changed_files.len(), answers = applied.answers, "llm patch");
                    Ok(GeneratePatchResponse {
                        diff,
                        files_changed: stat.files,
                        lines_added: stat.added,
                        lines_removed: stat.removed,
                        ..Default::default()
                    })
                }
            }
        }
        .await;
        wt.remove().await;
        result
    }

    /// The whitespace rule's edits, in a worktree.
    async fn whitespace_patch(
        &self,
        repo: &Repo,
        sha: &str,
        plan: &FixPlan,
    ) -> Result<GeneratePatchResponse, PlannerError> {
        let wt = repo.worktree(sha).await?;
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
        Ok(GeneratePatchResponse {
            diff,
            files_changed: stat.files,
            lines_added: stat.added,
            lines_removed: stat.removed,
            ..Default::default()
        })
    }
}

/// The LLM plan: the model may edit the files the failure names; it needs review (confidence below the
/// policy's bar) whatever it answers.
fn llm_plan(client: &LlmClient, referenced: &[String], category: Category) -> FixPlan {
    let model = &client.config().model;
    let steps: Vec<PlanStep> = referenced
        .iter()
        .take(client.config().limits.max_files)
        .map(|p| PlanStep {
            action: sre_llm::ACTION.to_owned(),
            path: p.clone(),
            rationale: format!("named by the failure; sent to the model {model} with the failure context"),
        })
        .collect();
    FixPlan {
        strategy: sre_llm::STRATEGY.to_owned(),
        summary: format!("ask the model {model} to fix the {} failure in {} file(s)", category.as_str(), steps.len()),
        steps,
        confidence: 0.4,
        ..FixPlan::default()
    }
}

/// The rule codes a `ruff check --fix` selects: exactly the ones the log reports.
fn codes_of(fixer: Fixer, fc: &sre_proto::FailureContext) -> Vec<String> {
    if fixer == Fixer::RuffFix { fixers::rule_codes(&fc.lines) } else { Vec::new() }
}

/// A plan step's path, if it stays inside the worktree.
fn safe_relative(path: &str) -> Option<&Path> {
    let p = Path::new(path);
    (!path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))).then_some(p)
}

/// A path a tool may get as an argument: inside the worktree, not an option.
fn safe_target(path: &str) -> bool {
    safe_relative(path).is_some() && !path.starts_with('-')
}

/// The paths of a fixer or LLM plan's steps, each checked; every step must be of the plan's strategy.
fn plan_targets(plan: &FixPlan) -> Result<Vec<String>, PlannerError> {
    let action = if plan.strategy == sre_llm::STRATEGY { sre_llm::ACTION } else { plan.strategy.as_str() };
    let mut targets = Vec::new();
    for step in &plan.steps {
        if step.action != action {
            return Err(PlannerError::MixedPlan { strategy: plan.strategy.clone(), action: step.action.clone() });
        }
        if !safe_target(&step.path) {
            return Err(PlannerError::PathEscapes(step.path.clone()));
        }
        if !targets.contains(&step.path) {
            targets.push(step.path.clone());
        }
    }
    Ok(targets)
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
        let span = tracing::Span::current();
        // The diagnosis from the log's content when there is a log; without one, the repository's files and the
        // job's name are all there is to go on (and only the whitespace rule, whose fix validation proves).
        let (plan, language, category) = match &req.failure_context {
            Some(fc) => {
                let language = Language::parse(&fc.language).unwrap_or(Language::Unknown);
                let category = Category::parse(&fc.category).unwrap_or(Category::Unknown);
                let tool = Tool::parse(&fc.tool).unwrap_or(Tool::Unknown);
                span.record("language", language.as_str());
                span.record("category", category.as_str());
                (self.plan_diagnosed(&repo, &sha, &files, fc, (category, language, tool)).await?, language, category)
            }
            None => {
                let name = if failure.job_name.is_empty() { &failure.workflow_name } else { &failure.job_name };
                let (language, category) = (rules::detect_language(&files), rules::classify(name));
                span.record("language", language.as_str());
                span.record("category", category.as_str());
                let plan = if category == Category::Lint {
                    self.whitespace_scan(&repo, &sha, &files).await?
                } else {
                    rules::no_rule_plan(category, language)
                };
                (plan, language, category)
            }
        };
        tracing::info!(
            strategy = %plan.strategy,
            steps = plan.steps.len(),
            language = language.as_str(),
            category = category.as_str(),
            tool_version = %plan.tool_version,
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
        let sha = repo.resolve(&ctx.head_sha).await.map_err(PlannerError::from)?;
        let fc = req.failure_context.unwrap_or_default();
        let resp = if let Some(fixer) = Fixer::from_strategy(&plan.strategy) {
            self.tool_patch(&repo, &sha, &plan, &fc, fixer).await?
        } else if plan.strategy == sre_llm::STRATEGY {
            self.llm_patch(&repo, &sha, &plan, &fc).await?
        } else {
            self.whitespace_patch(&repo, &sha, &plan).await?
        };
        if resp.skipped_reason.is_empty() {
            tracing::info!(
                strategy = %plan.strategy,
                files = resp.files_changed.len(),
                added = resp.lines_added,
                removed = resp.lines_removed,
                "patch generated"
            );
        } else {
            tracing::warn!(strategy = %plan.strategy, reason = %resp.skipped_reason, "no patch");
        }
        Ok(Response::new(resp))
    }
}

/// The paths the sandbox must never show: the data dir and the repos dir.
pub fn denied_paths(config: &Config) -> Vec<PathBuf> {
    vec![config.data.data_dir.clone(), config.data.repos_dir()]
}

/// Builds the service from its configuration. The fixers' sandbox is proven first (as the validator's: in
/// mode `required` without a working bubblewrap this fails and the process exits 2 with the reason); the LLM
/// planner is registered only when configured.
pub fn build(config: &Config, registry: &SharedRegistry) -> Result<Built, PlannerError> {
    let sandbox = Sandbox::probe(SandboxConfig::new(&config.sandbox, denied_paths(config)))?;
    let fixers = FixerRuntime { sandbox, fix_timeout: Duration::from_secs(config.fix_timeout_seconds) };
    let llm = match config.llm.config()? {
        Some(llm) => {
            tracing::info!(model = %llm.model, "LLM planner on for failures no deterministic fixer covers");
            Some(LlmClient::new(llm, LlmMetrics::register(registry))?)
        }
        None => None,
    };
    let service = PlannerService::with(config.data.repos_dir(), fixers, llm);
    let routes = tonic::service::Routes::new(
        PlannerServer::new(service).max_decoding_message_size(sre_service_kit::MAX_GRPC_MESSAGE_BYTES),
    );
    Ok((routes, Box::pin(sre_service_kit::git_ready())))
}
