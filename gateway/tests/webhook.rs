//! The gateway in-process against real SQLite (temp file) and real Redis.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sre_gateway::webhook::sign;
use sre_gateway::{ApiAuth, AppState, routes};
use sre_queue::Queue;
use sre_store::StoreCell;
use sre_telemetry::SharedRegistry;
use sre_telemetry::http::HttpMetrics;
use tower::ServiceExt;

mod support;

use support::{SECRET, failure_body, harness, json, send, webhook};

#[tokio::test]
async fn bad_signature_is_401_and_nothing_is_stored() {
    let h = harness().await;
    let body = failure_body();
    let (status, _) = send(&h.router, webhook("workflow_job", "d-bad", &body, Some(sign(b"wrong", &body)))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(&h.router, webhook("workflow_job", "d-none", &body, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.store.count_events().await.unwrap(), 0);
    assert_eq!(h.queue.depth().await.unwrap().lag, 0);
}

#[tokio::test]
async fn same_delivery_twice_is_one_run_and_one_job() {
    let h = harness().await;
    let body = failure_body();
    let (status, first) = send(&h.router, webhook("workflow_job", "d-1", &body, Some(sign(SECRET, &body)))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let first = json(&first);
    assert_eq!(first["status"], "accepted");
    let run_id = first["run_id"].as_str().unwrap().to_owned();
    assert_eq!(first["run_key"], "acme/app@0123456789abcdef0123456789abcdef01234567/lint");

    let (status, second) = send(&h.router, webhook("workflow_job", "d-1", &body, Some(sign(SECRET, &body)))).await;
    assert_eq!(status, StatusCode::OK);
    let second = json(&second);
    assert_eq!(second["status"], "duplicate");
    assert_eq!(second["run_id"], run_id.as_str());

    assert_eq!(h.store.count_runs().await.unwrap(), 1);
    let jobs = h.queue.reader("t", Duration::from_millis(200)).read(10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job.run_id, run_id);
    // The job carries the producer span's W3C context.
    let traceparent = &jobs[0].job.trace_context["traceparent"];
    assert!(traceparent.starts_with("00-") && traceparent.len() == 55, "{traceparent}");

    let (status, run) =
        send(&h.router, Request::get(format!("/api/v1/runs/{run_id}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let run = json(&run);
    assert_eq!(run["status"], "queued");
    assert_eq!(run["enqueued"], true);
    assert_eq!(run["delivery_id"], "d-1");
    assert!(run["pr"].is_null());

    let (status, _) = send(&h.router, Request::get("/api/v1/runs/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn two_event_types_about_one_failure_are_one_run_and_one_job() {
    let h = harness().await;
    let sha = "89abcdef0123456789abcdef0123456789abcdef";
    let job = format!(
        r#"{{"action":"completed","workflow_job":{{"id":501,"run_id":77,"run_attempt":1,"name":"lint","workflow_name":"CI","head_sha":"{sha}","head_branch":"main","conclusion":"failure"}},"repository":{{"full_name":"acme/app"}}}}"#
    );
    let check = format!(
        r#"{{"action":"completed","check_run":{{"id":501,"name":"lint","head_sha":"{sha}","conclusion":"failure","check_suite":{{"id":9,"head_branch":"main"}}}},"repository":{{"full_name":"acme/app"}},"installation":{{"id":31}}}}"#
    );
    let (status, first) =
        send(&h.router, webhook("workflow_job", "d-job", job.as_bytes(), Some(sign(SECRET, job.as_bytes())))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, second) =
        send(&h.router, webhook("check_run", "d-check", check.as_bytes(), Some(sign(SECRET, check.as_bytes())))).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let (first, second) = (json(&first), json(&second));
    assert_eq!(second["status"], "enriched");
    assert_eq!(first["run_id"], second["run_id"]);
    assert_eq!(h.store.count_runs().await.unwrap(), 1);
    assert_eq!(h.store.count_events().await.unwrap(), 2);
    assert_eq!(h.queue.reader("t", Duration::from_millis(200)).read(10).await.unwrap().len(), 1, "one job");
    let run_id = first["run_id"].as_str().unwrap();
    let (_, run) = send(&h.router, Request::get(format!("/api/v1/runs/{run_id}")).body(Body::empty()).unwrap()).await;
    let run = json(&run);
    // The first event's facts, enriched by the second's.
    assert_eq!((run["workflow_run_id"].as_u64(), run["job_id"].as_u64()), (Some(77), Some(501)));
    assert_eq!((run["installation_id"].as_u64(), run["check_suite_id"].as_u64()), (Some(31), Some(9)));
    assert_eq!((run["event"].as_str(), run["conclusion"].as_str()), (Some("workflow_job"), Some("failure")));
    assert_eq!(run["artifacts"], serde_json::json!([]));
    // No diff yet: the diff is empty, the artifact kinds answer 404 with a clear message.
    let (status, diff) =
        send(&h.router, Request::get(format!("/api/v1/runs/{run_id}/diff")).body(Body::empty()).unwrap()).await;
    assert_eq!((status, diff.as_str()), (StatusCode::OK, ""));
    let (status, body) =
        send(&h.router, Request::get(format!("/api/v1/runs/{run_id}/artifacts/context")).body(Body::empty()).unwrap())
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no context artifact"), "{body}");
    let (status, body) =
        send(&h.router, Request::get(format!("/api/v1/runs/{run_id}/artifacts/secrets")).body(Body::empty()).unwrap())
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("kinds: log, context"), "{body}");
}

#[tokio::test]
async fn a_form_encoded_delivery_is_read_and_other_content_types_are_415() {
    let h = harness().await;
    let json = String::from_utf8(failure_body()).unwrap();
    let form: String = form_urlencoded::Serializer::new(String::new()).append_pair("payload", &json).finish();
    let mut req = webhook("workflow_job", "d-form", form.as_bytes(), Some(sign(SECRET, form.as_bytes())));
    req.headers_mut().insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
    let (status, body) = send(&h.router, req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // The signature covers the raw form body, not the decoded JSON.
    let mut req = webhook("workflow_job", "d-form-2", form.as_bytes(), Some(sign(SECRET, json.as_bytes())));
    req.headers_mut().insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
    assert_eq!(send(&h.router, req).await.0, StatusCode::UNAUTHORIZED);
    let mut req = webhook("workflow_job", "d-xml", json.as_bytes(), Some(sign(SECRET, json.as_bytes())));
    req.headers_mut().insert("content-type", "application/xml".parse().unwrap());
    let (status, body) = send(&h.router, req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(body.contains("application/x-www-form-urlencoded"), "{body}");
    let mut req = webhook("workflow_job", "d-noform", b"x=1", Some(sign(SECRET, b"x=1")));
    req.headers_mut().insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
    assert_eq!(send(&h.router, req).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(h.store.count_events().await.unwrap(), 1, "only the good delivery is stored");
    let (_, metrics) = send(&h.router, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(metrics.contains(r#"{event="workflow_job",result="unsupported_media_type"} 1"#), "{metrics}");
}

#[tokio::test]
async fn a_workflow_run_waits_to_be_resolved_and_installations_are_recorded() {
    let h = harness().await;
    let run = br#"{"action":"completed","workflow_run":{"id":42,"name":"CI","head_sha":"89abcdef0123456789abcdef0123456789abcdef","run_attempt":2,"conclusion":"failure"},"repository":{"full_name":"acme/app"},"installation":{"id":5}}"#;
    let (status, body) = send(&h.router, webhook("workflow_run", "d-wr", run, Some(sign(SECRET, run)))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(h.store.count_runs().await.unwrap(), 0, "no run until its jobs are known");
    let (failure, resolved) = h.store.pending_event("d-wr").await.unwrap().unwrap();
    assert_eq!((failure.workflow_run_id, failure.run_attempt, resolved), (Some(42), 2, false));
    let jobs = h.queue.reader("t", Duration::from_millis(200)).read(10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].job.kind, jobs[0].job.delivery_id.as_str()), (sre_queue::JobKind::Event, "d-wr"));
    let (status, _) = send(&h.router, webhook("workflow_run", "d-wr", run, Some(sign(SECRET, run)))).await;
    assert_eq!(status, StatusCode::OK, "a redelivery is a duplicate");

    let install = br#"{"action":"created","installation":{"id":5,"account":{"login":"acme"}},"repositories":[{"full_name":"acme/app"}]}"#;
    let (status, body) = send(&h.router, webhook("installation", "d-in", install, Some(sign(SECRET, install)))).await;
    assert_eq!((status, json(&body)["status"].as_str()), (StatusCode::OK, Some("recorded")));
    assert_eq!(h.store.installation(5).await.unwrap().unwrap().repos, vec!["acme/app".to_owned()]);
}

#[tokio::test]
async fn other_events_are_ignored_with_a_reason_and_ping_is_200() {
    let h = harness().await;
    let ping = br#"{"zen":"Design for failure."}"#;
    let (status, body) = send(&h.router, webhook("ping", "d-ping", ping, Some(sign(SECRET, ping)))).await;
    assert_eq!((status, json(&body)["status"].as_str()), (StatusCode::OK, Some("pong")));

    let ok = String::from_utf8(failure_body()).unwrap().replace("\"failure\"", "\"success\"");
    let (status, body) =
        send(&h.router, webhook("workflow_job", "d-ok", ok.as_bytes(), Some(sign(SECRET, ok.as_bytes())))).await;
    assert_eq!(status, StatusCode::OK);
    let body = json(&body);
    assert_eq!(body["status"], "ignored");
    assert!(body["reason"].as_str().unwrap().contains("success"));

    let push = br#"{"ref":"refs/heads/main"}"#;
    let (status, body) = send(&h.router, webhook("push", "d-push", push, Some(sign(SECRET, push)))).await;
    assert_eq!((status, json(&body)["status"].as_str()), (StatusCode::OK, Some("ignored")));
    assert_eq!(h.store.count_events().await.unwrap(), 0);
}

#[tokio::test]
async fn malformed_input_is_400_and_nothing_is_stored() {
    let h = harness().await;
    let junk = b"{not json";
    let (status, body) = send(&h.router, webhook("workflow_run", "d-junk", junk, Some(sign(SECRET, junk)))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json(&body)["error"].as_str().unwrap().contains("the payload is not JSON"), "{body}");
    let partial = br#"{"action":"completed"}"#;
    let (status, body) = send(&h.router, webhook("workflow_run", "d-part", partial, Some(sign(SECRET, partial)))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json(&body)["error"].as_str().unwrap().contains("malformed workflow_run payload"), "{body}");
    let body = failure_body();
    let (status, _) = send(&h.router, webhook("workflow_job", "bad id!", &body, Some(sign(SECRET, &body)))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(h.store.count_events().await.unwrap(), 0);
}

#[tokio::test]
async fn metrics_use_route_templates_and_unmatched() {
    let h = harness().await;
    send(&h.router, Request::get("/health").body(Body::empty()).unwrap()).await;
    send(&h.router, Request::get("/api/v1/runs/abc-123").body(Body::empty()).unwrap()).await;
    let (status, _) = send(&h.router, Request::get("/no/such/path/123").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = failure_body();
    send(&h.router, webhook("workflow_job", "d-m", &body, Some(sign(SECRET, &body)))).await;

    let (status, text) = send(&h.router, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_valid_exposition(&text);
    assert!(text.contains(r#"sre_agent_http_requests_total{method="GET",route="/health",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"route="/api/v1/runs/{run_id}",status="404""#), "{text}");
    assert!(text.contains(r#"sre_agent_http_requests_total{method="GET",route="unmatched",status="404"} 1"#), "{text}");
    assert!(!text.contains("abc-123") && !text.contains("/no/such"), "raw paths leaked into labels");
    assert!(text.contains("sre_agent_http_request_duration_seconds_bucket{"), "{text}");
    assert!(text.contains(r#"sre_agent_webhook_deliveries_total{event="workflow_job",result="accepted"} 1"#), "{text}");
    assert!(text.contains(r#"sre_agent_pipeline_stage_duration_seconds_count{stage="ingest"} 1"#), "{text}");

    // OpenMetrics on request (what Prometheus asks for with exemplar storage on).
    let req = Request::get("/metrics")
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .body(Body::empty())
        .unwrap();
    let resp = h.router.clone().oneshot(req).await.unwrap();
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).trim_end().ends_with("# EOF"));
}

/// Checks the Prometheus 0.0.4 text grammar line by line: comments are HELP/TYPE, samples are
/// `name{label="value",...} number`.
fn assert_valid_exposition(text: &str) {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(rest.starts_with("HELP ") || rest.starts_with("TYPE "), "bad comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value), "bad value: {line}");
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name), "bad metric name: {line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "bad labels: {line}");
            for pair in labels[1..labels.len() - 1].split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label pair {pair:?}: {line}"));
                assert!(name_ok(k), "bad label name {k:?}: {line}");
                assert!(!v.contains('\n'), "newline in label: {line}");
            }
        }
    }
}

#[tokio::test]
async fn ready_reports_each_dependency() {
    let h = harness().await;
    let (status, body) = send(&h.router, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Store still connecting and Redis unreachable: up, but not ready, and webhooks get 503.
    let registry = SharedRegistry::default();
    let state = AppState::new(
        SECRET,
        ApiAuth::token(support::API_TOKEN),
        StoreCell::default(),
        Queue::new("redis://127.0.0.1:1", "sre:test:down", "orchestrator").unwrap(),
        &registry,
    );
    let router = routes::router(state, HttpMetrics::register(&registry));
    let (status, body) = send(&router, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body = json(&body);
    assert_eq!(body["checks"]["store"], "connecting");
    assert_ne!(body["checks"]["redis"], "ok");
    let failure = failure_body();
    let (status, _) = send(&router, webhook("workflow_job", "d-x", &failure, Some(sign(SECRET, &failure)))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = send(&router, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}
