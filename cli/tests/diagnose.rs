//! `sre-agent diagnose` on real logs: real failing commands (a Python import of a missing module,
//! `cargo fmt --check` on a fixture crate), their output as a GitHub Actions job log and as plain output,
//! read from a file and from stdin, readable and `--json`; a log of tens of MB; what is not a log.

mod support;

use std::path::Path;

use support::{failing, gha_log, sre_agent};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("--json printed no JSON object ({e}):\n{stdout}"))
}

#[test]
fn a_missing_python_module_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let script = "python3 -c 'import missing_mod'";
    let (output, code) = failing(dir.path(), script);
    assert_eq!(code, 1);
    let gha = write(dir.path(), "job.log", &gha_log(script, &output, code));
    let plain = write(dir.path(), "plain.log", &output);

    let ran = sre_agent(&["diagnose", &gha], &[], None, dir.path());
    assert_eq!(ran.code, 0, "{ran}");
    let text = &ran.stdout;
    assert!(text.contains("step       Run python3 -c 'import missing_mod'  (failed, exit code 1)\n"), "{ran}");
    assert!(text.contains("command    python3 -c 'import missing_mod'\n"), "{ran}");
    assert!(text.contains("diagnosis  dependency  (language python"), "{ran}");
    assert!(text.contains("summary    ModuleNotFoundError: No module named 'missing_mod'\n"), "{ran}");
    // Context lines carry their line numbers in the log.
    let numbered = text.lines().find(|l| l.contains("| ModuleNotFoundError")).unwrap_or_else(|| panic!("{ran}"));
    assert!(numbered.trim_start().starts_with(|c: char| c.is_ascii_digit()), "{numbered}");
    assert!(text.contains("| ##[error]Process completed with exit code 1."), "{ran}");

    let ran = sre_agent(&["diagnose", "--json", &gha], &[], None, dir.path());
    assert_eq!(ran.code, 0, "{ran}");
    let v = json(&ran.stdout);
    assert_eq!(v["format"], "github_actions");
    assert_eq!(v["step_name"], "Run python3 -c 'import missing_mod'");
    assert_eq!(v["command"], script);
    assert_eq!((v["exit_code"].as_i64(), v["step_failed"].as_bool()), (Some(1), Some(true)));
    assert_eq!((v["category"].as_str(), v["language"].as_str()), (Some("dependency"), Some("python")));
    assert_eq!(v["summary"], "ModuleNotFoundError: No module named 'missing_mod'");
    assert_eq!(v["autofixable"], false);
    let lines = v["lines"].as_array().unwrap();
    assert!(lines.iter().any(|l| l == "ModuleNotFoundError: No module named 'missing_mod'"), "{v:#}");
    assert!(lines.iter().all(|l| !l.as_str().unwrap().starts_with("2026-")), "timestamps stripped: {v:#}");
    assert_eq!(
        v["windows"].as_array().unwrap().iter().map(|w| w["len"].as_u64().unwrap()).sum::<u64>(),
        lines.len() as u64
    );

    // The bare output: no step, the same diagnosis.
    let ran = sre_agent(&["diagnose", "--json", &plain], &[], None, dir.path());
    assert_eq!(ran.code, 0, "{ran}");
    let v = json(&ran.stdout);
    assert_eq!((v["format"].as_str(), v["step_name"].as_str()), (Some("plain"), None));
    assert_eq!((v["category"].as_str(), v["language"].as_str()), (Some("dependency"), Some("python")));
    let ran = sre_agent(&["diagnose", &plain], &[], None, dir.path());
    assert!(ran.stdout.starts_with("step       none found (plain log)\n"), "{ran}");
    assert!(!ran.stdout.contains("command    "), "a plain log names no command: {ran}");
}

#[test]
fn cargo_fmt_check_on_a_fixture_crate_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Cargo.toml", "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
    write(dir.path(), "src/lib.rs", "pub fn add(a:i32,b:i32)->i32{a+b}\n");
    let script = "cargo fmt --all --check";
    let (output, code) = failing(dir.path(), script);
    assert!(output.contains("Diff in"), "rustfmt reported the diff:\n{output}");
    // On a runner the checkout is /home/runner/work/demo/demo: the file is reported relative to it.
    let root = dir.path().canonicalize().unwrap();
    let log = gha_log(script, &output.replace(root.to_str().unwrap(), "/home/runner/work/demo/demo"), code);

    let ran = sre_agent(&["diagnose", "-"], &[], Some(log.as_bytes()), dir.path());
    assert_eq!(ran.code, 0, "{ran}");
    assert!(ran.stdout.contains("step       Run cargo fmt --all --check  (failed, exit code 1)\n"), "{ran}");
    assert!(ran.stdout.contains("diagnosis  format  (language rust, tool rustfmt, autofixable)\n"), "{ran}");
    assert!(ran.stdout.contains("files      src/lib.rs:1"), "{ran}");

    let ran = sre_agent(&["diagnose", "--json", "-"], &[], Some(log.as_bytes()), dir.path());
    assert_eq!(ran.code, 0, "{ran}");
    let v = json(&ran.stdout);
    assert_eq!((v["category"].as_str(), v["tool"].as_str()), (Some("format"), Some("rustfmt")));
    assert_eq!(v["file_refs"][0]["path"], "src/lib.rs");
    assert_eq!(v["file_refs"][0]["line"], 1);

    // The raw output names the fixture's absolute path: --workspace-root makes it relative.
    let plain = write(dir.path(), "fmt.log", &output);
    let ran = sre_agent(&["diagnose", "--json", &plain], &[], None, dir.path());
    assert_eq!(json(&ran.stdout)["file_refs"].as_array().map(Vec::len), Some(0), "{ran}");
    let ran =
        sre_agent(&["diagnose", "--json", "--workspace-root", root.to_str().unwrap(), &plain], &[], None, dir.path());
    assert_eq!(json(&ran.stdout)["file_refs"][0]["path"], "src/lib.rs", "{ran}");
}

