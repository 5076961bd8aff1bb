//! Handlers and the router.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use sre_domain::{ArtifactKind, EventKind, Label, Run};
use sre_queue::Publish;
use sre_store::{BatchOutcome, Ingested, NewEvent, Store};
use sre_telemetry::http::{HttpMetrics, ResponseTrace, metrics_handler};
use sre_telemetry::{Emit, SharedRegistry, propagation, record_ids};
use tracing::Instrument;
use tracing::field::Empty;

use crate::events::{
    DeliveryResult, GatewayMetrics, RejectReason, RequestRejected, WebhookFailed, WebhookIgnored, WebhookRejected,
    WebhookStored,
};
use crate::ingest::{Delivery, What};
use crate::webhook::{self, Classified};
use crate::{AppState, Limits};

/// GitHub gives up after 10 s; answer well before.
const INGEST_DEADLINE: Duration = Duration::from_secs(8);

impl FromRef<AppState> for SharedRegistry {
    fn from_ref(state: &AppState) -> Self {
        state.registry.clone()
    }
}

/// Every route with its normal answer, for the first scrape's series.
const ROUTES: [(&str, &str, u16); 10] = [
    ("POST", "/webhooks/github", 202),
    ("POST", "/api/v1/runs", 202),
    ("GET", "/api/v1/runs", 200),
    ("GET", "/api/v1/runs/{run_id}", 200),
    ("GET", "/api/v1/runs/{run_id}/diff", 200),
    ("GET", "/api/v1/runs/{run_id}/artifacts", 200),
    ("GET", "/api/v1/runs/{run_id}/artifacts/{kind}", 200),
    ("GET", "/health", 200),
    ("GET", "/ready", 200),
    ("GET", "/metrics", 200),
];

pub fn router(state: AppState, http_metrics: HttpMetrics) -> Router {
    http_metrics.expect(&ROUTES);
    let guard = (state.api_auth.clone(), state.metrics.clone());
    let limits = (state.limits, state.metrics.clone());
    let max_body = state.limits.max_body_bytes;
    let router = Router::new()
        .route("/webhooks/github", post(webhook))
        .route("/api/v1/runs", get(list_runs).post(submit_run))
        .route("/api/v1/runs/{run_id}", get(get_run))
        .route("/api/v1/runs/{run_id}/diff", get(get_diff))
        .route("/api/v1/runs/{run_id}/artifacts", get(list_artifacts))
        .route("/api/v1/runs/{run_id}/artifacts/{kind}", get(get_artifact))
        .route("/health", get(|| async { (StatusCode::OK, "ok") }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_handler))
        .layer(DefaultBodyLimit::max(max_body))
        // The whole body, within its size and time limits, before any handler (413 / 408).
        .layer(middleware::from_fn_with_state(limits, read_body))
        // Outermost: a runs API request without the token is refused before its body is read (401).
        .layer(middleware::from_fn_with_state(guard, crate::auth::require_token))
        .with_state(state);
    sre_telemetry::http::instrument(router, http_metrics)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({"error": message}))
}

/// The route a request matched, for logs (never the raw path).
fn route_of(req: &Request) -> &str {
    req.extensions().get::<MatchedPath>().map_or(sre_telemetry::http::UNMATCHED_ROUTE, |m| m.as_str())
}

