//! Prints what the sandbox shows on this machine: the probe's verdict, the toolchains bound, the PATH entries
//! left out, the environment inside, and the bwrap command line for a worktree.
//!
//!   cargo run -p sre-sandbox --example layout -- [WORKTREE] [DENIED_DIR...]

use std::path::PathBuf;

use sre_sandbox::{HostEnv, Limits, Sandbox, SandboxConfig, SandboxMode};

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let worktree = PathBuf::from(args.next().unwrap_or_else(|| "/tmp/sre-wt-example/wt".to_owned()));
    let denied: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let config = SandboxConfig {
        mode: SandboxMode::Required,
        limits: Limits::default(),
        toolchains: Vec::new(),
        denied,
        host: HostEnv::from_process(),
    };
    let sandbox = match Sandbox::probe(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let layout = sandbox.layout();
    println!("probe: ok ({})", sandbox.name());
    for b in &layout.toolchains {
        println!("toolchain: {} -> {}", b.src.display(), b.dest.display());
    }
    for (p, why) in &layout.skipped {
        println!("not shown: {} ({why})", p.display());
    }
    for (k, v) in &layout.env {
        println!("env: {}={}", k.to_string_lossy(), v.to_string_lossy());
    }
    let argv = ["make".into(), "test".into()];
    match sandbox.bwrap_argv(&worktree, "", &argv, None) {
        Ok(a) => println!("argv: {}", a.iter().map(|s| s.to_string_lossy()).collect::<Vec<_>>().join(" ")),
        Err(e) => eprintln!("{e}"),
    }
    std::process::ExitCode::SUCCESS
}
