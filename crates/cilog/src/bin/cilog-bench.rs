//! Runs the failure-context extractor over a LogChunks-format folder and writes predictions JSONL.
//!
//!     cilog-bench DIR [OUT.jsonl]
//!     cilog-bench --explain LOG      the steps and error blocks it saw in one log, then its context
//!
//! DIR holds `labels.jsonl` (one `{"log": "logs/...", ...}` per line) and the logs it names. Each output
//! line is `{"log": <the label's log path>, "context": <the context lines joined with \n>}`, the format
//! `score.py` reads (the step, windows and diagnosis ride along for looking at results). Timing goes to stderr.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("cilog-bench: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--explain") {
        // cilog-bench --explain LOG: the steps and error blocks the extractor saw, then the context
        let path = args.nth(1).ok_or("usage: cilog-bench --explain LOG")?;
        let raw = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
        print!("{}", sre_cilog::extract::explain(&raw));
        print!("{}", sre_cilog::FailureContext::from_log(&raw).render());
        return Ok(());
    }
    let dir = PathBuf::from(args.next().ok_or("usage: cilog-bench DIR [OUT.jsonl]")?);
    let out: Box<dyn Write> = match args.next() {
        Some(p) => Box::new(std::fs::File::create(&p).map_err(|e| format!("{p}: {e}"))?),
        None => Box::new(std::io::stdout()),
    };
    let mut out = BufWriter::new(out);
    let labels = dir.join("labels.jsonl");
    let f = std::fs::File::open(&labels).map_err(|e| format!("{}: {e}", labels.display()))?;
    let (mut n, mut bytes, start) = (0usize, 0usize, Instant::now());
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", labels.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let label: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("{}:{}: {e}", labels.display(), i + 1))?;
        let log = label["log"].as_str().ok_or_else(|| format!("{}:{}: no \"log\"", labels.display(), i + 1))?;
        let raw = std::fs::read(dir.join(log)).map_err(|e| format!("{log}: {e}"))?;
        bytes += raw.len();
        let ctx = sre_cilog::FailureContext::from_log(&raw);
        let diagnosis = sre_cilog::classify(&ctx);
        // windows, step and exit code ride along for looking at misses; score.py reads "log" and "context"
        let row = serde_json::json!({
            "log": log,
            "context": ctx.lines.join("\n"),
            "windows": ctx.windows,
            "step": ctx.step_name,
            "step_failed": ctx.step_failed,
            "exit_code": ctx.exit_code,
            "diagnosis": diagnosis,
        });
        writeln!(out, "{row}").map_err(|e| e.to_string())?;
        n += 1;
    }
    out.flush().map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "cilog-bench: {n} logs, {:.1} MB in {secs:.2} s ({:.1} MB/s)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
