//! The span exporter wrapper: counts what was exported, what failed and every span dropped, and logs failures
//! at most once a minute, so a missing or slow collector is visible without flooding the logs or stopping the
//! service. [`SpanGate`] bounds the spans held for export (memory stays bounded when the collector black-holes)
//! and counts the ones it turns away, which the SDK's batch processor would drop without a trace.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::Context;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::SharedRegistry;

const LOG_EVERY_SECS: u64 = 60;

/// Spans held between their end and the end of their export, at most: the batch processor's queue size, so
/// its own queue never overflows (it would drop spans uncounted).
pub const MAX_QUEUED_SPANS: usize = 2048;

/// Why a span was dropped (`sre_agent_trace_spans_dropped_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Its batch failed to export (no collector, a timeout, an error answer).
    ExportFailed,
    /// [`MAX_QUEUED_SPANS`] were already waiting for a slow or absent collector.
    QueueFull,
}

impl DropReason {
    pub const ALL: [Self; 2] = [Self::ExportFailed, Self::QueueFull];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExportFailed => "export_failed",
            Self::QueueFull => "queue_full",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

/// Counters for the exporter, registered in the process registry.
#[derive(Clone, Debug, Default)]
pub struct ExportMetrics {
    failures: Counter,
    exported: Counter,
    dropped: Family<DropLabels, Counter>,
    /// Spans past the gate whose export has not ended yet.
    in_flight: Arc<AtomicUsize>,
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
        registry.register(
            "sre_agent_trace_spans_dropped",
            "Spans never delivered to the OTLP endpoint, by reason",
            this.dropped.clone(),
        );
        for reason in DropReason::ALL {
            let _ = this.dropped.get_or_create(&DropLabels { reason: reason.as_str() });
        }
        this
    }

    /// Spans dropped so far for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get_or_create(&DropLabels { reason: reason.as_str() }).get()
    }

    fn drop_spans(&self, reason: DropReason, n: usize) {
        self.dropped.get_or_create(&DropLabels { reason: reason.as_str() }).inc_by(n as u64);
    }

    fn record_failure(&self, spans: usize, error: &dyn std::fmt::Display) {
        self.failures.inc();
        self.drop_spans(DropReason::ExportFailed, spans);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let last = self.last_logged.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LOG_EVERY_SECS
            && self.last_logged.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(
                dropped_spans = spans,
                failures_total = self.failures.get(),
                error = %error,
                "trace export failed; spans dropped (logged at most once a minute, see sre_agent_trace_spans_dropped_total)"
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
        // Saturating: spans that did not pass a gate (a processor built without one) are not counted in.
        let _ = self.metrics.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(n)));
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

/// The process's span pipeline to an OTLP/gRPC endpoint: gate, batch processor, counting exporter.
pub fn otlp_processor(
    endpoint: &str,
    metrics: ExportMetrics,
) -> Result<SpanGate<opentelemetry_sdk::trace::BatchSpanProcessor>, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor};
    let exporter = CountingExporter::otlp(endpoint, metrics.clone())?;
    let config = BatchConfigBuilder::default().with_max_queue_size(MAX_QUEUED_SPANS).build();
    let batch = BatchSpanProcessor::builder(exporter).with_batch_config(config).build();
    Ok(SpanGate::new(batch, metrics, MAX_QUEUED_SPANS))
}

/// In front of the batch processor: lets at most [`MAX_QUEUED_SPANS`] spans wait for their export (the
/// [`CountingExporter`] with the same metrics releases them) and counts the rest as dropped (`queue_full`).
#[derive(Debug)]
pub struct SpanGate<P> {
    inner: P,
    metrics: ExportMetrics,
    max: usize,
}

impl<P> SpanGate<P> {
    pub fn new(inner: P, metrics: ExportMetrics, max: usize) -> Self {
        Self { inner, metrics, max }
    }
}

impl<P: SpanProcessor> SpanProcessor for SpanGate<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let admitted = self
            .metrics
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| (v < self.max).then_some(v + 1))
            .is_ok();
        if admitted {
            self.inner.on_end(span);
        } else {
            self.metrics.drop_spans(DropReason::QueueFull, 1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use opentelemetry::trace::{Tracer, TracerProvider as _};

    use super::*;

    /// A collector that accepts connections and never answers: span creation stays fast, the spans held stay
    /// bounded, and every span is accounted for, exported or dropped with its reason.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_black_holed_collector_bounds_the_spans_held_and_counts_every_dropped_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept() {
                held.push(socket);
            }
        });
        let registry = SharedRegistry::default();
        let metrics = ExportMetrics::register(&registry);
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_span_processor(otlp_processor(&endpoint, metrics.clone()).unwrap())
            .build();
        let tracer = provider.tracer("test");
        const SPANS: u64 = 10_000;
        let started = Instant::now();
        for _ in 0..SPANS {
            drop(tracer.start("black-holed"));
        }
        let took = started.elapsed();
        let held = metrics.in_flight.load(Ordering::Acquire);
        println!(
            "{SPANS} spans ended in {took:?}; {held} held, {} dropped queue_full",
            metrics.dropped(DropReason::QueueFull)
        );
        assert!(held <= MAX_QUEUED_SPANS, "{held} spans held");
        assert!(metrics.dropped(DropReason::QueueFull) >= SPANS - MAX_QUEUED_SPANS as u64);
        assert!(took < Duration::from_secs(5), "ending spans blocked: {took:?}");

        // Every held span's batch times out (5 s each) and is counted as export_failed.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let accounted = metrics.exported.get()
                + metrics.dropped(DropReason::QueueFull)
                + metrics.dropped(DropReason::ExportFailed);
            if accounted == SPANS {
                break;
            }
            assert!(Instant::now() < deadline, "{accounted} of {SPANS} spans accounted for");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!(
            "after {:?}: exported {}, dropped export_failed {}, queue_full {}, failed batches {}",
            started.elapsed(),
            metrics.exported.get(),
            metrics.dropped(DropReason::ExportFailed),
            metrics.dropped(DropReason::QueueFull),
            metrics.failures.get()
        );
        assert_eq!(metrics.exported.get(), 0);
        assert!(registry.encode(false).contains("sre_agent_trace_spans_dropped_total{reason=\"queue_full\"}"));
        tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(Duration::from_secs(1))).await.unwrap().ok();
    }
}
