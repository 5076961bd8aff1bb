//! One signed webhook, end to end in one process: the gateway router, real Redis, a SQLite store, the
//! orchestrator and the five services served over gRPC on 127.0.0.1, a real git repository with a lint
//! failure. The run must reach create_pr with every artifact stored, a second event about the same failure
//! must change nothing, and the spans (read back from an OTLP receiver) must form ONE trace: gateway spans →
//! queue → run_fix_pipeline → every stage (with the seed's attributes) → client span → the server span.

use std::collections::BTreeSet;
use std::time::Duration;

use sre_domain::{Category, Language, PrLabel, RunStatus, Stage, StageStatus};
use sre_e2e::{Mesh, MeshOptions, lint_failure_repo, show, telemetry, workflow_job_failure};
use sre_otlp_sink::SpanRecord;

fn span<'a>(spans: &'a [&SpanRecord], name: &str) -> &'a SpanRecord {
    spans.iter().copied().find(|s| s.name == name).unwrap_or_else(|| {
        panic!("no span {name:?} in the trace; have {:?}", spans.iter().map(|s| &s.name).collect::<BTreeSet<_>>())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_webhook_is_one_run_one_pr_and_one_trace() {
    let mesh = Mesh::start(MeshOptions::default()).await;
    let head_sha = lint_failure_repo(mesh.repos_dir());
    let body = workflow_job_failure("acme/app", &head_sha, "lint", 5001, 4242);
    let (status, accepted) = mesh.webhook("workflow_job", "7c0b7f8e-0000-4000-8000-000000000001", &body).await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["run_id"].as_str().unwrap().to_owned();

    let run = mesh.wait_terminal(&run_id, Duration::from_secs(90)).await;
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");
    let stages: Vec<_> = run.stages.iter().map(|s| (s.stage, s.status, s.attempt)).collect();
    let ok = |stage| (stage, StageStatus::Ok, 1);
    assert_eq!(
        stages,
        [
            ok(Stage::Plan),
            ok(Stage::PolicyPlan),
            ok(Stage::Patch),
            ok(Stage::PolicyPatch),
            ok(Stage::Scans),
            ok(Stage::Validate),
            ok(Stage::PrCreate)
        ]
    );
    assert_eq!(
        (run.language, run.category, run.label),
        (Some(Language::Python), Some(Category::Lint), Some(PrLabel::Safe))
    );
    // Every fact of the webhook was kept.
    assert_eq!(
        (run.failure.job_id, run.failure.workflow_run_id, run.failure.installation_id),
        (Some(5001), Some(4242), Some(7))
    );
    let pr = run.pr.clone().expect("a PR");
    assert_eq!(pr.number, 1);
    // One branch per failure: sre-agent/<category>/<first 10 hex digits of sha256(run_key)>.
    assert_eq!(pr.branch, sre_pr::store::branch_name("lint", &run.run_key));
    assert!(pr.branch.starts_with("sre-agent/lint/") && pr.branch.len() == "sre-agent/lint/".len() + 10);
    let repo = mesh.repos_dir().join("acme/app");
    assert_eq!(show(&repo, &pr.branch, "app.py"), "def add(a, b):\n    return a + b");
    assert_eq!(show(&repo, &format!("{}^", pr.branch), "app.py"), "def add(a, b):   \n    return a + b", "on head_sha");

    // The runs API serves every artifact the run made.
    let (status, artifacts) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts")).await;
    assert_eq!(status, 200);
    let artifacts: serde_json::Value = serde_json::from_str(&artifacts).unwrap();
    let kinds: Vec<&str> =
        artifacts["artifacts"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["plan", "diff", "scan_report", "validation", "pull_request"]);
    let (_, diff) = mesh.get(&format!("/api/v1/runs/{run_id}/diff")).await;
    assert!(diff.contains("+def add(a, b):\n"), "{diff}");
    let (_, validation) = mesh.get(&format!("/api/v1/runs/{run_id}/artifacts/validation")).await;
    let validation: serde_json::Value = serde_json::from_str(&validation).unwrap();
    assert_eq!((validation["passed"].as_bool(), validation["command"].as_str()), (Some(true), Some("make test")));
    // Proven: the workflow's step failed without the patch and passed with it, in the sandbox.
    assert_eq!(
        (validation["verdict"].as_str(), validation["reproduced"].as_bool(), validation["sandbox"].as_str()),
        (Some("reproduced_and_fixed"), Some(true), Some("bwrap"))
    );
    assert_eq!(validation["step"]["step_name"], "Lint");
    assert_ne!(validation["before"]["exit_code"], 0);
    assert_eq!(validation["after"]["exit_code"], 0);
    assert!(mesh.scrape("validator").contains(r#"sre_agent_validation_runs_total{result="reproduced_and_fixed"} 1"#));

    // The same failure told again (a redelivery, then a check_run about the same job) changes nothing.
    let (status, again) = mesh.webhook("workflow_job", "7c0b7f8e-0000-4000-8000-000000000001", &body).await;
    assert_eq!((status.as_u16(), again["status"].as_str()), (200, Some("duplicate")));
    let check = format!(
        r#"{{"action":"completed","check_run":{{"id":5001,"name":"lint","head_sha":"{head_sha}","conclusion":"failure","check_suite":{{"id":3,"head_branch":"main"}}}},"repository":{{"full_name":"acme/app"}}}}"#
    );
    let (status, enriched) = mesh.webhook("check_run", "7c0b7f8e-0000-4000-8000-000000000002", &check).await;
    assert_eq!((status.as_u16(), enriched["status"].as_str()), (200, Some("enriched")));
    assert_eq!(enriched["run_id"].as_str(), Some(run_id.as_str()));
    assert_eq!(mesh.store.count_runs().await.unwrap(), 1);

    mesh.wait_metric("orchestrator", r#"sre_agent_celery_tasks_total{task="run_fix_pipeline",status="success"}"#, 1.0)
        .await;
    let metrics = mesh.scrape("orchestrator");
    assert!(metrics.contains(r#"sre_agent_pipeline_runs_total{outcome="success"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"sre_agent_pipeline_stage_duration_seconds_count{stage="validate"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"sre_agent_celery_tasks_total{task="run_fix_pipeline",status="success"} 1"#));
    assert!(metrics.contains(r#"sre_agent_celery_tasks_total{task="process_pipeline_event",status="success"} 1"#));
    assert!(mesh.scrape("pr").contains(r#"sre_agent_pr_created_total{label="safe"} 1"#));
    mesh.stop().await;

    // One trace, rooted at the webhook.
    telemetry().flush().await;
    let all = telemetry().spans();
    let root = all
        .iter()
        .find(|s| s.name == "ingest_webhook" && s.attributes.get("run_id") == Some(&run_id))
        .expect("ingest_webhook span with the run_id");
    assert_eq!(root.parent_span_id, "", "ingest_webhook is the root");
    assert_eq!(root.attributes["outcome"], "accepted");
    let trace: Vec<&SpanRecord> = all.iter().filter(|s| s.trace_id == root.trace_id).collect();
    let child_of = |child: &SpanRecord, parent: &SpanRecord| {
        assert_eq!(child.parent_span_id, parent.span_id, "{} is not a child of {}", child.name, parent.name)
    };
    let store_event = span(&trace, "store_event");
    let enqueue = span(&trace, "enqueue_pipeline");
    child_of(store_event, root);
    child_of(enqueue, root);
    assert_eq!(enqueue.kind, "producer");
    assert_eq!(enqueue.attributes["messaging.system"], "redis");
    assert_eq!(enqueue.attributes["failure_id"], "workflow_job:5001");
    let consumer = trace.iter().copied().find(|s| s.kind == "consumer").expect("consumer span in the same trace");
    child_of(consumer, enqueue);
    assert_eq!(
        (consumer.attributes["run_id"].as_str(), consumer.attributes["outcome"].as_str()),
        (run_id.as_str(), "success")
    );

    for (stage, rpc) in [
        ("generate_plan", "sre.v1.Planner/GeneratePlan"),
        ("policy_check_plan", "sre.v1.Policy/CheckPlan"),
        ("generate_patch", "sre.v1.Planner/GeneratePatch"),
        ("policy_check_patch", "sre.v1.Policy/CheckPatch"),
        ("run_scans", "sre.v1.Scanner/RunScans"),
        ("sandbox_validate", "sre.v1.Validator/Validate"),
        ("create_pr", "sre.v1.PullRequests/CreatePullRequest"),
    ] {
        let stage_span = span(&trace, stage);
        child_of(stage_span, consumer);
        // The seed's attributes, as soon as they are known.
        for key in ["delivery_id", "run_key", "failure_id", "run_id", "outcome"] {
            assert!(stage_span.attributes.contains_key(key), "{stage} lacks {key}: {:?}", stage_span.attributes);
        }
        if stage != "generate_plan" {
            assert_eq!(
                (stage_span.attributes["language"].as_str(), stage_span.attributes["category"].as_str()),
                ("python", "lint"),
                "{stage}"
            );
        }
        if matches!(stage, "run_scans" | "sandbox_validate" | "create_pr") {
            assert_eq!(stage_span.attributes["pr_label"], "safe", "{stage}");
        }
        let client = trace
            .iter()
            .copied()
            .find(|s| s.name == rpc && s.kind == "client" && s.parent_span_id == stage_span.span_id)
            .unwrap_or_else(|| panic!("no client span {rpc} under {stage}"));
        let server = trace
            .iter()
            .copied()
            .find(|s| s.name == rpc && s.kind == "server")
            .unwrap_or_else(|| panic!("no server span {rpc} in the trace"));
        child_of(server, client);
        assert_eq!(server.attributes.get("run_id"), Some(&run_id), "{rpc} server span lacks run_id");
    }
    let persist = span(&trace, "persist_artifact");
    child_of(persist, consumer);
    assert_eq!(persist.attributes["outcome"], "success");
    // Nothing secret on any span.
    for s in &trace {
        for (k, v) in &s.attributes {
            assert!(!v.contains("diff --git") && !v.contains("file://"), "{} carries {k}={v}", s.name);
        }
    }
}

/// A failed workflow run names no job: without the GitHub API to list its jobs, the workflow stands in for
/// them, one run, which goes through the whole pipeline; a redelivery changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_run_failure_is_resolved_into_a_run() {
    let mesh = Mesh::start(MeshOptions::default()).await;
    let head_sha = lint_failure_repo(mesh.repos_dir());
    let body = format!(
        r#"{{"action":"completed","workflow_run":{{"id":31,"name":"lint","head_sha":"{head_sha}","head_branch":"main","conclusion":"failure","run_attempt":1}},"repository":{{"full_name":"acme/app"}}}}"#
    );
    let (status, accepted) = mesh.webhook("workflow_run", "dddddddd-0000-4000-8000-000000000001", &body).await;
    assert_eq!(status, 202, "{accepted}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let run = loop {
        if let Some(run) = mesh.store.run_by_delivery("dddddddd-0000-4000-8000-000000000001").await.unwrap() {
            break run;
        }
        assert!(std::time::Instant::now() < deadline, "the event was never resolved into a run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run.run_key, format!("acme/app@{head_sha}/lint"));
    let run = mesh.wait_terminal(&run.run_id, Duration::from_secs(90)).await;
    assert_eq!(run.status, RunStatus::Success, "{run:#?}");
    let (status, _) = mesh.webhook("workflow_run", "dddddddd-0000-4000-8000-000000000001", &body).await;
    assert_eq!(status, 200);
    assert_eq!(mesh.store.count_runs().await.unwrap(), 1);
    mesh.wait_metric(
        "orchestrator",
        r#"sre_agent_celery_tasks_total{task="process_pipeline_event",status="success"}"#,
        2.0,
    )
    .await;
    mesh.stop().await;
}
