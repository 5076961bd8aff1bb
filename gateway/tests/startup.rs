//! With no collector listening, tracing init neither blocks nor fails: the gateway serves within 1 s.

use std::time::{Duration, Instant};

use sre_gateway::{AppState, run};
use sre_telemetry::http::HttpMetrics;

#[tokio::test]
async fn serves_within_one_second_without_a_collector() {
    let start = Instant::now();
    let telemetry = sre_telemetry::init(sre_telemetry::Config {
        // Nothing listens on port 1: every export fails.
        otlp_endpoint: Some("http://127.0.0.1:1".into()),
        ..sre_telemetry::Config::from_env("gateway-startup-test")
    })
    .expect("telemetry init");
    let registry = telemetry.registry();
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::new(
        &b"s"[..],
        sre_gateway::ApiAuth::token("t"),
        sre_store::StoreCell::connect_in_background(format!("sqlite://{}/s.db", dir.path().display())),
        sre_queue::Queue::new("redis://127.0.0.1:6379", "sre:test:startup", "orchestrator").unwrap(),
        &registry,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(state, HttpMetrics::register(&registry), listener, async {
        let _ = stopped.await;
    }));
    // A span that will fail to export, to exercise the exporter path.
    tracing::info_span!("startup_probe").in_scope(|| tracing::info!("serving"));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let elapsed = start.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(elapsed < Duration::from_secs(1), "first answer took {elapsed:?}");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    // Shutdown is bounded even though the collector never answered.
    let shutdown_start = Instant::now();
    telemetry.shutdown(Duration::from_secs(2)).await;
    assert!(shutdown_start.elapsed() < Duration::from_secs(4));
}
