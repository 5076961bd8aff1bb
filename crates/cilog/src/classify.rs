//! Why a job failed, from what its log says: [`classify`] a [`FailureContext`] into a [`Diagnosis`].
//!
//! Evidence is the context's lines, matched against rules for what tools print. Rules come in three tiers:
//!
//! 1. environment: missing secrets, tokens or permissions ([`Category::Permissions`]) and network, registry or
//!    runner trouble ([`Category::Infra`]): no code change fixes these, so they win over anything else;
//! 2. dependency and configuration ([`Category::Dependency`], [`Category::Config`]): a test run that dies on
//!    `ModuleNotFoundError` or a lint step that finds no ESLint config is not a test or lint failure;
//! 3. the tools' own failures: format, lint, compile, test. The most specific rule wins (clippy's
//!    `-D warnings` note beats the rustc `error:` it annotates); between equally specific ones, the first line.
//!
//! Step and job names are never looked at (the raw log does not even carry them): a step called "lint" that
//! fails on a missing config file is `config`. Only when the output holds no evidence at all is the step's
//! command consulted, and then only when it runs a formatter, linter, compiler or test runner directly
//! (`test -z "$(gofmt -l .)"` prints nothing when it fails).

use crate::FailureContext;
use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};
use sre_domain::{Category, Language, Tool};
use std::sync::LazyLock;

/// What diagnosis makes of a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub category: Category,
    pub language: Language,
    pub tool: Tool,
    /// One line, at most [`MAX_SUMMARY`] characters, credentials and tokens masked.
    pub summary: String,
    /// A deterministic fixer can fix it (a formatter, a linter's `--fix`, a lock file refresh).
    pub autofixable: bool,
}

/// Longest summary, in characters.
pub const MAX_SUMMARY: usize = 200;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Tier {
    Tools = 0,
    DependencyConfig = 1,
    Environment = 2,
}

struct Rule {
    pattern: &'static str,
    category: Category,
    tool: Tool,
    tier: Tier,
    /// Between rules of one tier, the more specific wins.
    weight: u8,
    fixable: bool,
}

const fn r(pattern: &'static str, category: Category, tool: Tool, tier: Tier, weight: u8) -> Rule {
    Rule { pattern, category, tool, tier, weight, fixable: false }
}

const fn fix(pattern: &'static str, category: Category, tool: Tool, tier: Tier, weight: u8) -> Rule {
    Rule { pattern, category, tool, tier, weight, fixable: true }
}

use Category as C;
use Tier::{DependencyConfig as DC, Environment as ENV, Tools as T};
use Tool as X;

