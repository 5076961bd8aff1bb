//! The `sre.v1.Validator` gRPC edge: a worktree, the patch, the detected test command in the sandbox, and
//! the verdict with the end of the test output.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sre_gitwork::{GitError, Repo, Worktree};
use sre_proto::validator_server::{Validator, ValidatorServer};
use sre_proto::{ValidateRequest, ValidateResponse};
use sre_service_kit::grpc::Built;
use sre_service_kit::require_context;
use sre_telemetry::SharedRegistry;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::config::Config;
use crate::detect::{self, LOOKED_FOR, TreeFacts};
use crate::error::ValidatorError;
use crate::runner;
use crate::sandbox::{Sandbox, SandboxState};

/// `log_tail` is at most this many bytes.
pub const LOG_TAIL_BYTES: usize = 8 * 1024;
/// A request may not ask for a longer test run than this.
pub const MAX_TIMEOUT_SECS: u64 = 3600;
/// Variables the test command inherits from the service; everything else (tokens, OTEL settings, the
/// service's own configuration) stays out of the untrusted test run.
const PASS_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TZ",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOPATH",
    "GOROOT",
    "GOMODCACHE",
    "GOFLAGS",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "VIRTUAL_ENV",
    "JAVA_HOME",
];

/// What the validator runs with (from [`Config`]).
#[derive(Clone, Debug)]
pub struct ValidatorConfig {
    /// `SRE_VALIDATE_TIMEOUT_SECONDS` (default 300): used when a request says 0.
    pub default_timeout: Duration,
    /// `SRE_VALIDATE_CONCURRENCY` (default: the number of CPUs): test runs at once; more calls wait.
    pub concurrency: usize,
    /// The environment handed to test commands (the [`PASS_ENV`] subset of the service's).
    pub env: Vec<(OsString, OsString)>,
    /// `PATH`, where bwrap is looked up.
    pub path_env: OsString,
}

impl ValidatorConfig {
    /// The runtime settings of `config`; the test environment is the [`PASS_ENV`] subset of this process's.
    pub fn new(config: &Config) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let env = PASS_ENV.iter().filter_map(|k| std::env::var_os(k).map(|v| (OsString::from(k), v))).collect();
        Self {
            default_timeout: Duration::from_secs(config.validate_timeout_seconds),
            concurrency: config.validate_concurrency.map_or(cpus, |c| usize::try_from(c).unwrap_or(cpus)),
            env,
            path_env: std::env::var_os("PATH").unwrap_or_default(),
        }
    }
}

/// The test timeout for a request: its own (capped), or the default when it says 0.
pub fn effective_timeout(requested_secs: u32, default: Duration) -> Duration {
    if requested_secs == 0 { default } else { Duration::from_secs(u64::from(requested_secs).min(MAX_TIMEOUT_SECS)) }
}

/// The environment of a test run: the passed-through variables, plus `CI=true` and, under bwrap, a writable
/// TMPDIR and cache dir (the rest of the filesystem is read-only there).
fn test_env(base: &[(OsString, OsString)], sandbox: &Sandbox) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = base.to_vec();
    let mut set = |k: &str, v: &str| {
        env.retain(|(key, _)| key != k);
        env.push((k.into(), v.into()));
    };
    set("CI", "true");
    set("TERM", "dumb");
    if matches!(sandbox, Sandbox::Bwrap(_)) {
        set("TMPDIR", "/tmp");
        set("XDG_CACHE_HOME", "/tmp/.cache");
    }
    env
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub struct ValidatorService {
    repos_dir: PathBuf,
    config: ValidatorConfig,
    sandbox: Arc<SandboxState>,
    permits: Arc<Semaphore>,
}

impl ValidatorService {
    pub fn new(repos_dir: PathBuf, config: ValidatorConfig, sandbox: Arc<SandboxState>) -> Self {
        let permits = Arc::new(Semaphore::new(config.concurrency));
        Self { repos_dir, config, sandbox, permits }
    }

