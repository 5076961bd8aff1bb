//! Which log lines mark an error, how strongly, and how far the block they start runs.
//!
//! A marker is a shape a tool prints when something fails (rustc's `error[E0432]:`, pytest's `E   ` lines,
//! eslint's `✖ 4 problems`, ...). Each has a [`Kind`] that says how its block continues: a rustc diagnostic
//! runs until the blank line that ends its code frame, a Python traceback until its exception line, a Go
//! `--- FAIL:` while lines are indented. The patterns are the tools' documented or observed output formats
//! (see docs/diagnosis.md), never text from one project's log.

use regex::{Regex, RegexSet};
use std::sync::LazyLock;

/// How a block that starts at a marker continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// rustc/cargo/clippy diagnostic (`error[E..]:`, `error:`, `warning:`): header, `-->`, code frame,
    /// `= note`/`help:` lines; ends at a blank line.
    Diagnostic,
    /// A compiler diagnostic on one line (`file:line:col: error: ...`, tsc, go, gcc) and the source line and
    /// caret that may follow it.
    LineDiagnostic,
    /// `Traceback (most recent call last):` up to and including the exception line.
    Traceback,
    /// pytest's `____ test_name ____` failure section, up to the next section or `====` rule.
    Section,
    /// A summary block that runs to the next `====` rule (pytest's short test summary).
    RuledSummary,
    /// Lines with the same leading tag (`E   `, `npm ERR!`, `[ERROR]`, `[warn]`, `would reformat`).
    Tagged,
    /// An exception/error line followed by an indented stack (`    at ...`, `\tat ...`, `  File ...`).
    Stack,
    /// A test-failure header followed by indented detail (`--- FAIL: T`, mocha's `1) name`, `test x ... FAILED`).
    Indented,
    /// A linter's file block: a path alone on its line, then `  L:C  error  message  rule` lines (eslint).
    FileBlock,
    /// One line, maybe with the few after it.
    Line,
    /// A list of failures announced by a header (mocha's `2 failing`, libtest's `failures:`): runs until
    /// the runner's own closing lines.
    FailList,
    /// A report that ends at a blank line (Maven Surefire's `<<< FAILURE!` test report).
    UntilBlank,
    /// A line that sums up the lines printed just before it (`Code style issues found in the above file(s)`):
    /// its block starts up to [`TRAILER_LOOKBACK`] lines earlier.
    Trailer,
    /// A run of `path:line: message` lines (any linter's or checker's report).
    Located,
    /// The CI system's verdict on a step (`##[error]Process completed with exit code 1.`).
    Verdict,
}

/// A marker found on a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// 3: a tool says this failed; 2: very likely an error; 1: mentions failure.
    pub strength: u8,
    pub kind: Kind,
    /// A summary line (`Found 4 errors.`, `1 failed`, `could not compile`): worth showing, but the first
    /// error's own block explains more.
    pub summary: bool,
}

struct Rule {
    pattern: &'static str,
    strength: u8,
    kind: Kind,
    summary: bool,
}

const fn rule(pattern: &'static str, strength: u8, kind: Kind) -> Rule {
    Rule { pattern, strength, kind, summary: false }
}

const fn summary(pattern: &'static str, strength: u8) -> Rule {
    Rule { pattern, strength, kind: Kind::Line, summary: true }
}

