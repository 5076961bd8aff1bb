//! The validator's lookup of the failing step in a workflow file, over any text and any facts. Input: four
//! lines (workflow name, job name, failing step, step command; `\n` in them written as `\\n`), then the file.
//! A step it would run is a real step of that file, its working directory stays inside the repository, its
//! environment has only variable names, its timeout is capped, and its argv runs exactly the script; the
//! answer is the same every time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sre_validator::workflow::{Facts, Resolution, WORKSPACE, WorkflowFile, resolve_step};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(5, '\n');
    let mut fact = || parts.next().unwrap_or_default().replace("\\n", "\n");
    let (workflow_name, job_name, failing_step, step_command) = (fact(), fact(), fact(), fact());
    let yaml = parts.next().unwrap_or_default().to_owned();
    let files = vec![WorkflowFile { path: ".github/workflows/ci.yml".into(), text: yaml }];
    let facts = Facts {
        workflow_name: &workflow_name,
        job_name: &job_name,
        failing_step: &failing_step,
        step_command: &step_command,
        head_sha: "0123456789abcdef0123456789abcdef01234567",
    };
    let resolution = resolve_step(&files, &facts);
    assert_eq!(resolve_step(&files, &facts), resolution, "not deterministic");
    let found = match &resolution {
        Resolution::Run(cmd) => {
            let dir = &cmd.working_directory;
            assert!(
                !dir.starts_with('/') && !dir.split('/').any(|p| p == ".." || p == "." || p.is_empty())
                    || dir.is_empty(),
                "working directory {dir:?}"
            );
            assert!(!dir.contains(WORKSPACE), "{dir:?}");
            for (k, _) in &cmd.env {
                assert!(!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "env key {k:?}");
                assert!(!k.starts_with(|c: char| c.is_ascii_digit()), "env key {k:?}");
            }
            assert!(cmd.timeout.is_none_or(|t| t.as_secs() <= 86_400), "{:?}", cmd.timeout);
            let (script, _) = cmd.for_workspace("/work");
            let argv = cmd.shell.argv(&script);
            assert_eq!(argv.last().and_then(|a| a.to_str()), Some(script.as_str()));
            Some(&cmd.found)
        }
        Resolution::Refused { found, .. } => found.as_ref(),
        Resolution::NotFound(_) => None,
    };
    if let Some(found) = found {
        assert_eq!(found.workflow, ".github/workflows/ci.yml");
        // A refusal before the step lookup (the job's kind) has no step yet.
        assert!(found.step_index <= 1_000_000, "{found:?}");
    }
});
