//! The `sre.v1.Validator` gRPC edge: the workflow step that failed, re-run in the sandbox on head_sha without
//! the patch and with it, and the verdict with the evidence of each run.
//!
//! Every run gets a fresh worktree, and the patch is applied (on the host) before any repository code has run
//! in that worktree: nothing the code leaves behind is ever read back by a host-side git command.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sre_domain::ValidationResult;
use sre_gitwork::{GitError, Repo, Worktree};
use sre_proto::validator_server::{Validator, ValidatorServer};
use sre_proto::{CommandRun, ValidateRequest, ValidateResponse, WorkflowStep};
use sre_sandbox::{Job, Sandbox, SandboxConfig};
use sre_service_kit::grpc::Built;
use sre_service_kit::require_context;
use sre_telemetry::{Emit, SharedRegistry};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::config::Config;
use crate::detect::{self, TreeFacts};
use crate::error::ValidatorError;
use crate::events::{ValidationFinished, ValidatorMetrics};
use crate::verdict::{self, Evidence};
use crate::workflow::{self, Facts, Resolution, Shell, StepCommand, WorkflowFile};

/// `log_tail` is at most this many bytes.
pub const LOG_TAIL_BYTES: usize = 8 * 1024;
/// A request may not ask for a longer validation than this.
pub const MAX_TIMEOUT_SECS: u64 = 3600;
/// Workflow files read at most.
const MAX_WORKFLOW_FILES: usize = 100;
/// The least time a run is given, even when the budget is nearly spent.
const MIN_RUN: Duration = Duration::from_secs(1);

/// What the validator runs with (from [`Config`]).
#[derive(Clone, Debug)]
pub struct ValidatorConfig {
    /// `SRE_VALIDATE_TIMEOUT_SECONDS` (default 300): the budget of one validation when a request says 0.
    pub default_timeout: Duration,
    /// `SRE_VALIDATE_CONCURRENCY` (default: the number of CPUs): validations at once; more calls wait.
    pub concurrency: usize,
}

impl ValidatorConfig {
    pub fn new(config: &Config) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            default_timeout: Duration::from_secs(config.validate_timeout_seconds),
            concurrency: config.validate_concurrency.map_or(cpus, |c| usize::try_from(c).unwrap_or(cpus)),
        }
    }
}