/// Ordered: the first matching rule decides the hit.
const RULES: &[Rule] = &[
    // CI verdicts
    rule(r"^##\[error\]Process completed with exit code [1-9]", 2, Kind::Verdict),
    rule(r#"^The command "?.*"? (?:exited with [1-9]|failed)"#, 2, Kind::Verdict),
    rule(r"^ERROR: Job failed", 2, Kind::Verdict),
    rule(r"^##\[error\]", 3, Kind::Line),
    // rustc / cargo / clippy
    summary(r"^error: (?:could not compile|aborting due to|test failed, to rerun|build failed)", 2),
    rule(r"^error(?:\[[A-Z]+\d+\])?: ", 3, Kind::Diagnostic),
    rule(r"^warning(?:\[[A-Z]+\d+\])?: ", 1, Kind::Diagnostic),
    rule(r"^Diff in .+(?: at line \d+|:\d+):$", 3, Kind::Tagged),
    rule(r"panicked at", 3, Kind::Stack),
    summary(r"^test result: FAILED", 2),
    rule(r"^---- \S.* std(?:out|err) ----$", 3, Kind::Section),
    rule(r"^\s*(?:failures|Failures):$", 2, Kind::FailList),
    rule(r"^test \S+ \.\.\. FAILED$", 2, Kind::Line),
    // Python
    rule(r"^\s*Traceback \(most recent call last\):", 3, Kind::Traceback),
    rule(r"^_{3,} .*\S.* _{3,}$", 3, Kind::Section),
    rule(r"^=+ short test summary info =+$", 3, Kind::RuledSummary),
    // the sections under it are blocks of their own
    rule(r"^=+ (?:FAILURES|ERRORS) =+$", 2, Kind::Line),
    rule(r"^E {3}", 3, Kind::Tagged),
    rule(r"^(?:FAILED|ERROR) \S+(?:::\S+)?(?: - .*)?$", 3, Kind::Line),
    summary(r"^=+ .*\b\d+ (?:failed|errors?)\b.* =+$", 2),
    rule(r"^\S+\.pyi?:\d+: (?:error|note): ", 3, Kind::LineDiagnostic),
    rule(r"^\S+:\d+:\d+: [A-Z]{1,4}\d{2,4}\b", 3, Kind::Located),
    rule(r"^[A-Z]{1,4}\d{2,4} (?:\[\*\] )?\S.*$", 2, Kind::Diagnostic),
    rule(r"^(?:unformatted|would reformat):? ", 3, Kind::Tagged),
    rule(r"^would reformat ", 3, Kind::Tagged),
    summary(r"^Oh no! ", 2),
    summary(r"^\d+ files? would be reformatted", 2),
    summary(r"^Found \d+ errors?\b", 2),
    rule(r"^(?:[A-Z]\w*\.)*(?:[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Warning)|Failed)(?:: .*)?$", 3, Kind::Stack),
    rule(r"^\w*(?:Error|Exception): ", 3, Kind::Stack),
    // JavaScript / TypeScript
    rule(r"^\s*(?:Uncaught )?(?:\w*Error|Error)(?: \[\w+\])?: ", 3, Kind::Stack),
    rule(r"\(\d+,\d+\): error TS\d+: ", 3, Kind::LineDiagnostic),
    rule(r"\berror TS\d+: ", 3, Kind::LineDiagnostic),
    rule(r"^npm (?:ERR!|error) ", 3, Kind::Tagged),
    rule(r"^\s*\d+:\d+\s+(?:error|warning)\s+\S", 3, Kind::FileBlock),
    rule(r"^\s*✖ \d+ problems?", 3, Kind::Line),
    rule(r"^\[warn\] ", 2, Kind::Tagged),
    rule(r"^\[error\] ", 3, Kind::Tagged),
    rule(r"^\s*\d+\) ", 2, Kind::Indented),
    rule(r"^\s*\d+ failing$", 3, Kind::FailList),
    rule(r"^\s*(?:FAIL|✕|×) \S", 2, Kind::Indented),
    rule(r"^error (?:Command failed|An unexpected error)", 2, Kind::Line),
    // Go
    rule(r"^\s*--- FAIL: ", 3, Kind::Indented),
    rule(r"^(?:\.{0,2}/)?[\w.\-/]+\.go:\d+(?::\d+)?: ", 3, Kind::LineDiagnostic),
    rule(r"missing go\.sum entry", 3, Kind::Line),
    rule(r"^flag provided but not defined: ", 3, Kind::Line),
    rule(r"no required module provides package", 3, Kind::Line),
    rule(r"cannot find package ", 3, Kind::Line),
    rule(r"^FAIL\s+\S+\s+(?:\[|[\d.]+s)", 2, Kind::Line),
    rule(r"^(?:FAIL|panic: )", 2, Kind::Stack),
    // C / C++ / make / cmake
    rule(r"^[^\s:]+:\d+(?::\d+)?: (?:fatal )?error: ", 3, Kind::LineDiagnostic),
    rule(r"^CMake Error", 3, Kind::Indented),
    rule(r"^(?:g?make|ninja)(?:\[\d+\])?: \*\*\* ", 2, Kind::Line),
    rule(r"(?:collect2|ld): error: ", 3, Kind::Line),
    rule(r"undefined reference to ", 3, Kind::Line),
    // JVM
    rule(r"^\[ERROR\] ", 3, Kind::Tagged),
    rule(r"<<< (?:FAILURE|ERROR)!", 3, Kind::UntilBlank),
    rule(r"^\S.* > .* FAILED$", 3, Kind::Stack),
    rule(r"^Exception in thread ", 3, Kind::Stack),
    rule(r"^(?:FAILURE|BUILD FAILED|BUILD FAILURE)", 2, Kind::Line),
    // TAP (tape, node-tap, prove): `not ok N - name` and its indented YAML diagnostics
    rule(r"^\s*not ok \d+", 3, Kind::Indented),
    // generic
    rule(r"^[\w./\-]+\.[A-Za-z]{1,10}: ?\d+(?::\d*)?:? ?[^\s\d]", 2, Kind::Located),
    // a line that points at the output above it (prettier 1.x, shell lint scripts' `^---- failure ...`)
    rule(
        r"^\^-{2,} |Code style issues (?:found|were found) in (?:the above|\d+) files?|^Forgot to run Prettier",
        3,
        Kind::Trailer,
    ),
    rule(r"^(?:fatal|FATAL|Fatal)(?: error)?: ", 3, Kind::Line),
    // `program: error: message` (configure, ld, git, most Unix tools)
    rule(r"^[\w.\-/]+: (?:error|fatal|ERROR|FATAL)(?: error)?: ", 3, Kind::Line),
    rule(r"^(?:Error|ERROR|error)(?:\[\w+\])?(?::| -) ", 3, Kind::Line),
    rule(r"^(?:PHP )?(?:[Ff]atal error|FATAL ERROR)\b", 3, Kind::Line),
    rule(r"\b(?:[Ff]atal error|FATAL ERROR)\b", 2, Kind::Line),
    // a status word in capitals, or `error:` with a message, is a tool speaking
    rule(r"\b(?:ERROR|FAIL|FAILED|FAILURE)\b|\b(?:[Ee]rror|ERROR): \S", 2, Kind::Line),
    rule(r"\b(?:No such file or directory|command not found|Permission denied)\b", 2, Kind::Line),
    rule(r"\b(?:ERRORS?|[Ee]rrors?)\b:?", 1, Kind::Line),
    rule(r"\b(?:FAILED|FAILURE|[Ff]ailed|[Ff]ailure|FAIL)\b", 1, Kind::Line),
    rule(r"\b(?:[Cc]annot|[Cc]ould not|[Cc]ouldn't|[Uu]nable to)\b", 1, Kind::Line),
    rule(
        r"\b(?:[Ee]xception|[Aa]borted|[Dd]enied|[Rr]efused|[Tt]imed? ?out|[Nn]ot found|[Ii]nvalid|[Mm]issing|[Uu]nexpected|[Ii]llegal|[Uu]nrecognized|[Uu]nknown (?:option|argument|command|switch|flag))\b",
        1,
        Kind::Line,
    ),
];

static SET: LazyLock<RegexSet> = LazyLock::new(|| RegexSet::new(RULES.iter().map(|r| r.pattern)).expect("rules"));

/// Words that a line must contain (case-insensitively) for any rule to match: a cheap filter, since most
/// lines of a log are not errors.
static PREFILTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)err|fail|exit|illegal|unrecognized|unknown|panic|trace|warn|diff in|reformat|unformatted|denied|refused|found|fatal|excep|abort|cannot|could|unable|missing|invalid|unexpected|timed? ?out|not found|no such|✖|✕|×|\d\) |^_{3}|^E {3}|\.go:\d|:\d+:\d+: [A-Z]|\*\*\*|^[A-Z]{1,4}\d{2,4} |not ok|\.[A-Za-z]{1,10}: ?\d|^\^--|code style|prettier|<<<|go\.sum|provides package|undefined ref",
    )
    .expect("prefilter")
});

