//! Durability under `kill -9`: the real `sre-gateway` binary, real Redis, SQLite (a temp file) and PostgreSQL
//! (a fresh database). Clients fire signed ~17 KB deliveries concurrently; the gateway is SIGKILLed while
//! requests are in flight. Afterwards every delivery it answered 2xx is in the store, whole (event row with the
//! exact body, and its run or pending event), and its job is on the Redis stream; nothing is half-written (no
//! event without its run or pending event, no run or pending event without its event). A restart on the same
//! database serves again and treats an acknowledged delivery as the duplicate it is.
//!
//! PostgreSQL comes from SRE_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), Redis from
//! REDIS_URL (default redis://127.0.0.1:6379).

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::Row;
use sre_gateway::webhook::sign;
use sre_queue::{JobKind, Queue};
use sre_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const SECRET: &str = "durability-secret";
/// Concurrent clients, each sending one delivery after another.
const CLIENTS: usize = 16;
/// Acknowledged deliveries to wait for before the kill (so the kill lands in a steady burst).
const ACKED_BEFORE_KILL: usize = 150;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// What a client sent, and what it got back.
#[derive(Clone, Debug)]
struct Sent {
    delivery_id: String,
    kind: Kind,
    body: Arc<Vec<u8>>,
    /// The answer's status and JSON body, when one came.
    answer: Option<(u16, serde_json::Value)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// workflow_job failure: a run.
    Job,
    /// workflow_run failure: a pending event (resolved into runs later by the orchestrator).
    Workflow,
}

/// A delivery body padded to GitHub's usual ~17 KB (a long pull_requests list), unique per `n`.
fn body(kind: Kind, n: usize) -> Vec<u8> {
    let sha = format!("{n:040x}");
    let pulls: Vec<serde_json::Value> = (0..215)
        .map(|i| serde_json::json!({"id": i, "number": i, "url": format!("https://api.github.com/repos/dur/app/pulls/{i}")}))
        .collect();
    let value = match kind {
        Kind::Job => serde_json::json!({
            "action": "completed",
            "workflow_job": {"id": n, "run_id": 1_000_000 + n, "run_attempt": 1, "name": "lint", "workflow_name": "CI",
                             "head_sha": sha, "head_branch": "main", "conclusion": "failure"},
            "repository": {"full_name": "dur/app"},
            "pull_requests": pulls,
        }),
        Kind::Workflow => serde_json::json!({
            "action": "completed",
            "workflow_run": {"id": n, "name": "CI", "head_sha": sha, "head_branch": "main", "conclusion": "failure",
                             "run_attempt": 1, "pull_requests": pulls},
            "repository": {"full_name": "dur/app"},
        }),
    };
    serde_json::to_vec(&value).unwrap()
}

/// One HTTP/1.1 request on its own connection; the status and JSON body, or `None` when the connection failed
/// before a whole answer came (the gateway died).
async fn post(addr: &str, event: &str, delivery_id: &str, body: &[u8]) -> Option<(u16, serde_json::Value)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-GitHub-Event: {event}\r\n\
         X-GitHub-Delivery: {delivery_id}\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sign(SECRET.as_bytes(), body),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    stream.write_all(body).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let (headers, rest) = text.split_once("\r\n\r\n")?;
    // A whole answer only: the body must be as long as Content-Length says.
    let length: usize = headers
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse().ok())?;
    if rest.len() != length {
        return None;
    }
    Some((status, serde_json::from_str(rest).ok()?))
}