#[test]
fn a_log_of_tens_of_megabytes() {
    let dir = tempfile::tempdir().unwrap();
    let script = "python3 -c 'import missing_mod'";
    let (output, code) = failing(dir.path(), script);
    // 300,000 lines of build chatter (about 30 MB with the runner's timestamps) before the failure.
    let chatter: String = (0..300_000)
        .map(|i| format!("Compiling dependency-{i:06} v1.0.{i} (registry+https://example.org/index)\n"))
        .collect();
    let log = gha_log(script, &format!("{chatter}{output}"), code);
    assert!(log.len() > 25 * 1024 * 1024, "{} bytes", log.len());
    let path = write(dir.path(), "big.log", &log);
    let started = std::time::Instant::now();
    let ran = sre_agent(&["diagnose", "--json", &path], &[], None, dir.path());
    assert_eq!(ran.code, 0, "{ran}");
    let v = json(&ran.stdout);
    assert_eq!(v["category"], "dependency");
    assert_eq!(v["summary"], "ModuleNotFoundError: No module named 'missing_mod'");
    assert!(v["log_lines"].as_u64().unwrap() > 300_000);
    assert!(v["lines"].as_array().unwrap().len() <= 200, "the context stays within its caps");
    eprintln!("diagnosed {} MB in {:.1?}", log.len() / (1024 * 1024), started.elapsed());
}

#[test]
fn what_is_not_a_log_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (write(dir.path(), "empty.log", "\n \n"), "is empty: there is no log to read"),
        (write(dir.path(), "logs.zip", "PK\x03\x04...."), "is a zip archive, not a log"),
        (dir.path().join("missing.log").to_str().unwrap().to_owned(), "missing.log: No such file or directory"),
        (dir.path().to_str().unwrap().to_owned(), "is a directory, not a log file"),
    ];
    for (path, message) in cases {
        let ran = sre_agent(&["diagnose", &path], &[], None, dir.path());
        assert_eq!(ran.code, 2, "{path}: {ran}");
        assert!(ran.stderr.starts_with("sre-agent: ") && ran.stderr.contains(message), "{path}: {ran}");
        assert!(ran.stdout.is_empty(), "{ran}");
    }
    // Sparse: refused from its size, never read.
    let huge = dir.path().join("huge.log");
    std::fs::File::create(&huge).unwrap().set_len(201 * 1024 * 1024).unwrap();
    let ran = sre_agent(&["diagnose", huge.to_str().unwrap()], &[], None, dir.path());
    assert_eq!(ran.code, 2, "{ran}");
    assert!(ran.stderr.contains("201 MB is too large for a job log (at most 200 MB are read)"), "{ran}");
    let ran = sre_agent(&["diagnose"], &[], None, dir.path());
    assert_eq!(ran.code, 2, "a missing argument is a usage error: {ran}");
    assert!(ran.stderr.contains("<LOG_FILE>"), "{ran}");
}

#[test]
fn every_verb_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for (verb, mentions) in [
        (None, "diagnose"),
        (Some("diagnose"), "--json"),
        (Some("run"), "--command <CMD>"),
        (Some("runs"), "--artifact <KIND>"),
    ] {
        let args: Vec<&str> = verb.into_iter().chain(["--help"]).collect();
        let ran = sre_agent(&args, &[], None, dir.path());
        assert_eq!(ran.code, 0, "{args:?}: {ran}");
        let usage = format!("Usage: sre-agent{}", verb.map(|v| format!(" {v}")).unwrap_or_default());
        assert!(ran.stdout.contains(&usage) && ran.stdout.contains(mentions), "{args:?}: {ran}");
    }
    let ran = sre_agent(&["run", "--help"], &[], None, dir.path());
    assert!(ran.stdout.contains("[env: SRE_GATEWAY_URL=]") && ran.stdout.contains("SRE_REPOS_DIR"), "{ran}");
}