const RULES: &[Rule] = &[
    // ---- permissions: secrets, tokens, access
    r(r"Resource not accessible by (?:integration|personal access token)", C::Permissions, X::Unknown, ENV, 3),
    r(r"\bBad credentials\b", C::Permissions, X::Unknown, ENV, 3),
    r(
        r"(?i)Input required and not supplied: \S*(?:token|key|secret|password|credential)",
        C::Permissions,
        X::Unknown,
        ENV,
        3,
    ),
    r(r"Permission denied \(publickey", C::Permissions, X::Unknown, ENV, 3),
    r(r"remote: Permission to \S+ denied to", C::Permissions, X::Unknown, ENV, 3),
    r(
        r"(?:The requested URL returned error|HTTP(?: error)?|status(?: code)?):? 40[13]\b",
        C::Permissions,
        X::Unknown,
        ENV,
        2,
    ),
    r(r"\b40[13] (?:Forbidden|Unauthorized)\b", C::Permissions, X::Unknown, ENV, 2),
    r(r"npm (?:ERR!|error) code (?:E401|E403|ENEEDAUTH)", C::Permissions, X::Npm, ENV, 3),
    r(r"could not read (?:Username|Password) for 'https?://", C::Permissions, X::Unknown, ENV, 3),
    r(
        r"(?i)(?:denied: requested access to the resource is denied|unauthorized: authentication required)",
        C::Permissions,
        X::Unknown,
        ENV,
        3,
    ),
    r(
        r"(?i)\b(?:access key|secret key|api key|token|credentials?)\b.{0,40}\b(?:cannot be (?:null|empty|blank)|is (?:missing|empty|not set|required)|could not be loaded|not found)",
        C::Permissions,
        X::Unknown,
        ENV,
        2,
    ),
    r(r"(?i)Unable to locate credentials|Could not load credentials", C::Permissions, X::Unknown, ENV, 3),
    r(r"without `?workflows?`? permission", C::Permissions, X::Unknown, ENV, 3),
    r(r"Parameter token or opts\.auth is required", C::Permissions, X::Unknown, ENV, 3),
    // ---- infra: network, registries, runners
    r(
        r"Could not resolve host|Temporary failure in name resolution|Name or service not known|getaddrinfo (?:ENOTFOUND|EAI_AGAIN)|nodename nor servname",
        C::Infra,
        X::Unknown,
        ENV,
        3,
    ),
    r(
        r"\b(?:ETIMEDOUT|ECONNRESET|EAI_AGAIN|ENETUNREACH)\b|[Nn]etwork is unreachable|Connection reset by peer|TLS handshake timeout|SSL connect error",
        C::Infra,
        X::Unknown,
        ENV,
        2,
    ),
    r(
        r"\b50[234] (?:Bad Gateway|Service Unavailable|Gateway Time-?out)\b|(?:returned error|status(?: code)?|HTTP(?: error)?):? 5\d\d\b",
        C::Infra,
        X::Unknown,
        ENV,
        2,
    ),
    r(
        r"The runner has received a shutdown signal|lost communication with the server|The hosted runner encountered an error|has exceeded the maximum execution time|No space left on device",
        C::Infra,
        X::Unknown,
        ENV,
        3,
    ),
    r(
        r"No output has been received in the last \d+m|The job exceeded the maximum (?:time|log length)|The operation was canceled",
        C::Infra,
        X::Unknown,
        ENV,
        2,
    ),
    r(r"(?i)\bAPI rate limit exceeded|secondary rate limit", C::Infra, X::Unknown, ENV, 3),
    r(
        r"Failed to connect to \S+ port \d+|Connection timed out|Read timed out|Net::ReadTimeout|Operation timed out",
        C::Infra,
        X::Unknown,
        T,
        1,
    ),
    // ---- dependency
    r(r"\bModuleNotFoundError: No module named|\bImportError: No module named", C::Dependency, X::Pip, DC, 3),
    r(r"Cannot find module '[^./][^']*'", C::Dependency, X::Npm, DC, 3),
    fix(
        r"`npm ci` can only install packages when your package\.json and package-lock\.json",
        C::Dependency,
        X::Npm,
        DC,
        3,
    ),
    fix(
        r"Missing: \S+ from lock file|ERR_PNPM_OUTDATED_LOCKFILE|Your lockfile needs to be updated",
        C::Dependency,
        X::Npm,
        DC,
        3,
    ),
    r(r"npm (?:ERR!|error) (?:code (?:ERESOLVE|E404|ETARGET)|404 Not Found)", C::Dependency, X::Npm, DC, 3),
    r(
        r"use `cargo add \S+`|unlinked crate|use of undeclared crate or module|can't find crate for",
        C::Dependency,
        X::Cargo,
        DC,
        3,
    ),
    fix(
        r"lock file \S* ?needs to be updated but --locked was passed|the lock file .* needs to be updated",
        C::Dependency,
        X::Cargo,
        DC,
        3,
    ),
    r(r"failed to select a version for the requirement|no matching package named", C::Dependency, X::Cargo, DC, 3),
    fix(r"missing go\.sum entry|go: updates to go\.mod needed", C::Dependency, X::Go, DC, 3),
    r(r"no required module provides package|cannot find (?:module providing )?package ", C::Dependency, X::Go, DC, 3),
    r(
        r"Could not find a version that satisfies the requirement|No matching distribution found for|ResolutionImpossible|PackagesNotFoundError",
        C::Dependency,
        X::Pip,
        DC,
        3,
    ),
    fix(
        r"poetry\.lock (?:is not consistent|was last generated)|pyproject\.toml changed significantly since poetry\.lock",
        C::Dependency,
        X::Pip,
        DC,
        3,
    ),
    r(
        r"Could not resolve dependencies for project|Could not find artifact|Could not resolve all (?:files|dependencies) for configuration",
        C::Dependency,
        X::Unknown,
        DC,
        3,
    ),
    // ---- config: the workflow or a tool's configuration
    r(
        r"ESLint couldn't find (?:a|an) (?:configuration file|eslint\.config)|No ESLint configuration found|Could not find config file",
        C::Config,
        X::Eslint,
        DC,
        3,
    ),
    r(
        r"Invalid workflow file|The workflow is not valid|Unable to resolve action|Can't find 'action\.ya?ml'",
        C::Config,
        X::Unknown,
        DC,
        3,
    ),
    r(r"Input required and not supplied: ", C::Config, X::Unknown, DC, 2),
    r(r"npm (?:ERR!|error) Missing script:", C::Config, X::Npm, DC, 3),
    r(r"could not find `Cargo\.toml`|failed to parse manifest at|error: no such command: ", C::Config, X::Cargo, DC, 3),
    r(r"error TS(?:5\d{3}|18003|6053)\b", C::Config, X::Tsc, DC, 3),
    r(r"No rule to make target", C::Config, X::Make, DC, 2),
    r(r"No Rakefile found", C::Config, X::Unknown, DC, 2),
    r(
        r"error: (?:unexpected argument|unrecognized subcommand|unknown option)|unrecognized arguments:|No such option:|Illegal switch|flag provided but not defined:|[Uu]nknown option",
        C::Config,
        X::Unknown,
        DC,
        2,
    ),
    r(r"ERROR: file or directory not found:|ERROR: usage:", C::Config, X::Pytest, DC, 2),
    r(
        r"(?i)\b(?:toml|yaml|json) (?:parse|syntax|decode) error|error parsing (?:config|configuration)",
        C::Config,
        X::Unknown,
        DC,
        2,
    ),
    // ---- format
    fix(r"^Diff in \S+(?::\d+:| at line \d+:)$", C::Format, X::Rustfmt, T, 3),
    fix(
        r"^would reformat |^Oh no! .*💥|\d+ files? would be reformatted, \d+ files? would be left unchanged",
        C::Format,
        X::Black,
        T,
        3,
    ),
    fix(
        r"^unformatted: File would be reformatted|^Would reformat: |\d+ files? would be reformatted(?:, \d+ files? already formatted)?$",
        C::Format,
        X::Ruff,
        T,
        3,
    ),
    fix(r"Code style issues (?:found|were found) in|Forgot to run Prettier\?", C::Format, X::Prettier, T, 3),
    fix(r"\bnot gofmt(?:ed|-ed)\b|\(gofmt\)$", C::Format, X::Gofmt, T, 3),
    fix(r"\bnot goimport(?:ed|-ed)\b|\(goimports\)$", C::Format, X::Gofmt, T, 3),
    // ---- lint
    r(r"`-D clippy::|clippy::[a-z_]+|rust-clippy", C::Lint, X::Clippy, T, 3),
    fix(r"\[\*\] \d+ fixable with|^[A-Z]{1,3}\d{3,4} \[\*\] ", C::Lint, X::Ruff, T, 3),
    r(r"^[A-Z]{1,3}\d{3,4} \S.*$|^Found \d+ errors?\.$", C::Lint, X::Ruff, T, 2),
    r(
        r"^\S+\.pyi?:\d+(?::\d+)?: error: .*\[[a-z\-]+\]$|^Found \d+ errors? in \d+ files? \(checked",
        C::Lint,
        X::Mypy,
        T,
        3,
    ),
    r(r"✖ \d+ problems? \(\d+ errors?, \d+ warnings?\)", C::Lint, X::Eslint, T, 3),
    r(r"^\s+\d+:\d+\s+(?:error|warning)\s+.+\s{2,}[@\w/\-]+$", C::Lint, X::Eslint, T, 2),
    r(
        r"\((?:errcheck|govet|staticcheck|unused|gosimple|ineffassign|revive|gocritic|golint|misspell|deadcode|structcheck|varcheck)\)$",
        C::Lint,
        X::GolangciLint,
        T,
        3,
    ),
    r(r"^vet: |^# \S+ \(vet\)", C::Lint, X::Go, T, 3),
    r(r"^\S+:\d+:\d+: [A-Z]{1,3}\d{3,4} ", C::Lint, X::Unknown, T, 2),
    r(r"\bMD\d{3}/[a-z\-]+\b", C::Lint, X::Unknown, T, 2),
    // ---- compile
    r(r"^error\[E\d{4}\]: ", C::Compile, X::Rustc, T, 2),
    r(r"\berror TS\d+: ", C::Compile, X::Tsc, T, 2),
    r(r"^(?:\.{0,2}/)?[\w.\-/]+\.go:\d+:\d+: ", C::Compile, X::Go, T, 1),
    r(r"\[build failed\]$|^# \S+$", C::Compile, X::Go, T, 1),
    r(
        r"^[^\s:]+\.(?:c|cc|cpp|cxx|h|hpp|m|mm):\d+(?::\d+)?: (?:fatal )?error: |undefined reference to |ld returned 1 exit status",
        C::Compile,
        X::Unknown,
        T,
        2,
    ),
    r(r"^\S+\.java:\[?\d+[,\]:].*error|COMPILATION ERROR", C::Compile, X::Unknown, T, 2),
    r(r"^\s*(?:SyntaxError|IndentationError|TabError): ", C::Compile, X::Unknown, T, 2),
    r(r"^error: (?:could not compile|aborting due to)", C::Compile, X::Cargo, T, 1),
    r(r"^error: ", C::Compile, X::Cargo, T, 0),
    r(r"^error: failed to run custom build command for", C::Compile, X::Cargo, T, 2),
    // a tool missing from the runner: the workflow does not install it (weak: tests print such lines too)
    r(r": command not found$|: not found$", C::Config, X::Unknown, T, 1),
    // ---- test
    r(
        r"^test result: FAILED|^---- \S+ stdout ----$|^test \S+ \.\.\. FAILED$|^error: test failed",
        C::Test,
        X::Cargo,
        T,
        2,
    ),
    // a panic is a failed test only when nothing says otherwise (build scripts and tools panic too)
    r(r"panicked at", C::Test, X::Cargo, T, 0),
    r(
        r"short test summary info|^FAILED \S+::\S+|^=+ .*\b\d+ failed\b|^E {3}|^_{3,} (?:test_?\w*|Test\w+[.:]\w+) _{3,}$",
        C::Test,
        X::Pytest,
        T,
        2,
    ),
    r(r"^\s*--- FAIL: |^FAIL\s+\S+\s+[\d.]+s$", C::Test, X::Go, T, 2),
    r(r"^Tests:\s+\d+ failed|^\s*● .+ › ", C::Test, X::Jest, T, 2),
    r(
        r"^\s*\d+ failing$|^\s*not ok \d+|<<< (?:FAILURE|ERROR)!|Tests run: .*(?:Failures|Errors): [1-9]|There are test failures|^\S.* > .* FAILED$",
        C::Test,
        X::Unknown,
        T,
        2,
    ),
    r(r"npm (?:ERR!|error) Test failed", C::Test, X::Npm, T, 1),
    // ---- wrappers: say which tool ran when nothing better is known
    r(r"^(?:g?make)(?:\[\d+\])?: \*\*\* ", C::Unknown, X::Make, T, 0),
];