struct Gateway {
    child: Child,
    addr: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the real binary and waits until `/ready` is 200.
async fn start_gateway(database_url: &str, stream: &str, data_dir: &std::path::Path) -> Gateway {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_sre-gateway"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SRE_HTTP_ADDR", &addr)
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("SRE_API_TOKEN", "durability-test-api-token")
        .env("DATABASE_URL", database_url)
        .env("REDIS_URL", redis_url())
        .env("SRE_QUEUE_STREAM", stream)
        .env("SRE_DATA_DIR", data_dir)
        .env("OTEL_SDK_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start sre-gateway");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sre-gateway exited during start-up: {status}");
        }
        if ready(&addr).await {
            return Gateway { child, addr };
        }
        assert!(Instant::now() < deadline, "sre-gateway at {addr} not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ready(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else { return false };
    let request = format!("GET /ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
    answer.starts_with(b"HTTP/1.1 200")
}

/// Every delivery the clients sent (answered or not) once the gateway was killed mid-burst.
async fn burst_and_kill(gateway: &mut Gateway) -> Vec<Sent> {
    let acked = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(1));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (addr, acked, killed, next) = (gateway.addr.clone(), acked.clone(), killed.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let kind = if n % 3 == 0 { Kind::Workflow } else { Kind::Job };
                let body = Arc::new(body(kind, n));
                let delivery_id = format!("dur-{}-{n}", uuid::Uuid::new_v4().simple());
                let event = if kind == Kind::Job { "workflow_job" } else { "workflow_run" };
                let answer = post(&addr, event, &delivery_id, &body).await;
                let failed = answer.is_none();
                if answer.as_ref().is_some_and(|(s, _)| (200..300).contains(s)) {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                sent.push(Sent { delivery_id, kind, body, answer });
                // Before the kill every request must get an answer; after it, stop at the first failure.
                if failed {
                    assert!(killed.load(Ordering::SeqCst), "a request failed before the kill");
                    return sent;
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::Relaxed) < ACKED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "only {} deliveries acknowledged in 60 s", acked.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    // tokio's start_kill is SIGKILL on Unix: no shutdown hook, no flush, no drain.
    gateway.child.start_kill().unwrap();
    let status = gateway.child.wait().await.unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "the gateway did not die of SIGKILL: {status}");
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.unwrap());
    }
    all
}

/// Every job on the stream: (whether it is an event job, run_id, delivery_id).
async fn jobs_on(stream: &str) -> HashSet<(bool, String, String)> {
    let queue = Queue::new(&redis_url(), stream, "durability-check").unwrap();
    queue.ensure_group().await.unwrap();
    let mut reader = queue.reader("check", Duration::from_millis(200));
    let mut jobs = HashSet::new();
    loop {
        let batch = reader.read(1000).await.unwrap();
        if batch.is_empty() {
            return jobs;
        }
        for d in batch {
            jobs.insert((d.job.kind == JobKind::Event, d.job.run_id, d.job.delivery_id));
        }
    }
}

async fn drop_stream(stream: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: Result<(), _> = redis::cmd("DEL").arg(stream).arg(format!("{stream}:delayed")).query_async(&mut conn).await;
}

