//! Real gofmt and go (test, vet, build) output, wrapped as GitHub Actions logs.

mod support;

use sre_domain::{Category, Language, Tool};
use support::{Fixture, common, has_line, has_ref, tool};

const GO_MOD: &str = "module example.com/demo\n\ngo 1.19\n";
const ADD_TEST: &str = "package demo\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif got := Add(2, 2); got != 4 {\n\t\tt.Errorf(\"Add(2, 2) = %d, want 4\", got)\n\t}\n}\n";

fn module(add_go: &str) -> Fixture {
    tool("go");
    Fixture::new(&[("go.mod", GO_MOD), ("add.go", add_go), ("add_test.go", ADD_TEST)])
}

/// Go in the fixture: its own caches, no network, no toolchain download.
fn go_step(f: &Fixture, script: &str) -> Vec<u8> {
    let root = f.path();
    let (gopath, gocache) = (root.join(".gopath"), root.join(".gocache"));
    let env = [
        ("GOPATH", gopath.to_str().expect("path")),
        ("GOCACHE", gocache.to_str().expect("path")),
        ("GOPROXY", "off"),
        ("GOFLAGS", "-modcacherw"),
        ("GOTOOLCHAIN", "local"),
    ];
    f.failing_step(script, &env)
}

/// How CI runs gofmt: it lists files and exits 0, so the step wraps it, and the list goes nowhere.
#[test]
fn gofmt_as_ci_runs_it() {
    tool("gofmt");
    let f = module("package demo\n\nfunc Add(a, b int) int {\nreturn a + b\n}\n");
    let script = "test -z \"$(gofmt -l .)\"";
    let log = go_step(&f, script);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, script, 1);
    has_line(&ctx, "##[error]Process completed with exit code 1.");
    assert_eq!((d.category, d.language, d.tool, d.autofixable), (Category::Format, Language::Go, Tool::Gofmt, true));
    assert!(d.summary.contains("gofmt -l"), "{}", d.summary);
}

/// The variant that prints what it found.
#[test]
fn gofmt_listing_its_files() {
    tool("gofmt");
    let f = module("package demo\n\nfunc Add(a, b int) int {\nreturn a + b\n}\n");
    let script = "out=\"$(gofmt -l .)\"\nif [ -n \"$out\" ]; then echo \"not gofmt-ed:\"; echo \"$out\"; exit 1; fi";
    let log = go_step(&f, script);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, script, 1);
    has_line(&ctx, "add.go");
    assert_eq!((d.category, d.tool), (Category::Format, Tool::Gofmt));
}

#[test]
fn go_test_failure() {
    let f = module("package demo\n\nfunc Add(a, b int) int {\n\treturn a - b\n}\n");
    let log = go_step(&f, "go test ./...");
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "go test ./...", 1);
    has_line(&ctx, "--- FAIL: TestAdd");
    has_line(&ctx, "add_test.go:7: Add(2, 2) = 0, want 4");
    has_ref(&ctx, "add_test.go", Some(7));
    assert_eq!((d.category, d.language, d.tool), (Category::Test, Language::Go, Tool::Go));
}

#[test]
fn go_vet_report() {
    let f = module(
        "package demo\n\nimport \"fmt\"\n\nfunc Add(a, b int) int {\n\tfmt.Printf(\"%d\\n\", \"x\")\n\treturn a + b\n}\n",
    );
    let log = go_step(&f, "go vet ./...");
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "go vet ./...", 2);
    has_line(&ctx, "fmt.Printf format %d has arg \"x\" of wrong type string");
    has_ref(&ctx, "add.go", Some(6));
    assert_eq!((d.category, d.language, d.tool), (Category::Lint, Language::Go, Tool::Go));
}

#[test]
fn go_build_error() {
    let f = module("package demo\n\nimport \"fmt\"\n\nfunc Add(a, b int) int {\n\treturn a + b + \"x\"\n}\n");
    let log = go_step(&f, "go build ./...");
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "go build ./...", 2);
    has_line(&ctx, "imported and not used: \"fmt\"");
    has_line(&ctx, "mismatched types int and untyped string");
    has_ref(&ctx, "add.go", Some(3));
    has_ref(&ctx, "add.go", Some(6));
    assert_eq!((d.category, d.language, d.tool), (Category::Compile, Language::Go, Tool::Go));
}

#[test]
fn go_missing_module_is_a_dependency() {
    let f = module(
        "package demo\n\nimport \"github.com/pkg/errors\"\n\nvar E = errors.New(\"x\")\n\nfunc Add(a, b int) int { return a + b }\n",
    );
    let log = go_step(&f, "go build ./...");
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "go build ./...", 1);
    has_line(&ctx, "no required module provides package github.com/pkg/errors");
    has_ref(&ctx, "add.go", Some(3));
    assert_eq!((d.category, d.language, d.tool), (Category::Dependency, Language::Go, Tool::Go));
}