static SET: LazyLock<RegexSet> = LazyLock::new(|| RegexSet::new(RULES.iter().map(|r| r.pattern)).expect("rules"));

/// A match of a rule on a context line.
#[derive(Debug, Clone, Copy)]
struct Evidence {
    rule: usize,
    line: usize,
}

/// Classifies a failure from its context's content.
pub fn classify(ctx: &FailureContext) -> Diagnosis {
    let mut best: Option<Evidence> = None;
    let mut fixable_hint = false;
    for (i, line) in ctx.lines.iter().enumerate() {
        if line.contains("fixable with the `--fix` option") && !line.contains(" 0 errors and 0 warnings") {
            fixable_hint = true;
        }
        for k in SET.matches(line).iter() {
            let better = match best {
                None => true,
                Some(b) => {
                    let (rb, rk) = (&RULES[b.rule], &RULES[k]);
                    (rk.tier, rk.weight) > (rb.tier, rb.weight)
                }
            };
            if better {
                best = Some(Evidence { rule: k, line: i });
            }
        }
    }
    let Some(ev) = best else {
        return from_command(ctx);
    };
    let rule = &RULES[ev.rule];
    let mut category = rule.category;
    let mut tool = rule.tool;
    // `go vet` reports in the compiler's shape; the command tells them apart
    if tool == Tool::Go && category == Category::Compile && command_runs(ctx, "go vet") {
        category = Category::Lint;
    }
    // rustc's unresolved import with a `cargo add` hint is a missing dependency; without one, a code error
    if tool == Tool::Cargo && category == Category::Dependency {
        tool = Tool::Rustc;
    }
    let autofixable = rule.fixable
        || category == Category::Format
        || (category == Category::Lint && (fixable_hint || (tool == Tool::Clippy && has_suggestion(ctx))));
    let language = language_of(tool, ctx);
    let summary = summary_line(ctx, ev.line, category);
    Diagnosis { category, language, tool, summary: redact(&summary), autofixable }
}

