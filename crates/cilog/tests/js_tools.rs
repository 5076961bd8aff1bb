//! Real prettier, eslint and tsc output, wrapped as GitHub Actions logs.

mod support;

use sre_domain::{Category, Language, Tool};
use support::{Fixture, common, has_line, has_ref, tool};

const INDEX: &str = "const a = {b:1}\nfunction f(x){ return x }\n";
const ESLINT_CONFIG: &str =
    "export default [{ files: [\"**/*.js\"], rules: { \"no-unused-vars\": \"error\", semi: \"error\" } }];\n";
const NODE_ENV: &[(&str, &str)] = &[("NO_COLOR", "1"), ("FORCE_COLOR", "0")];

#[test]
fn prettier_check() {
    tool("prettier");
    let f = Fixture::new(&[("src/index.js", INDEX), (".prettierrc", "{}\n")]);
    let log = f.failing_step("prettier --check src", NODE_ENV);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "prettier --check src", 1);
    has_line(&ctx, "[warn] src/index.js");
    has_line(&ctx, "Code style issues found in the above file");
    has_ref(&ctx, "src/index.js", None);
    assert_eq!(
        (d.category, d.language, d.tool, d.autofixable),
        (Category::Format, Language::Javascript, Tool::Prettier, true)
    );
}

#[test]
fn eslint_problems() {
    tool("eslint");
    let f = Fixture::new(&[("src/index.js", INDEX), ("eslint.config.mjs", ESLINT_CONFIG)]);
    let log = f.failing_step("eslint src", NODE_ENV);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "eslint src", 1);
    has_line(&ctx, "'a' is assigned a value but never used");
    has_line(&ctx, "✖ 4 problems (4 errors, 0 warnings)");
    has_ref(&ctx, "src/index.js", Some(1));
    has_ref(&ctx, "src/index.js", Some(2));
    assert_eq!(
        (d.category, d.language, d.tool, d.autofixable),
        (Category::Lint, Language::Javascript, Tool::Eslint, true)
    );
}

/// The notes' example: a lint step that fails because the repository has no ESLint config is a config failure.
#[test]
fn eslint_without_config_is_config() {
    tool("eslint");
    let f = Fixture::new(&[("src/index.js", INDEX)]);
    let log = f.failing_step("eslint src", NODE_ENV);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "eslint src", 2);
    has_line(&ctx, "ESLint couldn't find an eslint.config");
    assert_eq!((d.category, d.tool, d.autofixable), (Category::Config, Tool::Eslint, false));
}

#[test]
fn tsc_type_error() {
    tool("tsc");
    let f = Fixture::new(&[
        (
            "src/a.ts",
            "export function total(xs: number[]): number {\n  const n: number = \"0\";\n  return xs.length + n;\n}\n",
        ),
        ("tsconfig.json", "{\"compilerOptions\":{\"strict\":true,\"noEmit\":true},\"include\":[\"src\"]}\n"),
    ]);
    let log = f.failing_step("tsc -p . --pretty false", NODE_ENV);
    let (ctx, d) = f.diagnose(&log);
    common(&ctx, "tsc -p . --pretty false", 1);
    has_line(&ctx, "error TS2322: Type 'string' is not assignable to type 'number'.");
    has_ref(&ctx, "src/a.ts", Some(2));
    assert_eq!((d.category, d.language, d.tool), (Category::Compile, Language::Typescript, Tool::Tsc));
}
