//! The fake GitHub as a process of its own, for drills and demos against a running mesh
//! (scripts/drills.sh): the same REST API, blob host and git smart HTTP as the in-process fake, on fixed
//! addresses, seeded from a JSON file, plus a control port (not part of GitHub's API, on its own listener so
//! no GitHub path is shadowed) to inject faults and latency and read what was done.
//!
//! ```text
//! sre-github-fake --seed seed.json --state-out state.json --key-out app.pem \
//!     --api 127.0.0.1:18090 --git 127.0.0.1:18091 --blob 127.0.0.1:18092 --control 127.0.0.1:18093
//! ```
//!
//! The seed names an App and its installation, users, and repositories with commits (on top of each other,
//! in order) and workflow runs on the head of their branch, with their jobs and job logs. The App's private
//! key is read from `--key-out` when that file exists (PKCS#1 PEM), else made and written there (mode 0600):
//! the file for `GITHUB_PRIVATE_KEY_FILE`. `--state-out` gets the URLs, each repository's head sha and the path
//! of its bare repository once everything listens.
//!
//! Control API (JSON): `POST /faults {"route":"pulls","count":3,"status":502}` (with `"retry_after_secs"`:
//! a secondary rate limit), `POST /latency {"route":"pulls","ms":2000}` (with `"method":"POST"`:
//! that method only, e.g. PR creation), `GET /pulls?repo=o/r`, `GET /calls[?route=pulls&method=POST]` (counts
//! by route and status, 0 for a call not answered yet), `GET /health`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use sre_github_fake::{AppKey, FakeGithub, FakeOptions, Fault, JobSpec, Route, RunSpec};

const USAGE: &str = "usage: sre-github-fake --seed FILE --state-out FILE --key-out FILE \
                     [--api ADDR] [--git ADDR] [--blob ADDR] [--control ADDR]";

#[derive(serde::Deserialize)]
struct Seed {
    app: AppSeed,
    #[serde(default)]
    users: Vec<UserSeed>,
    repos: Vec<RepoSeed>,
}

#[derive(serde::Deserialize)]
struct AppSeed {
    id: u64,
    slug: String,
    installation_id: u64,
}

#[derive(serde::Deserialize)]
struct UserSeed {
    login: String,
    email: String,
}

#[derive(serde::Deserialize)]
struct RepoSeed {
    full_name: String,
    #[serde(default = "default_branch")]
    default_branch: String,
    commits: Vec<CommitSeed>,
    #[serde(default)]
    runs: Vec<RunSeed>,
}

fn default_branch() -> String {
    "main".to_owned()
}

#[derive(serde::Deserialize)]
struct CommitSeed {
    files: BTreeMap<String, String>,
    message: String,
    /// `[name, email]`
    author: (String, String),
}

#[derive(serde::Deserialize)]
struct RunSeed {
    id: u64,
    check_suite_id: u64,
    workflow_name: String,
    jobs: Vec<JobSeed>,
}

#[derive(serde::Deserialize)]
struct JobSeed {
    id: u64,
    name: String,
    conclusion: String,
    /// `[name, conclusion]` per step.
    steps: Vec<(String, String)>,
    #[serde(default)]
    log: Option<String>,
}

#[derive(serde::Deserialize)]
struct FaultRequest {
    route: String,
    count: usize,
    status: u16,
    #[serde(default)]
    retry_after_secs: Option<u64>,
}

#[derive(serde::Deserialize)]
struct LatencyRequest {
    route: String,
    ms: u64,
    /// Only this HTTP method of the route (`POST` pulls: PR creation).
    #[serde(default)]
    method: Option<String>,
}

#[derive(serde::Deserialize)]
struct CallsQuery {
    #[serde(default)]
    route: Option<String>,
    #[serde(default)]
    method: Option<String>,
}

#[derive(serde::Deserialize)]
struct RepoQuery {
    repo: String,
}

struct Args {
    seed: PathBuf,
    state_out: PathBuf,
    key_out: PathBuf,
    options: FakeOptions,
    control: SocketAddr,
}

