//! Which test command a tree uses, and the UTF-8-safe tail of its output. Pure functions; [`TreeFacts::read`]
//! is the only part that touches the disk.

use std::path::Path;

/// What the detection looked for, in order (the FAILED_PRECONDITION message when nothing matches).
pub const LOOKED_FOR: &str = "a Makefile with a test target, Cargo.toml, package.json with scripts.test, \
                              pyproject.toml / setup.py / pytest.ini / tests/, go.mod";

/// Largest Makefile or package.json read for detection.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The files at the root of a tree that decide its test command.
#[derive(Clone, Debug, Default)]
pub struct TreeFacts {
    /// Contents of the Makefile make would pick (GNUmakefile, makefile, Makefile).
    pub makefile: Option<String>,
    pub cargo_toml: bool,
    pub package_json: Option<String>,
    /// pyproject.toml, setup.py, pytest.ini or a tests/ directory.
    pub python: bool,
    pub go_mod: bool,
}

impl TreeFacts {
    /// Reads the facts from the root of `dir`.
    pub fn read(dir: &Path) -> Self {
        let read = |name: &str| {
            let p = dir.join(name);
            let small = std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.len() <= MAX_MANIFEST_BYTES);
            small.then(|| std::fs::read(&p).ok()).flatten().map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let is_file = |name: &str| dir.join(name).is_file();
        Self {
            makefile: ["GNUmakefile", "makefile", "Makefile"].into_iter().find_map(read),
            cargo_toml: is_file("Cargo.toml"),
            package_json: read("package.json"),
            python: ["pyproject.toml", "setup.py", "pytest.ini"].into_iter().any(is_file) || dir.join("tests").is_dir(),
            go_mod: is_file("go.mod"),
        }
    }
}

/// True when the Makefile text defines a `test` target (`test:`, `test::`, `check test: deps`).
pub fn makefile_has_test_target(text: &str) -> bool {
    text.lines().any(|line| {
        if line.starts_with('\t') || line.trim_start().starts_with('#') {
            return false;
        }
        let Some((targets, rest)) = line.split_once(':') else { return false };
        // `VAR := value` and `VAR ::= value` are assignments, not rules.
        if rest.starts_with('=') || rest.starts_with(":=") || targets.contains('=') {
            return false;
        }
        targets.split_whitespace().any(|t| t == "test")
    })
}

/// True when package.json has a non-empty `scripts.test`.
pub fn package_json_has_test(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("scripts")?.get("test")?.as_str().map(|s| !s.trim().is_empty()))
        .unwrap_or(false)
}

/// The test command for a tree, first match wins: make, cargo, npm, pytest, go.
pub fn test_command(f: &TreeFacts) -> Option<&'static str> {
    if f.makefile.as_deref().is_some_and(makefile_has_test_target) {
        Some("make test")
    } else if f.cargo_toml {
        Some("cargo test --offline")
    } else if f.package_json.as_deref().is_some_and(package_json_has_test) {
        Some("npm test")
    } else if f.python {
        Some("python3 -m pytest -q")
    } else if f.go_mod {
        Some("go test ./...")
    } else {
        None
    }
}

/// The last `max` bytes of `bytes` as text: invalid UTF-8 replaced, cut on a character boundary so the
/// result is at most `max` bytes.
pub fn utf8_tail(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= max {
        return text.into_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_make_test_targets() {
        assert!(makefile_has_test_target("all: build\n\ntest:\n\tpytest\n"));
        assert!(makefile_has_test_target(".PHONY: test\ncheck test: lint\n\t./run\n"));
        assert!(makefile_has_test_target("test::\n\techo double-colon\n"));
        assert!(!makefile_has_test_target(".PHONY: test\nbuild:\n\tcc x.c\n"));
        assert!(!makefile_has_test_target("test := 1\ntest ::= 2\nFOO=test: x\n"));
        assert!(!makefile_has_test_target("# test:\n\ttest: inside a recipe\ntests:\n\tx\n"));
    }

    #[test]
    fn reads_package_json_scripts() {
        assert!(package_json_has_test(r#"{"scripts":{"test":"jest"}}"#));
        assert!(!package_json_has_test(r#"{"scripts":{"build":"tsc"}}"#));
        assert!(!package_json_has_test(r#"{"scripts":{"test":"  "}}"#));
        assert!(!package_json_has_test("not json"));
    }

    #[test]
    fn picks_the_first_matching_command() {
        let make = Some("test:\n\tpytest\n".to_owned());
        let facts = |f: fn(&mut TreeFacts)| {
            let mut t = TreeFacts::default();
            f(&mut t);
            t
        };
        let all = TreeFacts {
            makefile: make.clone(),
            cargo_toml: true,
            package_json: Some(r#"{"scripts":{"test":"jest"}}"#.to_owned()),
            python: true,
            go_mod: true,
        };
        assert_eq!(test_command(&all), Some("make test"));
        let no_target = TreeFacts { makefile: Some("build:\n\tcc\n".to_owned()), ..all.clone() };
        assert_eq!(test_command(&no_target), Some("cargo test --offline"));
        assert_eq!(
            test_command(&facts(|t| t.package_json = Some(r#"{"scripts":{"test":"x"}}"#.into()))),
            Some("npm test")
        );
        assert_eq!(test_command(&facts(|t| t.package_json = Some("{}".into()))), None);
        assert_eq!(test_command(&facts(|t| t.python = true)), Some("python3 -m pytest -q"));
        assert_eq!(test_command(&facts(|t| t.go_mod = true)), Some("go test ./..."));
        assert_eq!(test_command(&TreeFacts::default()), None);
    }

    #[test]
    fn reads_facts_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(test_command(&TreeFacts::read(dir.path())), None);
        std::fs::create_dir(dir.path().join("tests")).unwrap();
        assert_eq!(test_command(&TreeFacts::read(dir.path())), Some("python3 -m pytest -q"));
        std::fs::write(dir.path().join("Makefile"), "test:\n\ttrue\n").unwrap();
        assert_eq!(test_command(&TreeFacts::read(dir.path())), Some("make test"));
    }

    #[test]
    fn tails_on_char_boundaries() {
        assert_eq!(utf8_tail(b"short", 8), "short");
        assert_eq!(utf8_tail(b"0123456789", 4), "6789");
        // "é" is two bytes: a cut through it moves forward to the next boundary.
        let t = utf8_tail("aéé".as_bytes(), 3);
        assert_eq!(t, "é");
        let big = "ü".repeat(10_000);
        let t = utf8_tail(big.as_bytes(), 8192);
        assert!(t.len() <= 8192 && t.len() >= 8190);
        assert!(t.chars().all(|c| c == 'ü'));
        // Invalid bytes are replaced, the result still fits.
        let t = utf8_tail(&[0xff; 9000], 8192);
        assert!(t.len() <= 8192);
    }
}
