//! `sre-agent`: the agent from the command line, without GitHub.
//!
//! - `sre-agent diagnose LOG_FILE [--json]`: what a failed job's log says, offline (sre-cilog): the failing
//!   step and its command, category, language, tool, a one-line summary, file references and the lines that
//!   explain the failure. `-` reads stdin.
//! - `sre-agent run --repo OWNER/NAME|PATH --sha REV (--log FILE | --command CMD)`: submits a local run to the
//!   gateway (`POST /api/v1/runs`, the embedded default) and follows it to its outcome, printing each stage as
//!   it completes, then the outcome, reason, label, danger score, PR and where the diff is. `--command` runs
//!   the failing command in a throwaway worktree and submits its output as a GitHub Actions job log.
//! - `sre-agent runs [RUN_ID] [--json] [--limit N] [--artifact KIND]`: the run list, one run, or one
//!   artifact's body.
//!
//! Exit codes: 0 success (for `run`: the run ended `success`), 1 the run ended `fail`, `blocked` or
//! `skipped`, 2 usage, input and connection errors (and a run not finished within `--timeout`).
//!
//! Layout: `config.rs` (the command line), `diagnose.rs`, `run.rs`, `runs.rs` (the verbs), `local.rs`
//! (repository, commit and the log of a local command), `gateway.rs` (the runs API client), `render.rs`
//! (how runs print), `logfile.rs` (reading logs, bounded), `out.rs` (stdout without panics), `error.rs`.

mod config;
mod diagnose;
mod error;
mod gateway;
mod local;
mod logfile;
mod out;
mod render;
mod run;
mod runs;

use std::process::ExitCode;

use clap::Parser;

use crate::config::{Cli, Verb};
use crate::out::errln;

fn main() -> ExitCode {
    // Usage errors exit 2 with clap's message; --help and --version exit 0.
    let cli = Cli::try_parse().unwrap_or_else(|err| err.exit());
    let result = match &cli.verb {
        Verb::Diagnose(args) => diagnose::run(args),
        Verb::Run(args) => block_on(run::run(args)),
        Verb::Runs(args) => block_on(runs::run(args)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            errln!("sre-agent: {err}");
            ExitCode::from(2)
        }
    }
}

/// The verbs that talk to the gateway run on a single-threaded runtime.
fn block_on<F: std::future::Future<Output = error::CliResult<ExitCode>>>(future: F) -> error::CliResult<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| error::CliError::new(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(future)
}
