//! The observability contract is a test: docs/observability.md's metrics and spans tables against what the
//! running code really exposes (every process's registry, scraped before and after traffic) and exports
//! (every span, read back from an in-test OTLP receiver).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sre_domain::RunStatus;
use sre_e2e::contract::{Contract, FirstScrape};
use sre_e2e::{Mesh, MeshOptions, lint_failure_repo, telemetry, workflow_job_failure};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_exposes_and_exports_exactly_the_documented_contract() {
    let contract = Contract::load();
    assert!(contract.metrics.len() >= 20 && contract.spans.len() >= 14, "the tables did not parse: {contract:?}");
    let mesh = Mesh::start(MeshOptions::default()).await;
    let scrape = |mesh: &Mesh| -> BTreeMap<&'static str, String> {
        mesh.registries.iter().map(|(p, r)| (*p, r.encode(false))).collect()
    };
    // The first scrape of every process, before any traffic: every family, and every seed series at 0.
    let mut problems = contract.check_mesh(&scrape(&mesh), true);

    // Traffic: a run that ends in a PR, plus deliveries that are ignored, refused and malformed.
    let sha = lint_failure_repo(mesh.repos_dir());
    let (status, accepted) = mesh
        .webhook(
            "workflow_job",
            "c0ffee00-0000-4000-8000-000000000001",
            &workflow_job_failure("acme/app", &sha, "lint", 1, 2),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();
    assert_eq!(mesh.webhook("ping", "c0ffee00-0000-4000-8000-000000000002", "{}").await.0, 200);
    // A failed workflow run, resolved into a run of its own (process_pipeline_event), on another job name.
    let wf = format!(
        r#"{{"action":"completed","workflow_run":{{"id":9,"name":"style","head_sha":"{sha}","conclusion":"failure"}},"repository":{{"full_name":"acme/app"}}}}"#
    );
    assert_eq!(mesh.webhook("workflow_run", "c0ffee00-0000-4000-8000-000000000004", &wf).await.0, 202);
    assert_eq!(mesh.webhook("workflow_run", "c0ffee00-0000-4000-8000-000000000003", "{nope").await.0, 400);
    assert_eq!(mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/plan")).await.0, 404);
    // A local run with its log (build_failure_context reads it).
    let log = "2026-12-01T10:00:00.0000000Z ##[group]Run make test\n2026-12-01T10:00:00.0000000Z make: *** [Makefile:2: test] Error 1\n";
    let local = serde_json::json!({"repo": "acme/app", "head_sha": sha, "job": "lint", "log": log}).to_string();
    let req = axum::http::Request::post("/api/v1/runs").body(axum::body::Body::from(local)).unwrap();
    let (status, answer) = mesh.send(req).await;
    assert_eq!(status, 202, "{answer}");
    let local_id = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["run_id"].as_str().unwrap().to_owned();
    assert_eq!(mesh.get("/no/such/path").await.0, 404);
    let run = mesh.wait_terminal(&run_id, Duration::from_secs(90)).await;
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");
    mesh.wait_terminal(&local_id, Duration::from_secs(90)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while mesh.store.run_by_delivery("c0ffee00-0000-4000-8000-000000000004").await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the workflow_run was never resolved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in ["/api/v1/runs", &format!("/api/v1/runs/{run_id}"), &format!("/api/v1/runs/{run_id}/diff"), "/health"] {
        assert_eq!(mesh.get(path).await.0, 200, "{path}");
    }

    // Every process after traffic: every family there, still inside the contract.
    problems.extend(contract.check_mesh(&scrape(&mesh), false));
    mesh.stop().await;

    // Every span the run made is in the spans table with its attributes, and every row was seen.
    telemetry().flush().await;
    let spans = telemetry().spans();
    let root =
        spans.iter().find(|s| s.name == "ingest_webhook" && s.attributes.get("run_id") == Some(&run_id)).unwrap();
    let trace: Vec<_> = spans.iter().filter(|s| s.trace_id == root.trace_id).collect();
    problems.extend(contract.check_spans(&trace));
    let all: Vec<_> = spans.iter().collect();
    problems.extend(contract.check_spans(&all));
    let seen: BTreeSet<(String, String)> = all
        .iter()
        .filter_map(|s| {
            contract
                .spans
                .iter()
                .find(|r| r.matches(&s.name) && r.kind == s.kind)
                .map(|r| (r.name.clone(), r.kind.clone()))
        })
        .collect();
    // Rows of the GitHub backend are seen by tests/github.rs.
    for row in contract.spans.iter().filter(|r| !r.github) {
        if !seen.contains(&(row.name.clone(), row.kind.clone())) {
            problems.push(format!("the contract lists span {} ({}) but the run made none", row.name, row.kind));
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "the code and docs/observability.md disagree:\n  {}", problems.join("\n  "));
}

#[test]
fn the_parser_reads_label_sets_and_owners() {
    let contract = Contract::load();
    let runs = contract.metric("sre_agent_pipeline_runs_total").unwrap();
    assert_eq!(runs.kind, "counter");
    assert!(runs.first_scrape == FirstScrape::AllSeries && runs.processes.contains("orchestrator"));
    assert_eq!(runs.budget(), 4);
    let http = contract.metric("sre_agent_http_requests_total").unwrap();
    assert_eq!(http.processes.len(), 7);
    assert!(contract.family_of("sre_agent_danger_score_bucket").is_some());
    assert!(contract.family_of("sre_agent_pipeline_runs_bucket").is_none());
}