/// Reads the whole request body within the configured size and time, so a handler never waits on a client:
/// 413 past the size (announced or sent), 408 and the connection closed when the client is too slow.
async fn read_body(State((limits, metrics)): State<(Limits, GatewayMetrics)>, req: Request, next: Next) -> Response {
    let Limits { max_body_bytes, body_timeout, .. } = limits;
    let route = route_of(&req).to_owned();
    let reject = |reason: RejectReason, status: StatusCode, message: String| {
        metrics.emit(RequestRejected { reason, route: &route });
        let mut resp = error(status, &message);
        // The rest of the body is never read: the connection cannot carry another request.
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        resp
    };
    let too_large = || format!("request body over the limit of {max_body_bytes} bytes (SRE_MAX_BODY_BYTES)");
    let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max_body_bytes as u64) {
        return reject(RejectReason::BodyTooLarge, StatusCode::PAYLOAD_TOO_LARGE, too_large());
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(body_timeout, axum::body::to_bytes(body, max_body_bytes)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(err)) if is_length_limit(&err) => {
            reject(RejectReason::BodyTooLarge, StatusCode::PAYLOAD_TOO_LARGE, too_large())
        }
        // The client broke off mid-body; it will not read an answer, but it gets one.
        Ok(Err(_)) => reject(RejectReason::BodyTimeout, StatusCode::BAD_REQUEST, "request body incomplete".into()),
        Err(_) => reject(
            RejectReason::BodyTimeout,
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {}s (SRE_HTTP_BODY_TIMEOUT_SECONDS)", body_timeout.as_secs()),
        ),
    }
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
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
    let event = EventKind::from_header(header_str(&headers, "x-github-event").unwrap_or_default());
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
    let ingest = ingest(&state, event, &delivery_id, &headers, &body, start).instrument(span.clone());
    let (result, mut response) = match tokio::time::timeout(INGEST_DEADLINE, ingest).await {
        Ok(outcome) => outcome,
        Err(_) => {
            span.in_scope(|| state.metrics.emit(WebhookFailed { event, reason: "ingest timed out" }));
            (DeliveryResult::Error, unavailable("ingest timed out; redeliver").1)
        }
    };
    span.record("outcome", result.as_str());
    if result == DeliveryResult::Error {
        span.record("otel.status_code", "ERROR");
    }
    if let Some(trace_id) = propagation::trace_id(&span) {
        response.extensions_mut().insert(ResponseTrace(trace_id));
    }
    response
}

