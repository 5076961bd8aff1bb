//! The sandbox's refusals, proven with the real bubblewrap: no network, no write outside the worktree, no read
//! of the agent's data dir, of another repository or of the host's home, a timeout that kills everything the
//! command started, bounded output, enforced limits; `unsafe-none` runs but says so on every run. Each
//! refusal has a control (the same command succeeding where it should) so that no test passes vacuously.
//! The fixtures live outside `/tmp` where they can (the sandbox's own `/tmp` would hide them anyway), and one
//! test puts everything under `/tmp` on purpose.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sre_gitwork::testing::{git, init_repo};
use sre_sandbox::{HostEnv, Job, Limits, Output, Sandbox, SandboxConfig, SandboxError, SandboxMode};
use sre_telemetry::testing::Captured;

const KEEP: usize = 8192;

/// A directory outside /tmp when the checkout is (target/tmp), removed at the end.
fn outside_tmp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn config(mode: SandboxMode, denied: &[&Path], host: HostEnv) -> SandboxConfig {
    SandboxConfig {
        mode,
        limits: Limits::default(),
        toolchains: Vec::new(),
        denied: denied.iter().map(|p| p.to_path_buf()).collect(),
        host,
    }
}

/// The real sandbox; without a usable bubblewrap the test fails (CI installs it).
fn bwrap(denied: &[&Path], host: HostEnv) -> Sandbox {
    match Sandbox::probe(config(SandboxMode::Required, denied, host)) {
        Ok(s) => s,
        Err(e) => panic!("bubblewrap is not usable ({e}): run scripts/install-tools.sh (installs bwrap)"),
    }
}

fn unsafe_none(denied: &[&Path]) -> Sandbox {
    Sandbox::probe(config(SandboxMode::UnsafeNone, denied, HostEnv::from_process())).unwrap()
}

fn sh(script: &str) -> Vec<OsString> {
    vec!["bash".into(), "-c".into(), script.into()]
}

async fn run_in(sandbox: &Sandbox, wt: &Path, script: &str, timeout: Duration) -> (Output, String) {
    let argv = sh(script);
    let job = Job { worktree: wt, workdir: "", argv: &argv, env: &[], timeout, keep_bytes: KEEP };
    let out = sandbox.run(&job).await.expect("the job starts");
    let text = String::from_utf8_lossy(&out.output).into_owned();
    (out, text)
}

/// `repos/acme/app` (a committed repository with a file only in its own working tree, and a remote URL with
/// a token in its config), `repos/acme/other` (a secret), and a linked worktree of app in `wt_parent`.
struct Repos {
    repos: tempfile::TempDir,
    _wt_parent: tempfile::TempDir,
    wt: PathBuf,
    head: String,
}

fn repos(wt_parent: tempfile::TempDir) -> Repos {
    let repos = outside_tmp("repos-");
    let app = repos.path().join("acme/app");
    init_repo(&app);
    std::fs::write(app.join("README.md"), "committed readme\n").unwrap();
    git(&app, &["add", "-A"]);
    git(&app, &["commit", "-q", "-m", "initial commit of app"]);
    git(&app, &["remote", "add", "origin", "https://x-access-token:ghs_SANDBOXTESTTOKEN@github.invalid/acme/app"]);
    std::fs::write(app.join("local-only.txt"), "LOCAL-WORKING-TREE-MARKER\n").unwrap();
    let other = repos.path().join("acme/other");
    init_repo(&other);
    std::fs::write(other.join("secret.txt"), "OTHER-REPO-SECRET\n").unwrap();
    let wt = wt_parent.path().join("wt");
    git(&app, &["worktree", "add", "-q", "--detach", wt.to_str().unwrap()]);
    let head = git(&app, &["rev-parse", "HEAD"]);
    Repos { repos, _wt_parent: wt_parent, wt, head }
}

