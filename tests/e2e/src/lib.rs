//! The whole mesh in one process, for end-to-end tests: the five gRPC services served on 127.0.0.1 exactly
//! as their binaries serve them (health, reflection, telemetry layer, metrics port), the gateway's router,
//! the orchestrator's worker loop, real Redis and a SQLite store, and an OTLP receiver that collects every
//! span. Each process keeps its own metrics registry, so a test scrapes each as Prometheus would.
//!
//! One telemetry setup per test binary ([`telemetry`]): tracing is process-global. [`contract`] is the
//! observability contract of docs/observability.md, parsed and checkable.

pub mod contract;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use sre_domain::Run;
use sre_otlp_sink::{Sink, SpanRecord};
use sre_service_kit::testing::InProcess;
use sre_store::Store;
use sre_telemetry::SharedRegistry;
use tokio::sync::watch;
use tower::ServiceExt;

/// The webhook secret of the in-process gateway.
pub const SECRET: &[u8] = b"e2e-webhook-secret";
/// The runs API token of the in-process gateway; [`Mesh::send`] and [`Mesh::get`] carry it.
pub const API_TOKEN: &str = "e2e-api-token-0123456789";

/// The OTLP receiver every span of this test binary is exported to, and the registry of the process that
/// owns the tracer (it carries the trace-export families).
pub struct Telemetry {
    pub sink: Sink,
    pub registry: SharedRegistry,
    /// Every JSON log line any in-process process wrote.
    pub logs: sre_telemetry::logs::LogCapture,
    inner: sre_telemetry::Telemetry,
}

impl Telemetry {
    /// Exports every finished span to the sink now.
    pub async fn flush(&self) {
        self.inner.flush().await;
    }

    /// Spans received so far.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.sink.spans()
    }
}

/// Telemetry for this test binary, started once: an OTLP receiver on a loopback port and the real exporter
/// pointed at it, both on a runtime of their own so they outlive each test's runtime.
pub fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let sink = Sink::default();
        let served = sink.clone();
        let logs = sre_telemetry::logs::LogCapture::default();
        let capture = logs.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(served.serve(listener, std::future::pending()));
                let telemetry = sre_telemetry::init(sre_telemetry::Config {
                    otlp_endpoint: Some(format!("http://{addr}")),
                    log_capture: Some(capture),
                    ..sre_telemetry::Config::from_env("e2e")
                })
                .expect("telemetry init");
                tx.send(telemetry).unwrap();
                std::future::pending::<()>().await;
            });
        });
        let inner = rx.recv().unwrap();
        Telemetry { sink, registry: inner.registry(), logs, inner }
    })
}

/// Options of a mesh.
#[derive(Clone, Debug)]
pub struct MeshOptions {
    pub workers: u16,
    pub max_attempts: u32,
    /// First retry delay after a transient failure.
    pub retry_base_ms: u64,
    /// Start the orchestrator (off: only the gateway ingests).
    pub orchestrator: bool,
    /// Changes the orchestrator's configuration before it starts (limits, guards).
    pub configure: fn(&mut sre_orchestrator::Config),
    /// The GitHub backend (the orchestrator and the pr service), pointed at a fake GitHub.
    pub github: Option<GithubOptions>,
    /// The planner's LLM planner: an OpenAI-compatible base URL (a fake's) and the model name.
    pub llm: Option<(String, String)>,
}

/// Where the GitHub backend of a mesh goes: a GitHub App on a (fake) GitHub.
#[derive(Clone, Debug)]
pub struct GithubOptions {
    pub api_url: String,
    pub git_url: String,
    pub app_id: u64,
    pub private_key_file: PathBuf,
}

