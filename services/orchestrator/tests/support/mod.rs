//! Shared by the orchestrator's integration tests: runs stored as the gateway stores them, and the
//! orchestrator's configuration pointed at a test's store, Redis stream and services.

#![allow(dead_code)] // each test binary uses its own part

use clap::Parser;
use sre_domain::{Conclusion, EventKind, Failure, Run};
use sre_store::{Ingested, NewEvent, Store};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh stream per test, so tests sharing one Redis never see each other's jobs.
pub fn fresh_stream(test: &str) -> String {
    format!("sre:test:{test}:{}", uuid::Uuid::new_v4().simple())
}

/// A failure of acme/app's workflow `lint-<n>` stored with its queued run, as the gateway stores a delivery;
/// returns the run.
pub async fn stored_run(store: &Store, n: u32) -> Run {
    let failure = Failure {
        repo: "acme/app".into(),
        head_sha: "0123456789abcdef0123456789abcdef01234567".into(),
        head_branch: "main".into(),
        event: Some(EventKind::WorkflowRun),
        conclusion: Some(Conclusion::Failure),
        run_attempt: 1,
        workflow_name: format!("lint-{n}"),
        workflow_run_id: Some(u64::from(n)),
        ..Failure::default()
    };
    let run_id = format!("test-run-{n}-{}", uuid::Uuid::new_v4().simple());
    let delivery = format!("test-delivery-{run_id}");
    let run = Run::new(run_id, delivery.clone(), failure, sre_store::now_ms());
    let event = NewEvent {
        delivery_id: &delivery,
        event: EventKind::WorkflowRun,
        action: "completed",
        repo: "acme/app",
        payload: b"{}",
    };
    let Ingested::New(stored) = store.ingest(&event, &run).await.unwrap() else { panic!("new run expected") };
    stored
}

/// The arguments of an orchestrator on `database_url` and `stream` as consumer `consumer`, every service at
/// `services` (one worker, metrics on an ephemeral port), followed by `extra`.
pub fn args(database_url: &str, stream: &str, consumer: &str, services: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--http-addr",
        "127.0.0.1:0",
        "--redis-url",
        &redis_url(),
        "--database-url",
        database_url,
        "--stream",
        stream,
        "--consumer",
        consumer,
        "--workers",
        "1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for flag in ["--planner-url", "--policy-url", "--scanner-url", "--validator-url", "--pr-url"] {
        args.push(flag.to_owned());
        args.push(services.to_owned());
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

pub fn config(args: &[String]) -> sre_orchestrator::Config {
    sre_orchestrator::Config::try_parse_from(std::iter::once("sre-orchestrator".to_owned()).chain(args.iter().cloned()))
        .unwrap()
}
