//! Cost of one JSON log line: installs telemetry as a binary does (JSON layer after the OpenTelemetry layer,
//! spans sampled, no exporter) and writes `LOGLINE_N` (default 10,000) lines like the gateway's accept line
//! inside an `ingest_webhook` span carrying the five business IDs.
//!
//! ```text
//! cargo build --release -p sre-telemetry --example logline
//! valgrind --tool=callgrind --toggle-collect='*JsonLogLayer*on_event*' \
//!     target/release/examples/logline >/dev/null
//! ```
//! Instructions per line: the inclusive count of `on_event` over the lines (+1 for the init line), or the
//! difference of two runs' totals with different `LOGLINE_N`.

use tracing::field::Empty;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u64 = std::env::var("LOGLINE_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let mut config = sre_telemetry::Config::from_env("gateway");
    config.otlp_endpoint = None;
    let _telemetry = sre_telemetry::init(config).expect("telemetry installs once");

    let span = tracing::info_span!(
        "ingest_webhook",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/webhooks/github",
        github.event = "workflow_job",
        delivery_id = Empty,
        run_key = Empty,
        failure_id = Empty,
        run_id = Empty,
        correlation_id = Empty,
        outcome = Empty,
    );
    span.record("delivery_id", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    sre_telemetry::record_ids(
        &span,
        sre_domain::RunIds {
            delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            run_key: "acme/app@0123456789abcdef0123456789abcdef01234567/lint",
            failure_id: "9f1c2b3a4d5e6f708192a3b4c5d6e7f8",
            run_id: "2f6f0c1e-9b7a-4c53-8d1e-6a1f5b2c3d4e",
            correlation_id: "c0ffee00-1234-4c53-8d1e-6a1f5b2c3d4e",
        },
    );
    let _entered = span.enter();
    for i in 0..n {
        tracing::info!(
            event = "workflow_job",
            result = "accepted",
            enqueued = true,
            stage = "ingest",
            duration_ms = std::hint::black_box(i % 40),
            "webhook stored"
        );
    }
}
