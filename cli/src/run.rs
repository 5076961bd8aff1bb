//! `sre-agent run`: submit a local CI failure to the gateway (`POST /api/v1/runs`) and follow its run.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sre_cilog::FailureContext;
use sre_domain::RunStatus;

use crate::config::RunArgs;
use crate::error::{CliError, CliResult};
use crate::gateway::Gateway;
use crate::out::{errln, out, outln};
use crate::{local, logfile, render};

/// The log the gateway stores whole; a longer one is cut here as the gateway would cut it (head, error
/// lines, tail), so the submission stays within its request limit.
const MAX_SUBMITTED_LOG_BYTES: usize = sre_cilog::MAX_STORED_LOG_BYTES;
/// The gateway's request body limit (`MAX_BODY_BYTES`), less room for the other fields.
const MAX_BODY_BYTES: usize = 5 * 1024 * 1024 - 16 * 1024;
/// How long `--command` may run without `--command-timeout`.
const DEFAULT_COMMAND_TIMEOUT_SECS: u64 = 600;
/// Between two looks at the run.
const POLL: Duration = Duration::from_millis(500);
/// Failed looks in a row before following gives up (the gateway restarting, a moment of overload).
const MAX_POLL_FAILURES: u32 = 5;

pub async fn run(args: &RunArgs) -> CliResult<ExitCode> {
    if args.command_timeout.is_some() && args.command.is_none() {
        return Err(CliError::new("--command-timeout applies to --command only"));
    }
    let gateway = Gateway::new(&args.gateway)?;
    let repos_dir = args.repos.repos_dir();
    let repo = local::resolve_repo(&args.repo, &repos_dir)?;
    let commit = local::resolve_commit(&repo, &args.sha).await?;
    // Reachable, and the token accepted, before a command runs for minutes.
    gateway.list_raw(1).await?;

    let mut log = match (&args.log, &args.command) {
        (Some(path), _) => {
            let bytes = logfile::read(path)?;
            let log = sre_cilog::bound_log(&bytes, MAX_SUBMITTED_LOG_BYTES);
            if log.len() < bytes.len() {
                outln!(
                    "log        {} bytes, cut to {} (its head, error lines and tail, as the gateway keeps it)",
                    bytes.len(),
                    log.len()
                );
            }
            log
        }
        (None, Some(command)) => {
            let timeout = Duration::from_secs(args.command_timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT_SECS));
            let ran = local::step_log(&repo, &commit.sha, command, timeout, MAX_SUBMITTED_LOG_BYTES).await?;
            outln!(
                "ran        `{command}` at {} in a throwaway worktree: exit code {} after {}, {} lines of output",
                sre_domain::short_sha(&commit.sha),
                ran.exit_code,
                render::duration(ran.elapsed.as_millis() as u64),
                ran.output_lines
            );
            ran.log
        }
        (None, None) => return Err(CliError::new("give the failed job's log with --log FILE, or --command CMD")),
    };
    let ctx = FailureContext::from_log(log.as_bytes());
    let diagnosis = sre_cilog::classify(&ctx);
    outln!(
        "diagnosis  {}: {}",
        diagnosis.category,
        if diagnosis.summary.is_empty() { "-" } else { &diagnosis.summary }
    );

    let branch = args.branch.clone().or(commit.branch).unwrap_or_default();
    let body = loop {
        let mut body =
            serde_json::json!({"repo": repo.full_name, "head_sha": commit.sha, "head_branch": branch, "log": log});
        if let Some(job) = &args.job {
            body["job"] = job.as_str().into();
        }
        if let Some(workflow) = &args.workflow {
            body["workflow"] = workflow.as_str().into();
        }
        // JSON escapes (ANSI colours are six bytes each) can take a bounded log past the request limit.
        if body.to_string().len() <= MAX_BODY_BYTES || log.len() < 64 * 1024 {
            break body;
        }
        let shorter = sre_cilog::bound_log(log.as_bytes(), log.len() / 2);
        if shorter.len() >= log.len() {
            break body; // nothing left to cut: the gateway says what it makes of it
        }
        log = shorter;
    };
    let submitted = gateway.submit(&body).await?;
    outln!("submitted  run {} ({}, attempt {})", submitted.run_id, submitted.run_key, submitted.attempt);
    if args.no_follow {
        outln!("follow it  sre-agent runs {}", render::id_prefix(&submitted.run_id));
        return Ok(ExitCode::SUCCESS);
    }
    follow(&gateway, &submitted.run_id, Duration::from_secs(args.timeout)).await
}

/// Prints each stage as the run records it and the outcome at the end; 0 for success, 1 otherwise.
async fn follow(gateway: &Gateway, run_id: &str, timeout: Duration) -> CliResult<ExitCode> {
    let started = Instant::now();
    let deadline = started + timeout;
    let (mut shown, mut failures) = (0usize, 0u32);
    let mut last: Option<(RunStatus, String)> = None;
    loop {
        match gateway.run(run_id).await {
            Ok((_, view)) => {
                failures = 0;
                let run = &view.run;
                let at = || format!("{:>6.1}s", started.elapsed().as_secs_f64());
                let state = (run.status, run.reason.clone());
                if !run.is_terminal() && last.as_ref() != Some(&state) {
                    let reason = if run.reason.is_empty() { String::new() } else { format!(": {}", run.reason) };
                    outln!("  {}  {}{reason}", at(), run.status);
                    last = Some(state);
                }
                for s in run.stages.iter().skip(shown) {
                    outln!("  {}  {}", at(), render::stage_line(s));
                }
                shown = shown.max(run.stages.len());
                if run.is_terminal() {
                    out!("{}", render::outcome(&view, gateway));
                    let code = if run.status == RunStatus::Success { ExitCode::SUCCESS } else { ExitCode::from(1) };
                    return Ok(code);
                }
                if Instant::now() >= deadline {
                    return Err(CliError::new(format!(
                        "run {run_id} is still {} after {} s; it goes on: look again with `sre-agent runs {run_id}`",
                        run.status,
                        timeout.as_secs()
                    )));
                }
            }
            Err(err) if failures < MAX_POLL_FAILURES && Instant::now() < deadline => {
                failures += 1;
                errln!("sre-agent: {err} (retrying)");
            }
            Err(err) => return Err(err),
        }
        tokio::time::sleep(POLL).await;
    }
}
