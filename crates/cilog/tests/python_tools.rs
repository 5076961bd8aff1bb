//! Real ruff, black, pytest and Python output, wrapped as GitHub Actions logs.

mod support;

use sre_domain::{Category, Language, Tool};
use support::{Fixture, common, has_line, has_ref, tool};

const MODULE: &str = "import os\nimport sys\n\ndef f( x ):\n  return x+1\n";

fn project() -> Fixture {
    Fixture::new(&[
        ("pkg/__init__.py", ""),
        ("pkg/mod.py", MODULE),
        // tests import the package from the checkout, as a repo's pytest config usually arranges
        ("pyproject.toml", "[tool.pytest.ini_options]\npythonpath = [\".\"]\n"),
    ])
}

/// Python tools must not write caches or bytecode into the fixture, nor read user config.
const PY_ENV: &[(&str, &str)] = &[("PYTHONDONTWRITEBYTECODE", "1"), ("RUFF_NO_CACHE", "true"), ("NO_COLOR", "1")];

#[test]
fn ruff_format_check() {
    tool("ruff");
    let f = project();
    let log = f.failing_step("ruff format --check .", PY_ENV);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "ruff format --check .", 1);
    has_line(&ctx, "File would be reformatted");
    has_line(&ctx, "would be reformatted");
    has_ref(&ctx, "pkg/mod.py", Some(4));
    assert_eq!((d.category, d.language, d.tool, d.autofixable), (Category::Format, Language::Python, Tool::Ruff, true));
}

#[test]
fn ruff_check() {
    tool("ruff");
    let f = project();
    let log = f.failing_step("ruff check .", PY_ENV);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "ruff check .", 1);
    has_line(&ctx, "F401 [*] `os` imported but unused");
    has_line(&ctx, "fixable with");
    has_ref(&ctx, "pkg/mod.py", Some(1));
    assert_eq!((d.category, d.language, d.tool, d.autofixable), (Category::Lint, Language::Python, Tool::Ruff, true));
}

#[test]
fn black_check() {
    tool("black");
    let f = project();
    let log = f.failing_step("black --check .", PY_ENV);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "black --check .", 1);
    has_line(&ctx, "would reformat ");
    has_line(&ctx, "1 file would be reformatted");
    has_ref(&ctx, "pkg/mod.py", None);
    assert_eq!(
        (d.category, d.language, d.tool, d.autofixable),
        (Category::Format, Language::Python, Tool::Black, true)
    );
}

#[test]
fn pytest_failure() {
    tool("pytest");
    let f = project();
    f.write("tests/test_mod.py", "from pkg.mod import f\n\n\ndef test_f():\n    assert f(1) == 3\n");
    let log = f.failing_step("pytest -p no:cacheprovider tests", PY_ENV);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "pytest -p no:cacheprovider tests", 1);
    has_line(&ctx, ">       assert f(1) == 3");
    has_line(&ctx, "E       assert 2 == 3");
    has_line(&ctx, "FAILED tests/test_mod.py::test_f - assert 2 == 3");
    has_ref(&ctx, "tests/test_mod.py", Some(5));
    assert_eq!(
        (d.category, d.language, d.tool, d.autofixable),
        (Category::Test, Language::Python, Tool::Pytest, false)
    );
}

#[test]
fn module_not_found_in_pytest_is_a_dependency() {
    tool("pytest");
    let f = project();
    f.write(
        "tests/test_http.py",
        "import requests_but_missing\n\n\ndef test_get():\n    assert requests_but_missing\n",
    );
    let log = f.failing_step("pytest -p no:cacheprovider tests", PY_ENV);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "pytest -p no:cacheprovider tests", 2);
    has_line(&ctx, "ModuleNotFoundError: No module named 'requests_but_missing'");
    has_ref(&ctx, "tests/test_http.py", Some(1));
    assert_eq!((d.category, d.language, d.tool), (Category::Dependency, Language::Python, Tool::Pip));
    assert!(d.summary.contains("No module named 'requests_but_missing'"), "{}", d.summary);
}

#[test]
fn module_not_found_in_a_script_is_a_dependency() {
    tool("python3");
    let f = project();
    f.write("app.py", "import yaml_but_missing\n\nprint(yaml_but_missing.load)\n");
    let log = f.failing_step("python3 app.py", PY_ENV);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "python3 app.py", 1);
    has_line(&ctx, "Traceback (most recent call last):");
    has_line(&ctx, "ModuleNotFoundError: No module named 'yaml_but_missing'");
    has_ref(&ctx, "app.py", Some(1));
    assert_eq!((d.category, d.language), (Category::Dependency, Language::Python));
}
