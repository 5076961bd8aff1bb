//! `sre-agent run` and `sre-agent runs` against the real mesh in-process (sre-e2e: the gateway's router
//! served on 127.0.0.1:0, real Redis, a SQLite store, the orchestrator and the five services over gRPC, real
//! git repositories): a lint failure made by running its command in a throwaway worktree ends `success` with
//! a PR; a missing-module log ends `skipped`; the runs are listed, shown, and their artifacts printed; a
//! passing command is refused and submits nothing; a gateway that requires a token gets it.

mod support;

use std::net::SocketAddr;
use std::path::Path;

use sre_domain::{RunStatus, Stage, StageStatus};
use sre_e2e::{Mesh, MeshOptions};
use sre_gitwork::testing::{git, init_repo};
use support::{Ran, failing, gha_log};

/// A flake8-style check of trailing whitespace: a real linter's report shape, from a real command.
const LINT_SH: &str = r#"status=0
for f in *.py; do
  awk -v f="$f" 'match($0, /[ \t]+$/) { printf "%s:%d:%d: W291 trailing whitespace\n", f, NR, RSTART; bad = 1 } END { exit bad }' "$f" || status=1
done
exit $status
"#;

const WORKFLOW: &str = "name: CI\non: push\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: Lint\n        run: sh lint.sh\n";

/// `repos/acme/app`: app.py with trailing whitespace, lint.sh that reports it, the CI workflow that runs it.
fn lint_repo(repos: &Path) {
    let repo = repos.join("acme/app");
    init_repo(&repo);
    std::fs::write(repo.join("app.py"), "def add(a, b):   \n    return a + b  \n").unwrap();
    std::fs::write(repo.join("lint.sh"), LINT_SH).unwrap();
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    std::fs::write(repo.join(".github/workflows/ci.yml"), WORKFLOW).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "app with trailing whitespace"]);
}

