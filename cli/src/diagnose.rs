//! `sre-agent diagnose LOG_FILE [--json]`: what sre-cilog makes of a job log, offline.

use std::fmt::Write as _;
use std::process::ExitCode;

use sre_cilog::{Diagnosis, FailureContext, LogFormat, Options};

use crate::config::DiagnoseArgs;
use crate::error::{CliError, CliResult};
use crate::logfile;
use crate::out::{out, outln};

/// File references printed in the readable report (the JSON has all of them).
const MAX_REFS_SHOWN: usize = 8;

pub fn run(args: &DiagnoseArgs) -> CliResult<ExitCode> {
    let log = logfile::read(&args.log)?;
    let opts = Options { workspace_roots: args.workspace_root.clone(), ..Options::default() };
    let ctx = FailureContext::from_log_with(&log, &opts);
    let diagnosis = sre_cilog::classify(&ctx);
    if args.json {
        let json = serde_json::to_string_pretty(&to_json(&ctx, &diagnosis))
            .map_err(|e| CliError::new(format!("cannot encode the diagnosis: {e}")))?;
        outln!("{json}");
    } else {
        out!("{}", report(&ctx, &diagnosis));
    }
    Ok(ExitCode::SUCCESS)
}

/// One object: the failure context's fields with the diagnosis's beside them (the keys of the `context`
/// artifact a run stores, plus `format`, `step_failed` and `windows`).
pub fn to_json(ctx: &FailureContext, d: &Diagnosis) -> serde_json::Value {
    serde_json::json!({
        "format": ctx.format,
        "step_name": ctx.step_name,
        "command": ctx.command,
        "exit_code": ctx.exit_code,
        "step_failed": ctx.step_failed,
        "category": d.category,
        "language": d.language,
        "tool": d.tool,
        "summary": d.summary,
        "autofixable": d.autofixable,
        "file_refs": ctx.file_refs,
        "lines": ctx.lines,
        "windows": ctx.windows,
        "log_lines": ctx.log_lines,
        "truncated": ctx.truncated,
    })
}

fn format_name(format: LogFormat) -> &'static str {
    match format {
        LogFormat::GithubActions => "GitHub Actions",
        LogFormat::Travis => "Travis CI",
        LogFormat::Plain => "plain",
    }
}

/// The readable report: a few labelled lines, then the context with its log line numbers.
pub fn report(ctx: &FailureContext, d: &Diagnosis) -> String {
    let mut out = String::new();
    let verdict = match (ctx.step_failed, ctx.exit_code) {
        (true, Some(code)) => format!("failed, exit code {code}"),
        (true, None) => "failed".to_owned(),
        (false, _) => "the log's last step: no failure verdict in the log".to_owned(),
    };
    match &ctx.step_name {
        Some(step) => {
            let _ = writeln!(out, "step       {step}  ({verdict})");
        }
        None => {
            let _ = writeln!(out, "step       none found ({} log)", format_name(ctx.format));
        }
    }
    if let Some(command) = ctx.command.as_deref().filter(|c| !c.trim().is_empty()) {
        for (i, line) in command.lines().enumerate() {
            let _ = writeln!(out, "{}{line}", if i == 0 { "command    " } else { "           " });
        }
    }
    let fixable = if d.autofixable { "autofixable" } else { "not autofixable" };
    let _ = writeln!(
        out,
        "diagnosis  {}  (language {}, tool {}, {fixable})",
        d.category.as_str(),
        d.language.as_str(),
        d.tool.as_str()
    );
    let summary = if d.summary.is_empty() { "-" } else { d.summary.as_str() };
    let _ = writeln!(out, "summary    {summary}");
    let refs: Vec<String> = ctx
        .file_refs
        .iter()
        .take(MAX_REFS_SHOWN)
        .map(|r| match (r.line, r.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", r.path),
            (Some(l), None) => format!("{}:{l}", r.path),
            _ => r.path.clone(),
        })
        .collect();
    let more = ctx.file_refs.len().saturating_sub(MAX_REFS_SHOWN);
    let files = match (refs.is_empty(), more) {
        (true, _) => "-".to_owned(),
        (false, 0) => refs.join(", "),
        (false, n) => format!("{} (+{n} more)", refs.join(", ")),
    };
    let _ = writeln!(out, "files      {files}");
    let cut = if ctx.truncated { ", cut to the caps" } else { "" };
    let _ = writeln!(out, "context    {} of {} log lines{cut}", ctx.lines.len(), ctx.log_lines);
    out.push_str(&numbered_context(ctx));
    out
}

/// The context lines, each with its line number in the (normalised) log, and the gaps between windows.
fn numbered_context(ctx: &FailureContext) -> String {
    let width = ctx.windows.last().map_or(1, |w| (w.first_line + w.len).to_string().len());
    let mut out = String::new();
    let mut at = 0;
    let mut prev_end: Option<usize> = None;
    for w in &ctx.windows {
        if let Some(end) = prev_end
            && w.first_line > end + 1
        {
            let _ = writeln!(out, "  {:>width$} | [... {} lines omitted ...]", "", w.first_line - end - 1);
        }
        let lines = ctx.lines.get(at..(at + w.len).min(ctx.lines.len())).unwrap_or_default();
        for (k, line) in lines.iter().enumerate() {
            let _ = writeln!(out, "  {:>width$} | {line}", w.first_line + k);
        }
        at += w.len;
        prev_end = Some(w.first_line + w.len - 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_numbers_context_lines_and_marks_gaps() {
        let log = "building\n".repeat(30)
            + "error[E0425]: cannot find value `x` in this scope\n --> src/lib.rs:3:5\n\n"
            + &"more\n".repeat(30)
            + "error: could not compile `demo` (lib) due to 1 previous error\n";
        let ctx = FailureContext::from_log(log.as_bytes());
        let d = sre_cilog::classify(&ctx);
        let text = report(&ctx, &d);
        assert!(text.contains("step       none found (plain log)"), "{text}");
        assert!(text.contains("diagnosis  compile  (language rust, tool rustc, not autofixable)"), "{text}");
        assert!(text.contains("files      src/lib.rs:3:5"), "{text}");
        assert!(text.contains("31 | error[E0425]: cannot find value `x` in this scope"), "{text}");
        assert!(text.contains("lines omitted ...]"), "{text}");
        let json = to_json(&ctx, &d);
        assert_eq!(json["category"], "compile");
        assert_eq!(json["file_refs"][0]["path"], "src/lib.rs");
        assert_eq!(json["format"], "plain");
    }
}