/// The marker on `line`, if any.
pub fn scan(line: &str) -> Option<Hit> {
    if line.trim().is_empty() || !PREFILTER.is_match(line) {
        return None;
    }
    let matched = SET.matches(line);
    let first = matched.iter().next()?;
    let r = &RULES[first];
    if is_benign(line) || r.strength == 1 && is_chatter(line) {
        return None;
    }
    Some(Hit { strength: r.strength, kind: r.kind, summary: r.summary })
}

/// Lines that name failure without reporting one: counts of zero, flags, progress of a passing run.
fn is_benign(line: &str) -> bool {
    static BENIGN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?ix)
            \b0\ (?:errors?|failed|failures?|problems?)\b
            | \b(?:errors?|failures?|failed|fail)\ ?[:=]\ ?0\b
            | (?:-W?error|--fail-fast|-Werror|allow_failures|fail_on|on-error|continue-on-error|ignore-errors|errexit)
            | ^\s*(?:\+\ )?set\ -e
            | \berror(?:s|_|-)(?:chain|handling|code)
            | ^(?:Compiling|Checking|Downloaded|Downloading|Installing|Collecting|Requirement\ already|Fresh|Running|Fetched|Get:\d|Unpacking|Setting\ up|Selecting|Preparing)\b
            ",
        )
        .expect("benign")
    });
    BENIGN.is_match(line)
}

