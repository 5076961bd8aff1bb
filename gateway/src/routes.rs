//! Handlers and the router.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use sre_queue::RunRef;
use sre_store::{Ingested, NewEvent, NewRun, RunRecord};
use sre_telemetry::http::{HttpMetrics, ResponseTrace, metrics_handler};
use sre_telemetry::metrics::TraceExemplar;
use sre_telemetry::{BusinessIds, SharedRegistry, propagation};
use tracing::Instrument;
use tracing::field::Empty;

use crate::AppState;
use crate::metrics::DeliveryResult;
use crate::webhook::{self, Classified, EventKind, Failure};

/// GitHub caps payloads at 25 MB; workflow events are a few tens of KB.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// GitHub gives up after 10 s; answer well before.
const INGEST_DEADLINE: Duration = Duration::from_secs(8);

impl FromRef<AppState> for SharedRegistry {
    fn from_ref(state: &AppState) -> Self {
        state.registry.clone()
    }
}

pub fn router(state: AppState, http_metrics: HttpMetrics) -> Router {
    let router = Router::new()
        .route("/webhooks/github", post(webhook))
        .route("/api/v1/runs", get(list_runs))
        .route("/api/v1/runs/{run_id}", get(get_run))
        .route("/api/v1/runs/{run_id}/diff", get(get_diff))
        .route("/health", get(|| async { (StatusCode::OK, "ok") }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_handler))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    sre_telemetry::http::instrument(router, http_metrics)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// GitHub delivery IDs are UUIDs; accept any short token of that alphabet.
fn valid_delivery_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // Its own task: a client hanging up must not cancel a delivery between its commit and its enqueue.
    match tokio::spawn(handle_webhook(state, headers, body)).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "webhook task failed");
            json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({"status": "error", "reason": "internal error"}))
        }
    }
}

async fn handle_webhook(state: AppState, headers: HeaderMap, body: Bytes) -> Response {
    let start = Instant::now();
    let event = EventKind::parse(header_str(&headers, "x-github-event").unwrap_or_default());
    let delivery_id = header_str(&headers, "x-github-delivery").unwrap_or_default().to_owned();
    let span = tracing::info_span!(
        "ingest_webhook",
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = "POST",
        http.route = "/webhooks/github",
        github.event = event.as_str(),
        delivery_id = Empty,
        run_key = Empty,
        failure_id = Empty,
        run_id = Empty,
        correlation_id = Empty,
        outcome = Empty,
    );
    if valid_delivery_id(&delivery_id) {
        span.record("delivery_id", delivery_id.as_str());
    }
    let ingest = ingest(&state, event, &delivery_id, &headers, &body).instrument(span.clone());
    let (result, mut response) = match tokio::time::timeout(INGEST_DEADLINE, ingest).await {
        Ok(outcome) => outcome,
        Err(_) => {
            let _guard = span.enter();
            tracing::error!(deadline_ms = INGEST_DEADLINE.as_millis() as u64, "webhook ingest timed out");
            (
                DeliveryResult::Error,
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"status": "error", "reason": "ingest timed out; redeliver"}),
                ),
            )
        }
    };
    span.record("outcome", format!("{result:?}").to_ascii_lowercase());
    if result == DeliveryResult::Error {
        span.record("otel.status_code", "ERROR");
    }
    state.metrics.delivery(event, result);
    let trace_id = propagation::trace_id(&span);
    if matches!(result, DeliveryResult::Accepted | DeliveryResult::Duplicate) {
        let exemplar = trace_id.clone().map(|trace_id| TraceExemplar { trace_id });
        state.metrics.ingest_duration(start.elapsed().as_secs_f64(), exemplar);
    }
    if let Some(trace_id) = trace_id {
        response.extensions_mut().insert(ResponseTrace(trace_id));
    }
    response
}

/// The webhook's work inside `ingest_webhook`. Returns the metric result and the response.
async fn ingest(
    state: &AppState,
    event: EventKind,
    delivery_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (DeliveryResult, Response) {
    if !webhook::verify_signature(&state.secret, body, header_str(headers, "x-hub-signature-256")) {
        tracing::warn!(event = event.as_str(), "webhook rejected: missing or invalid X-Hub-Signature-256");
        return (
            DeliveryResult::InvalidSignature,
            json_response(StatusCode::UNAUTHORIZED, json!({"error": "invalid or missing X-Hub-Signature-256"})),
        );
    }
    if !valid_delivery_id(delivery_id) {
        tracing::warn!(event = event.as_str(), "webhook rejected: missing or malformed X-GitHub-Delivery");
        return (
            DeliveryResult::BadRequest,
            json_response(StatusCode::BAD_REQUEST, json!({"error": "missing or malformed X-GitHub-Delivery"})),
        );
    }
    let failure = match webhook::classify(event, body) {
        Ok(Classified::Failure(f)) => f,
        Ok(Classified::Ignored(reason)) => {
            tracing::info!(event = event.as_str(), reason = %reason, "webhook ignored");
            let body = if event == EventKind::Ping {
                json!({"status": "pong"})
            } else {
                json!({"status": "ignored", "reason": reason})
            };
            return (DeliveryResult::Ignored, json_response(StatusCode::OK, body));
        }
        Err(err) => {
            tracing::warn!(event = event.as_str(), error = %err, "webhook rejected: malformed payload");
            return (
                DeliveryResult::BadRequest,
                json_response(StatusCode::BAD_REQUEST, json!({"error": err.to_string()})),
            );
        }
    };
    let Some(store) = state.store.get() else {
        tracing::error!("webhook not stored: store unavailable");
        return unavailable("store unavailable; redeliver");
    };

    let run_id = uuid::Uuid::new_v4().to_string();
    let new_run = NewRun {
        run_id: run_id.clone(),
        run_key: failure.run_key(),
        failure_id: failure.failure_id.clone(),
        correlation_id: run_id.clone(),
        repo: failure.repo.clone(),
        head_sha: failure.head_sha.clone(),
        head_branch: failure.head_branch.clone(),
        failure_name: failure.name.clone(),
        attempt: i64::from(failure.attempt),
    };
    let new_event =
        NewEvent { delivery_id, event: event.as_str(), action: &failure.action, repo: &failure.repo, payload: body };
    let stored = store
        .ingest(&new_event, &new_run)
        .instrument(tracing::info_span!("store_event", db.system = ?store.backend(), delivery_id))
        .await;
    let (run, duplicate) = match stored {
        Ok(Ingested::New(run)) => (run, false),
        Ok(Ingested::Duplicate(run)) => (run, true),
        Err(err) => {
            tracing::error!(error = %err, "webhook not stored");
            return unavailable("store error; redeliver");
        }
    };
    record_ids(&run);

    // A redelivery of a run whose enqueue failed gets its job now; other duplicates change nothing.
    if (!duplicate || (!run.enqueued && run.status == "queued"))
        && let Err(reason) = enqueue(state, &run, &failure).await
    {
        return unavailable(reason);
    }
    let (status, result, label) = if duplicate {
        (StatusCode::OK, DeliveryResult::Duplicate, "duplicate")
    } else {
        (StatusCode::ACCEPTED, DeliveryResult::Accepted, "accepted")
    };
    tracing::info!(event = event.as_str(), status = label, "webhook stored and enqueued");
    (result, json_response(status, json!({"status": label, "run_id": run.run_id, "run_key": run.run_key})))
}

fn unavailable(reason: &str) -> (DeliveryResult, Response) {
    (
        DeliveryResult::Error,
        json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "error", "reason": reason})),
    )
}

