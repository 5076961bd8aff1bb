//! Deterministic fixers: which ecosystem tool fixes a diagnosed failure, the command it runs, the files it
//! may touch, and the version the repository pins. Pure; `exec.rs` runs the commands in the sandbox.
//!
//! The fixer is chosen from the diagnosis (the tool and category the log's content shows), never from job
//! names. A fixer only ever touches the files the failure names or the tool itself reports: a patch that
//! changes anything else is refused.

use sre_domain::{Category, Language, Tool};

/// An ecosystem tool that fixes what it reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixer {
    /// `ruff format FILES`.
    RuffFormat,
    /// `ruff check --fix [--select CODES] FILES`.
    RuffFix,
    /// `black FILES`.
    Black,
    /// `cargo fmt --all`.
    CargoFmt,
    /// `cargo clippy --fix`: clippy's machine-applicable suggestions.
    ClippyFix,
    /// `prettier --write FILES`.
    Prettier,
    /// `eslint --fix FILES`.
    EslintFix,
    /// `gofmt -w FILES`.
    Gofmt,
}

/// Every fixer, for lookups by strategy.
pub const ALL: &[Fixer] = &[
    Fixer::RuffFormat,
    Fixer::RuffFix,
    Fixer::Black,
    Fixer::CargoFmt,
    Fixer::ClippyFix,
    Fixer::Prettier,
    Fixer::EslintFix,
    Fixer::Gofmt,
];

