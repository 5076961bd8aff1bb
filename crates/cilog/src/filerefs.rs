//! `file:line[:col]` references in context lines, as paths relative to the checkout.
//!
//! Tools name files many ways: `path:line:col` (gcc, go, ruff, mypy), ` --> path:line:col` (rustc),
//! `File "path", line N` (Python), `path(line,col)` (tsc), a path on its own line followed by `line:col`
//! rows (eslint), `Diff in path:line:` (rustfmt), `would reformat path` (black), `[warn] path` (prettier).
//! Paths under a CI runner's checkout directory are made relative; toolchain and dependency paths
//! (`/usr/lib`, `~/.cargo/registry`, `node_modules`, `site-packages`, `/rustc/<hash>`) are dropped, and so is any
//! other absolute path: it is not a file of the repository.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// A place in a file that a tool pointed at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileRef {
    /// Relative to the repository root, `/`-separated.
    pub path: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// At most this many references are kept (the first ones: the first error's files).
pub const MAX_FILE_REFS: usize = 64;

const EXT: &str = r"[A-Za-z][A-Za-z0-9]{0,9}";

static LOCATED: LazyLock<Regex> = LazyLock::new(|| {
    // path:line[:col], path(line,col), File "path", line N
    Regex::new(&format!(
        r#"(?x)
        (?:^|[\s'"(\[<=,`])
        (?:File\ ")?
        (?P<path>(?:[A-Za-z]:)?[\w.~/\\@+\-]*[\w\-+@]\.{EXT})
        (?:
            "?,\ line\ (?P<pyline>\d+)
          | :(?P<line>\d+)(?::(?P<col>\d+))?
          | \((?P<pline>\d+),(?P<pcol>\d+)\)
          | \ at\ line\ (?P<atline>\d+)
        )"#
    ))
    .expect("located")
});

static UNLOCATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^(?:would reformat |\[warn\] |\[error\] |Diff in |unformatted: |reformatted |Error: )(?P<path>\S+\.{EXT})\s*$"
    ))
    .expect("unlocated")
});

/// A path alone on its line (eslint's file header).
static BARE_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^(?P<path>(?:[A-Za-z]:)?[\w.~/\\@+\-]+\.{EXT})$")).expect("bare"));

static ESLINT_ROW: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s+(?P<line>\d+):(?P<col>\d+)\s+(?:error|warning)\s").expect("row"));

/// CI runners' checkout directories: what follows them is a repository path.
static RUNNER_ROOT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)^(?:
            /home/runner/work/[^/]+/[^/]+/
          | /Users/runner/work/[^/]+/[^/]+/
          | /__w/[^/]+/[^/]+/
          | [A-Za-z]:/a/[^/]+/[^/]+/
          | /github/workspace/
          | /home/travis/build/[^/]+/[^/]+/
          | /home/travis/gopath/src/[^/]+/[^/]+/[^/]+/
          | /builds/[^/]+/[^/]+/
          | /home/circleci/(?:project|repo)/
        )",
    )
    .expect("roots")
});

/// Paths of toolchains, registries and installed dependencies.
fn is_foreign(path: &str) -> bool {
    const PARTS: &[&str] = &[
        "/.cargo/registry/",
        "/.cargo/git/",
        "/.rustup/",
        "/rustc/",
        "node_modules/",
        "site-packages/",
        "dist-packages/",
        "/pkg/mod/",
        "<frozen",
        "/lib/python",
    ];
    PARTS.iter().any(|p| path.contains(p))
        || path.starts_with("internal/")
        || path.starts_with("node:")
        || path.starts_with("/usr/")
        || path.starts_with("/opt/")
}

/// The repository-relative form of a path, or None when it is not a repository file.
fn relative(path: &str, roots: &[String]) -> Option<String> {
    let mut p = path.replace('\\', "/");
    if is_foreign(&p) {
        return None;
    }
    for root in roots {
        let root = root.replace('\\', "/");
        let root = root.trim_end_matches('/');
        if !root.is_empty()
            && let Some(rest) = p.strip_prefix(root).and_then(|r| r.strip_prefix('/'))
        {
            p = rest.to_string();
        }
    }
    if let Some(m) = RUNNER_ROOT.find(&p) {
        p = p[m.end()..].to_string();
    }
    while let Some(rest) = p.strip_prefix("./") {
        p = rest.to_string();
    }
    let absolute = p.starts_with('/') || p.starts_with('~') || p.as_bytes().get(1) == Some(&b':');
    if absolute || p.is_empty() || p.contains("://") {
        return None;
    }
    Some(p)
}