/// The step runs `needle` (a word-bounded match in its command).
fn command_runs(ctx: &FailureContext, needle: &str) -> bool {
    ctx.command.as_deref().is_some_and(|c| {
        c.match_indices(needle).any(|(i, _)| {
            let before = c[..i].chars().next_back();
            let after = c[i + needle.len()..].chars().next();
            !before.is_some_and(|b| b.is_alphanumeric() || b == '-' || b == '_')
                && !after.is_some_and(|a| a.is_alphanumeric() || a == '-' || a == '_')
        })
    })
}

/// When the output says nothing: what the step's command runs, if it runs a checker directly.
fn from_command(ctx: &FailureContext) -> Diagnosis {
    const COMMANDS: &[(&str, Category, Tool)] = &[
        ("gofmt", Category::Format, Tool::Gofmt),
        ("cargo fmt", Category::Format, Tool::Rustfmt),
        ("rustfmt", Category::Format, Tool::Rustfmt),
        ("black", Category::Format, Tool::Black),
        ("ruff format", Category::Format, Tool::Ruff),
        ("prettier", Category::Format, Tool::Prettier),
        ("cargo clippy", Category::Lint, Tool::Clippy),
        ("ruff check", Category::Lint, Tool::Ruff),
        ("eslint", Category::Lint, Tool::Eslint),
        ("mypy", Category::Lint, Tool::Mypy),
        ("golangci-lint", Category::Lint, Tool::GolangciLint),
        ("go vet", Category::Lint, Tool::Go),
        ("tsc", Category::Compile, Tool::Tsc),
        ("cargo build", Category::Compile, Tool::Cargo),
        ("go build", Category::Compile, Tool::Go),
        ("cargo test", Category::Test, Tool::Cargo),
        ("pytest", Category::Test, Tool::Pytest),
        ("go test", Category::Test, Tool::Go),
        ("jest", Category::Test, Tool::Jest),
    ];
    let hit = COMMANDS.iter().find(|(cmd, _, _)| command_runs(ctx, cmd));
    let (category, tool) = hit.map(|(_, c, t)| (*c, *t)).unwrap_or((Category::Unknown, Tool::Unknown));
    let language = language_of(tool, ctx);
    let summary = match (hit, ctx.command.as_deref(), ctx.exit_code) {
        (Some(_), Some(cmd), code) => {
            let first = cmd.lines().next().unwrap_or("");
            match code {
                Some(n) => format!("`{first}` failed with exit code {n} and printed nothing"),
                None => format!("`{first}` failed and printed nothing"),
            }
        }
        // the first line a tool marked as an error, else the last line
        _ => ctx
            .lines
            .iter()
            .find(|l| crate::markers::scan(l).is_some_and(|h| h.strength >= 2))
            .or_else(|| ctx.lines.iter().rev().find(|l| !l.trim().is_empty()))
            .map(|l| summary_of(l))
            .unwrap_or_else(|| "no failure output".into()),
    };
    Diagnosis { category, language, tool, summary: redact(&summary), autofixable: category == Category::Format }
}