const PY: &[&str] = &[".py", ".pyi"];
const RS: &[&str] = &[".rs"];
const GO: &[&str] = &[".go"];
const JS: &[&str] = &[".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".vue"];
const PRETTIER: &[&str] = &[
    ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".json", ".css", ".scss", ".less", ".md", ".yaml",
    ".yml", ".html", ".vue", ".graphql",
];

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl Fixer {
    /// The plan's strategy and its steps' action.
    pub fn strategy(self) -> &'static str {
        match self {
            Self::RuffFormat => "ruff_format",
            Self::RuffFix => "ruff_fix",
            Self::Black => "black",
            Self::CargoFmt => "cargo_fmt",
            Self::ClippyFix => "clippy_fix",
            Self::Prettier => "prettier",
            Self::EslintFix => "eslint_fix",
            Self::Gofmt => "gofmt",
        }
    }

    pub fn from_strategy(s: &str) -> Option<Self> {
        ALL.iter().copied().find(|f| f.strategy() == s)
    }

    /// The executable that must exist in the sandbox.
    pub fn program(self) -> &'static str {
        match self {
            Self::RuffFormat | Self::RuffFix => "ruff",
            Self::Black => "black",
            Self::CargoFmt | Self::ClippyFix => "cargo",
            Self::Prettier => "prettier",
            Self::EslintFix => "eslint",
            Self::Gofmt => "gofmt",
        }
    }

    /// The tool as a reviewer names it (and as pins name it).
    pub fn tool(self) -> &'static str {
        match self {
            Self::RuffFormat | Self::RuffFix => "ruff",
            Self::Black => "black",
            Self::CargoFmt => "rustfmt",
            Self::ClippyFix => "clippy",
            Self::Prettier => "prettier",
            Self::EslintFix => "eslint",
            Self::Gofmt => "gofmt",
        }
    }

    /// File name endings the tool works on; references to other files are not its business.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::RuffFormat | Self::RuffFix | Self::Black => PY,
            Self::CargoFmt | Self::ClippyFix => RS,
            Self::Prettier => PRETTIER,
            Self::EslintFix => JS,
            Self::Gofmt => GO,
        }
    }

    pub fn handles(self, path: &str) -> bool {
        self.extensions().iter().any(|e| path.ends_with(e))
    }

    /// Prints the tool's version (exit 0), run after `command -v` found the program.
    pub fn version_argv(self) -> Vec<String> {
        match self {
            Self::RuffFormat | Self::RuffFix => owned(&["ruff", "--version"]),
            Self::Black => owned(&["black", "--version"]),
            Self::CargoFmt => owned(&["cargo", "fmt", "--version"]),
            Self::ClippyFix => owned(&["cargo", "clippy", "--version"]),
            Self::Prettier => owned(&["prettier", "--version"]),
            Self::EslintFix => owned(&["eslint", "--version"]),
            // gofmt has no version flag; it is the Go toolchain's.
            Self::Gofmt => owned(&["sh", "-c", "go version 2>/dev/null || echo gofmt"]),
        }
    }

    /// A second executable the tool needs (cargo's subcommands are separate binaries).
    pub fn subcommand_program(self) -> Option<&'static str> {
        match self {
            Self::CargoFmt => Some("rustfmt"),
            Self::ClippyFix => Some("clippy-driver"),
            _ => None,
        }
    }

    /// The check that lists the files the tool would change, for a failure whose log names none. `None`:
    /// the tool cannot list them without the failure's own references.
    pub fn list_argv(self, codes: &[String]) -> Option<Vec<String>> {
        Some(match self {
            Self::RuffFormat => owned(&["ruff", "format", "--check", "--no-cache", "."]),
            Self::RuffFix => {
                let mut a = owned(&["ruff", "check", "--no-cache", "--output-format", "concise"]);
                if !codes.is_empty() {
                    a.extend(["--select".to_owned(), codes.join(",")]);
                }
                a.push(".".to_owned());
                a
            }
            Self::Black => owned(&["black", "--check", "."]),
            Self::CargoFmt => owned(&["cargo", "fmt", "--all", "--check"]),
            Self::ClippyFix => return None,
            Self::Prettier => owned(&["prettier", "--list-different", "."]),
            // stylish, the one formatter eslint 9+ ships: a header line with each file's absolute path.
            Self::EslintFix => owned(&["eslint", "."]),
            Self::Gofmt => owned(&["gofmt", "-l", "."]),
        })
    }

    /// The fix itself, on `targets` (repository-relative, checked by the caller).
    pub fn fix_argv(self, targets: &[String], codes: &[String]) -> Vec<String> {
        let mut a = match self {
            Self::RuffFormat => owned(&["ruff", "format", "--no-cache", "--"]),
            Self::RuffFix => {
                let mut a = owned(&["ruff", "check", "--fix", "--exit-zero", "--no-cache"]);
                if !codes.is_empty() {
                    a.extend(["--select".to_owned(), codes.join(",")]);
                }
                a.push("--".to_owned());
                a
            }
            Self::Black => owned(&["black", "--quiet", "--"]),
            Self::CargoFmt => return owned(&["cargo", "fmt", "--all"]),
            Self::ClippyFix => {
                return owned(&[
                    "cargo",
                    "clippy",
                    "--fix",
                    "--allow-dirty",
                    "--allow-staged",
                    "--offline",
                    "--all-targets",
                    "--quiet",
                ]);
            }
            Self::Prettier => owned(&["prettier", "--write", "--log-level", "warn"]),
            Self::EslintFix => owned(&["eslint", "--fix"]),
            Self::Gofmt => owned(&["gofmt", "-w"]),
        };
        a.extend(targets.iter().cloned());
        a
    }

    /// Exit codes of the fix command that still mean it ran (a linter exits 1 when problems it cannot fix
    /// remain; what it could fix is written).
    pub fn fix_ran(self, exit_code: i32) -> bool {
        match self {
            Self::EslintFix => matches!(exit_code, 0 | 1),
            _ => exit_code == 0,
        }
    }
}

/// What the planner does about a diagnosed failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Run this tool's fix.
    Tool(Fixer),
    /// The log reports trailing whitespace or a missing final newline (a pre-commit hook, a grep, a
    /// flake8-style W291 from an unknown tool): the whitespace rule fixes the files it names.
    Whitespace,
    /// Never fixed with code (missing secrets, permissions, infrastructure), for this reason.
    Never(String),
    /// No deterministic fixer covers it, for this reason (the LLM planner may).
    Uncovered(String),
}