/// `repos/acme/calc`: a script importing a module that is not installed. Returns its CI log.
fn missing_module_repo(repos: &Path) -> String {
    let repo = repos.join("acme/calc");
    init_repo(&repo);
    std::fs::write(repo.join("calc.py"), "import missing_module_xyz\n\nprint(missing_module_xyz.add(1, 2))\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "calc"]);
    let (output, code) = failing(&repo, "python3 calc.py");
    gha_log("python3 calc.py", &output, code)
}

/// Serves `router` on a fresh loopback port.
async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Runs the CLI off the runtime's threads (the mesh it talks to runs on them).
async fn cli(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Ran {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let cwd = cwd.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        support::sre_agent(&args, &env, None, &cwd)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_submitted_followed_listed_and_shown() {
    let mesh = Mesh::start(MeshOptions::default()).await;
    let repos = mesh.repos_dir().to_str().unwrap().to_owned();
    lint_repo(mesh.repos_dir());
    let calc_log = missing_module_repo(mesh.repos_dir());
    let work = tempfile::tempdir().unwrap();
    let log_file = work.path().join("calc.log");
    std::fs::write(&log_file, &calc_log).unwrap();
    let addr = serve(mesh.gateway.clone()).await;
    let url = format!("http://{addr}");
    let env =
        [("SRE_REPOS_DIR", repos.as_str()), ("SRE_GATEWAY_URL", url.as_str()), ("SRE_API_TOKEN", sre_e2e::API_TOKEN)];

    // A lint failure: its command run in a throwaway worktree, the log submitted, the run followed to a PR.
    let ran = cli(
        &["run", "--repo", "acme/app", "--sha", "HEAD", "--command", "sh lint.sh", "--job", "lint", "--workflow", "CI"],
        &env,
        work.path(),
    )
    .await;
    println!("{ran}");
    assert_eq!(ran.code, 0, "{ran}");
    let out = &ran.stdout;
    assert!(out.contains("ran        `sh lint.sh` at "), "{ran}");
    assert!(out.contains("exit code 1 after"), "{ran}");
    assert!(out.contains("diagnosis  lint: app.py:1:15: W291 trailing whitespace\n"), "{ran}");
    let submitted = out.lines().find_map(|l| l.strip_prefix("submitted  run ")).unwrap_or_else(|| panic!("{ran}"));
    let app_id = submitted.split(' ').next().unwrap().to_owned();
    let sha = git(&mesh.repos_dir().join("acme/app"), &["rev-parse", "HEAD"]);
    assert!(submitted.contains(&format!("(acme/app@{sha}/lint, attempt 1)")), "{ran}");
    // Every stage was printed as it completed, in order, then the outcome.
    let stage_lines: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_start().split_once("s  ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|word| word.parse::<Stage>().is_ok_and(|s| s != Stage::Ingest))
        .collect();
    assert_eq!(
        stage_lines,
        ["plan", "policy_plan", "patch", "policy_patch", "scans", "validate", "pr_create"],
        "{ran}"
    );
    assert!(out.contains("\noutcome    success\n"), "{ran}");
    assert!(out.contains("\ndiagnosis  lint  (language python, tool unknown)\n"), "{ran}");
    assert!(out.contains("\nlabel      safe  (danger score "), "{ran}");
    assert!(out.contains("\nPR         #1  branch "), "{ran}");
    assert!(out.contains(&format!("\ndiff       sre-agent runs {} --artifact diff  (", &app_id[..8])), "{ran}");
    assert!(out.contains(&format!("{url}/api/v1/runs/{app_id}/diff\n")), "{ran}");

    let run = mesh.store.get_run(&app_id).await.unwrap().unwrap();
    assert_eq!((run.status, run.failure.head_branch.as_str()), (RunStatus::Success, "main"), "{run:#?}");
    assert!(run.stages.iter().all(|s| s.status == StageStatus::Ok), "{run:#?}");
    // What was submitted is a GitHub Actions log of the real run.
    let log = mesh.store.artifact(&app_id, sre_domain::ArtifactKind::Log).await.unwrap().unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[0].ends_with("Z ##[group]Run sh lint.sh"), "{log}");
    assert!(lines.iter().any(|l| l.ends_with("Z app.py:1:15: W291 trailing whitespace")), "{log}");
    assert!(lines.iter().any(|l| l.ends_with("Z app.py:2:17: W291 trailing whitespace")), "{log}");
    assert!(lines.last().unwrap().ends_with("Z ##[error]Process completed with exit code 1."), "{log}");
    assert!(lines.iter().all(|l| l.len() > 29 && &l[10..11] == "T" && &l[27..29] == "Z "), "{log}");
    // The throwaway worktree is gone.
    let worktrees = git(&mesh.repos_dir().join("acme/app"), &["worktree", "list"]);
    assert_eq!(worktrees.lines().count(), 1, "{worktrees}");

    // A missing module from a log file, the repository given by its path: no rule fixes it, exit 1.
    let calc_path = mesh.repos_dir().join("acme/calc");
    let ran = cli(
        &["run", "--repo", calc_path.to_str().unwrap(), "--sha", "main", "--log", log_file.to_str().unwrap()],
        &env,
        work.path(),
    )
    .await;
    println!("{ran}");
    assert_eq!(ran.code, 1, "{ran}");
    assert!(ran.stdout.contains("diagnosis  dependency: ModuleNotFoundError: No module named 'missing_module_xyz'"));
    assert!(ran.stdout.contains("\noutcome    skipped\n"), "{ran}");
    let reason = ran.stdout.lines().find_map(|l| l.strip_prefix("reason     ")).unwrap_or_else(|| panic!("{ran}"));
    let calc_id = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("submitted  run "))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let calc = mesh.store.get_run(&calc_id).await.unwrap().unwrap();
    assert_eq!(
        (calc.status, calc.reason.as_str(), calc.failure.job_name.as_str()),
        (RunStatus::Skipped, reason, "local")
    );
    assert!(ran.stdout.contains("\nPR         -\n") && ran.stdout.contains("\ndiff       - (the run made no patch)\n"));

    // The list: newest first, one row each.
    let ran = cli(&["runs"], &env, work.path()).await;
    println!("{ran}");
    assert_eq!(ran.code, 0, "{ran}");
    let rows: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{ran}");
    assert!(rows[0].starts_with("ID ") && rows[0].contains("STATUS") && rows[0].ends_with("AGE"), "{ran}");
    let cells = |row: &str| row.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        cells(rows[1])[..7],
        [
            &calc_id[..8],
            "skipped",
            "acme/calc",
            &format!("{}/local", &calc.failure.head_sha[..7]),
            "dependency",
            "-",
            "-"
        ]
    );
    assert_eq!(
        cells(rows[2])[..7],
        [&app_id[..8], "success", "acme/app", &format!("{}/lint", &sha[..7]), "lint", "safe", "#1"]
    );
    let ran = cli(&["runs", "--json", "--limit", "1"], &env, work.path()).await;
    let listed: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran}"));
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(1), "{ran}");
    assert_eq!(listed["runs"][0]["run_id"], calc_id.as_str());

    // One run, by its ID prefix: stages and artifacts.
    let ran = cli(&["runs", &app_id[..8]], &env, work.path()).await;
    println!("{ran}");
    assert_eq!(ran.code, 0, "{ran}");
    assert!(
        ran.stdout.starts_with(&format!("run        {app_id}\nkey        acme/app@{sha}/lint  (attempt 1)\n")),
        "{ran}"
    );
    assert!(ran.stdout.contains("\nstages\n  plan ") && ran.stdout.contains("\n  pr_create "), "{ran}");
    for kind in ["log", "context", "plan", "diff", "scan_report", "validation", "pull_request"] {
        assert!(ran.stdout.contains(&format!("\n  {kind:<14} ")), "artifact {kind}: {ran}");
    }
    let ran = cli(&["runs", &app_id, "--json"], &env, work.path()).await;
    let shown: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran}"));
    assert_eq!((shown["status"].as_str(), shown["pr"]["number"].as_u64()), (Some("success"), Some(1)));

    // Artifact bodies as stored.
    let ran = cli(&["runs", &app_id[..8], "--artifact", "diff"], &env, work.path()).await;
    assert_eq!(ran.code, 0, "{ran}");
    assert!(
        ran.stdout.contains("\n-def add(a, b):   \n-    return a + b  \n+def add(a, b):\n+    return a + b\n"),
        "{ran}"
    );
    let (_, served) = mesh.get(&format!("/api/v1/runs/{app_id}/diff")).await;
    assert_eq!(ran.stdout, served, "the diff exactly as the API serves it");
    let ran = cli(&["runs", &calc_id, "--artifact", "log"], &env, work.path()).await;
    assert!(ran.stdout.contains("ModuleNotFoundError: No module named 'missing_module_xyz'"), "{ran}");
    let ran = cli(&["runs", &calc_id, "--artifact", "diff"], &env, work.path()).await;
    assert_eq!(
        (ran.code, ran.stderr.trim()),
        (2, "sre-agent: the gateway answered 404 Not Found: the run has no diff artifact")
    );
    let ran = cli(&["runs", "00000000-0000-4000-8000-000000000000"], &env, work.path()).await;
    assert_eq!((ran.code, ran.stderr.trim()), (2, "sre-agent: the gateway answered 404 Not Found: run not found"));
    let ran = cli(&["runs", "ffff0"], &env, work.path()).await;
    assert_eq!(ran.code, 2, "{ran}");
    assert!(ran.stderr.contains("no run ID starts with ffff0"), "{ran}");

    // --no-follow returns at once with the run's ID.
    let ran = cli(
        &["run", "--repo", "acme/calc", "--sha", "main", "--log", log_file.to_str().unwrap(), "--no-follow"],
        &env,
        work.path(),
    )
    .await;
    assert_eq!(ran.code, 0, "{ran}");
    assert!(!ran.stdout.contains("outcome"), "{ran}");
    let third = ran.stdout.lines().find_map(|l| l.strip_prefix("submitted  run ")).unwrap_or_else(|| panic!("{ran}"));
    assert!(third.contains("/local, attempt 2)"), "a second submission of a key is its next attempt: {ran}");
    let third_id = third.split(' ').next().unwrap().to_owned();
    assert!(ran.stdout.contains(&format!("follow it  sre-agent runs {}\n", &third_id[..8])), "{ran}");
    mesh.wait_terminal(&third_id, std::time::Duration::from_secs(60)).await;

    // A command that passes has nothing to fix: refused, nothing submitted.
    let before = mesh.store.count_runs().await.unwrap();
    let ran =
        cli(&["run", "--repo", "acme/app", "--sha", "HEAD", "--command", "python3 -c 'print(1)'"], &env, work.path())
            .await;
    assert_eq!(ran.code, 2, "{ran}");
    let expected = format!("sre-agent: `python3 -c 'print(1)'` passed at {} (exit code 0): nothing to fix", &sha[..12]);
    assert!(ran.stderr.starts_with(&expected), "{ran}");
    assert_eq!(mesh.store.count_runs().await.unwrap(), before);

    // The gateway requires its token: refused without one, served with SRE_API_TOKEN.
    let no_token = [env[0], env[1]];
    let ran = cli(&["runs"], &no_token, work.path()).await;
    assert_eq!(ran.code, 2, "{ran}");
    assert!(ran.stderr.contains("refused the request (401 Unauthorized): set SRE_API_TOKEN (or --token)"), "{ran}");
    let empty_token = [env[0], env[1], ("SRE_API_TOKEN", "")];
    let ran = cli(&["runs"], &empty_token, work.path()).await;
    assert!(ran.stderr.contains("refused the request (401 Unauthorized): set"), "an empty variable is no token: {ran}");
    let ran = cli(&["runs"], &env, work.path()).await;
    assert_eq!(ran.code, 0, "{ran}");
    assert!(ran.stdout.contains(&app_id[..8]), "{ran}");
    let ran = cli(&["runs", "--token", "wrong"], &env, work.path()).await;
    assert!(ran.stderr.contains("refused the request (401 Unauthorized) with the token given"), "{ran}");

    mesh.stop().await;
}