#[test]
fn the_probe_proves_the_sandbox_or_says_what_to_do() {
    let s = bwrap(&[], HostEnv::from_process());
    assert_eq!((s.name(), s.mode()), ("bwrap", SandboxMode::Required));
    let host = HostEnv { path: "/nonexistent".into(), ..HostEnv::from_process() };
    let err = Sandbox::probe(config(SandboxMode::Required, &[], host)).unwrap_err();
    assert!(matches!(err, SandboxError::BwrapMissing), "{err}");
    let text = err.to_string();
    assert!(text.contains("scripts/install-tools.sh") && text.contains("SRE_SANDBOX=unsafe-none"), "{text}");
    // A toolchain directory that would show the data dir is refused at start, not silently trimmed.
    let data = outside_tmp("data-");
    let parent = data.path().parent().unwrap().to_owned();
    let mut cfg = config(SandboxMode::Required, &[data.path()], HostEnv::from_process());
    cfg.toolchains = vec![parent];
    let err = Sandbox::probe(cfg).unwrap_err();
    assert!(err.to_string().contains("the agent's data or repos dir"), "{err}");
}

/// A TCP listener the test opens on loopback (and Redis, when it runs here) is reachable without the sandbox
/// and refused inside it.
#[tokio::test]
async fn the_network_is_unreachable() {
    let (_c, _g) = Captured::install();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut ports = vec![listener.local_addr().unwrap().port()];
    if std::net::TcpStream::connect("127.0.0.1:6379").is_ok() {
        ports.push(6379);
    }
    let wt = outside_tmp("wt-");
    let sandboxed = bwrap(&[], HostEnv::from_process());
    let open = unsafe_none(&[]);
    for port in ports {
        let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
        let (out, text) = run_in(&open, wt.path(), &script, Duration::from_secs(10)).await;
        assert_eq!((out.exit_code, text.trim()), (0, "connected"), "control: port {port} without a sandbox");
        let (out, text) = run_in(&sandboxed, wt.path(), &script, Duration::from_secs(10)).await;
        assert_ne!(out.exit_code, 0, "port {port} reachable from inside: {text}");
        // The sandbox has a loopback of its own where nothing listens (or, with it down, no route at all).
        let refused = text.contains("Connection refused") || text.contains("Network is unreachable");
        assert!(!text.contains("connected") && refused, "{text}");
        assert_eq!(out.sandbox, "bwrap");
    }
}

#[tokio::test]
async fn writes_outside_the_worktree_fail() {
    let (_c, _g) = Captured::install();
    let data = outside_tmp("data-");
    let wt = outside_tmp("wt-");
    let home = std::env::var("HOME").unwrap();
    let checkout = env!("CARGO_MANIFEST_DIR");
    let targets = [
        "/etc/sre-sandbox-write".to_owned(),
        format!("{home}/sre-sandbox-write"),
        format!("{}/sre-sandbox-write", data.path().display()),
        format!("{checkout}/sre-sandbox-write"),
        "/sre-sandbox-write".to_owned(),
        "/usr/sre-sandbox-write".to_owned(),
        "/work/sre-sandbox-write".to_owned(),
    ];
    let script = format!(
        "touch inside.txt && echo wrote-inside; for p in {}; do touch \"$p\" 2>/dev/null && echo \"WROTE $p\"; done; echo done",
        targets.join(" ")
    );
    let sandbox = bwrap(&[data.path()], HostEnv::from_process());
    let (out, text) = run_in(&sandbox, wt.path(), &script, Duration::from_secs(10)).await;
    for t in &targets {
        if Path::new(t).exists() {
            let _ = std::fs::remove_file(t);
            panic!("the sandbox wrote {t}: {text}");
        }
    }
    assert_eq!(out.exit_code, 0, "{text}");
    assert_eq!(text, "wrote-inside\ndone\n");
    assert!(wt.path().join("inside.txt").is_file(), "the worktree is writable and the file is on the host");

    // Control: the same write into the data dir works without a sandbox.
    let (_, text) =
        run_in(&unsafe_none(&[]), wt.path(), &format!("touch {}", targets[2]), Duration::from_secs(10)).await;
    assert!(Path::new(&targets[2]).exists(), "control write failed: {text}");
}

#[tokio::test]
async fn the_agents_data_dir_cannot_be_read() {
    let (_c, _g) = Captured::install();
    let data = outside_tmp("data-");
    std::fs::write(data.path().join("sre.db"), "DATA-DIR-SECRET\n").unwrap();
    let wt = outside_tmp("wt-");
    let script = format!("cat {}/sre.db; ls -A {}", data.path().display(), data.path().display());
    let (_, open) = run_in(&unsafe_none(&[]), wt.path(), &script, Duration::from_secs(10)).await;
    assert!(open.contains("DATA-DIR-SECRET"), "control: {open}");
    let (out, text) =
        run_in(&bwrap(&[data.path()], HostEnv::from_process()), wt.path(), &script, Duration::from_secs(10)).await;
    assert!(!text.contains("DATA-DIR-SECRET") && !text.contains("sre.db\n"), "{text}");
    assert!(text.contains("No such file or directory"), "{text}");
    assert_ne!(out.exit_code, 0);
}