/// Lines whose only failure word is incidental: a skipped test's reason, a warning.
fn is_chatter(line: &str) -> bool {
    static CHATTER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\bskipp(?:ed|ing)\b|\bwarn(?:ing)?\b|\bdeprecat|\bignor(?:ed|ing)\b|\b(?:ok|passed|PASS)\b")
            .expect("chatter")
    });
    CHATTER.is_match(line)
}

/// Leading whitespace width (a tab counts as 8).
pub fn indent(line: &str) -> usize {
    let mut n = 0;
    for c in line.chars() {
        match c {
            ' ' => n += 1,
            '\t' => n += 8,
            _ => break,
        }
    }
    n
}

/// The state of a block that has started and may go on.
#[derive(Debug, Clone)]
pub struct OpenBlock {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    pub strength: u8,
    pub summary: bool,
    /// The head line's shape id (set by the scanner).
    pub shape: u32,
    /// Kind-specific memory: the hit line's indent, the tag it carries, whether the end line was seen.
    head_indent: usize,
    /// The head line ends with `:`: the detail it announces may follow one blank line.
    announces: bool,
    tag: &'static str,
    blank_run: usize,
    done_after: bool,
}

/// How many lines a block of each kind may have at most.
fn max_len(kind: Kind) -> usize {
    match kind {
        Kind::Diagnostic => 60,
        Kind::Traceback => 80,
        Kind::Section => 160,
        Kind::RuledSummary => 60,
        Kind::Tagged => 40,
        Kind::Stack => 40,
        Kind::Indented => 60,
        Kind::FileBlock => 40,
        Kind::LineDiagnostic => 6,
        Kind::Line => 24,
        Kind::FailList => 60,
        Kind::UntilBlank => 80,
        Kind::Located => 40,
        Kind::Trailer => 1,
        Kind::Verdict => 1,
    }
}

impl OpenBlock {
    pub fn new(hit: Hit, index: usize, line: &str) -> Self {
        let tag = match hit.kind {
            Kind::Tagged => TAGS.iter().copied().find(|t| line.starts_with(t)).unwrap_or(""),
            _ => "",
        };
        OpenBlock {
            kind: hit.kind,
            start: index,
            end: index,
            strength: hit.strength,
            summary: hit.summary,
            shape: 0,
            head_indent: indent(line),
            announces: line.trim_end().ends_with(':'),
            tag,
            blank_run: 0,
            done_after: false,
        }
    }