/// The facts of a failure the choice reads.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub category: Category,
    pub language: Language,
    pub tool: Tool,
    pub autofixable: bool,
    pub lines: &'a [String],
    /// `[tool.black]` in pyproject.toml.
    pub configures_black: bool,
}

/// True when the log's lines report whitespace hygiene problems.
pub fn mentions_whitespace(lines: &[String]) -> bool {
    const WORDS: &[&str] = &[
        "trailing whitespace",
        "trailing-whitespace",
        "end-of-file-fixer",
        "no newline at end of file",
        "missing final newline",
        "w291",
        "w292",
        "w293",
    ];
    lines.iter().any(|l| {
        let l = l.to_ascii_lowercase();
        WORDS.iter().any(|w| l.contains(w))
    })
}

/// Chooses the fixer for a diagnosed failure.
pub fn choose(f: &Facts<'_>) -> Choice {
    use Category as C;
    let whitespace = mentions_whitespace(f.lines);
    match f.category {
        C::Permissions => {
            return Choice::Never(
                "a permissions failure (a missing secret, token or access right) is never fixed with code".into(),
            );
        }
        C::Infra => {
            return Choice::Never(
                "an infrastructure failure (network, runner, service outage) has nothing in the code to fix".into(),
            );
        }
        _ => {}
    }
    let by_tool = match (f.category, f.tool) {
        (C::Format, Tool::Ruff) => Some(Fixer::RuffFormat),
        (C::Format, Tool::Black) => Some(Fixer::Black),
        (C::Format, Tool::Rustfmt | Tool::Cargo) => Some(Fixer::CargoFmt),
        (C::Format, Tool::Prettier) => Some(Fixer::Prettier),
        (C::Format, Tool::Gofmt | Tool::Go) => Some(Fixer::Gofmt),
        (C::Lint, Tool::Ruff) if f.autofixable => Some(Fixer::RuffFix),
        (C::Lint, Tool::Clippy) if f.autofixable => Some(Fixer::ClippyFix),
        (C::Lint, Tool::Eslint) if f.autofixable => Some(Fixer::EslintFix),
        _ => None,
    };
    if let Some(fixer) = by_tool {
        return Choice::Tool(fixer);
    }
    let unknown_tool = matches!(f.tool, Tool::Unknown | Tool::Make);
    if whitespace && unknown_tool && matches!(f.category, C::Lint | C::Format | C::Unknown) {
        return Choice::Whitespace;
    }
    if f.category == C::Format && unknown_tool {
        let by_language = match f.language {
            Language::Python if f.configures_black => Some(Fixer::Black),
            Language::Python => Some(Fixer::RuffFormat),
            Language::Rust => Some(Fixer::CargoFmt),
            Language::Javascript | Language::Typescript => Some(Fixer::Prettier),
            Language::Go => Some(Fixer::Gofmt),
            _ => None,
        };
        if let Some(fixer) = by_language {
            return Choice::Tool(fixer);
        }
    }
    if f.category == C::Lint && matches!(f.tool, Tool::Ruff | Tool::Clippy | Tool::Eslint) {
        return Choice::Uncovered(format!(
            "{} reports nothing it can fix itself (no fixable violation in the log)",
            f.tool.as_str()
        ));
    }
    let tool = if unknown_tool { String::new() } else { format!("{} ", f.tool.as_str()) };
    Choice::Uncovered(format!(
        "no deterministic fixer for {tool}{} failures in {} repositories",
        f.category.as_str(),
        f.language.as_str()
    ))
}