/// The budget of a validation: the request's own (capped), or the default when it says 0.
pub fn effective_timeout(requested_secs: u32, default: Duration) -> Duration {
    if requested_secs == 0 { default } else { Duration::from_secs(u64::from(requested_secs).min(MAX_TIMEOUT_SECS)) }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One command to run in a worktree, as the workflow (or the test command) describes it.
struct Command {
    script: String,
    shell: Shell,
    working_directory: String,
    env: Vec<(String, String)>,
    limit: Option<Duration>,
}

impl Command {
    fn of_step(step: &StepCommand) -> Self {
        Self {
            script: step.script.clone(),
            shell: step.shell,
            working_directory: step.working_directory.clone(),
            env: step.env.clone(),
            limit: step.timeout,
        }
    }

    fn test(script: &str) -> Self {
        Self {
            script: script.to_owned(),
            shell: Shell::DefaultBash,
            working_directory: String::new(),
            env: Vec::new(),
            limit: None,
        }
    }
}

fn step_proto(found: &workflow::Found) -> WorkflowStep {
    WorkflowStep {
        workflow: found.workflow.clone(),
        job_id: found.job_id.clone(),
        job_name: found.job_name.clone(),
        step_name: found.step_name.clone(),
        step_index: u32::try_from(found.step_index).unwrap_or(u32::MAX),
        matched_by: found.matched_by.as_str().to_owned(),
    }
}

pub struct ValidatorService {
    repos_dir: PathBuf,
    config: ValidatorConfig,
    sandbox: Sandbox,
    permits: Semaphore,
    metrics: ValidatorMetrics,
}

impl ValidatorService {
    pub fn new(repos_dir: PathBuf, config: ValidatorConfig, sandbox: Sandbox, metrics: ValidatorMetrics) -> Self {
        let permits = Semaphore::new(config.concurrency);
        Self { repos_dir, config, sandbox, permits, metrics }
    }

    /// The workflow files of `sha`, read from git objects: listed with their sizes in one `git ls-tree`, read in
    /// one `git cat-file --batch`.
    async fn workflows(&self, repo: &Repo, sha: &str) -> Result<Vec<WorkflowFile>, ValidatorError> {
        let listed = repo.list_blobs(sha, Some(workflow::WORKFLOW_DIR)).await?;
        let mut blobs = Vec::new();
        for blob in listed.iter().filter(|b| workflow::is_workflow_path(&b.path)).take(MAX_WORKFLOW_FILES) {
            if blob.size > workflow::MAX_WORKFLOW_BYTES as u64 {
                tracing::warn!(path = %blob.path, size = blob.size, "workflow file too large; not read");
                continue;
            }
            blobs.push(blob);
        }
        let texts = repo.read_blobs(&blobs).await?;
        Ok(blobs
            .iter()
            .zip(texts)
            .map(|(blob, text)| WorkflowFile {
                path: blob.path.clone(),
                text: String::from_utf8_lossy(&text).into_owned(),
            })
            .collect())
    }

    /// A fresh worktree of `sha` with `diff` applied, or git's message when it does not apply.
    async fn patched(&self, repo: &Repo, sha: &str, diff: &str) -> Result<Result<Worktree, String>, ValidatorError> {
        let wt = repo.worktree(sha).await?;
        if diff.trim().is_empty() {
            return Ok(Ok(wt));
        }
        match wt.apply(diff).await {
            Ok(()) => Ok(Ok(wt)),
            Err(err) => {
                wt.remove().await;
                Ok(Err(match err {
                    GitError::Command { message, .. } => message,
                    other => other.to_string(),
                }))
            }
        }
    }

    /// Runs `cmd` in `wt` within the time left before `deadline`.
    async fn run(
        &self,
        wt: &Worktree,
        sha: &str,
        cmd: &Command,
        patched: bool,
        deadline: Instant,
    ) -> Result<CommandRun, ValidatorError> {
        let workspace = self.sandbox.workspace(wt.path());
        let workspace = workspace.to_string_lossy();
        let script = cmd.script.replace(workflow::WORKSPACE, &workspace);
        let mut env: Vec<(String, String)> =
            cmd.env.iter().map(|(k, v)| (k.clone(), v.replace(workflow::WORKSPACE, &workspace))).collect();
        for (k, v) in [
            ("GITHUB_WORKSPACE", workspace.as_ref()),
            ("GITHUB_SHA", sha),
            ("RUNNER_OS", "Linux"),
            ("RUNNER_TEMP", "/tmp"),
        ] {
            if !env.iter().any(|(key, _)| key == k) {
                env.push((k.to_owned(), v.to_owned()));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now()).max(MIN_RUN);
        let timeout = cmd.limit.map_or(left, |l| l.min(left));
        let argv: Vec<OsString> = cmd.shell.argv(&script);
        tracing::info!(
            patched,
            sandbox = self.sandbox.name(),
            shell = cmd.shell.template(),
            timeout_s = timeout.as_secs(),
            "running"
        );
        let job = Job {
            worktree: wt.path(),
            workdir: &cmd.working_directory,
            argv: &argv,
            env: &env,
            timeout,
            keep_bytes: LOG_TAIL_BYTES,
        };
        let out = self.sandbox.run(&job).await?;
        Ok(CommandRun {
            command: script,
            shell: cmd.shell.template().to_owned(),
            working_directory: cmd.working_directory.clone(),
            exit_code: out.exit_code,
            timed_out: out.timed_out,
            duration_ms: millis(out.duration),
            log_tail: detect::utf8_tail(&out.output, LOG_TAIL_BYTES),
            sandbox: out.sandbox.to_owned(),
            patched,
        })
    }

    /// Runs `cmd` in a fresh worktree of `sha` (patched with `diff` when given) and removes the worktree.
    async fn run_fresh(
        &self,
        repo: &Repo,
        sha: &str,
        diff: Option<&str>,
        cmd: &Command,
        deadline: Instant,
    ) -> Result<CommandRun, ValidatorError> {
        let wt = match diff {
            None => repo.worktree(sha).await?,
            Some(diff) => match self.patched(repo, sha, diff).await? {
                Ok(wt) => wt,
                Err(message) => {
                    return Err(ValidatorError::Worktree(format!("the patch no longer applies: {message}")));
                }
            },
        };
        let result = self.run(&wt, sha, cmd, diff.is_some(), deadline).await;
        wt.remove().await;
        result
    }

    async fn validate(&self, req: ValidateRequest) -> Result<ValidateResponse, ValidatorError> {
        let ctx = require_context(req.context.as_ref())?;
        sre_service_kit::check_diff_size(&req.diff)?;
        let start = Instant::now();
        let repo = Repo::open(&self.repos_dir, &ctx.repo)?;
        let sha = repo.resolve(&ctx.head_sha).await?;
        let _permit = self.permits.acquire().await.map_err(|_| ValidatorError::ShuttingDown)?;
        let deadline = Instant::now() + effective_timeout(req.timeout_seconds, self.config.default_timeout);

        let files = self.workflows(&repo, &sha).await?;
        let failure = req.failure.clone().unwrap_or_default();
        let facts = Facts {
            workflow_name: &failure.workflow_name,
            job_name: &failure.job_name,
            failing_step: &req.failing_step,
            step_command: &req.step_command,
            head_sha: &sha,
        };
        let resolution = workflow::resolve_step(&files, &facts);

        let mut resp =
            ValidateResponse { sandbox: self.sandbox.name().to_owned(), exit_code: -1, ..Default::default() };
        let patched = match self.patched(&repo, &sha, &req.diff).await? {
            Ok(wt) => wt,
            Err(message) => {
                resp.log_tail = detect::utf8_tail(message.as_bytes(), LOG_TAIL_BYTES);
                return Ok(self.finish(resp, Evidence::PatchFailed, start));
            }
        };
        resp.patch_applied = true;
        let test_command = req.test_command.trim();
        let result: Result<(), ValidatorError> = async {
            match &resolution {
                Resolution::Refused { found, reason } => {
                    resp.step = found.as_ref().map(step_proto);
                    resp.refusal_reason.clone_from(reason);
                    Ok(())
                }
                Resolution::NotFound(_) => {
                    // No step to prove anything with: the configured test command, else the detected one.
                    let command = if test_command.is_empty() {
                        let dir = patched.path().to_owned();
                        let facts = tokio::task::spawn_blocking(move || TreeFacts::read(&dir))
                            .await
                            .map_err(|e| ValidatorError::Worktree(e.to_string()))?;
                        detect::test_command(&facts).map(str::to_owned)
                    } else {
                        Some(test_command.to_owned())
                    };
                    if let Some(command) = command {
                        resp.test = Some(self.run(&patched, &sha, &Command::test(&command), true, deadline).await?);
                    }
                    Ok(())
                }
                Resolution::Run(step) => {
                    resp.step = Some(step_proto(&step.found));
                    let cmd = Command::of_step(step);
                    let unpatched = repo.worktree(&sha).await?;
                    let before = match self.run(&unpatched, &sha, &cmd, false, deadline).await {
                        Ok(before) if !before.timed_out => before,
                        other => {
                            unpatched.remove().await;
                            resp.before = Some(other?);
                            return Ok(());
                        }
                    };
                    resp.before = Some(before);
                    // The unpatched worktree is removed while the step runs in the patched one.
                    let ((), after) = tokio::join!(unpatched.remove(), self.run(&patched, &sha, &cmd, true, deadline));
                    let after = after?;
                    let after_passed = after.exit_code == 0 && !after.timed_out;
                    resp.after = Some(after);
                    if after_passed && !test_command.is_empty() {
                        let test = Command::test(test_command);
                        resp.test = Some(self.run_fresh(&repo, &sha, Some(&req.diff), &test, deadline).await?);
                    }
                    Ok(())
                }
            }
        }
        .await;
        patched.remove().await;
        result?;

        let decision = verdict::decide(match &resolution {
            Resolution::Refused { reason, .. } => Evidence::Refused { reason },
            Resolution::NotFound(reason) => Evidence::NoStep { reason, test: resp.test.as_ref() },
            Resolution::Run(_) => Evidence::Step {
                before: resp
                    .before
                    .as_ref()
                    .ok_or_else(|| ValidatorError::Worktree("no run without the patch".into()))?,
                after: resp.after.as_ref(),
                test: resp.test.as_ref(),
            },
        });
        Ok(self.conclude(resp, decision, start))
    }

    fn finish(&self, resp: ValidateResponse, evidence: Evidence<'_>, start: Instant) -> ValidateResponse {
        let decision = verdict::decide(evidence);
        self.conclude(resp, decision, start)
    }

    /// Fills the verdict and the summary fields (the deciding run with the patch), and reports it.
    fn conclude(&self, mut resp: ValidateResponse, d: verdict::Decision, start: Instant) -> ValidateResponse {
        resp.verdict = d.result.as_str().to_owned();
        resp.reproduced = d.reproduced;
        resp.passed = d.passed;
        resp.reason = d.reason;
        let failed = |r: &&CommandRun| r.timed_out || r.exit_code != 0;
        let deciding = match (&resp.after, &resp.test) {
            (Some(after), _) if failed(&after) => Some(after.clone()),
            (_, Some(test)) => Some(test.clone()),
            (Some(after), None) => Some(after.clone()),
            (None, None) if d.result == ValidationResult::Timeout => resp.before.clone(),
            (None, None) => None,
        };
        if let Some(run) = deciding {
            resp.command = run.command;
            resp.exit_code = run.exit_code;
            resp.timed_out = run.timed_out;
            resp.duration_ms = run.duration_ms;
            resp.log_tail = run.log_tail;
        }
        let step = resp.step.clone().unwrap_or_default();
        // Names only, bounded: an unnamed step's name is the first line of its script.
        let short = |s: &str| s.chars().take(80).collect::<String>();
        self.metrics.emit(ValidationFinished {
            result: d.result,
            reproduced: resp.reproduced,
            passed: resp.passed,
            sandbox: self.sandbox.name(),
            job: &short(&step.job_id),
            step: &short(&step.step_name),
            total_ms: millis(start.elapsed()),
        });
        resp
    }
}

#[tonic::async_trait]
impl Validator for ValidatorService {
    async fn validate(&self, request: Request<ValidateRequest>) -> Result<Response<ValidateResponse>, Status> {
        Ok(Response::new(ValidatorService::validate(self, request.into_inner()).await?))
    }
}

/// The paths the sandbox must never show: the data dir and the repos dir.
pub fn denied_paths(config: &Config) -> Vec<PathBuf> {
    vec![config.data.data_dir.clone(), config.data.repos_dir()]
}

/// Builds the service from its configuration. The sandbox is proven first: in mode `required` without a
/// working bubblewrap this fails, and the process exits 2 with the reason. Ready once git runs.
pub fn build(config: &Config, registry: &SharedRegistry) -> Result<Built, ValidatorError> {
    let sandbox = Sandbox::probe(SandboxConfig::new(&config.sandbox, denied_paths(config)))?;
    let metrics = ValidatorMetrics::register(registry);
    let service = ValidatorService::new(config.data.repos_dir(), ValidatorConfig::new(config), sandbox, metrics);
    Ok((
        tonic::service::Routes::new(
            ValidatorServer::new(service).max_decoding_message_size(sre_service_kit::MAX_GRPC_MESSAGE_BYTES),
        ),
        Box::pin(sre_service_kit::git_ready()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_budget() {
        let default = Duration::from_secs(300);
        assert_eq!(effective_timeout(0, default), default);
        assert_eq!(effective_timeout(5, default), Duration::from_secs(5));
        assert_eq!(effective_timeout(u32::MAX, default), Duration::from_secs(MAX_TIMEOUT_SECS));
    }

    #[test]
    fn the_data_and_repos_dirs_are_denied() {
        use clap::Parser;
        let config =
            Config::try_parse_from(["sre-validator", "--data-dir", "/srv/sre", "--repos-dir", "/srv/repos"]).unwrap();
        assert_eq!(denied_paths(&config), [PathBuf::from("/srv/sre"), PathBuf::from("/srv/repos")]);
        let config = Config::try_parse_from(["sre-validator", "--data-dir", "/srv/sre"]).unwrap();
        assert_eq!(denied_paths(&config), [PathBuf::from("/srv/sre"), PathBuf::from("/srv/sre/repos")]);
        let err = Config::try_parse_from(["sre-validator", "--sandbox", "auto"]).unwrap_err().to_string();
        assert!(err.contains("expected one of required, unsafe-none"), "{err}");
    }
}
