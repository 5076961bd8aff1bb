//! Shared by the CLI's tests: run the `sre-agent` binary, and make real job logs from real failing commands.
#![allow(dead_code)] // each test file uses a part

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Variables the CLI reads: the tests set what they mean, never inherit them.
const CLI_ENV: [&str; 4] = ["SRE_GATEWAY_URL", "SRE_API_TOKEN", "SRE_REPOS_DIR", "SRE_DATA_DIR"];

/// What one `sre-agent` invocation did.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `sre-agent args` with `env` (and `stdin`, if given) in `cwd`.
pub fn sre_agent(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>, cwd: &Path) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sre-agent"));
    cmd.args(args).current_dir(cwd);
    for var in CLI_ENV {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("sre-agent runs");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).expect("write stdin");
    }
    let Output { status, stdout, stderr } = child.wait_with_output().expect("sre-agent finishes");
    Ran {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `script` with `bash -e` in `dir` (stdout and stderr merged, as a runner's pty has them); it must fail.
/// Returns its output and exit code.
pub fn failing(dir: &Path, script: &str) -> (String, i32) {
    let out = Command::new("bash")
        .arg("-e")
        .arg("-c")
        .arg(format!("exec 2>&1\n{script}"))
        .current_dir(dir)
        .output()
        .expect("bash runs");
    let code = out.status.code().unwrap_or(-1);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_ne!(code, 0, "`{script}` was meant to fail:\n{text}");
    (text, code)
}

/// A GitHub Actions job log whose step ran `script` and printed `output`: timestamps, a checkout step, the
/// step's `##[group]Run` header, the output, the runner's verdict and the post-job cleanup.
pub fn gha_log(script: &str, output: &str, exit_code: i32) -> String {
    let mut n = 0u32;
    let mut log = String::new();
    let mut line = |text: &str| {
        n += 1;
        log.push_str(&format!(
            "2026-12-01T10:{:02}:{:02}.{:07}Z {text}\n",
            n / 60 % 60,
            n % 60,
            n * 1_234 % 10_000_000
        ));
    };
    line("Current runner version: '2.330.0'");
    line("##[group]Run actions/checkout@v4");
    line("with:");
    line("  repository: acme/demo");
    line("##[endgroup]");
    line(&format!("##[group]Run {}", script.lines().next().unwrap_or_default()));
    for l in script.lines() {
        line(l);
    }
    line("shell: /usr/bin/bash -e {0}");
    line("##[endgroup]");
    for l in output.strip_suffix('\n').unwrap_or(output).split('\n') {
        line(l);
    }
    line(&format!("##[error]Process completed with exit code {exit_code}."));
    line("Post job cleanup.");
    log
}