/// Rule codes of a linter's report lines (`app.py:1:15: W291 [*] Trailing whitespace`, ruff's full format
/// `W291 [*] Trailing whitespace`): the fix selects exactly them, so it changes only what CI reported.
pub fn rule_codes(lines: &[String]) -> Vec<String> {
    let is_code = |t: &str| {
        let letters = t.chars().take_while(|c| c.is_ascii_uppercase()).count();
        let digits = t.len() - letters;
        (1..=4).contains(&letters) && (1..=4).contains(&digits) && t[letters..].chars().all(|c| c.is_ascii_digit())
    };
    let mut codes: Vec<String> = Vec::new();
    for line in lines {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        for (i, raw) in tokens.iter().enumerate() {
            let t = raw.trim_end_matches(':');
            if !is_code(t) {
                continue;
            }
            // A code follows a position (`path:l:c:`), starts the line, or carries the fixable mark.
            let after_position = i > 0 && tokens[i - 1].ends_with(':') && tokens[i - 1].contains(':');
            let marked = tokens.get(i + 1) == Some(&"[*]");
            if (i == 0 || after_position || marked) && !codes.iter().any(|c| c == t) {
                codes.push(t.to_owned());
            }
        }
    }
    codes.truncate(50);
    codes
}

/// Paths a tool's check output names, among `files` (the commit's files). `roots` are the absolute
/// workspace paths the tool may print (stripped).
pub fn reported_files(output: &str, roots: &[String], files: &[String]) -> Vec<String> {
    const PREFIXES: &[&str] = &["Would reformat: ", "would reformat ", "Diff in ", "[warn] ", "Fixing "];
    let mut out: Vec<String> = Vec::new();
    let mut push = |candidate: &str| {
        let mut c = candidate.trim();
        for root in roots {
            if let Some(rest) = c.strip_prefix(root.as_str()) {
                c = rest.trim_start_matches('/');
            }
        }
        let c = c.trim_start_matches("./");
        if files.iter().any(|f| f == c) && !out.iter().any(|o| o == c) {
            out.push(c.to_owned());
        }
    };
    let lines: Vec<String> = output.lines().map(str::to_owned).collect();
    for line in &lines {
        let mut body = line.trim();
        for p in PREFIXES {
            if let Some(rest) = body.strip_prefix(p) {
                body = rest;
            }
        }
        // `path`, `path:line:col: message`, `path:line:` (rustfmt's Diff in).
        push(body);
        push(body.split(':').next().unwrap_or(body));
    }
    for r in sre_cilog::filerefs::file_refs(&lines, roots) {
        push(&r.path);
    }
    out
}

/// Files a pre-commit style hook says it fixed (`Fixing app.py`), among `files`.
pub fn hook_fixed_files(lines: &[String], files: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("Fixing "))
        .map(|p| p.trim().trim_start_matches("./").to_owned())
        .filter(|p| files.contains(p))
        .collect()
}

/// The version numbers in a tool's `--version` output (`ruff 0.17.5` → `0.17.5`).
pub fn version_number(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ',')
        .map(|t| t.trim_start_matches('v').trim_start_matches("go"))
        .find(|t| {
            let parts: Vec<&str> = t.split('.').collect();
            parts.len() >= 2 && parts.iter().take(2).all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|t| t.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned())
}

fn numbers(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0)).collect()
}