/// Only the worktree's own git dir shows (read-only, with a config that has no remote URL): git works in the
/// worktree; another repository, the repository's own working tree and its token do not show.
#[tokio::test]
async fn other_repositories_and_the_clones_config_are_invisible() {
    let (_c, _g) = Captured::install();
    let r = repos(outside_tmp("wt-"));
    let repos_dir = r.repos.path();
    let script = format!(
        "git log --format=%s -1; git rev-parse HEAD; cat {0}/acme/other/secret.txt; cat {0}/acme/app/local-only.txt; \
         ls {0}/acme; git config --get remote.origin.url; cat \"$(git rev-parse --git-common-dir)/config\"; \
         touch \"$(git rev-parse --git-common-dir)/objects/x\" && echo WROTE-OBJECTS; echo end",
        repos_dir.display()
    );
    let (_, open) = run_in(&unsafe_none(&[]), &r.wt, &script, Duration::from_secs(10)).await;
    assert!(open.contains("OTHER-REPO-SECRET") && open.contains("ghs_SANDBOXTESTTOKEN"), "control: {open}");
    let (_, text) =
        run_in(&bwrap(&[repos_dir], HostEnv::from_process()), &r.wt, &script, Duration::from_secs(10)).await;
    assert!(text.starts_with(&format!("initial commit of app\n{}\n", r.head)), "git works in the worktree: {text}");
    for hidden in [
        "OTHER-REPO-SECRET",
        "LOCAL-WORKING-TREE-MARKER",
        "ghs_SANDBOXTESTTOKEN",
        "github.invalid",
        "other\n",
        "WROTE-OBJECTS",
    ] {
        assert!(!text.contains(hidden), "{hidden:?} visible: {text}");
    }
    assert!(text.contains("repositoryformatversion"), "the sanitized config: {text}");
    assert!(text.ends_with("end\n"), "{text}");
}

/// A home with a secret, cargo credentials and a cargo-installed tool: the tool runs, nothing else shows, and
/// HOME inside is an empty tmpfs. The real home's entries, other than the toolchains shown, do not show.
#[tokio::test]
async fn the_hosts_home_is_not_visible() {
    let (_c, _g) = Captured::install();
    let home = outside_tmp("home-");
    let h = home.path().canonicalize().unwrap();
    std::fs::create_dir_all(h.join(".cargo/bin")).unwrap();
    std::fs::write(h.join("secret.txt"), "HOME-SECRET\n").unwrap();
    std::fs::write(h.join(".cargo/credentials.toml"), "[registry]\ntoken = \"CARGO-TOKEN\"\n").unwrap();
    let tool = h.join(".cargo/bin/fake-tool");
    std::fs::write(&tool, "#!/bin/sh\necho fake-tool ran\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let host = HostEnv {
        path: std::env::join_paths([h.join(".cargo/bin"), "/usr/bin".into(), "/bin".into()]).unwrap(),
        home: Some(h.clone()),
        ..HostEnv::default()
    };
    let wt = outside_tmp("wt-");
    let script = format!(
        "echo HOME=$HOME; ls -A $HOME; fake-tool; cat {0}/secret.txt; cat $HOME/.cargo/credentials.toml; \
         cat {0}/.cargo/credentials.toml; ls -A $HOME/.cargo; echo end",
        h.display()
    );
    let (_, text) = run_in(&bwrap(&[], host), wt.path(), &script, Duration::from_secs(10)).await;
    assert!(text.starts_with("HOME=/home/sandbox\n.cargo\nfake-tool ran\n"), "{text}");
    assert!(!text.contains("HOME-SECRET") && !text.contains("CARGO-TOKEN"), "{text}");
    assert!(text.ends_with("bin\nend\n"), "only cargo's bin shows in its home: {text}");

    // The real home: every entry that is not a toolchain the layout shows stays invisible.
    let real_home = PathBuf::from(std::env::var("HOME").unwrap()).canonicalize().unwrap();
    let sandbox = bwrap(&[], HostEnv::from_process());
    let shown: Vec<PathBuf> =
        sandbox.layout().toolchains.iter().filter(|b| b.dest.starts_with(&real_home)).map(|b| b.dest.clone()).collect();
    let (_, text) =
        run_in(&sandbox, wt.path(), &format!("ls -A {} 2>&1; echo end", real_home.display()), Duration::from_secs(10))
            .await;
    let inside: Vec<&str> = text.lines().collect();
    for entry in std::fs::read_dir(&real_home).unwrap() {
        let entry = entry.unwrap().path();
        if !shown.iter().any(|s| s.starts_with(&entry)) {
            let name = entry.file_name().unwrap().to_str().unwrap();
            assert!(!inside.contains(&name), "{} is visible in the sandbox: {text}", entry.display());
        }
    }
}