fn has_suggestion(ctx: &FailureContext) -> bool {
    static DIFF: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*\d+\s+[-+~]\s").expect("diff"));
    ctx.lines.iter().any(|l| l.starts_with("help: ")) && ctx.lines.iter().any(|l| DIFF.is_match(l))
}

fn language_of(tool: Tool, ctx: &FailureContext) -> Language {
    let by_tool = match tool {
        Tool::Cargo | Tool::Rustc | Tool::Rustfmt | Tool::Clippy => Language::Rust,
        Tool::Pytest | Tool::Ruff | Tool::Black | Tool::Mypy | Tool::Pip => Language::Python,
        Tool::Tsc => Language::Typescript,
        Tool::Npm | Tool::Eslint | Tool::Prettier | Tool::Jest => Language::Javascript,
        Tool::Go | Tool::Gofmt | Tool::GolangciLint => Language::Go,
        _ => Language::Unknown,
    };
    let by_files = language_of_files(ctx);
    match (by_tool, by_files) {
        // JavaScript tools on TypeScript files
        (Language::Javascript, Some(Language::Typescript)) => Language::Typescript,
        (Language::Unknown, Some(l)) => l,
        (Language::Unknown, None) => language_of_command(ctx),
        (l, _) => l,
    }
}

/// The language most of the context's file references are in.
fn language_of_files(ctx: &FailureContext) -> Option<Language> {
    let mut counts = [0usize; 5];
    for f in &ctx.file_refs {
        let ext = f.path.rsplit('.').next().unwrap_or("");
        let k = match ext {
            "rs" => 0,
            "py" | "pyi" => 1,
            "js" | "jsx" | "mjs" | "cjs" => 2,
            "ts" | "tsx" | "mts" | "cts" => 3,
            "go" => 4,
            _ => continue,
        };
        counts[k] += 1;
    }
    let (k, n) = counts.iter().enumerate().max_by_key(|(_, n)| **n)?;
    if *n == 0 {
        return None;
    }
    Some([Language::Rust, Language::Python, Language::Javascript, Language::Typescript, Language::Go][k])
}

