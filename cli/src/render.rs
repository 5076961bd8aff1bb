//! How runs print: stage lines, the outcome block, the run list's table, ages.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use sre_domain::{Run, StageRecord, short_sha};

use crate::gateway::{Gateway, RunView};

/// Characters of a run ID the list shows (and `sre-agent runs PREFIX` accepts).
pub const ID_PREFIX: usize = 8;

/// The first characters of a run ID, as the list shows them.
pub fn id_prefix(run_id: &str) -> String {
    run_id.chars().take(ID_PREFIX).collect()
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `41 ms`, `2.3 s`, `4m05s`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
    }
}

/// How long ago: `12s`, `5m`, `3h`, `2d`.
pub fn age(now_ms: i64, then_ms: i64) -> String {
    let s = (now_ms - then_ms).max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// One stage: `plan           ok        41 ms  detail`.
pub fn stage_line(s: &StageRecord) -> String {
    let stage = if s.attempt > 1 { format!("{} (attempt {})", s.stage, s.attempt) } else { s.stage.to_string() };
    let mut line = format!("{stage:<14} {:<7} {:>8}", s.status.as_str(), duration(s.duration_ms));
    if !s.detail.is_empty() {
        line.push_str("  ");
        line.push_str(&s.detail);
    }
    line
}

fn or_dash(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".to_owned())
}

/// What a run came to: outcome, reason, diagnosis, label and danger score, PR, and where the diff is.
pub fn outcome(view: &RunView, gateway: &Gateway) -> String {
    let run = &view.run;
    let mut out = String::new();
    // A live run has a status, not yet an outcome.
    let _ = writeln!(out, "{}    {}", if run.is_terminal() { "outcome" } else { "status " }, run.status);
    let _ = writeln!(out, "reason     {}", or_dash(Some(run.reason.clone())));
    if let Some(category) = run.category {
        let language = run.language.map_or("-", |l| l.as_str());
        let tool = run.tool.map_or("-", |t| t.as_str());
        let _ = writeln!(out, "diagnosis  {category}  (language {language}, tool {tool})");
    }
    let danger = run.danger_score.map_or("-".to_owned(), |d| format!("{d:.2}"));
    let _ = writeln!(out, "label      {}  (danger score {danger})", or_dash(run.label.map(|l| l.to_string())));
    match &run.pr {
        Some(pr) => {
            let url = if pr.url.is_empty() { String::new() } else { format!("  {}", pr.url) };
            let _ = writeln!(out, "PR         #{}  branch {}{url}", pr.number, pr.branch);
        }
        None => {
            let _ = writeln!(out, "PR         -");
        }
    }
    let diff = view.artifacts.iter().find(|a| a.kind == "diff" && a.bytes > 0);
    match diff {
        Some(d) => {
            let id = id_prefix(&run.run_id);
            let _ = writeln!(out, "diff       sre-agent runs {id} --artifact diff  ({} bytes)", d.bytes);
            let _ = writeln!(out, "           {}", gateway.endpoint(&format!("api/v1/runs/{}/diff", run.run_id)));
        }
        None => {
            let _ = writeln!(out, "diff       - (the run made no patch)");
        }
    }
    out
}

/// The whole record of one run: identity, outcome, stages, artifacts.
pub fn run_report(view: &RunView, gateway: &Gateway) -> String {
    let run = &view.run;
    let now = now_ms();
    let mut out = String::new();
    let _ = writeln!(out, "run        {}", run.run_id);
    let _ = writeln!(out, "key        {}  (attempt {})", run.run_key, run.failure.run_attempt);
    let event = run.failure.event.map_or("-", |e| e.as_str());
    let branch = if run.failure.head_branch.is_empty() { "-" } else { run.failure.head_branch.as_str() };
    let _ = writeln!(out, "source     {event} event, branch {branch}");
    let _ =
        writeln!(out, "created    {} ago, updated {} ago", age(now, run.created_at_ms), age(now, run.updated_at_ms));
    out.push_str(&outcome(view, gateway));
    if run.stages.is_empty() {
        let _ = writeln!(out, "stages     none yet");
    } else {
        let _ = writeln!(out, "stages");
        for s in &run.stages {
            let _ = writeln!(out, "  {}", stage_line(s));
        }
    }
    if view.artifacts.is_empty() {
        let _ = writeln!(out, "artifacts  none");
    } else {
        let _ = writeln!(out, "artifacts");
        for a in &view.artifacts {
            let _ = writeln!(out, "  {:<14} {:>9} bytes  {}", a.kind, a.bytes, a.content_type);
        }
        let id = id_prefix(&run.run_id);
        let _ = writeln!(out, "  (print one: sre-agent runs {id} --artifact KIND)");
    }
    out
}

/// The run list: one row per run, columns sized to fit.
pub fn table(runs: &[Run]) -> String {
    let now = now_ms();
    let header = ["ID", "STATUS", "REPO", "KEY", "CATEGORY", "LABEL", "PR", "AGE"].map(str::to_owned);
    let rows: Vec<[String; 8]> = runs
        .iter()
        .map(|r| {
            [
                id_prefix(&r.run_id),
                r.status.to_string(),
                r.failure.repo.clone(),
                // The key without its repo (the column before): the commit and the job.
                format!("{}/{}", short_sha(&r.failure.head_sha).get(..7).unwrap_or_default(), r.failure.display_name()),
                or_dash(r.category.map(|c| c.to_string())),
                or_dash(r.label.map(|l| l.to_string())),
                r.pr.as_ref().map_or("-".to_owned(), |p| format!("#{}", p.number)),
                age(now, r.created_at_ms),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ages_read_at_a_glance() {
        assert_eq!(duration(41), "41 ms");
        assert_eq!(duration(2_340), "2.3 s");
        assert_eq!(duration(245_000), "4m05s");
        assert_eq!(age(100_000, 88_000), "12s");
        assert_eq!(age(10_000_000, 0), "2h");
        assert_eq!(age(0, 5_000), "0s", "a clock skew is not a negative age");
        assert_eq!(age(3 * 86_400_000, 0), "3d");
    }
}
