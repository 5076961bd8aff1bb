//! The gateway refuses what it must, with the right status, a JSON message and a counted reason, and stores
//! nothing (checked against the real SQLite store and the real Redis stream): the runs API token, bad
//! webhook deliveries, oversized and slow bodies, and clients that trickle their headers over real TCP.

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sre_gateway::webhook::sign;
use sre_gateway::{Limits, run};
use sre_telemetry::http::HttpMetrics;
use support::{API_TOKEN, Harness, SECRET, failure_body, harness, harness_with, json, send, send_raw, webhook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `sre_agent_gateway_rejections_total{reason}` as the gateway's /metrics shows it.
async fn rejections(h: &Harness, reason: &str) -> f64 {
    let (_, text) = send(&h.router, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let series = format!("sre_agent_gateway_rejections_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
        .parse()
        .unwrap()
}

async fn assert_nothing_stored(h: &Harness) {
    assert_eq!(h.store.count_events().await.unwrap(), 0, "an event was stored");
    assert_eq!(h.store.count_runs().await.unwrap(), 0, "a run was stored");
    assert_eq!(h.queue.depth().await.unwrap().lag, 0, "a job was enqueued");
}

#[tokio::test]
async fn the_runs_api_requires_the_bearer_token() {
    let h = harness().await;
    let submission = r#"{"repo":"acme/app","head_sha":"0123456789abcdef","log":"E501 line too long"}"#;
    let cases = [
        (None, "token_missing", "requires Authorization: Bearer"),
        (Some("Bearer not-the-token".to_owned()), "token_invalid", "invalid API token"),
        (Some(format!("Bearer {API_TOKEN}x")), "token_invalid", "invalid API token"),
        (Some("Basic YWRtaW46YWRtaW4=".to_owned()), "token_malformed", "must be Bearer"),
        (Some(API_TOKEN.to_owned()), "token_malformed", "must be Bearer"),
    ];
    for (auth, reason, message) in cases {
        for (method, path) in [
            ("GET", "/api/v1/runs"),
            ("GET", "/api/v1/runs/some-run/diff"),
            ("GET", "/api/v1/no-such-route"),
            ("POST", "/api/v1/runs"),
        ] {
            let before = rejections(&h, reason).await;
            let mut req = Request::builder().method(method).uri(path).header("content-type", "application/json");
            if let Some(auth) = &auth {
                req = req.header("authorization", auth.as_str());
            }
            let resp =
                tower::ServiceExt::oneshot(h.router.clone(), req.body(Body::from(submission)).unwrap()).await.unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path} with {auth:?}");
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
            let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
            let body = json(&String::from_utf8_lossy(&body));
            assert!(body["error"].as_str().unwrap().contains(message), "{body}");
            assert_eq!(rejections(&h, reason).await, before + 1.0, "{method} {path}: {reason} counted");
        }
    }
    assert_nothing_stored(&h).await;

    // The token opens the API; the webhook keeps its HMAC and needs no token; the probes stay open.
    let (status, body) = send(&h.router, Request::get("/api/v1/runs").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lower = Request::get("/api/v1/runs").header("authorization", format!("bearer {API_TOKEN}"));
    assert_eq!(send_raw(&h.router, lower.body(Body::empty()).unwrap()).await.0, StatusCode::OK);
    let body = failure_body();
    let (status, _) = send_raw(&h.router, webhook("workflow_job", "d-ok", &body, Some(sign(SECRET, &body)))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for path in ["/health", "/ready", "/metrics"] {
        let (status, text) = send_raw(&h.router, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        assert!(!text.contains(API_TOKEN) && !text.contains("test-secret"), "{path} shows a secret");
    }
    // The 401s are counted under their route template, never the raw path.
    let (_, metrics) = send_raw(&h.router, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(metrics.contains(r#"route="/api/v1/runs/{run_id}/diff",status="401""#), "{metrics}");
    assert!(!metrics.contains("no-such-route") && !metrics.contains("some-run"), "{metrics}");
}

/// One bad delivery: what is sent and what must come back.
struct Case {
    name: &'static str,
    request: Request<Body>,
    status: StatusCode,
    reason: &'static str,
    message: &'static str,
}

fn signed(event: Option<&str>, delivery: Option<&str>, content_type: &str, body: &[u8]) -> Request<Body> {
    let mut req = Request::post("/webhooks/github")
        .header("content-type", content_type)
        .header("x-hub-signature-256", sign(SECRET, body));
    if let Some(event) = event {
        req = req.header("x-github-event", event);
    }
    if let Some(delivery) = delivery {
        req = req.header("x-github-delivery", delivery);
    }
    req.body(Body::from(body.to_vec())).unwrap()
}

#[tokio::test]
async fn bad_input_is_refused_counted_and_nothing_is_stored() {
    let limits = Limits { max_body_bytes: 4096, ..Limits::default() };
    let h = harness_with(limits).await;
    let good = failure_body();
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(5000));
    let form = |payload: &str| form_urlencoded::Serializer::new(String::new()).append_pair("payload", payload).finish();
    let sha1_only = Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", "workflow_job")
        .header("x-github-delivery", "d-sha1")
        .header("x-hub-signature", "sha1=0123456789abcdef0123456789abcdef01234567")
        .body(Body::from(good.clone()))
        .unwrap();
    // A body of unannounced length (chunked), over the limit: counted as it arrives.
    let chunks = tokio_stream::iter([vec![b'x'; 3000], vec![b'x'; 3000]].map(Ok::<_, std::io::Error>));
    let streamed = Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", "workflow_job")
        .header("x-github-delivery", "d-stream")
        .body(Body::from_stream(chunks))
        .unwrap();
    let submit = |body: &str| {
        Request::post("/api/v1/runs")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {API_TOKEN}"))
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let cases = vec![
        Case {
            name: "wrong signature",
            request: webhook("workflow_job", "d-1", &good, Some(sign(b"not-the-secret", &good))),
            status: StatusCode::UNAUTHORIZED,
            reason: "signature_invalid",
            message: "does not match",
        },
        Case {
            name: "missing signature",
            request: webhook("workflow_job", "d-2", &good, None),
            status: StatusCode::UNAUTHORIZED,
            reason: "signature_missing",
            message: "missing X-Hub-Signature-256",
        },
        Case {
            name: "sha1-only signature",
            request: sha1_only,
            status: StatusCode::UNAUTHORIZED,
            reason: "signature_sha1_only",
            message: "SHA-1",
        },
        Case {
            name: "body over the limit (announced)",
            request: signed(Some("workflow_job"), Some("d-3"), "application/json", big.as_bytes()),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            reason: "body_too_large",
            message: "over the limit of 4096 bytes",
        },
        Case {
            name: "body over the limit (streamed)",
            request: streamed,
            status: StatusCode::PAYLOAD_TOO_LARGE,
            reason: "body_too_large",
            message: "SRE_MAX_BODY_BYTES",
        },
        Case {
            name: "invalid JSON",
            request: signed(Some("workflow_job"), Some("d-4"), "application/json", b"{\"action\":"),
            status: StatusCode::BAD_REQUEST,
            reason: "invalid_payload",
            message: "not JSON",
        },
        Case {
            name: "invalid JSON in a ping",
            request: signed(Some("ping"), Some("d-5"), "application/json", b"zen"),
            status: StatusCode::BAD_REQUEST,
            reason: "invalid_payload",
            message: "not JSON",
        },
        Case {
            name: "form without a payload field",
            request: signed(Some("workflow_job"), Some("d-6"), "application/x-www-form-urlencoded", b"a=1&b=2"),
            status: StatusCode::BAD_REQUEST,
            reason: "invalid_payload",
            message: "`payload` field",
        },
        Case {
            name: "form whose payload is not JSON",
            request: signed(
                Some("workflow_job"),
                Some("d-7"),
                "application/x-www-form-urlencoded",
                form("{nope").as_bytes(),
            ),
            status: StatusCode::BAD_REQUEST,
            reason: "invalid_payload",
            message: "not JSON",
        },
        Case {
            name: "JSON that is not the event's payload",
            request: signed(Some("workflow_job"), Some("d-8"), "application/json", br#"{"action":"completed"}"#),
            status: StatusCode::BAD_REQUEST,
            reason: "invalid_payload",
            message: "malformed workflow_job payload",
        },
        Case {
            name: "wrong content type",
            request: signed(Some("workflow_job"), Some("d-9"), "text/plain", &good),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            reason: "unsupported_media_type",
            message: "unsupported Content-Type",
        },
        Case {
            name: "missing X-GitHub-Event",
            request: signed(None, Some("d-10"), "application/json", &good),
            status: StatusCode::BAD_REQUEST,
            reason: "event_missing",
            message: "missing X-GitHub-Event",
        },
        Case {
            name: "missing X-GitHub-Delivery",
            request: signed(Some("workflow_job"), None, "application/json", &good),
            status: StatusCode::BAD_REQUEST,
            reason: "delivery_missing",
            message: "X-GitHub-Delivery",
        },
        Case {
            name: "run submission that is not JSON",
            request: submit("repo=acme/app"),
            status: StatusCode::BAD_REQUEST,
            reason: "invalid_submission",
            message: "invalid run submission",
        },
        Case {
            name: "run submission with a path for a repo",
            request: submit(r#"{"repo":"../../etc","head_sha":"0123456789abcdef","log":"x"}"#),
            status: StatusCode::BAD_REQUEST,
            reason: "invalid_submission",
            message: "is not owner/name",
        },
        Case {
            name: "run submission with a non-hex head_sha",
            request: submit(r#"{"repo":"acme/app","head_sha":"main; rm -rf /","log":"x"}"#),
            status: StatusCode::BAD_REQUEST,
            reason: "invalid_submission",
            message: "hex",
        },
        Case {
            name: "run submission over the limit",
            request: submit(&format!(
                r#"{{"repo":"acme/app","head_sha":"0123456789abcdef","log":"{}"}}"#,
                "y".repeat(5000)
            )),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            reason: "body_too_large",
            message: "SRE_MAX_BODY_BYTES",
        },
    ];
    println!("| case | status | reason |");
    for case in cases {
        let before = rejections(&h, case.reason).await;
        let (status, body) = send_raw(&h.router, case.request).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        let message = json(&body)["error"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(case.message), "{}: {message:?} lacks {:?}", case.name, case.message);
        assert_eq!(rejections(&h, case.reason).await, before + 1.0, "{}: {} not counted", case.name, case.reason);
        assert_nothing_stored(&h).await;
        println!("| {} | {} | {} |", case.name, status.as_u16(), case.reason);
    }
}

/// A gateway served over real TCP with short client timeouts.
async fn served(h: &Harness, limits: Limits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = h.state.clone().with_limits(limits);
    let registry = sre_telemetry::SharedRegistry::default();
    tokio::spawn(run(state, HttpMetrics::register(&registry), listener, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Writes `bytes` one at a time, `gap` apart, until the server closes the connection; returns what it
/// answered and when the connection closed.
async fn trickle(addr: std::net::SocketAddr, head: &[u8], bytes: &[u8], gap: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = {
        let bytes = bytes.to_vec();
        tokio::spawn(async move {
            for b in bytes.iter().cycle() {
                tokio::time::sleep(gap).await;
                if write.write_all(&[*b]).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut answer = Vec::new();
    let read_all = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut answer)).await;
    let closed = start.elapsed();
    writer.abort();
    assert!(read_all.is_ok(), "the server kept a trickling connection open for 20 s");
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

#[tokio::test]
async fn slow_clients_are_disconnected() {
    let h = harness().await;
    let limits =
        Limits { header_timeout: Duration::from_secs(1), body_timeout: Duration::from_secs(1), ..Limits::default() };
    let (addr, stop) = served(&h, limits).await;

    // Headers trickled a byte every 100 ms, never finished: closed after the header timeout, no answer.
    let header_before = rejections(&h, "header_timeout").await;
    let (answer, closed) = trickle(
        addr,
        b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\n",
        b"X-Slow: aaaaaaaa\r\n",
        Duration::from_millis(100),
    )
    .await;
    println!("header trickle: closed after {closed:?}, answer {answer:?}");
    assert!(closed >= Duration::from_millis(900) && closed < Duration::from_secs(5), "{closed:?}");
    assert!(!answer.contains("202") && !answer.contains("200 OK"), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while rejections(&h, "header_timeout").await < header_before + 1.0 {
        assert!(Instant::now() < deadline, "header_timeout not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Headers complete, the body trickled: 408 with a JSON message, then the connection is closed.
    let body = failure_body();
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: workflow_job\r\n\
         X-GitHub-Delivery: d-slow\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n",
        sign(SECRET, &body),
        body.len()
    );
    let body_before = rejections(&h, "body_timeout").await;
    let (answer, closed) = trickle(addr, head.as_bytes(), &body, Duration::from_millis(100)).await;
    println!("body trickle: closed after {closed:?}, answer {:?}", answer.lines().next());
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close") && answer.contains("SRE_HTTP_BODY_TIMEOUT_SECONDS"), "{answer}");
    assert!(closed >= Duration::from_millis(900) && closed < Duration::from_secs(5), "{closed:?}");
    assert_eq!(rejections(&h, "body_timeout").await, body_before + 1.0);
    assert_nothing_stored(&h).await;

    // A client that sends at a normal pace is served on the same server.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.replace("d-slow", "d-fast").as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut answer = vec![0; 4096];
    let n = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let _ = stop.send(());
}