/// The webhook's work inside `ingest_webhook`. Returns the result (for the span) and the response; every
/// path emits exactly one event.
async fn ingest(
    state: &AppState,
    event: EventKind,
    delivery_id: &str,
    headers: &HeaderMap,
    body: &Bytes,
    start: Instant,
) -> (DeliveryResult, Response) {
    let reject = |result: DeliveryResult, reason: RejectReason, status: StatusCode, message: &str| {
        state.metrics.emit(WebhookRejected { event, result, reason, message });
        (result, error(status, message))
    };
    let invalid_payload = |message: &str| {
        reject(DeliveryResult::BadRequest, RejectReason::InvalidPayload, StatusCode::BAD_REQUEST, message)
    };
    let signature = header_str(headers, "x-hub-signature-256");
    if !webhook::verify_signature(&state.secret, body, signature) {
        let (reason, message) = match signature {
            Some(_) => (RejectReason::SignatureInvalid, "X-Hub-Signature-256 does not match the body"),
            None if headers.contains_key("x-hub-signature") => {
                (RejectReason::SignatureSha1Only, "X-Hub-Signature (SHA-1) is not accepted: send X-Hub-Signature-256")
            }
            None => (RejectReason::SignatureMissing, "missing X-Hub-Signature-256"),
        };
        return reject(DeliveryResult::InvalidSignature, reason, StatusCode::UNAUTHORIZED, message);
    }
    if header_str(headers, "x-github-event").is_none_or(|e| e.trim().is_empty()) {
        let message = "missing X-GitHub-Event";
        return reject(DeliveryResult::BadRequest, RejectReason::EventMissing, StatusCode::BAD_REQUEST, message);
    }
    if !valid_delivery_id(delivery_id) {
        let message = "missing or malformed X-GitHub-Delivery";
        return reject(DeliveryResult::BadRequest, RejectReason::DeliveryMissing, StatusCode::BAD_REQUEST, message);
    }
    let payload = match webhook::payload(header_str(headers, "content-type"), body) {
        Ok(payload) => payload,
        Err(err @ webhook::BodyError::UnsupportedMediaType(_)) => {
            let (result, reason) = (DeliveryResult::UnsupportedMediaType, RejectReason::UnsupportedMediaType);
            return reject(result, reason, StatusCode::UNSUPPORTED_MEDIA_TYPE, &err.to_string());
        }
        Err(err) => return invalid_payload(&err.to_string()),
    };
    // Whatever the event, the payload must be JSON. The typed parse of a CI event reads the whole document,
    // so only what classify did not parse through (a ping, an unhandled event) and errors take a second pass.
    let not_json = |payload: &[u8]| {
        serde_json::from_slice::<serde::de::IgnoredAny>(payload)
            .err()
            .map(|err| format!("the payload is not JSON: {}", webhook::json_error(&err)))
    };
    let classified = match webhook::classify(event, &payload) {
        Ok(Classified::Ignored(_)) | Err(_) if let Some(message) = not_json(&payload) => {
            return invalid_payload(&message);
        }
        Ok(Classified::Ignored(reason)) => {
            state.metrics.emit(WebhookIgnored { event, reason: &reason });
            let body = if event == EventKind::Ping {
                json!({"status": "pong"})
            } else {
                json!({"status": "ignored", "reason": reason})
            };
            return (DeliveryResult::Ignored, json_response(StatusCode::OK, body));
        }
        Ok(classified) => classified,
        Err(err) => return invalid_payload(&err.to_string()),
    };
    let Some(store) = state.store.get() else {
        state.metrics.emit(WebhookFailed { event, reason: "store unavailable" });
        return unavailable("store unavailable; redeliver");
    };
    let span = tracing::Span::current();
    let (action, repo, what) = match classified {
        Classified::Failure(failure) => {
            let mut run =
                Run::new(uuid::Uuid::new_v4().to_string(), delivery_id.to_owned(), failure, sre_store::now_ms());
            run.trace_id = propagation::trace_id(&span).unwrap_or_default();
            run.origin_traceparent = propagation::traceparent(&span);
            ("completed", run.failure.repo.clone(), What::Failure(Box::new(run)))
        }
        Classified::Pending(failure) => {
            span.record("run_key", failure.run_key().as_str());
            span.record("failure_id", failure.failure_id().as_str());
            ("completed", failure.repo.clone(), What::Pending(Box::new(failure)))
        }
        Classified::Installation(change) => ("installation", change.account.clone(), What::Installation(change)),
        Classified::Ignored(_) => unreachable!("handled above"),
    };
    let delivery = Delivery { delivery_id: delivery_id.to_owned(), event, action, repo, payload: body.clone(), what };
    let store_span = tracing::info_span!(
        "store_event",
        db.system = store.backend().db_system(),
        db.operation.name = "ingest",
        db.operation.batch.size = Empty,
        delivery_id
    );
    let reply = state.ingester.submit(delivery, span.clone()).instrument(store_span.clone()).await;
    store_span.record("db.operation.batch.size", reply.batch);
    let outcome = match reply.outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            tracing::error!(error = %err, "store error");
            state.metrics.emit(WebhookFailed { event, reason: "store error" });
            return unavailable("store error; redeliver");
        }
    };
    let enqueued = match reply.enqueued {
        Ok(enqueued) => enqueued,
        Err(err) => {
            tracing::error!(error = %err, "enqueue failed; the delivery is stored, its job not queued");
            let reason = "queue unavailable; the event is stored, redeliver to retry";
            state.metrics.emit(WebhookFailed { event, reason });
            return unavailable(reason);
        }
    };
    let (result, body) = match &outcome {
        BatchOutcome::Run(ingested) => {
            let run = ingested.run();
            record_ids(&span, run.ids());
            let result = match ingested {
                Ingested::New(_) => DeliveryResult::Accepted,
                Ingested::Enriched(_) => DeliveryResult::Enriched,
                Ingested::Duplicate(_) => DeliveryResult::Duplicate,
            };
            (result, json!({"status": result.as_str(), "run_id": run.run_id, "run_key": run.run_key}))
        }
        BatchOutcome::Duplicate(Some(run)) => {
            record_ids(&span, run.ids());
            (DeliveryResult::Duplicate, json!({"status": "duplicate", "run_id": run.run_id, "run_key": run.run_key}))
        }
        BatchOutcome::Duplicate(None) => (DeliveryResult::Duplicate, json!({"status": "duplicate"})),
        // The orchestrator resolves it into the runs of its failed jobs (process_pipeline_event).
        BatchOutcome::Pending => {
            (DeliveryResult::Accepted, json!({"status": "accepted", "resolves": "the failed jobs"}))
        }
        BatchOutcome::Installation => (DeliveryResult::Recorded, json!({"status": "recorded"})),
    };
    state.metrics.emit(WebhookStored { event, result, enqueued, seconds: start.elapsed().as_secs_f64() });
    let status = if result == DeliveryResult::Accepted { StatusCode::ACCEPTED } else { StatusCode::OK };
    (result, json_response(status, body))
}