fn language_of_command(ctx: &FailureContext) -> Language {
    let table: &[(&str, Language)] = &[
        ("cargo", Language::Rust),
        ("python", Language::Python),
        ("pip", Language::Python),
        ("pytest", Language::Python),
        ("tsc", Language::Typescript),
        ("npm", Language::Javascript),
        ("npx", Language::Javascript),
        ("yarn", Language::Javascript),
        ("node", Language::Javascript),
        ("go", Language::Go),
        ("gofmt", Language::Go),
    ];
    table.iter().find(|(cmd, _)| command_runs(ctx, cmd)).map(|(_, l)| *l).unwrap_or(Language::Unknown)
}

/// The evidence line, or for a few kinds the line that says more (a rustc diagnostic's head rather than
/// clippy's note under it; the first `FAILED` test rather than the summary rule).
fn summary_line(ctx: &FailureContext, at: usize, category: Category) -> String {
    let line = ctx.lines[at].trim();
    let is_note = line.starts_with("= note:") || line.starts_with("= help:");
    let text = if is_note || category == Category::Lint && line.starts_with("= ") {
        // walk up to the diagnostic's head (`error: ...`)
        ctx.lines[..at]
            .iter()
            .rev()
            .find(|l| l.starts_with("error") || l.starts_with("warning"))
            .map(|l| l.trim())
            .unwrap_or(line)
    } else {
        line
    };
    summary_of(text)
}

/// One line of at most [`MAX_SUMMARY`] characters, whitespace runs collapsed.
fn summary_of(text: &str) -> String {
    let mut s: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > MAX_SUMMARY {
        s = s.chars().take(MAX_SUMMARY - 1).collect::<String>() + "…";
    }
    s
}

