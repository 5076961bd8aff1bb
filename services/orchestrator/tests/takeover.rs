//! A worker that dies mid-run loses its job fast, a live one never: while a run is in flight its worker renews
//! its hold on the job (the heartbeat), so another orchestrator reclaims the job only once the heartbeats
//! stop, within `SRE_RECLAIM_IDLE_SECONDS`; and an orchestrator restarted under the same consumer name takes
//! its own unacknowledged jobs back at once.
//!
//! The first orchestrator is the real binary, SIGKILLed mid-run: its planner is a socket that accepts and
//! never answers, so the run stays in its first stage for as long as the test wants. The second runs in
//! process with a loop guard of one attempt, so the run it takes over (its second attempt) ends `blocked`
//! at once without calling any service: what is checked is who took the job, and when.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sre_domain::{Run, RunStatus};
use sre_queue::{Publish, Queue};
use sre_store::Store;

/// A gRPC "service" that accepts connections and never answers: a stage that takes as long as the test.
async fn hanging_service() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

struct Setup {
    _data: tempfile::TempDir,
    database_url: String,
    stream: String,
    store: Store,
    run: Run,
}

/// A stored run with its job in a fresh stream.
async fn setup(test: &str) -> Setup {
    let data = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/sre.db", data.path().display());
    let store = Store::connect(&database_url).await.unwrap();
    let stream = support::fresh_stream(test);
    let queue = Queue::new(&support::redis_url(), &stream, sre_queue::DEFAULT_GROUP).unwrap();
    queue.ensure_group().await.unwrap();
    let run = support::stored_run(&store, 1).await;
    queue.publish(run.ids(), Publish::default()).await.unwrap();
    store.mark_enqueued(&run.run_id).await.unwrap();
    Setup { _data: data, database_url, stream, store, run }
}

/// The orchestrator binary as a child process (killed when dropped).
struct Process(Child);

impl Process {
    fn spawn(args: &[String], data_dir: &std::path::Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_sre-orchestrator"))
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .env("OTEL_SDK_DISABLED", "true")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self(child)
    }

    /// SIGKILL: no drain, no ack, the job left pending with this process's consumer.
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(store: &Store, run_id: &str, within: Duration, what: &str, done: impl Fn(&Run) -> bool) -> Run {
    let deadline = Instant::now() + within;
    loop {
        let run = store.get_run(run_id).await.unwrap().unwrap();
        if done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}: {run:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs an in-process orchestrator until the returned sender is used.
fn in_process(config: sre_orchestrator::Config) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        sre_orchestrator::run(config, sre_telemetry::SharedRegistry::default(), listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_slow_worker_keeps_its_job_and_a_killed_ones_is_taken_over() {
    let s = setup("takeover").await;
    let hang = hanging_service().await;
    let timing = ["--reclaim-idle-seconds", "3", "--heartbeat-seconds", "1"];
    let slow = support::args(&s.database_url, &s.stream, "takeover-a", &hang, &timing);
    let mut a = Process::spawn(&slow, s._data.path());
    let running = wait_for(&s.store, &s.run.run_id, Duration::from_secs(30), "A claims the run", |r| {
        r.status == RunStatus::Running
    })
    .await;
    assert_eq!(running.attempts, 1);

    // B watches the same group, reclaiming anything idle for 3 s, for more than three times that.
    let mut config =
        support::config(&support::args(&s.database_url, &s.stream, "takeover-b", "http://127.0.0.1:9", &timing));
    config.max_attempts = 1;
    let (stop_b, b) = in_process(config);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let still = s.store.get_run(&s.run.run_id).await.unwrap().unwrap();
    assert_eq!((still.status, still.attempts), (RunStatus::Running, 1), "the live worker's job was stolen: {still:#?}");

    // A dies mid-stage: B takes the job over once A's last heartbeat is 3 s old.
    a.kill();
    let killed = Instant::now();
    let taken =
        wait_for(&s.store, &s.run.run_id, Duration::from_secs(15), "B takes the job over", Run::is_terminal).await;
    let after = killed.elapsed();
    println!("taken over {:.1} s after the SIGKILL (reclaim timeout 3 s, heartbeat 1 s)", after.as_secs_f64());
    assert_eq!(taken.status, RunStatus::Blocked, "{taken:#?}");
    assert_eq!(taken.attempts, 2, "{taken:#?}");
    assert!(taken.reason.contains("attempts"), "{}", taken.reason);
    let _ = stop_b.send(());
    b.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_consumer_takes_its_own_jobs_back_at_once() {
    let s = setup("resume").await;
    let hang = hanging_service().await;
    // A reclaim timeout of ten minutes: only the consumer's own pending read can explain a quick resume.
    let timing = ["--reclaim-idle-seconds", "600", "--heartbeat-seconds", "5"];
    let mut a = Process::spawn(&support::args(&s.database_url, &s.stream, "resume-x", &hang, &timing), s._data.path());
    wait_for(&s.store, &s.run.run_id, Duration::from_secs(30), "A claims the run", |r| r.status == RunStatus::Running)
        .await;
    a.kill();

    let restarted = Instant::now();
    let mut config =
        support::config(&support::args(&s.database_url, &s.stream, "resume-x", "http://127.0.0.1:9", &timing));
    config.max_attempts = 1;
    let (stop, b) = in_process(config);
    let resumed =
        wait_for(&s.store, &s.run.run_id, Duration::from_secs(10), "the restart resumes the run", Run::is_terminal)
            .await;
    println!("resumed {:.1} s after the restart", restarted.elapsed().as_secs_f64());
    assert_eq!((resumed.status, resumed.attempts), (RunStatus::Blocked, 2), "{resumed:#?}");
    let _ = stop.send(());
    b.await.unwrap();
}