/// File references in `lines`, in order of first appearance, without duplicates.
pub fn file_refs(lines: &[String], roots: &[String]) -> Vec<FileRef> {
    let mut out: Vec<FileRef> = Vec::new();
    let push = |path: &str, line: Option<u32>, column: Option<u32>, out: &mut Vec<FileRef>| {
        if out.len() >= MAX_FILE_REFS {
            return;
        }
        let Some(path) = relative(path, roots) else { return };
        // a version number (`v1.2`) or a bare number is not a file
        if !path.chars().any(|c| c.is_ascii_alphabetic())
            || path.split('.').next_back().is_some_and(|e| e.chars().all(|c| c.is_ascii_digit()))
        {
            return;
        }
        let r = FileRef { path, line, column };
        if !out.contains(&r) {
            out.push(r);
        }
    };
    let num = |m: Option<regex::Match>| m.and_then(|m| m.as_str().parse::<u32>().ok());
    let mut block_path: Option<String> = None;
    for line in lines {
        if let Some(c) = BARE_PATH.captures(line) {
            block_path = Some(c["path"].to_string());
            continue;
        }
        if let (Some(path), Some(c)) = (&block_path, ESLINT_ROW.captures(line)) {
            let path = path.clone();
            push(&path, num(c.name("line")), num(c.name("col")), &mut out);
            continue;
        }
        if line.trim().is_empty() {
            block_path = None;
        }
        if let Some(c) = UNLOCATED.captures(line)
            && !LOCATED.is_match(line)
        {
            push(&c["path"], None, None, &mut out);
            continue;
        }
        for c in LOCATED.captures_iter(line) {
            let line_no =
                num(c.name("line")).or(num(c.name("pyline"))).or(num(c.name("pline"))).or(num(c.name("atline")));
            let col = num(c.name("col")).or(num(c.name("pcol")));
            push(&c["path"], line_no, col, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(lines: &[&str]) -> Vec<(String, Option<u32>, Option<u32>)> {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        file_refs(&lines, &[]).into_iter().map(|r| (r.path, r.line, r.column)).collect()
    }

    fn r(p: &str, l: Option<u32>, c: Option<u32>) -> (String, Option<u32>, Option<u32>) {
        (p.to_string(), l, c)
    }

    #[test]
    fn the_shapes_tools_print() {
        assert_eq!(refs(&[" --> src/lib.rs:3:5"]), [r("src/lib.rs", Some(3), Some(5))]);
        assert_eq!(
            refs(&["  File \"/home/runner/work/app/app/pkg/mod.py\", line 12, in f"]),
            [r("pkg/mod.py", Some(12), None)]
        );
        assert_eq!(refs(&["a.ts(8,67): error TS2307: Cannot find module 'x'"]), [r("a.ts", Some(8), Some(67))]);
        assert_eq!(refs(&["./add.go:6:9: invalid operation"]), [r("add.go", Some(6), Some(9))]);
        assert_eq!(refs(&["Diff in /__w/demo/demo/src/lib.rs:1:"]), [r("src/lib.rs", Some(1), None)]);
        assert_eq!(refs(&["Diff in src/main.rs at line 4:"]), [r("src/main.rs", Some(4), None)]);
        assert_eq!(refs(&["would reformat /home/runner/work/a/a/pkg/mod.py"]), [r("pkg/mod.py", None, None)]);
        assert_eq!(refs(&["[warn] src/index.js"]), [r("src/index.js", None, None)]);
        assert_eq!(
            refs(&[
                "",
                "/home/runner/work/a/a/src/index.js",
                "  1:7   error  'a' is unused  no-unused-vars",
                "  2:10  error  Missing semicolon  semi"
            ]),
            [r("src/index.js", Some(1), Some(7)), r("src/index.js", Some(2), Some(10))]
        );
    }

    #[test]
    fn toolchain_and_foreign_paths_are_dropped() {
        let lines = [
            " --> /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/ops/arith.rs:99:8",
            "/root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde-1.0.0/src/de.rs:10:1",
            "    at Module._compile (node:internal/modules/cjs/loader:1105:14)",
            "    at Object.<anonymous> (/app/node_modules/jest/bin/jest.js:12:3)",
            "/usr/lib/python3.11/importlib/__init__.py:126: in import_module",
            "/tmp/random/elsewhere.py:3: error",
            "see https://example.com/page.html:80 and version 1.2:3",
        ];
        assert_eq!(refs(&lines), []);
    }

    #[test]
    fn workspace_roots_from_options() {
        let lines = vec!["/tmp/fixture-1/src/lib.rs:3:1: oops".to_string()];
        let got = file_refs(&lines, &["/tmp/fixture-1/".to_string()]);
        assert_eq!(got, [FileRef { path: "src/lib.rs".into(), line: Some(3), column: Some(1) }]);
    }
}
