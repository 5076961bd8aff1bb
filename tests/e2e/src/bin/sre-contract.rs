//! `sre-contract`: checks a real mesh against the observability contract of docs/observability.md (the same
//! parser and checks as the in-process contract test), for scripts/smoke.sh.
//!
//!   sre-contract metrics [--first-scrape] PROCESS=FILE...   Prometheus text expositions of the processes
//!   sre-contract trace TRACES_JSONL RUN_ID                   the run's trace: every process, every span owner
//!
//! Prints what disagrees and exits 1, or prints a one-line summary and exits 0.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use sre_e2e::contract::{Contract, PROCESSES};
use sre_otlp_sink::SpanRecord;

fn usage() -> ExitCode {
    eprintln!("usage: sre-contract metrics [--first-scrape] PROCESS=FILE... | sre-contract trace TRACES_JSONL RUN_ID");
    ExitCode::from(2)
}

fn report(what: &str, problems: Vec<String>, summary: String) -> ExitCode {
    if problems.is_empty() {
        println!("{summary}");
        ExitCode::SUCCESS
    } else {
        eprintln!("{what} disagree with docs/observability.md:\n  {}", problems.join("\n  "));
        ExitCode::FAILURE
    }
}

fn metrics(contract: &Contract, args: &[String]) -> ExitCode {
    let first = args.iter().any(|a| a == "--first-scrape");
    let mut scrapes = BTreeMap::new();
    for arg in args.iter().filter(|a| *a != "--first-scrape") {
        let Some((process, file)) = arg.split_once('=') else { return usage() };
        let Some(process) = PROCESSES.iter().find(|p| **p == process) else {
            eprintln!("unknown process {process:?}; processes: {PROCESSES:?}");
            return ExitCode::from(2);
        };
        match std::fs::read_to_string(file) {
            Ok(text) => scrapes.insert(*process, text),
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::from(2);
            }
        };
    }
    let families: usize = scrapes.values().map(|t| t.lines().filter(|l| l.starts_with("# TYPE ")).count()).sum();
    let when = if first { "first scrape" } else { "scrape" };
    let summary = format!("{} processes, {families} families: every {when} matches the contract", scrapes.len());
    report("the metrics", contract.check_mesh(&scrapes, first), summary)
}

fn trace(contract: &Contract, file: &str, run_id: &str) -> ExitCode {
    let Ok(text) = std::fs::read_to_string(file) else {
        eprintln!("{file}: unreadable");
        return ExitCode::from(2);
    };
    let spans: Vec<SpanRecord> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let Some(root) = spans
        .iter()
        .find(|s| s.name == "ingest_webhook" && s.attributes.get("run_id").map(String::as_str) == Some(run_id))
    else {
        eprintln!("no ingest_webhook span with run_id {run_id} in {file}");
        return ExitCode::FAILURE;
    };
    let trace: Vec<&SpanRecord> = spans.iter().filter(|s| s.trace_id == root.trace_id).collect();
    let mut problems = contract.check_spans(&trace);
    let mut by_process: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in &trace {
        by_process.entry(s.service.as_str()).or_default().insert(s.name.as_str());
        if let Some(row) = contract.spans.iter().find(|r| r.matches(&s.name) && r.kind == s.kind)
            && !row.processes.contains(&s.service)
        {
            problems.push(format!(
                "span {} ({}) came from {}, the contract gives it to {:?}",
                s.name, s.kind, s.service, row.processes
            ));
        }
    }
    for p in PROCESSES {
        if !by_process.contains_key(p) {
            problems.push(format!("the trace has no span of {p}"));
        }
    }
    let mut summary = format!("trace {}: {} spans across {} processes", root.trace_id, trace.len(), by_process.len());
    for (p, names) in &by_process {
        summary.push_str(&format!("\n  {p:<12} {}", names.iter().copied().collect::<Vec<_>>().join(", ")));
    }
    report("the trace's spans", problems, summary)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let contract = Contract::load();
    match args.split_first() {
        Some((cmd, rest)) if cmd == "metrics" && !rest.is_empty() => metrics(&contract, rest),
        Some((cmd, rest)) if cmd == "trace" && rest.len() == 2 => trace(&contract, &rest[0], &rest[1]),
        _ => usage(),
    }
}