/// Whether `installed` satisfies a pin `spec` (`==0.5.0`, `0.5.0`, `^3.0.0`, `~3.1`, `~=0.5`, `>=24`);
/// `None` when the spec is not one of these shapes.
pub fn satisfies(spec: &str, installed: &str) -> Option<bool> {
    let spec = spec.trim().trim_matches('"');
    let have = numbers(installed);
    let cmp = |want: &[u64]| -> std::cmp::Ordering {
        for (i, w) in want.iter().enumerate() {
            match have.get(i).copied().unwrap_or(0).cmp(w) {
                std::cmp::Ordering::Equal => continue,
                other => return other,
            }
        }
        std::cmp::Ordering::Equal
    };
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.');
    if let Some(v) = spec.strip_prefix(">=") {
        let v = v.trim();
        return plain(v).then(|| cmp(&numbers(v)) != std::cmp::Ordering::Less);
    }
    if let Some(v) = spec.strip_prefix("~=").or_else(|| spec.strip_prefix('~')) {
        let v = v.trim();
        let want = numbers(v);
        let prefix = want.len().saturating_sub(1).clamp(1, 2);
        return plain(v).then(|| {
            have.len() >= prefix && have[..prefix] == want[..prefix] && cmp(&want) != std::cmp::Ordering::Less
        });
    }
    if let Some(v) = spec.strip_prefix('^') {
        let v = v.trim();
        let want = numbers(v);
        // ^0.x pins the minor, ^x the major.
        let prefix = if want.first() == Some(&0) { 2 } else { 1 };
        return plain(v).then(|| {
            have.len() >= prefix
                && want.len() >= prefix
                && have[..prefix] == want[..prefix]
                && cmp(&want) != std::cmp::Ordering::Less
        });
    }
    let v = spec.strip_prefix("==").unwrap_or(spec).trim().trim_start_matches('v');
    plain(v).then(|| cmp(&numbers(v)) == std::cmp::Ordering::Equal)
}

/// The version spec `pyproject.toml` pins for `tool` (`"ruff==0.5.0"` in a dependency list, poetry's
/// `ruff = "^0.5"`, or `[tool.ruff] required-version = ">=0.5"`).
pub fn pyproject_pin(text: &str, tool: &str) -> Option<String> {
    let mut section = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
            continue;
        }
        if section == format!("tool.{tool}")
            && let Some(v) = line.strip_prefix("required-version")
        {
            return Some(v.trim_start_matches([' ', '=']).trim().trim_matches('"').to_owned());
        }
        // Quoted requirement strings anywhere on the line: "ruff==0.5.0", 'black>=24'.
        for quoted in line.split(['"', '\'']).skip(1).step_by(2) {
            let q = quoted.trim();
            if let Some(rest) = q.strip_prefix(tool)
                && (rest.starts_with("==") || rest.starts_with(">=") || rest.starts_with("~="))
            {
                return Some(rest.split([',', ';']).next().unwrap_or(rest).trim().to_owned());
            }
        }
        // poetry: ruff = "^0.5.0" or ruff = { version = "^0.5.0" }
        if let Some(rest) = line.strip_prefix(tool)
            && rest.trim_start().starts_with('=')
        {
            let value = rest.trim_start().trim_start_matches('=').trim();
            let value = value
                .strip_prefix('{')
                .and_then(|v| v.split("version").nth(1))
                .map(|v| v.trim_start_matches([' ', '=']))
                .unwrap_or(value);
            if let Some(v) = value.split('"').nth(1) {
                return Some(v.to_owned());
            }
        }
    }
    None
}

/// The version spec `package.json` pins for `tool` in devDependencies or dependencies.
pub fn package_json_pin(text: &str, tool: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    ["devDependencies", "dependencies"].iter().find_map(|k| json.get(k)?.get(tool)?.as_str().map(str::to_owned))
}

/// The channel `rust-toolchain.toml` (or the legacy one-line `rust-toolchain`) pins.
pub fn rust_toolchain_pin(toml: Option<&str>, legacy: Option<&str>) -> Option<String> {
    if let Some(text) = toml {
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("channel") {
                let v = rest.trim_start_matches([' ', '=']).trim().trim_matches('"');
                if !v.is_empty() {
                    return Some(v.to_owned());
                }
            }
        }
    }
    legacy.map(str::trim).filter(|l| !l.is_empty() && !l.contains('[')).map(str::to_owned)
}

/// `[tool.black]` in pyproject.toml.
pub fn configures_black(pyproject: &str) -> bool {
    pyproject.lines().any(|l| l.trim() == "[tool.black]")
}

