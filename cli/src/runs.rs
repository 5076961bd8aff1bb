//! `sre-agent runs [RUN_ID] [--json] [--limit N] [--artifact KIND]`.

use std::io::Write as _;
use std::process::ExitCode;

use sre_domain::{ArtifactKind, Label};

use crate::config::RunsArgs;
use crate::error::{CliError, CliResult};
use crate::gateway::Gateway;
use crate::out::{out, outln};
use crate::render;

/// Runs searched for a run ID prefix (the API's largest page).
const PREFIX_SEARCH: u16 = 500;
/// A run ID in full (a UUID).
const FULL_ID_LEN: usize = 36;

pub async fn run(args: &RunsArgs) -> CliResult<ExitCode> {
    let gateway = Gateway::new(&args.gateway)?;
    let Some(given) = &args.run_id else {
        if args.json {
            print_json(&gateway.list_raw(args.limit).await?)?;
        } else {
            let runs = gateway.list(args.limit).await?;
            if runs.is_empty() {
                outln!("no runs yet (submit one: sre-agent run --repo OWNER/NAME --sha SHA --command CMD)");
            } else {
                out!("{}", render::table(&runs));
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    let run_id = resolve_id(&gateway, given).await?;
    if let Some(kind) = &args.artifact {
        let kind = ArtifactKind::parse(kind).ok_or_else(|| CliError::new(format!("no artifact kind {kind:?}")))?;
        let body = gateway.artifact(&run_id, kind).await?;
        let mut stdout = std::io::stdout().lock();
        let written = stdout
            .write_all(body.as_bytes())
            .and_then(|()| if body.ends_with('\n') || body.is_empty() { Ok(()) } else { stdout.write_all(b"\n") });
        // A closed pipe (`| head`) is the reader's choice, not an error.
        if let Err(e) = written.and_then(|()| stdout.flush())
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(CliError::new(format!("stdout: {e}")));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (raw, view) = gateway.run(&run_id).await?;
    if args.json {
        print_json(&raw)?;
    } else {
        out!("{}", render::run_report(&view, &gateway));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json(value: &serde_json::Value) -> CliResult<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::new(format!("cannot encode JSON: {e}")))?;
    outln!("{text}");
    Ok(())
}

/// A full run ID as given, or the one run whose ID starts with the given prefix.
async fn resolve_id(gateway: &Gateway, given: &str) -> CliResult<String> {
    let given = given.trim();
    if given.len() >= FULL_ID_LEN {
        return Ok(given.to_owned());
    }
    if given.len() < 4 || !given.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(CliError::new(format!(
            "{given:?} is not a run ID or a prefix of one (at least 4 of its characters, as `sre-agent runs` lists them)"
        )));
    }
    let runs = gateway.list(PREFIX_SEARCH).await?;
    let matching: Vec<&str> =
        runs.iter().map(|r| r.run_id.as_str()).filter(|id| id.starts_with(&given.to_ascii_lowercase())).collect();
    match matching[..] {
        [one] => Ok(one.to_owned()),
        [] => Err(CliError::new(format!("no run ID starts with {given} among the last {PREFIX_SEARCH} runs"))),
        _ => Err(CliError::new(format!(
            "{} runs start with {given}: give more of the ID ({})",
            matching.len(),
            matching.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        ))),
    }
}
