//! A minimal OTLP/gRPC trace receiver. Tests start one on `127.0.0.1:0` and read back what the real
//! exporter sent; `scripts/up.sh` runs the `sre-otlp-sink` binary when no collector is configured, so a
//! native mesh's traces land in `data/traces.jsonl` and `scripts/smoke.sh` can check a whole trace.
//! It is no collector: no batching, sampling or forwarding.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use serde::Serialize;

/// One received span, flattened.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct SpanRecord {
    pub service: String,
    pub name: String,
    /// internal, server, client, producer, consumer.
    pub kind: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// "ok", "error" or "unset".
    pub status: String,
    /// String, integer, double and bool attributes (as strings).
    pub attributes: std::collections::BTreeMap<String, String>,
    /// The spans this one links to, as (trace_id, span_id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<(String, String)>,
}

type Callback = Arc<dyn Fn(&SpanRecord) + Send + Sync>;

/// The receiver. Clone it to read spans while it serves.
#[derive(Clone, Default)]
pub struct Sink {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
    on_span: Option<Callback>,
}

impl Sink {
    /// Calls `f` for every span received (the binary appends them to a file).
    pub fn with_callback(f: impl Fn(&SpanRecord) + Send + Sync + 'static) -> Self {
        Self { spans: Arc::default(), on_span: Some(Arc::new(f)) }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Serves OTLP/gRPC on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(self))
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), shutdown)
            .await
    }
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "internal",
    }
}

fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Flattens an export request into records.
pub fn flatten(req: &ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
            .and_then(|a| a.value.as_ref()?.value.as_ref().and_then(value_string))
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let attributes = span
                    .attributes
                    .iter()
                    .filter_map(|a| Some((a.key.clone(), value_string(a.value.as_ref()?.value.as_ref()?)?)))
                    .collect();
                let status = match span.status.as_ref().map(|s| s.code) {
                    Some(1) => "ok",
                    Some(2) => "error",
                    _ => "unset",
                };
                out.push(SpanRecord {
                    service: service.clone(),
                    name: span.name.clone(),
                    kind: kind_name(span.kind).to_owned(),
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    status: status.to_owned(),
                    attributes,
                    links: span.links.iter().map(|l| (hex::encode(&l.trace_id), hex::encode(&l.span_id))).collect(),
                });
            }
        }
    }
    out
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let records = flatten(request.get_ref());
        if let Some(cb) = &self.on_span {
            records.iter().for_each(|r| cb(r));
        }
        if let Ok(mut spans) = self.spans.lock() {
            // Bounded: a long-running sink keeps only the newest spans in memory.
            if spans.len() > 100_000 {
                spans.drain(..50_000);
            }
            spans.extend(records);
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}