/// Wall clock: the command, a background child, a grandchild in its own session and one reparented to init
/// all die with the timeout.
#[tokio::test]
async fn a_timeout_kills_everything_the_command_started() {
    let (_c, _g) = Captured::install();
    let wt = outside_tmp("wt-");
    let cases = [
        (
            bwrap(&[], HostEnv::from_process()),
            "sleep 411.5 & setsid sleep 412.5 & (sleep 413.5 &); echo started; sleep 414.5",
            ["sleep 411.5", "sleep 412.5", "sleep 413.5", "sleep 414.5"],
        ),
        // Without a sandbox only the process group goes: a child that leaves the group (setsid) would survive.
        (
            unsafe_none(&[]),
            "sleep 421.5 & (sleep 422.5 &); echo started; sleep 423.5",
            ["sleep 421.5", "sleep 422.5", "sleep 423.5", "sleep 423.5"],
        ),
    ];
    for (sandbox, script, sleeps) in cases {
        let start = Instant::now();
        let (out, text) = run_in(&sandbox, wt.path(), script, Duration::from_secs(1)).await;
        assert!(out.timed_out, "{out:?}");
        assert_eq!(text, "started\n");
        assert!(start.elapsed() < Duration::from_secs(8), "{:?} in {}", start.elapsed(), sandbox.name());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
            let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
            let alive: Vec<&str> = sleeps.iter().copied().filter(|s| ps.lines().any(|l| l.trim() == *s)).collect();
            if alive.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "survived the timeout in {}: {alive:?}", sandbox.name());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[tokio::test]
async fn output_is_bounded() {
    let (_c, _g) = Captured::install();
    let wt = outside_tmp("wt-");
    let (out, _) = run_in(
        &bwrap(&[], HostEnv::from_process()),
        wt.path(),
        "head -c 30000000 /dev/zero | tr '\\0' x; echo END",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(out.exit_code, 0);
    assert!(out.output.len() <= 2 * KEEP, "{} bytes kept", out.output.len());
    assert!(out.output.ends_with(b"xxxxEND\n"));
}

#[tokio::test]
async fn cpu_memory_and_tmpfs_limits_hold() {
    let (_c, _g) = Captured::install();
    let wt = outside_tmp("wt-");
    let mut cfg = config(SandboxMode::Required, &[], HostEnv::from_process());
    cfg.limits = Limits { cpu_seconds: 1, memory_bytes: 512 << 20, file_size_bytes: 4 << 20, tmpfs_bytes: 1 << 20 };
    let sandbox = Sandbox::probe(cfg).expect("bubblewrap: run scripts/install-tools.sh");
    let start = Instant::now();
    let (out, _) = run_in(&sandbox, wt.path(), "while :; do :; done", Duration::from_secs(30)).await;
    assert!(!out.timed_out && start.elapsed() < Duration::from_secs(15), "{out:?}");
    assert!(out.exit_code == 128 + libc::SIGXCPU || out.exit_code == 128 + libc::SIGKILL, "{out:?}");
    let (out, text) = run_in(
        &sandbox,
        wt.path(),
        "/usr/bin/python3 -c 'b = bytearray(1 << 30); print(\"allocated\")'",
        Duration::from_secs(30),
    )
    .await;
    assert!(text.contains("MemoryError") && !text.contains("allocated"), "{text}");
    assert_ne!(out.exit_code, 0);
    let (_, text) =
        run_in(&sandbox, wt.path(), "head -c 2000000 /dev/zero > /tmp/big; echo rc=$?", Duration::from_secs(30)).await;
    assert!(text.contains("No space left on device") && !text.contains("rc=0"), "{text}");
    let (_, text) =
        run_in(&sandbox, wt.path(), "head -c 5000000 /dev/zero > big; echo rc=$?", Duration::from_secs(30)).await;
    assert!(!text.contains("rc=0"), "RLIMIT_FSIZE: {text}");
}

/// `unsafe-none` runs the command on the host, in the worktree, and says so at WARN on every run.
#[tokio::test]
async fn unsafe_none_runs_but_is_reported_every_time() {
    let (captured, _g) = Captured::install();
    let wt = outside_tmp("wt-");
    let sandbox = unsafe_none(&[]);
    assert_eq!(sandbox.mode(), SandboxMode::UnsafeNone);
    captured.clear();
    for _ in 0..2 {
        let (out, text) = run_in(&sandbox, wt.path(), "pwd", Duration::from_secs(10)).await;
        assert_eq!((out.exit_code, out.sandbox), (0, "unsafe-none"));
        assert_eq!(text.trim(), wt.path().canonicalize().unwrap().to_str().unwrap());
    }
    let warns = captured
        .events()
        .into_iter()
        .filter(|e| e.level == "WARN" && e.fields.get("message").is_some_and(|m| m.contains("unsafe: no sandbox")))
        .count();
    assert_eq!(warns, 2);
}

/// The checkout, the repos dir and the worktree all under /tmp, which the sandbox replaces with its own tmpfs:
/// the worktree still shows (at /work/repo), is writable, and git works in it.
#[tokio::test]
async fn works_when_the_worktree_lives_under_tmp() {
    let (_c, _g) = Captured::install();
    let root = tempfile::Builder::new().prefix("sre-sandbox-under-tmp-").tempdir_in("/tmp").unwrap();
    let repo = root.path().join("repos/acme/app");
    init_repo(&repo);
    std::fs::write(repo.join("a.txt"), "a\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "a"]);
    let wt = root.path().join("wt");
    git(&repo, &["worktree", "add", "-q", "--detach", wt.to_str().unwrap()]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let sandbox = bwrap(&[&root.path().join("repos")], HostEnv::from_process());
    let (out, text) = run_in(
        &sandbox,
        &wt,
        &format!(
            "pwd; cat a.txt; touch made-here; git rev-parse HEAD; git status --porcelain; ls -A {}",
            repo.display()
        ),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(out.exit_code, 0, "{text}");
    // Of the repository only its git dir shows (read-only), at its own path inside the sandbox's /tmp.
    assert_eq!(text, format!("/work/repo\na\n{head}\n?? made-here\n.git\n"));
    assert!(wt.join("made-here").is_file());
}

#[tokio::test]
async fn a_workdir_outside_the_worktree_is_refused_and_toolchains_work() {
    let (_c, _g) = Captured::install();
    let wt = outside_tmp("wt-");
    std::fs::create_dir(wt.path().join("sub")).unwrap();
    let sandbox = bwrap(&[], HostEnv::from_process());
    let argv = sh("pwd");
    let job = Job {
        worktree: wt.path(),
        workdir: "../",
        argv: &argv,
        env: &[],
        timeout: Duration::from_secs(5),
        keep_bytes: KEEP,
    };
    assert!(matches!(sandbox.run(&job).await, Err(SandboxError::InvalidJob(_))));
    let env = [("GREETING".to_owned(), "hello".to_owned())];
    let job = Job { workdir: "sub", env: &env, ..job };
    let out = sandbox.run(&job).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.output), "/work/repo/sub\n");
    // The toolchains validation and the fixers use: found on the host, usable inside.
    let mut tools =
        vec!["cargo --version", "rustfmt --version", "python3 -c 'print(6*7)'", "git --version", "make --version"];
    if sre_sandbox::which("go", &std::env::var_os("PATH").unwrap_or_default()).is_some() {
        tools.extend(["go version", "gofmt -l ."]);
    }
    if sre_sandbox::which("node", &std::env::var_os("PATH").unwrap_or_default()).is_some() {
        tools.push("node -e 'console.log(6*7)'");
    }
    for tool in tools {
        let (out, text) = run_in(&sandbox, wt.path(), tool, Duration::from_secs(60)).await;
        assert_eq!(out.exit_code, 0, "{tool}: {text}");
    }
}
