//! Shared by the real-tool tests: find a tool, run it in a fixture project, wrap its output the way a GitHub
//! Actions job log carries it, and look at what the extractor and classifier make of it.
#![allow(dead_code)] // each test file uses a part

use sre_cilog::{Diagnosis, FailureContext, Options, classify};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the tools' install dir `.tools` is there).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// PATH with the repo's tool dirs after it, as scripts/lib/env.sh and install-tools.sh set it.
pub fn path_env() -> String {
    let tools = std::env::var("SRE_TOOLS_DIR").map(PathBuf::from).unwrap_or_else(|_| repo().join(".tools"));
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    dirs.push(tools.join("pyvenv/bin"));
    dirs.push(tools.join("node/node_modules/.bin"));
    std::env::join_paths(dirs).expect("PATH").into_string().expect("utf-8 PATH")
}

/// The tool's path; fails the test (never skips it) when the tool is missing.
pub fn tool(name: &str) -> PathBuf {
    for dir in std::env::split_paths(&path_env()) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not installed: run scripts/install-tools.sh (it puts {name} on PATH or under .tools/)");
}

/// A fixture project in a temporary directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new().prefix("cilog-fixture-").tempdir().expect("tempdir");
        let f = Fixture { dir };
        for (path, text) in files {
            f.write(path, text);
        }
        f
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().canonicalize().expect("fixture path")
    }

    pub fn write(&self, path: &str, text: &str) {
        let p = self.dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write fixture file");
    }

    /// Runs a shell command line in the fixture (as a `run:` step does), stdout and stderr interleaved as a
    /// runner captures them. Returns the output and the exit code.
    pub fn run(&self, script: &str, env: &[(&str, &str)]) -> (String, i32) {
        let mut cmd = Command::new("bash");
        // `bash -e {0}` is what GitHub Actions runs a step with; 2>&1 merges the streams like the runner's pty
        cmd.arg("-e").arg("-c").arg(format!("exec 2>&1\n{script}"));
        cmd.current_dir(self.dir.path()).env("PATH", path_env());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("bash: {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text, out.status.code().unwrap_or(-1))
    }

    /// Runs `script`, which must fail, and returns the GitHub Actions log of a job whose step ran it.
    pub fn failing_step(&self, script: &str, env: &[(&str, &str)]) -> Vec<u8> {
        let (output, code) = self.run(script, env);
        assert_ne!(code, 0, "`{script}` was meant to fail but exited 0:\n{output}");
        gha_log(script, &output, code)
    }

    /// Extracts and classifies a log, with this fixture's directory as the checkout (tools print absolute
    /// paths; on a runner that directory is /home/runner/work/R/R).
    pub fn diagnose(&self, log: &[u8]) -> (FailureContext, Diagnosis) {
        let opts = Options { workspace_roots: vec![self.path().display().to_string()], ..Options::default() };
        let ctx = FailureContext::from_log_with(log, &opts);
        let d = classify(&ctx);
        (ctx, d)
    }
}

/// A job log as GitHub Actions writes it: timestamps, a checkout step, the failing step's `##[group]Run`
/// header (script, shell, env), its output, the runner's `##[error]` verdict, and the post-job cleanup.
pub fn gha_log(script: &str, output: &str, exit_code: i32) -> Vec<u8> {
    let mut n = 0u32;
    let mut log = String::new();
    let mut line = |text: &str| {
        n += 1;
        log.push_str(&format!(
            "2026-12-01T10:{:02}:{:02}.{:07}Z {text}\n",
            (n / 60) % 60,
            n % 60,
            n * 1_234 % 10_000_000
        ));
    };
    line("Current runner version: '2.330.0'");
    line("##[group]Operating System");
    line("Ubuntu");
    line("24.04.1");
    line("##[endgroup]");
    line("##[group]Run actions/checkout@v4");
    line("with:");
    line("  repository: acme/demo");
    line("##[endgroup]");
    line("Syncing repository: acme/demo");
    let mut script_lines = script.lines();
    line(&format!("##[group]Run {}", script_lines.next().unwrap_or("")));
    line(script.lines().next().unwrap_or(""));
    for l in script_lines {
        line(l);
    }
    line("shell: /usr/bin/bash -e {0}");
    line("env:");
    line("  CARGO_TERM_COLOR: always");
    line("##[endgroup]");
    // the runner splits output at \n and keeps \r (progress bars) inside a line
    let output = output.strip_suffix('\n').unwrap_or(output);
    for l in output.split('\n') {
        line(l);
    }
    line(&format!("##[error]Process completed with exit code {exit_code}."));
    line("Post job cleanup.");
    line("[command]/usr/bin/git version");
    log.into_bytes()
}

/// Asserts that some context line contains `needle`.
#[track_caller]
pub fn has_line(ctx: &FailureContext, needle: &str) {
    assert!(
        ctx.lines.iter().any(|l| l.contains(needle)),
        "no context line contains {needle:?}; context:\n{}",
        ctx.render()
    );
}

/// Asserts that a file reference to `path` (with `line` when given) was found.
#[track_caller]
pub fn has_ref(ctx: &FailureContext, path: &str, line: Option<u32>) {
    let found = ctx.file_refs.iter().any(|r| r.path == path && (line.is_none() || r.line == line));
    assert!(found, "no file ref {path}:{line:?} in {:?}; context:\n{}", ctx.file_refs, ctx.render());
}

/// Context size checks every test makes: bounded, and the step the runner named.
#[track_caller]
pub fn common(ctx: &FailureContext, command: &str, exit_code: i32) {
    let shown = ctx.render();
    assert!(ctx.step_failed, "the runner's verdict was not seen:\n{shown}");
    assert_eq!(ctx.exit_code, Some(exit_code), "exit code:\n{shown}");
    assert_eq!(ctx.command.as_deref(), Some(command), "command");
    let title = format!("Run {}", command.lines().next().unwrap_or(""));
    assert_eq!(ctx.step_name.as_deref(), Some(title.as_str()), "step name");
    assert!(!ctx.lines.is_empty() && ctx.lines.len() <= 200, "{} context lines:\n{shown}", ctx.lines.len());
    // the runner's own header and the later steps are not part of the failure
    assert!(
        !ctx.lines
            .iter()
            .any(|l| l.starts_with("shell: ") || l.contains("Post job cleanup") || l.contains("Syncing repository")),
        "header or other steps' lines in the context:\n{shown}"
    );
    // normalised: no timestamps, no escapes
    assert!(!ctx.lines.iter().any(|l| l.starts_with("2026-12-01T") || l.contains('\x1b')), "not normalised:\n{shown}");
}