fn parse_args() -> Result<Args, String> {
    let mut seed = None;
    let mut state_out = None;
    let mut key_out = None;
    let mut options = FakeOptions::default();
    let mut control = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let addr = || value.parse::<SocketAddr>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--seed" => seed = Some(PathBuf::from(&value)),
            "--state-out" => state_out = Some(PathBuf::from(&value)),
            "--key-out" => key_out = Some(PathBuf::from(&value)),
            "--api" => options.api_addr = Some(addr()?),
            "--git" => options.git_addr = Some(addr()?),
            "--blob" => options.blob_addr = Some(addr()?),
            "--control" => control = addr()?,
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    let need = |v: Option<PathBuf>, name: &str| v.ok_or_else(|| format!("{name} is required\n{USAGE}"));
    Ok(Args {
        seed: need(seed, "--seed")?,
        state_out: need(state_out, "--state-out")?,
        key_out: need(key_out, "--key-out")?,
        options,
        control,
    })
}

/// Writes `contents` to `path` through a temp file and a rename, so a reader never sees half of it.
fn write_atomic(path: &std::path::Path, contents: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Seeds the fake; returns each repository's head sha.
fn seed(fake: &FakeGithub, seed: &Seed, key: &AppKey) -> Result<BTreeMap<String, String>, String> {
    fake.add_app(seed.app.id, &seed.app.slug, &key.public_pem);
    let names: Vec<&str> = seed.repos.iter().map(|r| r.full_name.as_str()).collect();
    fake.add_installation(seed.app.installation_id, seed.app.id, &names);
    for user in &seed.users {
        fake.add_user(&user.login, &user.email);
    }
    let mut heads = BTreeMap::new();
    for repo in &seed.repos {
        fake.add_repo(&repo.full_name, &repo.default_branch)?;
        let mut head = String::new();
        for commit in &repo.commits {
            let files: Vec<(&str, &str)> = commit.files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
            let author = (commit.author.0.as_str(), commit.author.1.as_str());
            head = fake.commit(&repo.full_name, &repo.default_branch, &files, &commit.message, author)?;
        }
        if head.is_empty() {
            return Err(format!("{}: a repository needs at least one commit", repo.full_name));
        }
        for run in &repo.runs {
            let jobs = run
                .jobs
                .iter()
                .map(|j| {
                    let steps: Vec<(&str, &str)> = j.steps.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
                    JobSpec::completed(j.id, &j.name, &j.conclusion, &steps)
                })
                .collect();
            fake.add_run(
                &repo.full_name,
                RunSpec {
                    id: run.id,
                    check_suite_id: run.check_suite_id,
                    workflow_name: run.workflow_name.clone(),
                    head_sha: head.clone(),
                    head_branch: repo.default_branch.clone(),
                    attempts: vec![jobs],
                },
            );
            for job in &run.jobs {
                if let Some(log) = &job.log {
                    fake.set_job_log(&repo.full_name, job.id, log.clone());
                }
            }
        }
        heads.insert(repo.full_name.clone(), head);
    }
    Ok(heads)
}

fn route(name: &str) -> Result<Route, (StatusCode, String)> {
    Route::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Route::ALL.iter().map(|r| r.as_str()).collect();
        (StatusCode::UNPROCESSABLE_ENTITY, format!("unknown route {name:?}; one of {}", known.join(", ")))
    })
}

async fn faults(
    State(fake): State<Arc<FakeGithub>>,
    Json(req): Json<FaultRequest>,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    let r = route(&req.route)?;
    let fault = match req.retry_after_secs {
        Some(secs) => Fault::SecondaryLimit { status: req.status, retry_after_secs: secs },
        None => Fault::Status(req.status),
    };
    fake.fail_next(r, req.count, fault);
    Ok(Json(serde_json::json!({"route": r.as_str(), "count": req.count})))
}