fn record_ids(run: &RunRecord) {
    BusinessIds {
        delivery_id: &run.delivery_id,
        run_key: &run.run_key,
        failure_id: &run.failure_id,
        run_id: &run.run_id,
        correlation_id: &run.correlation_id,
    }
    .record_on(&tracing::Span::current());
}

/// Hands the run to the queue (the `enqueue_pipeline` producer span), then flags it enqueued.
async fn enqueue(state: &AppState, run: &RunRecord, failure: &Failure) -> Result<(), &'static str> {
    let run_ref = RunRef {
        run_id: &run.run_id,
        run_key: &run.run_key,
        delivery_id: &run.delivery_id,
        correlation_id: &run.correlation_id,
    };
    match state.queue.publish(run_ref, false).await {
        Ok(_) => {
            if let Some(store) = state.store.get()
                && let Err(err) = store.mark_enqueued(&run.run_id).await
            {
                // The job is on the queue; a stale flag only means the sweep may enqueue it again, and the
                // orchestrator's claim makes a surplus job harmless.
                tracing::warn!(error = %err, "could not mark run enqueued");
            }
            tracing::info!(event = failure.event.as_str(), "pipeline job enqueued");
            Ok(())
        }
        Err(err) => {
            tracing::error!(error = %err, "enqueue failed; run stored, job not queued");
            Err("queue unavailable; the event is stored, redeliver to retry")
        }
    }
}

async fn get_run(State(state): State<AppState>, Path(run_id): Path<String>) -> Response {
    let Some(store) = state.store.get() else {
        return json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "store unavailable"}));
    };
    match store.get_run(&run_id).await {
        Ok(Some(run)) => json_response(StatusCode::OK, run_json(&run)),
        Ok(None) => json_response(StatusCode::NOT_FOUND, json!({"error": "run not found"})),
        Err(err) => {
            tracing::error!(error = %err, "reading run failed");
            json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "store error"}))
        }
    }
}

async fn get_diff(State(state): State<AppState>, Path(run_id): Path<String>) -> Response {
    let Some(store) = state.store.get() else {
        return json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "store unavailable"}));
    };
    match store.run_diff(&run_id).await {
        Ok(Some(diff)) => ([(header::CONTENT_TYPE, "text/x-diff; charset=utf-8")], diff).into_response(),
        Ok(None) => json_response(StatusCode::NOT_FOUND, json!({"error": "run not found"})),
        Err(err) => {
            tracing::error!(error = %err, "reading diff failed");
            json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "store error"}))
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list_runs(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let Some(store) = state.store.get() else {
        return json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "store unavailable"}));
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    match store.list_runs(limit).await {
        Ok(runs) => json_response(StatusCode::OK, json!({"runs": runs.iter().map(run_json).collect::<Vec<_>>()})),
        Err(err) => {
            tracing::error!(error = %err, "listing runs failed");
            json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "store error"}))
        }
    }
}

/// The API view of a run: the record plus the PR as one object.
fn run_json(run: &RunRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(run).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        let pr = run.pr_number.map(|n| json!({"number": n, "branch": run.pr_branch, "label": run.label}));
        obj.insert("pr".into(), pr.unwrap_or(serde_json::Value::Null));
    }
    v
}

async fn ready(State(state): State<AppState>) -> Response {
    let store = match state.store.get() {
        None => "connecting".to_owned(),
        Some(s) => match tokio::time::timeout(Duration::from_secs(2), s.ping()).await {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timeout".to_owned(),
        },
    };
    let redis = match tokio::time::timeout(Duration::from_secs(2), state.queue.ping()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timeout".to_owned(),
    };
    let ok = store == "ok" && redis == "ok";
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json_response(
        status,
        json!({"status": if ok { "ready" } else { "not_ready" }, "checks": {"store": store, "redis": redis}}),
    )
}