    /// Applies the diff and runs the tests in `wt`; the caller removes the worktree.
    async fn validate_in(
        &self,
        repo: &Repo,
        wt: &Worktree,
        diff: &str,
        sandbox: &Sandbox,
        timeout: Duration,
    ) -> Result<ValidateResponse, ValidatorError> {
        if !diff.trim().is_empty()
            && let Err(err) = wt.apply(diff).await
        {
            let message = match &err {
                GitError::Command { message, .. } => message.clone(),
                other => other.to_string(),
            };
            tracing::info!(sandbox = sandbox.name(), "patch does not apply; tests not run");
            return Ok(ValidateResponse {
                passed: false,
                patch_applied: false,
                exit_code: -1,
                log_tail: detect::utf8_tail(message.as_bytes(), LOG_TAIL_BYTES),
                sandbox: sandbox.name().to_owned(),
                ..Default::default()
            });
        }
        let dir = wt.path().to_owned();
        let facts = tokio::task::spawn_blocking(move || TreeFacts::read(&dir))
            .await
            .map_err(|e| ValidatorError::Worktree(e.to_string()))?;
        let command = detect::test_command(&facts).ok_or_else(|| {
            tracing::warn!("no test command detected");
            ValidatorError::NoTestCommand(LOOKED_FOR)
        })?;

        let _permit = self.permits.acquire().await.map_err(|_| ValidatorError::ShuttingDown)?;
        // Absolute paths for bwrap; the repository is re-exposed read-only because the worktree's `.git`
        // points into it and it may live under the private /tmp.
        let wt_path = std::fs::canonicalize(wt.path()).unwrap_or_else(|_| wt.path().to_owned());
        let repo_path = std::fs::canonicalize(repo.path()).ok();
        let extra_ro: Vec<&Path> = repo_path.as_deref().into_iter().collect();
        let argv = sandbox.argv(&wt_path, command, &extra_ro);
        let env = test_env(&self.config.env, sandbox);
        tracing::info!(command, sandbox = sandbox.name(), timeout_s = timeout.as_secs(), "running tests");
        let run = runner::run(&argv, &wt_path, &env, timeout, LOG_TAIL_BYTES).await.map_err(|source| {
            tracing::error!(error = %source, command, sandbox = sandbox.name(), "test command could not start");
            ValidatorError::Spawn { command: command.to_owned(), sandbox: sandbox.name(), source }
        })?;
        Ok(ValidateResponse {
            passed: run.exit_code == 0 && !run.timed_out,
            patch_applied: true,
            command: command.to_owned(),
            exit_code: run.exit_code,
            timed_out: run.timed_out,
            duration_ms: millis(run.duration),
            log_tail: detect::utf8_tail(&run.output, LOG_TAIL_BYTES),
            sandbox: sandbox.name().to_owned(),
        })
    }
}

#[tonic::async_trait]
impl Validator for ValidatorService {
    async fn validate(&self, request: Request<ValidateRequest>) -> Result<Response<ValidateResponse>, Status> {
        let req = request.into_inner();
        let ctx = require_context(req.context.as_ref()).map_err(ValidatorError::from)?;
        sre_service_kit::check_diff_size(&req.diff).map_err(ValidatorError::from)?;
        let sandbox = self.sandbox.get().map_err(|reason| {
            tracing::warn!(%reason, "validation refused: sandbox not available");
            ValidatorError::SandboxUnavailable(reason)
        })?;
        let timeout = effective_timeout(req.timeout_seconds, self.config.default_timeout);
        let start = Instant::now();
        let repo = Repo::open(&self.repos_dir, &ctx.repo).map_err(ValidatorError::from)?;
        let wt = repo.worktree(&ctx.head_sha).await.map_err(ValidatorError::from)?;
        let result = self.validate_in(&repo, &wt, &req.diff, sandbox, timeout).await;
        wt.remove().await;
        let resp = result?;
        tracing::info!(
            passed = resp.passed,
            patch_applied = resp.patch_applied,
            command = %resp.command,
            exit_code = resp.exit_code,
            timed_out = resp.timed_out,
            sandbox = %resp.sandbox,
            test_ms = resp.duration_ms,
            total_ms = millis(start.elapsed()),
            "validation finished"
        );
        Ok(Response::new(resp))
    }
}

/// Builds the service from its configuration. Ready once git runs and the sandbox is usable: with
/// `SRE_SANDBOX=bwrap` and no working bwrap the service never reports SERVING.
pub fn build(config: &Config, _registry: &SharedRegistry) -> Result<Built, ValidatorError> {
    let runtime = ValidatorConfig::new(config);
    let (sandbox, sandbox_ready) = SandboxState::start(config.sandbox, runtime.path_env.clone());
    let service = ValidatorService::new(config.data.repos_dir(), runtime, sandbox);
    let ready = async move {
        sandbox_ready.await;
        sre_service_kit::git_ready().await;
    };
    Ok((tonic::service::Routes::new(ValidatorServer::new(service)), Box::pin(ready)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_timeout() {
        let default = Duration::from_secs(300);
        assert_eq!(effective_timeout(0, default), default);
        assert_eq!(effective_timeout(5, default), Duration::from_secs(5));
        assert_eq!(effective_timeout(u32::MAX, default), Duration::from_secs(MAX_TIMEOUT_SECS));
    }

    #[test]
    fn builds_the_test_environment() {
        let base = vec![(OsString::from("PATH"), OsString::from("/bin")), ("CI".into(), "false".into())];
        let env = test_env(&base, &Sandbox::Bwrap("/usr/bin/bwrap".into()));
        let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.to_str().unwrap());
        assert_eq!(get("PATH"), Some("/bin"));
        assert_eq!(get("CI"), Some("true"));
        assert_eq!(get("TMPDIR"), Some("/tmp"));
        assert_eq!(env.iter().filter(|(k, _)| k == "CI").count(), 1);
        let env = test_env(&base, &Sandbox::None);
        assert!(!env.iter().any(|(k, _)| k == "TMPDIR"));
    }
}