    /// Lines so far (at least the head line).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.end + 1 - self.start
    }

    /// Offers the next line (at `index`); true when the block takes it, false when the block has ended.
    pub fn offer(&mut self, index: usize, line: &str) -> bool {
        if self.done_after || self.len() >= max_len(self.kind) {
            return false;
        }
        let blank = line.trim().is_empty();
        let ind = indent(line);
        if matches!(self.kind, Kind::Line | Kind::Stack)
            && self.announces
            && self.len() == 1
            && self.blank_run == 0
            && blank
        {
            self.blank_run = 1;
            return true;
        }
        let take = match self.kind {
            Kind::Diagnostic => {
                // rustc ends a diagnostic with one blank line; ruff's full format has blank lines inside
                // (before `help:`), which are followed by an indented or `help:` line.
                if blank {
                    self.blank_run += 1;
                    self.blank_run == 1
                } else if self.blank_run > 0 {
                    let more = line.starts_with("help:") || line.starts_with("note:");
                    self.blank_run = 0;
                    more
                } else {
                    // a build script's captured output follows its error: its own errors are blocks of their own
                    !starts_new_diagnostic(line) && !line.starts_with("--- stdout") && !line.starts_with("--- stderr")
                }
            }
            Kind::LineDiagnostic => {
                // the source line and the caret under it (gcc, go vet with -c, tsc --pretty)
                !blank && (ind > 0 || line.contains('^') || line.starts_with('|')) && !looks_like_location(line)
            }
            Kind::Traceback => {
                if blank {
                    false
                } else if ind > 0 {
                    true
                } else {
                    // the exception line closes the traceback
                    self.done_after = true;
                    true
                }
            }
            Kind::Section => {
                !(line.starts_with("___") && self.len() > 1
                    || line.starts_with("====")
                    || line.starts_with("---- ") && self.len() > 1
                    || line.starts_with("failures:")
                    || line.starts_with("test result:"))
            }
            Kind::RuledSummary => {
                if line.starts_with("====") || line.starts_with("!!!!") {
                    self.done_after = true;
                }
                true
            }
            Kind::Tagged => {
                if self.tag.is_empty() {
                    !blank && ind > 0
                } else if self.tag == "Diff in " {
                    // cargo fmt's diff: +/- lines, context lines, the next file's header
                    !blank
                        || self.blank_run == 0 && {
                            self.blank_run = 1;
                            true
                        }
                } else {
                    line.starts_with(self.tag) || (!blank && ind > self.head_indent && self.tag != "[warn] ")
                }
            }
            Kind::Stack => {
                let t = line.trim_start();
                // `Error:` alone announces a message of its own lines, then the stack
                !blank
                    && (self.announces
                        || ind > self.head_indent
                        || t.starts_with("at ")
                        || t.starts_with("File \"")
                        || t.starts_with("Caused by")
                        || t.starts_with("...")
                        || t.starts_with("note: ")
                        || t.starts_with("stack backtrace:")
                        || t.starts_with("Error: ")
                        || t.starts_with("expected")
                        || t.starts_with("left:")
                        || t.starts_with("right:")
                        || t.starts_with("+ ")
                        || t.starts_with("- ")
                        || t.starts_with("goroutine "))
            }
            Kind::Indented => {
                let t = line.trim_start();
                if t.starts_with("--- PASS") || t.starts_with("--- SKIP") || t.starts_with("=== RUN") {
                    // a passing or starting subtest is not part of the failure (Go prints them nested)
                    return false;
                }
                if blank {
                    self.blank_run += 1;
                    self.blank_run <= 1
                } else {
                    let was_blank = self.blank_run > 0;
                    self.blank_run = 0;
                    // CMake prints `Call Stack (most recent call first):` flush left inside its error
                    line.starts_with("Call Stack (most recent call first)")
                        || ind > self.head_indent
                            && !(was_blank
                                && line.trim_start().starts_with(|c: char| c.is_ascii_digit())
                                && ind <= self.head_indent + 2)
                }
            }
            Kind::FileBlock => !blank && ind > 0,
            Kind::Line => !blank && ind > self.head_indent,
            Kind::UntilBlank => !blank,
            Kind::Trailer => false,
            Kind::Located => !blank && (ind > self.head_indent || located_line(line)),
            Kind::FailList => {
                // ends at the runner's closing lines: `test result:`, npm's error tail, the CI verdict
                let t = line.trim_start();
                !(t.starts_with("test result:")
                    || t.starts_with("npm ERR!")
                    || t.starts_with("npm error")
                    || t.starts_with("error Command failed")
                    || t.starts_with("The command ")
                    || t.starts_with("##[error]"))
            }
            Kind::Verdict => false,
        };
        if take {
            self.end = index;
        }
        take
    }
}

/// How far a [`Kind::Trailer`] block reaches back.
pub const TRAILER_LOOKBACK: usize = 12;