/// A command line as a reviewer reads it (arguments with shell metacharacters quoted).
pub fn display_command(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The files of `changed` outside `allowed`.
pub fn out_of_scope<'a>(changed: &'a [String], allowed: &[String]) -> Vec<&'a str> {
    changed.iter().filter(|c| !allowed.contains(c)).map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(category: Category, language: Language, tool: Tool, lines: &[String]) -> Facts<'_> {
        Facts { category, language, tool, autofixable: true, lines, configures_black: false }
    }

    #[test]
    fn chooses_from_tool_and_category() {
        let none: Vec<String> = Vec::new();
        let c = |cat, lang, tool| choose(&facts(cat, lang, tool, &none));
        assert_eq!(c(Category::Format, Language::Python, Tool::Ruff), Choice::Tool(Fixer::RuffFormat));
        assert_eq!(c(Category::Format, Language::Python, Tool::Black), Choice::Tool(Fixer::Black));
        assert_eq!(c(Category::Format, Language::Rust, Tool::Rustfmt), Choice::Tool(Fixer::CargoFmt));
        assert_eq!(c(Category::Lint, Language::Rust, Tool::Clippy), Choice::Tool(Fixer::ClippyFix));
        assert_eq!(c(Category::Format, Language::Typescript, Tool::Prettier), Choice::Tool(Fixer::Prettier));
        assert_eq!(c(Category::Lint, Language::Javascript, Tool::Eslint), Choice::Tool(Fixer::EslintFix));
        assert_eq!(c(Category::Format, Language::Go, Tool::Gofmt), Choice::Tool(Fixer::Gofmt));
        assert_eq!(c(Category::Format, Language::Go, Tool::Unknown), Choice::Tool(Fixer::Gofmt));
        assert!(matches!(c(Category::Permissions, Language::Python, Tool::Unknown), Choice::Never(_)));
        assert!(matches!(c(Category::Infra, Language::Rust, Tool::Cargo), Choice::Never(_)));
        assert!(matches!(c(Category::Dependency, Language::Python, Tool::Pip), Choice::Uncovered(_)));
        assert!(matches!(c(Category::Test, Language::Rust, Tool::Cargo), Choice::Uncovered(_)));
        let not_fixable = Facts { autofixable: false, ..facts(Category::Lint, Language::Python, Tool::Ruff, &none) };
        let Choice::Uncovered(why) = choose(&not_fixable) else { panic!() };
        assert!(why.contains("nothing it can fix"), "{why}");
        let black = Facts { configures_black: true, ..facts(Category::Format, Language::Python, Tool::Unknown, &none) };
        assert_eq!(choose(&black), Choice::Tool(Fixer::Black));
    }

    #[test]
    fn whitespace_only_where_the_log_says_so() {
        let ws = vec!["app.py:1:15: W291 trailing whitespace".to_owned()];
        assert_eq!(choose(&facts(Category::Lint, Language::Python, Tool::Unknown, &ws)), Choice::Whitespace);
        let hook = vec!["trim trailing whitespace.................................................Failed".to_owned()];
        assert_eq!(choose(&facts(Category::Unknown, Language::Unknown, Tool::Unknown, &hook)), Choice::Whitespace);
        // ruff reporting W291 is ruff's to fix.
        assert_eq!(choose(&facts(Category::Lint, Language::Python, Tool::Ruff, &ws)), Choice::Tool(Fixer::RuffFix));
        let other = vec!["app.py:1:1: E501 line too long".to_owned()];
        assert!(matches!(
            choose(&facts(Category::Lint, Language::Python, Tool::Unknown, &other)),
            Choice::Uncovered(_)
        ));
    }

    #[test]
    fn reads_rule_codes() {
        let lines: Vec<String> = [
            "app.py:1:15: W291 [*] Trailing whitespace",
            "app.py:3:1: F401 [*] `os` imported but unused",
            "E501 Line too long (100 > 88)",
            "Found 3 errors. See PEP8 and HTTP200 for details",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(rule_codes(&lines), ["W291", "F401", "E501"]);
    }

    #[test]
    fn reads_reported_files() {
        let files = ["src/lib.rs", "app.py", "web/a.ts", "main.go"].map(str::to_owned).to_vec();
        let roots = ["/work/repo".to_owned()];
        let out = "Diff in /work/repo/src/lib.rs:1:\nWould reformat: app.py\nweb/a.ts\n./main.go\nnot/here.py\n\
                   2 files would be reformatted";
        assert_eq!(reported_files(out, &roots, &files), ["src/lib.rs", "app.py", "web/a.ts", "main.go"]);
        assert_eq!(hook_fixed_files(&["Fixing app.py".to_owned()], &files), ["app.py"]);
    }

    #[test]
    fn versions_and_pins() {
        assert_eq!(version_number("ruff 0.17.5").as_deref(), Some("0.17.5"));
        assert_eq!(version_number("rustfmt 1.9.0-stable (abc 2026-01-01)").as_deref(), Some("1.9.0"));
        assert_eq!(version_number("v10.15.0").as_deref(), Some("10.15.0"));
        assert_eq!(version_number("go version go1.19.8 linux/amd64").as_deref(), Some("1.19.8"));
        assert_eq!(version_number("black, 26.10.1 (compiled: yes)").as_deref(), Some("26.10.1"));
        assert_eq!(satisfies("==0.17.5", "0.17.5"), Some(true));
        assert_eq!(satisfies("0.5.0", "0.17.5"), Some(false));
        assert_eq!(satisfies("^3.0.0", "3.10.1"), Some(true));
        assert_eq!(satisfies("^2.8.0", "3.10.1"), Some(false));
        assert_eq!(satisfies("^0.5.0", "0.17.5"), Some(false));
        assert_eq!(satisfies("~=0.17", "0.17.5"), Some(true));
        assert_eq!(satisfies(">=24", "26.10.1"), Some(true));
        assert_eq!(satisfies("latest", "1.0.0"), None);
        let py = "[project]\ndependencies = []\n[dependency-groups]\ndev = [\"pytest>=8\", \"ruff==0.5.0\"]\n\
                  [tool.black]\nline-length = 100\n";
        assert_eq!(pyproject_pin(py, "ruff").as_deref(), Some("==0.5.0"));
        assert_eq!(pyproject_pin(py, "black"), None);
        assert!(configures_black(py));
        let poetry = "[tool.poetry.group.dev.dependencies]\nblack = \"^24.1\"\n";
        assert_eq!(pyproject_pin(poetry, "black").as_deref(), Some("^24.1"));
        let req = "[tool.ruff]\nrequired-version = \">=0.17\"\n";
        assert_eq!(pyproject_pin(req, "ruff").as_deref(), Some(">=0.17"));
        let pkg = r#"{"devDependencies": {"prettier": "^3.0.0", "eslint": "9.1.0"}}"#;
        assert_eq!(package_json_pin(pkg, "prettier").as_deref(), Some("^3.0.0"));
        assert_eq!(package_json_pin(pkg, "eslint").as_deref(), Some("9.1.0"));
        assert_eq!(rust_toolchain_pin(Some("[toolchain]\nchannel = \"1.70.0\"\n"), None).as_deref(), Some("1.70.0"));
        assert_eq!(rust_toolchain_pin(None, Some("nightly-2024-01-01\n")).as_deref(), Some("nightly-2024-01-01"));
    }

    #[test]
    fn commands_and_scope() {
        let t = vec!["app.py".to_owned()];
        assert_eq!(
            display_command(&Fixer::RuffFix.fix_argv(&t, &["W291".to_owned()])),
            "ruff check --fix --exit-zero --no-cache --select W291 -- app.py"
        );
        assert_eq!(display_command(&["sh".into(), "-c".into(), "a b".into()]), "sh -c 'a b'");
        for f in ALL {
            assert_eq!(Fixer::from_strategy(f.strategy()), Some(*f));
        }
        let changed = vec!["app.py".to_owned(), "other.py".to_owned()];
        assert_eq!(out_of_scope(&changed, &t), ["other.py"]);
    }
}