/// The whole check against one database.
async fn kill_mid_burst(database_url: &str, raw: &sqlx::AnyPool) {
    let dir = tempfile::tempdir().unwrap();
    let stream = format!("sre:test:durability:{}", uuid::Uuid::new_v4().simple());
    let mut gateway = start_gateway(database_url, &stream, dir.path()).await;
    let sent = burst_and_kill(&mut gateway).await;

    let acked: Vec<&Sent> =
        sent.iter().filter(|s| s.answer.as_ref().is_some_and(|(st, _)| (200..300).contains(st))).collect();
    let unanswered = sent.iter().filter(|s| s.answer.is_none()).count();
    let refused: Vec<_> = sent.iter().filter_map(|s| s.answer.as_ref().filter(|(st, _)| *st >= 300)).collect();
    assert!(refused.is_empty(), "non-2xx answers before the kill: {refused:?}");
    assert!(acked.len() >= ACKED_BEFORE_KILL);
    assert!(unanswered > 0, "no request was in flight at the kill: not a mid-burst kill");

    let store = Store::connect(database_url).await.expect("the store opens after kill -9");
    let jobs = jobs_on(&stream).await;
    let sent_by_id: HashMap<&str, &Sent> = sent.iter().map(|s| (s.delivery_id.as_str(), s)).collect();

    // 1. Every acknowledged delivery: its event with the exact body, its run or pending event, its job queued.
    for s in &acked {
        let (status, answer) = s.answer.as_ref().unwrap();
        let row = sqlx::query("SELECT run_id FROM events WHERE delivery_id = $1")
            .bind(&s.delivery_id)
            .fetch_optional(raw)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("delivery {} was answered {status} but is not in the store", s.delivery_id));
        let payload = store.event_payload(&s.delivery_id).await.unwrap().expect("the event has its body");
        assert_eq!(payload, *s.body, "delivery {}: stored body differs", s.delivery_id);
        match s.kind {
            Kind::Job => {
                assert_eq!(*status, 202, "{answer}");
                let run_id = answer["run_id"].as_str().unwrap();
                assert_eq!(row.get::<String, _>("run_id"), run_id, "delivery {}: event not linked", s.delivery_id);
                let run = store.get_run(run_id).await.unwrap().unwrap_or_else(|| panic!("run {run_id} missing"));
                assert_eq!(run.delivery_id, s.delivery_id);
                // The outbox sweep requeues a queued run whose flag is unset; it has its job anyway.
                assert!(run.enqueued || run.status == sre_domain::RunStatus::Queued, "{run:?}");
                assert!(
                    jobs.contains(&(false, run_id.to_owned(), s.delivery_id.clone())),
                    "run {run_id} of delivery {} was answered 202 but has no job on the stream",
                    s.delivery_id
                );
            }
            Kind::Workflow => {
                assert_eq!(*status, 202, "{answer}");
                let (failure, resolved) = store
                    .pending_event(&s.delivery_id)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("pending event {} missing", s.delivery_id));
                assert!(!resolved);
                assert_eq!(failure.repo, "dur/app");
                assert!(
                    jobs.contains(&(true, String::new(), s.delivery_id.clone())),
                    "delivery {} was answered 202 but has no job on the stream",
                    s.delivery_id
                );
            }
        }
    }

    // 2. Nothing half-written, answered or not: every event is one the clients sent, with its whole body and
    // its run or pending event; every run and pending event has its event.
    let events = sqlx::query("SELECT delivery_id, run_id FROM events").fetch_all(raw).await.unwrap();
    let runs: HashMap<String, String> = sqlx::query("SELECT run_id, delivery_id FROM runs")
        .fetch_all(raw)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("run_id"), r.get("delivery_id")))
        .collect();
    let pending: HashSet<String> = sqlx::query("SELECT delivery_id FROM pending_events")
        .fetch_all(raw)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("delivery_id"))
        .collect();
    let mut stored = HashSet::new();
    for e in &events {
        let id: String = e.get("delivery_id");
        let s = sent_by_id.get(id.as_str()).unwrap_or_else(|| panic!("event {id} was never sent"));
        let payload = store.event_payload(&id).await.unwrap().expect("the event has its body");
        assert_eq!(payload, *s.body, "event {id}: torn body");
        match s.kind {
            Kind::Job => {
                let run_id: String = e.get("run_id");
                assert_eq!(runs.get(&run_id), Some(&id), "event {id} without its run");
            }
            Kind::Workflow => assert!(pending.contains(&id), "event {id} without its pending event"),
        }
        stored.insert(id);
    }
    for (run_id, delivery_id) in &runs {
        assert!(stored.contains(delivery_id), "run {run_id} without its event {delivery_id}");
    }
    for delivery_id in &pending {
        assert!(stored.contains(delivery_id), "pending event without its event {delivery_id}");
    }
    let committed_unanswered = sent.iter().filter(|s| s.answer.is_none() && stored.contains(&s.delivery_id)).count();
    eprintln!(
        "{}: {} sent, {} acknowledged (all stored and queued), {unanswered} cut off by the kill ({committed_unanswered} \
         of them committed, whole), {} events, {} runs, {} pending events, {} jobs",
        store.backend().db_system(),
        sent.len(),
        acked.len(),
        events.len(),
        runs.len(),
        pending.len(),
        jobs.len()
    );

    // 3. A restart on the same database serves, and an acknowledged delivery is a duplicate with its run.
    let gateway = start_gateway(database_url, &stream, dir.path()).await;
    let first_job = acked.iter().find(|s| s.kind == Kind::Job).expect("an acknowledged workflow_job");
    let (status, answer) =
        post(&gateway.addr, "workflow_job", &first_job.delivery_id, &first_job.body).await.expect("an answer");
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "{answer}");
    assert_eq!(answer["run_id"], first_job.answer.as_ref().unwrap().1["run_id"]);
    drop(gateway);
    drop_stream(&stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_survives_kill_9_mid_burst() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sre-agent.db");
    let url = format!("sqlite://{}", path.display());
    sqlx::any::install_default_drivers();
    // Lazy: it first connects after the kill, to the file the gateway created.
    let raw = sqlx::any::AnyPoolOptions::new().max_connections(1).connect_lazy(&url).unwrap();
    kill_mid_burst(&url, &raw).await;
    let check: String = sqlx::query("PRAGMA integrity_check").fetch_one(&raw).await.unwrap().get(0);
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_survives_kill_9_mid_burst() {
    let admin_url =
        std::env::var("SRE_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = Store::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {admin_url} is unreachable ({e}); start it (scripts/test.sh does) or set SRE_TEST_DATABASE_URL")
    });
    let db = format!("sre_durability_{}", uuid::Uuid::new_v4().simple());
    admin.execute_raw(&format!("CREATE DATABASE {db}")).await.unwrap();
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(b, _)| b);
    let url = format!("{base}/{db}");
    sqlx::any::install_default_drivers();
    let raw = sqlx::any::AnyPoolOptions::new().max_connections(2).connect_lazy(&url).unwrap();
    kill_mid_burst(&url, &raw).await;
    raw.close().await;
    let _ = admin.execute_raw(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
}