impl GithubOptions {
    fn args(&self) -> Vec<String> {
        [
            "--github-app-id",
            &self.app_id.to_string(),
            "--github-private-key-file",
            self.private_key_file.to_str().expect("a UTF-8 key path"),
            "--github-api-url",
            &self.api_url,
            "--github-git-url",
            &self.git_url,
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

impl Default for MeshOptions {
    fn default() -> Self {
        Self {
            workers: 1,
            max_attempts: 3,
            retry_base_ms: 200,
            orchestrator: true,
            configure: |_| {},
            github: None,
            llm: None,
        }
    }
}

/// How a service is built again (its gRPC name and a constructor over a registry).
type Builder = (&'static str, Box<dyn Fn(&SharedRegistry) -> tonic::service::Routes + Send + Sync>);

/// A running in-process mesh.
pub struct Mesh {
    pub repos: tempfile::TempDir,
    pub data: tempfile::TempDir,
    pub store: Store,
    pub gateway: axum::Router,
    /// Every process's registry by process name (gateway, orchestrator, planner, policy, scanner,
    /// validator, pr).
    pub registries: BTreeMap<&'static str, SharedRegistry>,
    pub services: BTreeMap<&'static str, InProcess>,
    builders: BTreeMap<&'static str, Builder>,
    stopped: BTreeMap<String, std::net::SocketAddr>,
    pub stream: String,
    stop: watch::Sender<bool>,
    orchestrator: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

/// A registry as `sre_telemetry::init` gives a binary: with the trace-export families. (Only the registry of
/// the process owning the tracer sees them move; in a binary every process owns its own.)
fn process_registry() -> SharedRegistry {
    let registry = SharedRegistry::default();
    let _ = sre_telemetry::export::ExportMetrics::register(&registry);
    registry
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

impl Mesh {
    /// Starts every process of the mesh on loopback, over a fresh store and a fresh Redis stream.
    pub async fn start(opts: MeshOptions) -> Self {
        // Tracing first: every span of the mesh goes to this binary's receiver.
        telemetry();
        let repos_tmp = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let repos_dir = repos_tmp.path().to_str().unwrap().to_owned();
        let mut registries = BTreeMap::new();
        let mut services = BTreeMap::new();

        let mut builders: BTreeMap<&'static str, Builder> = BTreeMap::new();
        macro_rules! service {
            ($name:literal, $grpc:literal, $krate:ident, $args:expr) => {{
                let args: Vec<String> = $args.iter().map(|a| a.to_string()).collect();
                let config =
                    $krate::Config::try_parse_from(std::iter::once(concat!("sre-", $name).to_owned()).chain(args))
                        .expect(concat!($name, " config"));
                let build: Builder = (
                    $grpc,
                    Box::new(move |registry: &SharedRegistry| {
                        $krate::build(&config, registry).expect(concat!($name, " build")).0
                    }),
                );
                let registry = process_registry();
                services.insert($name, InProcess::start($grpc, registry.clone(), (build.1)(&registry)).await);
                registries.insert($name, registry);
                builders.insert($name, build);
            }};
        }
        let repos = repos_dir.as_str();
        let mut planner_args = vec!["--repos-dir".to_owned(), repos.to_owned()];
        if let Some((base_url, model)) = &opts.llm {
            planner_args.extend([
                "--llm-base-url".to_owned(),
                base_url.clone(),
                "--llm-model".to_owned(),
                model.clone(),
            ]);
        }
        service!("planner", "sre.v1.Planner", sre_planner, planner_args);
        service!("policy", "sre.v1.Policy", sre_policy, Vec::<String>::new());
        service!("scanner", "sre.v1.Scanner", sre_scanner, ["--repos-dir", repos]);
        service!("validator", "sre.v1.Validator", sre_validator, ["--repos-dir", repos]);
        let mut pr_args = vec!["--repos-dir".to_owned(), repos.to_owned()];
        if let Some(github) = &opts.github {
            pr_args.extend(["--backend".to_owned(), "github".to_owned()]);
            pr_args.extend(github.args());
        }
        service!("pr", "sre.v1.PullRequests", sre_pr, pr_args);

        let database_url = format!("sqlite://{}/sre.db", data.path().display());
        let stream = format!("sre:test:e2e:{}", uuid::Uuid::new_v4().simple());
        let store = Store::connect(&database_url).await.unwrap();
        let queue = sre_queue::Queue::new(&redis_url(), &stream, sre_queue::DEFAULT_GROUP).unwrap();
        queue
            .ping()
            .await
            .unwrap_or_else(|e| panic!("Redis at {} is unreachable ({e}); start redis-server", redis_url()));
        queue.ensure_group().await.unwrap();

        let gw_registry = process_registry();
        let gateway = sre_gateway::routes::router(
            sre_gateway::AppState::new(
                SECRET,
                sre_gateway::ApiAuth::token(API_TOKEN),
                sre_store::StoreCell::ready(store.clone()),
                queue,
                &gw_registry,
            ),
            sre_telemetry::http::HttpMetrics::register(&gw_registry),
        );
        registries.insert("gateway", gw_registry);

        let (stop, stop_rx) = watch::channel(false);
        let orchestrator = if opts.orchestrator {
            let url = |name: &str| services[name].url();
            let mut args: Vec<String> = [
                "sre-orchestrator",
                "--http-addr",
                "127.0.0.1:0",
                "--redis-url",
                &redis_url(),
                "--database-url",
                &database_url,
                "--consumer",
                "e2e",
                "--repos-dir",
                &repos_dir,
            ]
            .map(str::to_owned)
            .to_vec();
            if let Some(github) = &opts.github {
                args.extend(["--backend".to_owned(), "github".to_owned()]);
                args.extend(github.args());
            }
            let mut config = sre_orchestrator::Config::try_parse_from(args).unwrap();
            config.stream.clone_from(&stream);
            config.planner_url = url("planner");
            config.policy_url = url("policy");
            config.scanner_url = url("scanner");
            config.validator_url = url("validator");
            config.pr_url = url("pr");
            config.workers = opts.workers;
            config.max_attempts = opts.max_attempts;
            config.retry_base_ms = opts.retry_base_ms;
            config.validate_timeout_seconds = 120;
            (opts.configure)(&mut config);
            // Its own registry: several meshes of one test binary run side by side.
            let registry = process_registry();
            registries.insert("orchestrator", registry.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut stopped = stop_rx.clone();
            let task = tokio::spawn(sre_orchestrator::run(config, registry, listener, async move {
                let _ = stopped.changed().await;
            }));
            // Its families are registered before its HTTP port answers: wait for that.
            let deadline = Instant::now() + Duration::from_secs(10);
            while sre_service_kit::probe::check(addr).is_err() {
                assert!(Instant::now() < deadline, "the orchestrator's HTTP port never answered");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Some(task)
        } else {
            None
        };
        Self {
            repos: repos_tmp,
            data,
            store,
            gateway,
            registries,
            services,
            builders,
            stopped: BTreeMap::new(),
            stream,
            stop,
            orchestrator,
        }
    }

    pub fn repos_dir(&self) -> &Path {
        self.repos.path()
    }

    /// Sends a signed webhook through the gateway; returns the status and the JSON answer.
    pub async fn webhook(&self, event: &str, delivery: &str, body: &str) -> (StatusCode, serde_json::Value) {
        let req = Request::post("/webhooks/github")
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", sre_gateway::webhook::sign(SECRET, body.as_bytes()))
            .body(Body::from(body.to_owned()))
            .unwrap();
        let (status, text) = self.send(req).await;
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Any request to the gateway's router, as the API client sends it: a runs API request without an
    /// Authorization header of its own gets the bearer token.
    pub async fn send(&self, mut req: Request<Body>) -> (StatusCode, String) {
        if req.uri().path().starts_with("/api/v1") && !req.headers().contains_key("authorization") {
            let bearer = format!("Bearer {API_TOKEN}").parse().expect("a header value");
            req.headers_mut().insert(axum::http::header::AUTHORIZATION, bearer);
        }
        self.send_raw(req).await
    }

    /// A request to the gateway's router exactly as given.
    pub async fn send_raw(&self, req: Request<Body>) -> (StatusCode, String) {
        let resp = self.gateway.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET path` on the gateway.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// Waits until the run is terminal.
    pub async fn wait_terminal(&self, run_id: &str, timeout: Duration) -> Run {
        let deadline = Instant::now() + timeout;
        loop {
            let run = self.store.get_run(run_id).await.unwrap().unwrap();
            if run.is_terminal() {
                return run;
            }
            assert!(Instant::now() < deadline, "run did not finish within {timeout:?}: {run:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Prometheus text exposition of one process.
    pub fn scrape(&self, process: &str) -> String {
        self.registries[process].encode(false)
    }

    /// Waits until `series` (a full `name{labels}` prefix of one exposition line) of `process` reads `want`:
    /// a stage records its result in the store a moment before its event is counted.
    pub async fn wait_metric(&self, process: &str, series: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.scrape(process);
            let got =
                text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
            if got == Some(want) {
                return;
            }
            assert!(Instant::now() < deadline, "{process}: {series} is {got:?}, not {want}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops one service (its port refuses connections until [`Self::restart_service`]).
    pub async fn stop_service(&mut self, name: &str) {
        let service = self.services.remove(name).unwrap_or_else(|| panic!("no running service {name}"));
        let addr = service.addr;
        service.stop().await;
        self.stopped.insert(name.to_owned(), addr);
    }

    /// Starts a stopped service again on the port it had.
    pub async fn restart_service(&mut self, name: &'static str) {
        let addr = self.stopped.remove(name).unwrap_or_else(|| panic!("{name} was not stopped"));
        let (grpc, build) = &self.builders[name];
        let registry = self.registries[name].clone();
        let routes = build(&registry);
        self.services.insert(name, InProcess::start_on(addr, grpc, registry, routes).await);
    }

    /// Stops the orchestrator and the services.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(o) = self.orchestrator.take() {
            o.await.unwrap().unwrap();
        }
        for (_, s) in std::mem::take(&mut self.services) {
            s.stop().await;
        }
    }
}

/// The CI workflow of [`lint_failure_repo`]: workflow "CI", job "lint", whose last step runs `make test`.
pub const LINT_WORKFLOW: &str = "name: CI\non: [push, pull_request]\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: Lint\n        run: make test\n";

/// A repository under `repos/acme/app` whose `make test` fails on trailing whitespace, and whose CI workflow
/// (job "lint") runs it: the validator re-runs that step.
pub fn lint_failure_repo(repos: &Path) -> String {
    use sre_gitwork::testing::{git, init_repo};
    let repo = repos.join("acme").join("app");
    init_repo(&repo);
    std::fs::write(repo.join("app.py"), "def add(a, b):   \n    return a + b  \n").unwrap();
    std::fs::write(repo.join("Makefile"), "test:\n\t! grep -nE '[[:space:]]+$$' app.py\n").unwrap();
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join(".github/workflows/lint.yml"), LINT_WORKFLOW).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "app with trailing whitespace"]);
    git(&repo, &["rev-parse", "HEAD"])
}

/// A `workflow_job` completed/failure payload as GitHub sends it (the fields the gateway reads).
pub fn workflow_job_failure(repo: &str, sha: &str, job: &str, job_id: u64, run_id: u64) -> String {
    format!(
        r#"{{"action":"completed","workflow_job":{{"id":{job_id},"run_id":{run_id},"run_attempt":1,"name":"{job}","workflow_name":"CI","head_sha":"{sha}","head_branch":"main","conclusion":"failure"}},"repository":{{"full_name":"{repo}"}},"installation":{{"id":7}}}}"#
    )
}

pub use sre_gitwork::testing::{actions_log, tools_path};

/// The path of a file in the repository at `rev`.
pub fn show(repo: &Path, rev: &str, path: &str) -> String {
    sre_gitwork::testing::git(repo, &["show", &format!("{rev}:{path}")])
}

/// The repos dir path of `owner/name`.
pub fn repo_path(repos: &Path, full_name: &str) -> PathBuf {
    repos.join(full_name)
}

/// Fails (never skips) when `tool` is not on the process's PATH, which is what the planner's and the
/// validator's sandboxes see.
pub fn need(tool: &str) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    assert!(
        sre_sandbox::which(tool, &path).is_some(),
        "{tool} is not on PATH: run scripts/install-tools.sh, then `. scripts/lib/env.sh` (it puts .tools/pyvenv/bin \
         and .tools/node/node_modules/.bin on PATH)"
    );
}

/// A GitHub Actions workflow "CI" with one job `job` whose step `Check` runs `cmd`.
pub fn one_step_workflow(job: &str, cmd: &str) -> String {
    format!(
        "name: CI\non: [push]\njobs:\n  {job}:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: Check\n        run: '{}'\n",
        cmd.replace('\'', "''")
    )
}

/// `repos/<full_name>` with `files`, committed; returns HEAD.
pub fn commit_fixture(repos: &Path, full_name: &str, files: &[(&str, &str)]) -> String {
    use sre_gitwork::testing::{git, init_repo};
    let repo = repos.join(full_name);
    init_repo(&repo);
    for (path, text) in files {
        let p = repo.join(path);
        std::fs::create_dir_all(p.parent().expect("a relative path")).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "fixture"]);
    git(&repo, &["rev-parse", "HEAD"])
}