/// Tags a [`Kind::Tagged`] block repeats on each of its lines.
const TAGS: &[&str] = &[
    "E   ",
    "npm ERR! ",
    "npm error ",
    "[ERROR] ",
    "[warn] ",
    "[error] ",
    "would reformat ",
    "Diff in ",
    "unformatted: ",
];

fn starts_new_diagnostic(line: &str) -> bool {
    static NEXT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^(?:(?:error|warning)(?:\[[A-Z]+\d+\])?: |[A-Z]{1,4}\d{2,4} |Found \d+ error|For more information)",
        )
        .expect("next")
    });
    NEXT.is_match(line)
}

fn located_line(line: &str) -> bool {
    static LOC: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[\w./\-]+\.[A-Za-z]{1,10}: ?\d+(?::\d*)?:? ?[^\s\d]").expect("located"));
    LOC.is_match(line)
}

fn looks_like_location(line: &str) -> bool {
    static LOC: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\S+:\d+(?::\d+)?: ").expect("loc"));
    LOC.is_match(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(line: &str) -> Option<(u8, Kind)> {
        scan(line).map(|h| (h.strength, h.kind))
    }

    #[test]
    fn tool_markers() {
        assert_eq!(kind("error[E0432]: unresolved import `serde`"), Some((3, Kind::Diagnostic)));
        assert_eq!(kind("error: unneeded `return` statement"), Some((3, Kind::Diagnostic)));
        assert!(scan("error: could not compile `demo` (lib) due to 1 previous error").unwrap().summary);
        assert_eq!(kind("E       assert 2 == 3"), Some((3, Kind::Tagged)));
        assert_eq!(kind("Traceback (most recent call last):"), Some((3, Kind::Traceback)));
        assert_eq!(kind("--- FAIL: TestAdd (0.00s)"), Some((3, Kind::Indented)));
        assert_eq!(kind("./add.go:6:9: invalid operation"), Some((3, Kind::LineDiagnostic)));
        assert_eq!(kind("a.ts(1,7): error TS2322: Type 'string' is not assignable"), Some((3, Kind::LineDiagnostic)));
        assert_eq!(
            kind("  1:7   error  'a' is assigned a value but never used  no-unused-vars"),
            Some((3, Kind::FileBlock))
        );
        assert_eq!(kind("npm ERR! code ELIFECYCLE"), Some((3, Kind::Tagged)));
        assert_eq!(kind("make: *** [Makefile:3: all] Error 1"), Some((2, Kind::Line)));
        assert_eq!(kind("##[error]Process completed with exit code 1."), Some((2, Kind::Verdict)));
        assert_eq!(kind("ModuleNotFoundError: No module named 'requestsx'"), Some((3, Kind::Stack)));
    }

    #[test]
    fn benign_lines() {
        for l in ["Compiling error-chain v0.12.4", "test result: ok. 0 failed", "0 errors, 0 warnings", "all good", ""]
        {
            assert_eq!(scan(l), None, "{l}");
        }
    }

    fn block(lines: &[&str]) -> usize {
        let hit = scan(lines[0]).expect("hit");
        let mut b = OpenBlock::new(hit, 0, lines[0]);
        for (i, l) in lines.iter().enumerate().skip(1) {
            if !b.offer(i, l) {
                break;
            }
        }
        b.len()
    }

    #[test]
    fn blocks_end_where_the_tool_ends_them() {
        let rustc = [
            "error[E0432]: unresolved import `serde`",
            " --> src/lib.rs:1:5",
            "  |",
            "1 | use serde::Serialize;",
            "  |     ^^^^^ use of unresolved module or unlinked crate `serde`",
            "",
            "For more information about this error, try `rustc --explain E0432`.",
        ];
        assert_eq!(block(&rustc), 6);
        let tb = [
            "Traceback (most recent call last):",
            "  File \"a.py\", line 1, in <module>",
            "    import x",
            "ModuleNotFoundError: No module named 'x'",
            "next",
        ];
        assert_eq!(block(&tb), 4);
        let go = ["--- FAIL: TestAdd (0.00s)", "    add_test.go:7: Add(2, 2) = 0, want 4", "FAIL"];
        assert_eq!(block(&go), 2);
    }
}