/// Masks credentials: tokens with known prefixes, `key=value` secrets, URL passwords, bearer tokens.
pub fn redact(s: &str) -> String {
    static TOKENS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?x)
            gh[pousr]_[A-Za-z0-9]{16,} | github_pat_[A-Za-z0-9_]{16,} | AKIA[0-9A-Z]{16}
            | xox[abprs]-[A-Za-z0-9\-]{10,} | glpat-[A-Za-z0-9_\-]{16,} | npm_[A-Za-z0-9]{30,}
            | eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
        )
        .expect("tokens")
    });
    static ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b((?:bearer|token|password|passwd|secret|api[_-]?key|auth)\b[\s:=]+)[^\s,;'\x22]+")
            .expect("assign")
    });
    static URL_PASS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"://[^/\s:@]+:[^/\s@]+@").expect("url"));
    let s = TOKENS.replace_all(s, "***");
    let s = URL_PASS.replace_all(&s, "://***@");
    ASSIGN.replace_all(&s, "${1}***").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::LogFormat;

    fn ctx(lines: &[&str], command: Option<&str>) -> FailureContext {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        FailureContext {
            format: LogFormat::GithubActions,
            step_name: command.map(|c| format!("Run {c}")),
            command: command.map(str::to_string),
            exit_code: Some(1),
            step_failed: true,
            file_refs: crate::filerefs::file_refs(&lines, &[]),
            windows: vec![],
            lines,
            log_lines: 10,
            truncated: false,
        }
    }

    fn cat(lines: &[&str]) -> Category {
        classify(&ctx(lines, Some("make ci"))).category
    }

    // Real-world shapes of messages no local tool can produce (GitHub's API, runners, networks).
    #[test]
    fn permissions() {
        for l in [
            "Error: Resource not accessible by integration",
            "HttpError: Bad credentials",
            "##[error]Input required and not supplied: token",
            "git@github.com: Permission denied (publickey).",
            "remote: Permission to acme/app.git denied to github-actions[bot].",
            "fatal: unable to access 'https://github.com/acme/app/': The requested URL returned error: 403",
            "npm error code E401",
            "fatal: could not read Username for 'https://github.com': No such device or address",
            "[wait] Failed to upload index.html (Access key cannot be null.). Trying again in 1 second.",
        ] {
            assert_eq!(cat(&[l]), Category::Permissions, "{l}");
        }
    }

    #[test]
    fn infra() {
        for l in [
            "fatal: unable to access 'https://github.com/acme/app/': Could not resolve host: github.com",
            "npm error network request to https://registry.npmjs.org/x failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org",
            "error: failed to download from `https://static.crates.io/crates/x/x-1.0.0.crate`: 503 Service Unavailable",
            "##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped.",
            "No space left on device (os error 28)",
            "ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pypi.org'): Read timed out. Connection reset by peer",
        ] {
            assert_eq!(cat(&[l]), Category::Infra, "{l}");
        }
        // a network word in a test's own output does not make a test failure infra
        assert_eq!(cat(&["--- FAIL: TestDial (0.01s)", "    dial_test.go:9: Connection timed out"]), Category::Test);
    }

    #[test]
    fn config_beats_the_step_it_ran_in() {
        let d = classify(&ctx(
            &[
                "Oops! Something went wrong! :(",
                "ESLint: 10.15.0",
                "ESLint couldn't find an eslint.config.(js|mjs|cjs) file.",
            ],
            Some("npm run lint"),
        ));
        assert_eq!((d.category, d.tool), (Category::Config, Tool::Eslint));
        assert_eq!(cat(&["##[error]Input required and not supplied: path"]), Category::Config);
        assert_eq!(cat(&["npm error Missing script: \"lint\""]), Category::Config);
        assert_eq!(cat(&["make: *** No rule to make target 'ci'.  Stop."]), Category::Config);
    }

    #[test]
    fn silent_checkers_are_known_by_their_command() {
        let d = classify(&ctx(&["##[error]Process completed with exit code 1."], Some("test -z \"$(gofmt -l .)\"")));
        assert_eq!(
            (d.category, d.tool, d.language, d.autofixable),
            (Category::Format, Tool::Gofmt, Language::Go, true)
        );
        // a wrapper says nothing about what failed
        let d = classify(&ctx(&["##[error]Process completed with exit code 1."], Some("npm run lint")));
        assert_eq!((d.category, d.tool), (Category::Unknown, Tool::Unknown));
    }

    #[test]
    fn summaries_mask_secrets() {
        let d = classify(&ctx(
            &[
                "fatal: unable to access 'https://x-access-token:ghs_abcdefghijklmnopqrstuvwxyz0123@github.com/a/b/': The requested URL returned error: 403",
            ],
            None,
        ));
        assert!(!d.summary.contains("ghs_abc"), "{}", d.summary);
        assert_eq!(
            redact("curl -H 'Authorization: Bearer abc.def' token=s3cr3t"),
            "curl -H 'Authorization: Bearer ***' token=***"
        );
        assert_eq!(redact("ghp_0123456789abcdefABCDEF here"), "*** here");
    }

    #[test]
    fn summary_is_one_bounded_line() {
        let long = format!("error: {}", "x".repeat(1000));
        let d = classify(&ctx(&[&long], None));
        assert!(d.summary.chars().count() <= MAX_SUMMARY && !d.summary.contains('\n'));
    }
}
