//! W3C trace context over a real gRPC hop on 127.0.0.1, read back from an OTLP receiver the test runs:
//! the real exporter sends both sides' spans; the server span must share the client's trace and have the
//! client span as its parent. Health checks make no spans.

use std::time::Duration;

use sre_otlp_sink::{Sink, SpanRecord};
use sre_proto::CheckPatchRequest;
use sre_proto::policy_client::PolicyClient;
use sre_service_kit::grpc::{ServeOptions, serve};
use sre_telemetry::grpc::{GrpcClientLayer, GrpcMetrics};
use tower::Layer;

const DIFF: &str = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-x = 1 \n+x = 1\n";

fn find<'a>(spans: &'a [SpanRecord], name: &str, kind: &str) -> &'a SpanRecord {
    spans.iter().find(|s| s.name == name && s.kind == kind).unwrap_or_else(|| {
        panic!("no {kind} span {name:?} among {:#?}", spans.iter().map(|s| (&s.name, &s.kind)).collect::<Vec<_>>())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_span_continues_the_client_span() {
    let sink = Sink::default();
    let sink_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = sink_listener.local_addr().unwrap();
    let (sink_stop, sink_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sink.clone().serve(sink_listener, async {
        let _ = sink_stopped.await;
    }));

    let telemetry = sre_telemetry::init(sre_telemetry::Config {
        otlp_endpoint: Some(format!("http://{sink_addr}")),
        ..sre_telemetry::Config::from_env("trace-hop-test")
    })
    .unwrap();
    let registry = telemetry.registry();
    let config = <sre_policy::Config as clap::Parser>::try_parse_from(["sre-policy"]).unwrap();

    // The real policy service, served the way its binary serves it.
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc_listener.local_addr().unwrap();
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (routes, ready) = sre_policy::build(&config, &registry).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts =
        ServeOptions { service_name: "sre.v1.Policy", grpc_listener, http_listener, drain_grace: Duration::ZERO };
    let server = tokio::spawn(serve(opts, registry.clone(), routes, ready, async {
        let _ = stopped.await;
    }));

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}")).unwrap().connect_lazy();
    let traced = GrpcClientLayer::new(grpc_addr.to_string(), GrpcMetrics::client(&registry)).layer(channel.clone());
    let mut client = PolicyClient::new(traced.clone());

    // Health turns SERVING (the policy has no dependencies) and makes no span.
    let mut health = tonic_health::pb::health_client::HealthClient::new(traced);
    let mut status = 0;
    for _ in 0..50 {
        status = health
            .check(tonic_health::pb::HealthCheckRequest { service: "sre.v1.Policy".into() })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or(0);
        if status == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 1, "health never reported SERVING");

    let parent = tracing::info_span!("test_parent");
    let decision = {
        use tracing::Instrument;
        client
            .check_patch(CheckPatchRequest { context: None, diff: DIFF.into() })
            .instrument(parent.clone())
            .await
            .unwrap()
            .into_inner()
    };
    assert!(decision.allowed);
    drop(parent);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    telemetry.shutdown(Duration::from_secs(5)).await;
    let _ = sink_stop.send(());

    let spans = sink.spans();
    let root = find(&spans, "test_parent", "internal");
    let client_span = find(&spans, "sre.v1.Policy/CheckPatch", "client");
    let server_span = find(&spans, "sre.v1.Policy/CheckPatch", "server");
    assert_eq!(client_span.trace_id, root.trace_id);
    assert_eq!(client_span.parent_span_id, root.span_id);
    assert_eq!(server_span.trace_id, client_span.trace_id, "server span is in another trace");
    assert_eq!(server_span.parent_span_id, client_span.span_id, "server span's parent is not the client span");
    assert_eq!(server_span.service, "trace-hop-test");
    for span in [client_span, server_span] {
        assert_eq!(span.attributes["rpc.system"], "grpc");
        assert_eq!(span.attributes["rpc.service"], "sre.v1.Policy");
        assert_eq!(span.attributes["rpc.method"], "CheckPatch");
        assert_eq!(span.attributes["rpc.grpc.status_code"], "0");
    }
    assert_eq!(client_span.attributes["server.address"], "127.0.0.1");
    assert!(!spans.iter().any(|s| s.name.contains("grpc.health")), "health checks must not make spans");

    // The server's metrics saw the call under bounded labels.
    let text = registry.encode(false);
    assert!(
        text.contains(
            r#"sre_agent_grpc_server_requests_total{rpc_service="sre.v1.Policy",rpc_method="CheckPatch",code="OK"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"sre_agent_danger_score_count 1"#), "{text}");
}