fn unavailable(reason: &str) -> (DeliveryResult, Response) {
    (
        DeliveryResult::Error,
        json_response(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "error", "reason": reason})),
    )
}

/// Hands the run to the queue (the `enqueue_pipeline` producer span), then flags it enqueued.
async fn enqueue(store: &Store, state: &AppState, run: &Run) -> Result<(), &'static str> {
    match state.queue.publish(run.ids(), Publish::default()).await {
        Ok(_) => {
            if let Err(err) = store.mark_enqueued(&run.run_id).await {
                // The job is on the queue; a stale flag only means the sweep may enqueue it again, and the
                // orchestrator's claim makes a surplus job harmless.
                tracing::warn!(error = %err, "could not mark run enqueued");
            }
            Ok(())
        }
        Err(err) => {
            tracing::error!(error = %err, "enqueue failed; run stored, job not queued");
            Err("queue unavailable; the event is stored, redeliver to retry")
        }
    }
}

/// Why a runs API request failed; its one conversion into a response (status and JSON message).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("store unavailable")]
    StoreUnavailable,
    #[error("store error")]
    Store(#[from] sre_store::StoreError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::StoreUnavailable | Self::Store(_) | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
        };
        if let Self::Store(err) = &self {
            tracing::error!(error = %err, "runs API: store error");
        }
        error(status, &self.to_string())
    }
}

fn store(state: &AppState) -> Result<&Store, ApiError> {
    state.store.get().ok_or(ApiError::StoreUnavailable)
}

/// The run, or 404.
async fn existing_run(store: &Store, run_id: &str) -> Result<Run, ApiError> {
    store.get_run(run_id).await?.ok_or_else(|| ApiError::NotFound("run not found".into()))
}

async fn get_run(State(state): State<AppState>, Path(run_id): Path<String>) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let run = existing_run(store, &run_id).await?;
    let artifacts = store.artifacts(&run_id).await?;
    let mut body = serde_json::to_value(&run).unwrap_or_default();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("artifacts".into(), json!(artifacts));
    }
    Ok(json_response(StatusCode::OK, body))
}

/// The run's patch; empty when it made none.
async fn get_diff(State(state): State<AppState>, Path(run_id): Path<String>) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let diff = match store.artifact(&run_id, ArtifactKind::Diff).await? {
        Some(diff) => diff,
        None => existing_run(store, &run_id).await.map(|_| String::new())?,
    };
    Ok(([(header::CONTENT_TYPE, ArtifactKind::Diff.content_type())], diff).into_response())
}

async fn list_artifacts(State(state): State<AppState>, Path(run_id): Path<String>) -> Result<Response, ApiError> {
    let store = store(&state)?;
    existing_run(store, &run_id).await?;
    let artifacts = store.artifacts(&run_id).await?;
    Ok(json_response(StatusCode::OK, json!({"run_id": run_id, "artifacts": artifacts})))
}

async fn get_artifact(
    State(state): State<AppState>,
    Path((run_id, kind)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Some(kind) = ArtifactKind::parse(&kind) else {
        let kinds = ArtifactKind::spellings().join(", ");
        return Err(ApiError::NotFound(format!("no artifact kind {kind:?}; kinds: {kinds}")));
    };
    let store = store(&state)?;
    let Some(body) = store.artifact(&run_id, kind).await? else {
        existing_run(store, &run_id).await?;
        return Err(ApiError::NotFound(format!("the run has no {} artifact", kind.as_str())));
    };
    Ok(([(header::CONTENT_TYPE, kind.content_type())], body).into_response())
}

/// Largest CI log a submission may carry; longer logs are kept as their head, error lines and tail.
pub const MAX_STORED_LOG_BYTES: usize = sre_cilog::MAX_STORED_LOG_BYTES;

/// A local run: a CI failure reported without GitHub (the embedded default, `sre-agent run`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// `owner/name`, a repository under the repos dir.
    pub repo: String,
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: String,
    /// The job that failed (as CI names it); the run key is `<repo>@<head_sha>/<job>`.
    #[serde(default = "default_job")]
    pub job: String,
    #[serde(default)]
    pub workflow: String,
    /// The failing job's log, as CI printed it.
    pub log: String,
}

