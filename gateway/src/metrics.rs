//! Gateway metric families: webhook outcomes and the pipeline's `ingest` stage.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use sre_telemetry::SharedRegistry;
use sre_telemetry::metrics::{STAGE_BUCKETS, TraceExemplar};

use crate::webhook::EventKind;

/// How a delivery ended (the bounded `result` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryResult {
    Accepted,
    Duplicate,
    Ignored,
    InvalidSignature,
    BadRequest,
    Error,
}

impl DeliveryResult {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::InvalidSignature => "invalid_signature",
            Self::BadRequest => "bad_request",
            Self::Error => "error",
        }
    }
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

#[derive(Clone)]
pub struct GatewayMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    stage_duration: Family<StageLabels, HistogramWithExemplars<TraceExemplar>>,
}

impl GatewayMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self {
            deliveries: Family::default(),
            stage_duration: Family::new_with_constructor(|| HistogramWithExemplars::new(STAGE_BUCKETS.into_iter())),
        };
        registry.register(
            "sre_agent_webhook_deliveries",
            "GitHub webhook deliveries by event type and result",
            this.deliveries.clone(),
        );
        registry.register(
            "sre_agent_pipeline_stage_duration_seconds",
            "Pipeline stage duration (the gateway records the ingest stage)",
            this.stage_duration.clone(),
        );
        this
    }

    pub fn delivery(&self, event: EventKind, result: DeliveryResult) {
        self.deliveries.get_or_create(&DeliveryLabels { event: event.as_str(), result: result.as_str() }).inc();
    }

    pub fn ingest_duration(&self, seconds: f64, exemplar: Option<TraceExemplar>) {
        self.stage_duration.get_or_create(&StageLabels { stage: "ingest" }).observe(seconds, exemplar, None);
    }
}
