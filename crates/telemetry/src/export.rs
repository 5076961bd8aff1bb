//! The span exporter wrapper: counts what was exported and what failed, and logs failures at most once a
//! minute, so a missing or slow collector is visible without flooding the logs or stopping the service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use prometheus_client::metrics::counter::Counter;

use crate::metrics::SharedRegistry;

const LOG_EVERY_SECS: u64 = 60;

/// Counters for the exporter, registered in the process registry.
#[derive(Clone, Debug, Default)]
pub struct ExportMetrics {
    failures: Counter,
    exported: Counter,
    last_logged: Arc<AtomicU64>,
}

impl ExportMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self::default();
        registry.register(
            "sre_agent_trace_export_failures",
            "Span batches the OTLP exporter failed to deliver",
            this.failures.clone(),
        );
        registry.register(
            "sre_agent_trace_spans_exported",
            "Spans delivered to the OTLP endpoint",
            this.exported.clone(),
        );
        this
    }

    fn record_failure(&self, spans: usize, error: &dyn std::fmt::Display) {
        self.failures.inc();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let last = self.last_logged.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LOG_EVERY_SECS
            && self.last_logged.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(
                dropped_spans = spans,
                failures_total = self.failures.get(),
                error = %error,
                "trace export failed; spans dropped (logged at most once a minute, see sre_agent_trace_export_failures_total)"
            );
        }
    }
}

/// An OTLP/gRPC exporter that reports its own health.
#[derive(Debug)]
pub struct CountingExporter<E> {
    inner: E,
    metrics: ExportMetrics,
}

impl CountingExporter<opentelemetry_otlp::SpanExporter> {
    /// Builds the OTLP/gRPC exporter lazily: nothing connects until the first batch.
    pub fn otlp(endpoint: &str, metrics: ExportMetrics) -> Result<Self, opentelemetry_otlp::ExporterBuildError> {
        let inner = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self { inner, metrics })
    }
}

impl<E> CountingExporter<E> {
    pub fn new(inner: E, metrics: ExportMetrics) -> Self {
        Self { inner, metrics }
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                self.metrics.exported.inc_by(n as u64);
            }
            Err(err) => self.metrics.record_failure(n, err),
        };
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