/// Without an orchestrator a run stays queued: following it gives up at --timeout. A command that outlives
/// --command-timeout is killed and nothing is submitted; one that leaves a child holding its output open is
/// submitted once it exits. A log past the gateway's request limit is cut as the gateway would keep it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_limits() {
    let mesh = Mesh::start(MeshOptions { orchestrator: false, ..MeshOptions::default() }).await;
    let repos = mesh.repos_dir().to_str().unwrap().to_owned();
    missing_module_repo(mesh.repos_dir());
    let work = tempfile::tempdir().unwrap();
    let url = format!("http://{}", serve(mesh.gateway.clone()).await);
    let env =
        [("SRE_REPOS_DIR", repos.as_str()), ("SRE_GATEWAY_URL", url.as_str()), ("SRE_API_TOKEN", sre_e2e::API_TOKEN)];
    let base = ["run", "--repo", "acme/calc", "--sha", "HEAD"];

    let started = std::time::Instant::now();
    let ran = cli(&[&base[..], &["--command", "python3 calc.py", "--timeout", "1"]].concat(), &env, work.path()).await;
    assert_eq!(ran.code, 2, "{ran}");
    assert!(ran.stdout.contains("\n     0.0s  queued\n"), "{ran}");
    let id = ran.stdout.lines().find_map(|l| l.strip_prefix("submitted  run ")).unwrap().split(' ').next().unwrap();
    let expected =
        format!("sre-agent: run {id} is still queued after 1 s; it goes on: look again with `sre-agent runs {id}`\n");
    assert_eq!(ran.stderr, expected, "{ran}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());

    let before = mesh.store.count_runs().await.unwrap();
    let started = std::time::Instant::now();
    let ran = cli(&[&base[..], &["--command", "sleep 60", "--command-timeout", "1"]].concat(), &env, work.path()).await;
    assert_eq!(ran.code, 2, "{ran}");
    assert_eq!(ran.stderr, "sre-agent: `sleep 60` did not finish within 1 s and was killed: raise --command-timeout\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    assert_eq!(mesh.store.count_runs().await.unwrap(), before, "nothing submitted");

    let started = std::time::Instant::now();
    let ran = cli(
        &[&base[..], &["--command", "echo before; (sleep 60 &); echo after; exit 3", "--no-follow"]].concat(),
        &env,
        work.path(),
    )
    .await;
    assert_eq!(ran.code, 0, "{ran}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "the background child was not waited for");
    assert!(ran.stdout.contains("exit code 3 after"), "{ran}");
    let id = ran.stdout.lines().find_map(|l| l.strip_prefix("submitted  run ")).unwrap().split(' ').next().unwrap();
    let log = mesh.store.artifact(id, sre_domain::ArtifactKind::Log).await.unwrap().unwrap();
    assert!(log.contains("Z before\n") && log.contains("Z after\n"), "{log}");
    assert!(log.ends_with(" ##[error]Process completed with exit code 3.\n"), "{log}");

    // About 30 MB: six times the gateway's request limit.
    let (output, code) = failing(&mesh.repos_dir().join("acme/calc"), "python3 calc.py");
    let chatter: String = (0..300_000).map(|i| format!("Downloading package-{i:06} (12.{i} kB)\n")).collect();
    let big = work.path().join("big.log");
    std::fs::write(&big, gha_log("python3 calc.py", &format!("{chatter}{output}"), code)).unwrap();
    let ran = cli(&[&base[..], &["--log", big.to_str().unwrap(), "--no-follow"]].concat(), &env, work.path()).await;
    assert_eq!(ran.code, 0, "{ran}");
    assert!(ran.stdout.contains("(its head, error lines and tail, as the gateway keeps it)"), "{ran}");
    assert!(ran.stdout.contains("diagnosis  dependency: ModuleNotFoundError"), "{ran}");
    let id = ran.stdout.lines().find_map(|l| l.strip_prefix("submitted  run ")).unwrap().split(' ').next().unwrap();
    let log = mesh.store.artifact(id, sre_domain::ArtifactKind::Log).await.unwrap().unwrap();
    assert!(log.len() <= 2 * 1024 * 1024, "{} bytes stored", log.len());
    assert!(log.contains("ModuleNotFoundError: No module named 'missing_module_xyz'"));
    assert!(log.contains("lines omitted ...]"));
    mesh.stop().await;
}