async fn latency(
    State(fake): State<Arc<FakeGithub>>,
    Json(req): Json<LatencyRequest>,
) -> Result<Json<serde_json::Value>, (StatusCode, String)> {
    let r = route(&req.route)?;
    match &req.method {
        Some(method) => fake.set_method_latency(r, method, Duration::from_millis(req.ms)),
        None => fake.set_latency(r, Duration::from_millis(req.ms)),
    }
    Ok(Json(serde_json::json!({"route": r.as_str(), "ms": req.ms, "method": req.method})))
}

async fn pulls(State(fake): State<Arc<FakeGithub>>, Query(q): Query<RepoQuery>) -> Json<serde_json::Value> {
    let pulls: Vec<_> = fake
        .pulls(&q.repo)
        .into_iter()
        .map(|(number, title, head, base, open, labels)| {
            serde_json::json!({"number": number, "title": title, "head": head, "base": base, "open": open, "labels": labels})
        })
        .collect();
    Json(serde_json::Value::Array(pulls))
}

/// Counts by route and status (0: not answered yet), optionally of one route and method only.
async fn calls(State(fake): State<Arc<FakeGithub>>, Query(q): Query<CallsQuery>) -> Json<serde_json::Value> {
    let mut counts: BTreeMap<(String, u16), u64> = BTreeMap::new();
    let wanted = |call: &sre_github_fake::RecordedCall| {
        q.route.as_deref().is_none_or(|r| call.route.as_str() == r)
            && q.method.as_deref().is_none_or(|m| call.method.eq_ignore_ascii_case(m))
    };
    for call in fake.calls().into_iter().filter(wanted) {
        *counts.entry((call.route.as_str().to_owned(), call.status)).or_default() += 1;
    }
    let rows: Vec<_> = counts
        .into_iter()
        .map(|((route, status), count)| serde_json::json!({"route": route, "status": status, "count": count}))
        .collect();
    Json(serde_json::Value::Array(rows))
}

async fn run(args: Args) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.seed).map_err(|e| format!("{}: {e}", args.seed.display()))?;
    let seed_file: Seed = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", args.seed.display()))?;
    // A key given is used (the drills make one with openssl); otherwise one is made and written there.
    let key = match std::fs::read_to_string(&args.key_out) {
        Ok(pem) => AppKey::from_private_pem(&pem).map_err(|e| format!("{}: {e}", args.key_out.display()))?,
        Err(_) => {
            let key = AppKey::generate()?;
            write_atomic(&args.key_out, key.private_pem.as_bytes(), 0o600)?;
            key
        }
    };
    let fake = FakeGithub::start_with(args.options).await.map_err(|e| format!("listen: {e}"))?;
    let heads = seed(&fake, &seed_file, &key)?;
    let control = tokio::net::TcpListener::bind(args.control).await.map_err(|e| format!("{}: {e}", args.control))?;
    let control_addr = control.local_addr().map_err(|e| e.to_string())?;
    let state = serde_json::json!({
        "api_url": fake.api_url(),
        "git_url": fake.git_url(),
        "blob_url": fake.blob_url(),
        "control_url": format!("http://{control_addr}"),
        "app_id": seed_file.app.id,
        "installation_id": seed_file.app.installation_id,
        "key_file": args.key_out,
        "heads": heads,
        // The bare repositories on disk, so a drill can read their refs (`git --git-dir`) without a token.
        "repo_paths": heads.keys().map(|name| (name.clone(), fake.repo_path(name))).collect::<BTreeMap<_, _>>(),
    });
    let fake = Arc::new(fake);
    let router = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/faults", post(faults))
        .route("/latency", post(latency))
        .route("/pulls", get(pulls))
        .route("/calls", get(calls))
        .with_state(fake.clone());
    write_atomic(&args.state_out, format!("{state:#}\n").as_bytes(), 0o644)?;
    eprintln!("sre-github-fake: api {} git {} control http://{control_addr}", fake.api_url(), fake.git_url());
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    axum::serve(control, router).with_graceful_shutdown(shutdown).await.map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("{err}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sre-github-fake: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
