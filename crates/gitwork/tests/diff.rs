//! The diff reader against real git: for random edits of random files (with lines that look like diff
//! headers), the files and counts read from `git diff` are git's own `--numstat`, and a diff `git apply`
//! takes is one the reader takes.

use proptest::prelude::*;
use sre_gitwork::testing::{git, init_repo};
use sre_gitwork::{diff_stat, parse_diff};
use std::collections::BTreeMap;
use std::path::Path;

/// Lines biased towards what confuses a diff reader.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("--- a/.github/workflows/ci.yml".to_owned()),
        Just("+++ b/.github/workflows/ci.yml".to_owned()),
        Just("-- a/x".to_owned()),
        Just("++ b/x".to_owned()),
        Just("@@ -1 +1 @@".to_owned()),
        Just("diff --git a/x b/x".to_owned()),
        Just("\\ No newline at end of file".to_owned()),
        Just(" indented".to_owned()),
        "[a-c +-]{0,6}",
    ]
}

fn text() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(line(), 0..12)
}

#[derive(Debug, Clone)]
enum Edit {
    Keep,
    Delete,
    Rewrite(Vec<String>, bool),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![Just(Edit::Keep), Just(Edit::Delete), (text(), any::<bool>()).prop_map(|(t, nl)| Edit::Rewrite(t, nl))]
}

fn write(dir: &Path, name: &str, lines: &[String], final_newline: bool) {
    let mut s = lines.join("\n");
    if final_newline && !lines.is_empty() {
        s.push('\n');
    }
    std::fs::write(dir.join(name), s).expect("write");
}

fn raw_git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(args).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 diff")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reads_git_diffs_as_git_counts_them(
        before in proptest::collection::vec(text(), 1..4),
        edits in proptest::collection::vec(edit(), 1..4),
        added in proptest::option::of(text()),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        init_repo(dir);
        for (i, t) in before.iter().enumerate() {
            write(dir, &format!("f{i}.txt"), t, true);
        }
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "--allow-empty", "-m", "base"]);
        for (i, e) in edits.iter().enumerate().filter(|(i, _)| *i < before.len()) {
            match e {
                Edit::Keep => {}
                Edit::Delete => std::fs::remove_file(dir.join(format!("f{i}.txt"))).expect("rm"),
                Edit::Rewrite(t, nl) => write(dir, &format!("f{i}.txt"), t, *nl),
            }
        }
        if let Some(t) = &added {
            write(dir, "new.txt", t, true);
        }
        git(dir, &["add", "-A"]);
        let diff = raw_git(dir, &["diff", "--cached", "--no-color", "--no-renames", "HEAD"]);
        let numstat = raw_git(dir, &["diff", "--cached", "--numstat", "--no-renames", "HEAD"]);
        let want: BTreeMap<String, (u32, u32)> = numstat
            .lines()
            .map(|l| {
                let mut f = l.split('\t');
                let a = f.next().and_then(|n| n.parse().ok()).expect("added");
                let r = f.next().and_then(|n| n.parse().ok()).expect("removed");
                (f.next().expect("path").to_owned(), (a, r))
            })
            .collect();
        let files = parse_diff(&diff).map_err(|e| TestCaseError::fail(format!("{e}\n{diff}")))?;
        let got: BTreeMap<String, (u32, u32)> = files.iter().map(|f| (f.path.clone(), (f.added, f.removed))).collect();
        prop_assert_eq!(&got, &want, "{}", diff);
        let stat = diff_stat(&diff);
        prop_assert_eq!(stat.added, want.values().map(|v| v.0).sum::<u32>());
        prop_assert_eq!(stat.removed, want.values().map(|v| v.1).sum::<u32>());
        prop_assert_eq!(stat.files.len(), want.len());
    }
}
