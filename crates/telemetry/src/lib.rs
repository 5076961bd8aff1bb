//! One-call telemetry for every sre-agent binary.
//!
//! [`init`] installs, once per process:
//! - JSON logs on stdout carrying `trace_id`/`span_id` and the business IDs in scope ([`logs`]), with known
//!   credential shapes redacted ([`redact`]);
//! - OTLP/gRPC trace export configured by the standard `OTEL_*` variables, never fatal, with export failures
//!   counted and logged at most once a minute ([`export`]);
//! - the W3C tracecontext + baggage propagator ([`propagation`]);
//! - a Prometheus registry for the process ([`metrics`]).
//!
//! The layers that carry this across process boundaries live here too: [`grpc`] (server and client tower
//! layers) and [`http`] (axum metrics middleware and the `/metrics` handler). W3C inject/extract lives only here.

pub mod export;
pub mod grpc;
pub mod http;
pub mod ids;
pub mod logs;
pub mod metrics;
pub mod propagation;
pub mod redact;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer as _, filter::filter_fn, layer::SubscriberExt, util::SubscriberInitExt};

pub use ids::record_ids;
pub use metrics::SharedRegistry;

/// A notable occurrence of a process: one log line and the metric it moves, written together by
/// [`InternalEvent::emit`] with the same bounded label values (Vector's internal events are the model), so
/// logs and metrics cannot disagree. `M` is the process's metric families.
pub trait InternalEvent<M: ?Sized> {
    fn emit(self, metrics: &M);
}

/// `metrics.emit(SomeEvent { .. })`: the call site reads as the occurrence it reports.
pub trait Emit {
    fn emit<E: InternalEvent<Self>>(&self, event: E) {
        event.emit(self);
    }
}

impl<M> Emit for M {}

/// Noise we never want in the JSON stream: exporter internals report through [`export`] instead.
const DEFAULT_DIRECTIVES: &str = "info,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,h2=warn,hyper=warn,tonic=warn,tower=warn,sqlx=warn";

/// How a process wants its telemetry. [`Config::from_env`] reads the standard variables.
#[derive(Clone, Debug)]
pub struct Config {
    /// `service.name` resource attribute and the `service` key of every log line.
    pub service_name: String,
    /// Where spans go. `None` keeps spans in-process only (IDs still propagate).
    pub otlp_endpoint: Option<String>,
    /// `OTEL_SDK_DISABLED=true`: no tracer provider at all.
    pub sdk_disabled: bool,
    /// `RUST_LOG` or the default directives.
    pub log_directives: String,
    /// Also keep every JSON log line here (tests assert on what a process logged). `None` in binaries.
    pub log_capture: Option<logs::LogCapture>,
}

impl Config {
    /// Reads `OTEL_SERVICE_NAME` (else `default_service`), `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (else `http://127.0.0.1:4317`), `OTEL_SDK_DISABLED` and `RUST_LOG`.
    /// Sampler and resource attributes are read by the SDK itself from
    /// `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` and `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn from_env(default_service: &str) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let service_name = var("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service.to_owned());
        let otlp_endpoint = Some(
            var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
                .unwrap_or_else(|| "http://127.0.0.1:4317".to_owned()),
        );
        let sdk_disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let log_directives = var("RUST_LOG")
            .map(|user| format!("{DEFAULT_DIRECTIVES},{user}"))
            .unwrap_or_else(|| DEFAULT_DIRECTIVES.to_owned());
        Self { service_name, otlp_endpoint, sdk_disabled, log_directives, log_capture: None }
    }
}

/// Errors from [`init`].
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized,
    #[error("invalid log directives {0:?}: {1}")]
    LogFilter(String, String),
}

/// What [`init`] leaves behind: the process registry and the tracer provider to flush on shutdown.
pub struct Telemetry {
    service_name: String,
    registry: SharedRegistry,
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The process-wide metrics registry; components register their families into it.
    pub fn registry(&self) -> SharedRegistry {
        self.registry.clone()
    }

    /// Exports every finished span now (tests read them back from a receiver).
    pub async fn flush(&self) {
        if let Some(provider) = self.provider.clone() {
            let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        }
    }

    /// Flushes pending spans (bounded by `timeout`) and stops the exporter.
    pub async fn shutdown(self, timeout: Duration) {
        if let Some(provider) = self.provider {
            // The SDK's shutdown blocks; keep it off the async workers.
            let done = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout));
            match tokio::time::timeout(timeout + Duration::from_secs(1), done).await {
                Ok(Ok(Ok(()))) => tracing::debug!("tracer provider shut down"),
                Ok(Ok(Err(err))) => tracing::warn!(error = %err, "tracer provider shutdown reported an error"),
                _ => tracing::warn!("tracer provider shutdown timed out"),
            }
        }
    }
}

/// Installs logs, tracing, propagation and the metrics registry for this process. Call once, from inside a
/// Tokio runtime (the OTLP exporter binds its channel to it). Never blocks on, or fails for, a missing collector.
pub fn init(config: Config) -> Result<Telemetry, InitError> {
    propagation::install_global_propagator();
    let registry = SharedRegistry::default();
    let export_metrics = export::ExportMetrics::register(&registry);

    let filter = EnvFilter::try_new(&config.log_directives)
        .map_err(|e| InitError::LogFilter(config.log_directives.clone(), e.to_string()))?;
    let json = logs::JsonLogLayer::new(config.service_name.clone()).with_capture(config.log_capture.clone());

    let provider = (!config.sdk_disabled).then(|| build_provider(&config, export_metrics));
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("sre-agent"))
            .with_tracked_inactivity(false)
            // Six attributes per span that no query uses (source file, line, module, tracing target,
            // thread id and name of an async task's current worker): a third of the gateway's tracing
            // cost per delivery (docs/benchmarks.md). The span name says where it comes from.
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            // Every span, but of the events only warnings and errors become span events (an error event
            // still marks its span's status). Info lines are in the JSON log, joined to the trace by
            // trace_id/span_id; copying each into its span as well cost the gateway ~2% of its
            // instructions per delivery (callgrind, docs/benchmarks.md) and the collector as much again.
            .with_filter(filter_fn(|meta| meta.is_span() || *meta.level() <= tracing::Level::WARN))
    });

    tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
        .with(json)
        .try_init()
        .map_err(|_| InitError::AlreadyInitialized)?;

    if let Some(p) = &provider {
        opentelemetry::global::set_tracer_provider(p.clone());
    }
    tracing::info!(
        service = %config.service_name,
        otlp_endpoint = config.otlp_endpoint.as_deref().unwrap_or("none"),
        sdk_disabled = config.sdk_disabled,
        "telemetry initialised"
    );
    Ok(Telemetry { service_name: config.service_name, registry, provider })
}

fn build_provider(config: &Config, export_metrics: export::ExportMetrics) -> SdkTracerProvider {
    let resource = Resource::builder().with_service_name(config.service_name.clone()).build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        match export::otlp_processor(endpoint, export_metrics) {
            Ok(processor) => builder = builder.with_span_processor(processor),
            // A bad endpoint must not stop the service: spans still get IDs and propagate.
            Err(err) => eprintln!(
                "{{\"level\":\"WARN\",\"service\":\"{}\",\"message\":\"OTLP exporter disabled: {}\"}}",
                config.service_name,
                err.to_string().replace('"', "'")
            ),
        }
    }
    builder.build()
}
