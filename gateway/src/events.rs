//! The gateway's notable occurrences. Each is one type whose `emit` writes the log line and moves the
//! metric with the same bounded label values (`event`, `result`), so logs and metrics never disagree; the
//! `ingest_webhook` span's `outcome` uses the same spelling.
//!
//! Families: `sre_agent_webhook_deliveries_total{event,result}`, `sre_agent_gateway_rejections_total{reason}`
//! (every request refused for what it is: token, signature, headers, body, payload) and the `ingest` series of
//! `sre_agent_pipeline_stage_duration_seconds{stage}` (exemplar: the delivery's trace).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use sre_domain::{EventKind, Label, Stage, label_enum};
#[cfg(test)]
use sre_telemetry::Emit;
use sre_telemetry::metrics::{STAGE_BUCKETS, TraceExemplar};
use sre_telemetry::{InternalEvent, SharedRegistry};

label_enum! {
    /// How a delivery ended: the `result` label, and the `outcome` of the `ingest_webhook` span.
    pub enum DeliveryResult {
        /// A new failure: stored, a run created and its job enqueued.
        Accepted => "accepted",
        /// A new delivery about a failure that already has its run: stored, the run enriched.
        Enriched => "enriched",
        /// A delivery seen before (same X-GitHub-Delivery).
        Duplicate => "duplicate",
        /// An installation event: which repositories the App may act on was recorded.
        Recorded => "recorded",
        /// Not a failure to fix (ping, success, another action, an event type not handled).
        Ignored => "ignored",
        /// Missing or wrong X-Hub-Signature-256 (401).
        InvalidSignature => "invalid_signature",
        /// Missing headers or a malformed payload (400).
        BadRequest => "bad_request",
        /// A Content-Type GitHub does not send (415).
        UnsupportedMediaType => "unsupported_media_type",
        /// The store or the queue failed (503; GitHub redelivers).
        Error => "error",
    }
}

label_enum! {
    /// Why the gateway refused a request before doing anything with it: the `reason` label of
    /// `sre_agent_gateway_rejections_total`. Nothing is stored for any of them.
    pub enum RejectReason {
        /// `/api/v1/*` without an Authorization header (401).
        TokenMissing => "token_missing",
        /// An Authorization header that is not `Bearer <token>` (401).
        TokenMalformed => "token_malformed",
        /// A bearer token that is not the configured one (401).
        TokenInvalid => "token_invalid",
        /// No X-Hub-Signature-256 (401).
        SignatureMissing => "signature_missing",
        /// Only the legacy SHA-1 X-Hub-Signature (401): HMAC-SHA256 is required.
        SignatureSha1Only => "signature_sha1_only",
        /// An X-Hub-Signature-256 that does not match the body (401).
        SignatureInvalid => "signature_invalid",
        /// No X-GitHub-Event (400).
        EventMissing => "event_missing",
        /// No or a malformed X-GitHub-Delivery (400).
        DeliveryMissing => "delivery_missing",
        /// A Content-Type GitHub does not send (415).
        UnsupportedMediaType => "unsupported_media_type",
        /// Not JSON, a form without its `payload` field, or JSON that is not the event's payload (400).
        InvalidPayload => "invalid_payload",
        /// A runs API submission that is not a valid run (400).
        InvalidSubmission => "invalid_submission",
        /// A body past SRE_MAX_BODY_BYTES (413).
        BodyTooLarge => "body_too_large",
        /// A body not received within SRE_HTTP_BODY_TIMEOUT_SECONDS (408, connection closed).
        BodyTimeout => "body_timeout",
        /// Request headers not received within SRE_HTTP_HEADER_TIMEOUT_SECONDS (connection closed).
        HeaderTimeout => "header_timeout",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    event: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

/// The gateway's metric families.
#[derive(Clone)]
pub struct GatewayMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    rejections: Family<RejectLabels, Counter>,
    stage_duration: Family<StageLabels, HistogramWithExemplars<TraceExemplar>>,
}

impl GatewayMetrics {
    /// Registers the families, every bounded series at zero so `rate()` and `absent()` mean something from
    /// the first scrape.
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self {
            deliveries: Family::default(),
            rejections: Family::default(),
            stage_duration: Family::new_with_constructor(|| HistogramWithExemplars::new(STAGE_BUCKETS.into_iter())),
        };
        registry.register(
            "sre_agent_webhook_deliveries",
            "GitHub webhook deliveries by event type and result",
            this.deliveries.clone(),
        );
        registry.register(
            "sre_agent_gateway_rejections",
            "Requests the gateway refused before acting on them, by reason",
            this.rejections.clone(),
        );
        registry.register(
            "sre_agent_pipeline_stage_duration_seconds",
            "Pipeline stage duration (the gateway records the ingest stage)",
            this.stage_duration.clone(),
        );
        for event in EventKind::ALL {
            for result in DeliveryResult::ALL {
                let _ =
                    this.deliveries.get_or_create(&DeliveryLabels { event: event.as_str(), result: result.as_str() });
            }
        }
        for reason in RejectReason::ALL {
            let _ = this.rejections.get_or_create(&RejectLabels { reason: reason.as_str() });
        }
        let _ = this.stage_duration.get_or_create(&StageLabels { stage: Stage::Ingest.as_str() });
        this
    }

    fn count(&self, event: EventKind, result: DeliveryResult) {
        self.deliveries.get_or_create(&DeliveryLabels { event: event.as_str(), result: result.as_str() }).inc();
    }

    fn reject(&self, reason: RejectReason) {
        self.rejections.get_or_create(&RejectLabels { reason: reason.as_str() }).inc();
    }
}

