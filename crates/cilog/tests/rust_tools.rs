//! Real cargo, rustfmt, clippy and rustc output, wrapped as GitHub Actions logs.

mod support;

use sre_domain::{Category, Language, Tool};
use support::{Fixture, common, has_line, has_ref, tool};

const MANIFEST: &str = "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n";

fn crate_with(lib: &str) -> Fixture {
    tool("cargo");
    Fixture::new(&[("Cargo.toml", MANIFEST), ("src/lib.rs", lib)])
}

/// Cargo in the fixture: offline, its own target dir, colours on as CI sets them.
fn cargo_env(f: &Fixture) -> Vec<(&'static str, String)> {
    vec![
        ("CARGO_TARGET_DIR", f.path().join("target").display().to_string()),
        ("CARGO_TERM_COLOR", "always".to_string()),
        ("RUST_BACKTRACE", "0".to_string()),
    ]
}

fn failing(f: &Fixture, script: &str) -> Vec<u8> {
    let env = cargo_env(f);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    f.failing_step(script, &env)
}

#[test]
fn cargo_fmt_check() {
    tool("rustfmt");
    let f = crate_with("pub fn add(a: i32,b:i32)->i32{a+b}\n");
    let log = failing(&f, "cargo fmt --all --check");
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "cargo fmt --all --check", 1);
    has_line(&ctx, "Diff in ");
    has_line(&ctx, "+pub fn add(a: i32, b: i32) -> i32 {");
    has_ref(&ctx, "src/lib.rs", Some(1));
    assert_eq!(
        (d.category, d.language, d.tool, d.autofixable),
        (Category::Format, Language::Rust, Tool::Rustfmt, true)
    );
    assert!(d.summary.starts_with("Diff in "), "{}", d.summary);
}

#[test]
fn clippy_with_deny_warnings() {
    tool("cargo-clippy");
    let f = crate_with("pub fn add(a: i32, b: i32) -> i32 {\n    return a + b;\n}\n");
    let log = failing(&f, "cargo clippy --offline -- -D warnings");
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "cargo clippy --offline -- -D warnings", 101);
    has_line(&ctx, "error: unneeded `return` statement");
    has_line(&ctx, "implied by `-D warnings`");
    has_line(&ctx, "return a + b;"); // the code frame, not just the header
    has_ref(&ctx, "src/lib.rs", Some(2));
    assert_eq!((d.category, d.language, d.tool, d.autofixable), (Category::Lint, Language::Rust, Tool::Clippy, true));
    assert_eq!(d.summary, "error: unneeded `return` statement");
}

#[test]
fn rustc_compile_error() {
    let f = crate_with("pub fn add(a: i32, b: i32) -> i32 {\n    let s: String = a + b;\n    s.len() as i32\n}\n");
    let log = failing(&f, "cargo build --offline");
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "cargo build --offline", 101);
    has_line(&ctx, "error[E0308]: mismatched types");
    has_line(&ctx, "let s: String = a + b;");
    has_line(&ctx, "^");
    has_ref(&ctx, "src/lib.rs", Some(2));
    assert_eq!(
        (d.category, d.language, d.tool, d.autofixable),
        (Category::Compile, Language::Rust, Tool::Rustc, false)
    );
    assert!(d.summary.starts_with("error[E0308]"), "{}", d.summary);
}

#[test]
fn unresolved_import_is_a_missing_dependency() {
    let f = crate_with("use serde::Serialize;\n\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n");
    let log = failing(&f, "cargo build --offline");
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "cargo build --offline", 101);
    has_line(&ctx, "error[E0432]: unresolved import `serde`");
    has_line(&ctx, "cargo add serde");
    has_ref(&ctx, "src/lib.rs", Some(1));
    assert_eq!((d.category, d.language, d.tool), (Category::Dependency, Language::Rust, Tool::Rustc));
}

#[test]
fn failing_cargo_test() {
    let f = crate_with(
        "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        assert_eq!(super::add(2, 2), 4);\n    }\n}\n",
    );
    let log = failing(&f, "cargo test --offline");
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "cargo test --offline", 101);
    has_line(&ctx, "panicked at src/lib.rs:9:9:");
    has_line(&ctx, "assertion `left == right` failed");
    has_line(&ctx, "left: 0");
    has_line(&ctx, "test result: FAILED. 0 passed; 1 failed");
    has_ref(&ctx, "src/lib.rs", Some(9));
    assert_eq!((d.category, d.language, d.tool), (Category::Test, Language::Rust, Tool::Cargo));
}