fn default_job() -> String {
    "local".to_owned()
}

/// `POST /api/v1/runs`: stores the submission as a `local` event, its run (a new attempt of its key each
/// time) and its log as the run's `log` artifact, and enqueues the run.
async fn submit_run(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    match submit(&state, body).await {
        Err(err @ ApiError::BadRequest(_)) => {
            let reason = RejectReason::InvalidSubmission;
            state.metrics.emit(RequestRejected { reason, route: "/api/v1/runs" });
            Err(err)
        }
        other => other,
    }
}

async fn submit(state: &AppState, body: Bytes) -> Result<Response, ApiError> {
    let submission: Submission = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid run submission: {}", webhook::json_error(&e))))?;
    let valid_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let repo_ok = submission.repo.split_once('/').is_some_and(|(o, n)| valid_part(o) && valid_part(n));
    if !repo_ok {
        return Err(ApiError::BadRequest(format!("repo {:?} is not owner/name", submission.repo)));
    }
    if !(7..=64).contains(&submission.head_sha.len()) || !submission.head_sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::BadRequest("head_sha must be 7-64 hex characters".into()));
    }
    if submission.log.trim().is_empty() {
        return Err(ApiError::BadRequest("log is empty: the agent diagnoses the failure from the job's log".into()));
    }
    let store = store(state)?;
    let mut failure = sre_domain::Failure {
        repo: submission.repo.clone(),
        head_sha: submission.head_sha.clone(),
        head_branch: submission.head_branch.clone(),
        event: Some(EventKind::Local),
        conclusion: Some(sre_domain::Conclusion::Failure),
        workflow_name: submission.workflow.clone(),
        job_name: submission.job.clone(),
        ..Default::default()
    };
    failure.run_attempt = store.next_attempt(&failure.run_key()).await?;
    let span = tracing::Span::current();
    let delivery_id = format!("local-{}", uuid::Uuid::new_v4());
    let mut run = Run::new(uuid::Uuid::new_v4().to_string(), delivery_id.clone(), failure, sre_store::now_ms());
    run.trace_id = propagation::trace_id(&span).unwrap_or_default();
    run.origin_traceparent = propagation::traceparent(&span);
    let log = sre_cilog::bound_log(submission.log.as_bytes(), MAX_STORED_LOG_BYTES);
    // The event keeps what was submitted but the log, which is the run's artifact.
    let payload = serde_json::json!({
        "repo": submission.repo, "head_sha": submission.head_sha, "head_branch": submission.head_branch,
        "job": submission.job, "workflow": submission.workflow, "log_bytes": submission.log.len(),
    })
    .to_string();
    let event = NewEvent {
        delivery_id: &delivery_id,
        event: EventKind::Local,
        action: "submitted",
        repo: &run.failure.repo,
        payload: payload.as_bytes(),
    };
    let stored = store.ingest_with_log(&event, &run, &log).await?;
    record_ids(&span, stored.ids());
    enqueue(store, state, &stored).await.map_err(|reason| ApiError::Unavailable(reason.to_owned()))?;
    tracing::info!(log_bytes = submission.log.len(), attempt = stored.failure.run_attempt, "local run submitted");
    Ok(json_response(
        StatusCode::ACCEPTED,
        json!({"status": "accepted", "run_id": stored.run_id, "run_key": stored.run_key, "attempt": stored.failure.run_attempt}),
    ))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list_runs(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let runs = store(&state)?.list_runs(limit).await?;
    Ok(json_response(StatusCode::OK, json!({"runs": runs})))
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