/// A delivery stored: a new run, an enriched one, or a redelivery.
pub struct WebhookStored {
    pub event: EventKind,
    pub result: DeliveryResult,
    /// Whether this delivery handed the run's job to the queue.
    pub enqueued: bool,
    pub seconds: f64,
}

impl InternalEvent<GatewayMetrics> for WebhookStored {
    fn emit(self, m: &GatewayMetrics) {
        tracing::info!(
            event = self.event.as_str(),
            result = self.result.as_str(),
            enqueued = self.enqueued,
            stage = Stage::Ingest.as_str(),
            duration_ms = (self.seconds * 1000.0) as u64,
            "webhook stored"
        );
        m.count(self.event, self.result);
        let stage = StageLabels { stage: Stage::Ingest.as_str() };
        m.stage_duration.get_or_create(&stage).observe(self.seconds, TraceExemplar::current(), None);
    }
}

/// A delivery that is not a failure to fix.
pub struct WebhookIgnored<'a> {
    pub event: EventKind,
    pub reason: &'a str,
}

impl InternalEvent<GatewayMetrics> for WebhookIgnored<'_> {
    fn emit(self, m: &GatewayMetrics) {
        let result = DeliveryResult::Ignored;
        tracing::info!(event = self.event.as_str(), result = result.as_str(), reason = self.reason, "webhook ignored");
        m.count(self.event, result);
    }
}

/// A delivery refused for what it is (signature, headers, payload): 4xx, nothing stored.
pub struct WebhookRejected<'a> {
    pub event: EventKind,
    pub result: DeliveryResult,
    pub reason: RejectReason,
    /// What the sender is told.
    pub message: &'a str,
}

impl InternalEvent<GatewayMetrics> for WebhookRejected<'_> {
    fn emit(self, m: &GatewayMetrics) {
        tracing::warn!(
            event = self.event.as_str(),
            result = self.result.as_str(),
            reason = self.reason.as_str(),
            detail = self.message,
            "webhook rejected"
        );
        m.count(self.event, self.result);
        m.reject(self.reason);
    }
}

/// Any other request refused before a handler acted on it (runs API token, body limits and timeouts, a bad
/// submission): 4xx, nothing stored.
pub struct RequestRejected<'a> {
    pub reason: RejectReason,
    /// The route template (or `unmatched`), never the raw path.
    pub route: &'a str,
}

impl InternalEvent<GatewayMetrics> for RequestRejected<'_> {
    fn emit(self, m: &GatewayMetrics) {
        tracing::warn!(reason = self.reason.as_str(), route = self.route, "request rejected");
        m.reject(self.reason);
    }
}

/// A delivery the gateway could not finish (store or queue down): 503, GitHub redelivers.
pub struct WebhookFailed<'a> {
    pub event: EventKind,
    pub reason: &'a str,
}

impl InternalEvent<GatewayMetrics> for WebhookFailed<'_> {
    fn emit(self, m: &GatewayMetrics) {
        let result = DeliveryResult::Error;
        tracing::error!(event = self.event.as_str(), result = result.as_str(), reason = self.reason, "webhook failed");
        m.count(self.event, result);
    }
}

#[cfg(test)]
mod tests {
    use sre_telemetry::testing::assert_event_agrees;

    use super::*;

    #[test]
    fn every_event_logs_what_it_counts() {
        let registry = SharedRegistry::default();
        let m = GatewayMetrics::register(&registry);
        let event = EventKind::WorkflowJob;
        for result in
            [DeliveryResult::Accepted, DeliveryResult::Enriched, DeliveryResult::Duplicate, DeliveryResult::Recorded]
        {
            let changed = assert_event_agrees(&registry, || {
                m.emit(WebhookStored { event, result, enqueued: true, seconds: 0.01 })
            });
            assert!(changed.iter().any(|(n, _)| n == "sre_agent_pipeline_stage_duration_seconds_count"));
        }
        assert_event_agrees(&registry, || m.emit(WebhookIgnored { event: EventKind::Ping, reason: "ping" }));
        for result in
            [DeliveryResult::InvalidSignature, DeliveryResult::BadRequest, DeliveryResult::UnsupportedMediaType]
        {
            let reason = RejectReason::InvalidPayload;
            let changed =
                assert_event_agrees(&registry, || m.emit(WebhookRejected { event, result, reason, message: "bad" }));
            assert!(changed.iter().any(|(n, _)| n == "sre_agent_gateway_rejections_total"), "{changed:?}");
        }
        for reason in RejectReason::ALL.iter().copied() {
            assert_event_agrees(&registry, || m.emit(RequestRejected { reason, route: "/api/v1/runs" }));
        }
        assert_event_agrees(&registry, || m.emit(WebhookFailed { event, reason: "store unavailable" }));
    }
}
