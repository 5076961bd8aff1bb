//! From a job log to its [`FailureContext`]: find the failing step, the blocks of error output inside it,
//! and keep the ones that explain the failure within a line budget.
//!
//! Two passes over the bytes, both streaming: the first finds steps and error blocks (as line ranges, with
//! a bounded number kept per step), the second copies out only the chosen lines. Memory stays bounded by the
//! caps below whatever the log's size.

use crate::filerefs::{FileRef, file_refs};
use crate::markers::{Hit, Kind, OpenBlock, scan};
use crate::normalize::{LineFlags, LineSplitter, normalize_physical};
use serde::{Deserialize, Serialize};

/// Limits of an extraction. The defaults are the ones the benchmark was measured with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Lines the context aims at: blocks beyond the first error's own are added only while they fit.
    pub budget_lines: usize,
    /// Hard cap on context lines.
    pub max_lines: usize,
    /// Hard cap on context bytes (lines are cut to fit).
    pub max_bytes: usize,
    /// Absolute checkout directories whose files are reported relative to them (in addition to the CI
    /// runners' own: `/home/runner/work/R/R`, `/__w/R/R`, `/github/workspace`, `/home/travis/build/O/R`, ...).
    pub workspace_roots: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { budget_lines: 55, max_lines: 200, max_bytes: 32 * 1024, workspace_roots: Vec::new() }
    }
}

/// The CI system a log came from, as far as its markers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    GithubActions,
    Travis,
    Plain,
}

/// A contiguous run of log lines in the context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// 1-based line number of the window's first line in the normalised log.
    pub first_line: usize,
    /// How many lines of [`FailureContext::lines`] it has.
    pub len: usize,
}

/// What explains a failed job: the failing step, its command, and the log lines that say why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureContext {
    pub format: LogFormat,
    /// The failing step's title as the log shows it (`Run cargo fmt --check`, Travis `$ ci/script.sh`).
    pub step_name: Option<String>,
    /// The command the step ran (a multi-line script keeps its lines).
    pub command: Option<String>,
    /// The step's exit code, when the CI system printed it.
    pub exit_code: Option<i32>,
    /// True when a CI verdict (`##[error]Process completed ...`, `The command ... exited with N`) named the
    /// step as failing; false when the step is a guess (the log's last step).
    pub step_failed: bool,
    /// The chosen lines, normalised (no ANSI, no timestamps), in log order.
    pub lines: Vec<String>,
    /// Where each run of [`Self::lines`] sits in the log (gaps between windows are omitted lines).
    pub windows: Vec<Window>,
    /// `file:line[:col]` references in the lines, relative to the checkout, toolchain paths dropped.
    pub file_refs: Vec<FileRef>,
    /// Lines in the normalised log.
    pub log_lines: usize,
    /// True when a cap cut the context short.
    pub truncated: bool,
}

impl FailureContext {
    /// The failure context of a job log, with the default [`Options`].
    pub fn from_log(log: &[u8]) -> Self {
        Self::from_log_with(log, &Options::default())
    }

    /// The failure context of a job log.
    pub fn from_log_with(log: &[u8], opts: &Options) -> Self {
        let mut scanner = Scanner::default();
        for_each_line(log, |i, line, flags| scanner.line(i, line, flags));
        let plan = scanner.finish(opts);
        plan.materialize(log, opts)
    }

    /// The lines as text, with `[... N lines omitted ...]` between windows.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut at = 0;
        let mut prev_end: Option<usize> = None;
        for w in &self.windows {
            if let Some(end) = prev_end
                && w.first_line > end + 1
            {
                out.push_str(&format!("[... {} lines omitted ...]\n", w.first_line - end - 1));
            }
            for l in &self.lines[at..(at + w.len).min(self.lines.len())] {
                out.push_str(l);
                out.push('\n');
            }
            at += w.len;
            prev_end = Some(w.first_line + w.len - 1);
        }
        out
    }
}

/// How the extractor saw a log: its steps and the error blocks of the chosen step, one per line (for
/// looking at benchmark misses; `cilog-bench --explain LOG`).
pub fn explain(log: &[u8]) -> String {
    let mut scanner = Scanner::default();
    for_each_line(log, |i, line, flags| scanner.line(i, line, flags));
    scanner.close_open();
    let mut out = String::new();
    for (k, s) in scanner.steps.iter().enumerate() {
        out.push_str(&format!(
            "step {k}: lines {}..{} failed={} exit={:?} title={:?} blocks={}\n",
            s.body_start + 1,
            s.end,
            s.failed,
            s.exit_code,
            s.title.as_deref().map(|t| cut(t, 80)),
            s.head.len() + s.tail.len()
        ));
        for b in s.blocks() {
            out.push_str(&format!(
                "  block {}..={} strength={} kind={:?} summary={} repeated={}\n",
                b.start + 1,
                b.end + 1,
                b.strength,
                b.kind,
                b.summary,
                scanner.shapes.repeated(b.shape)
            ));
        }
    }
    out
}

/// Calls `f(index, line, flags)` for every normalised line of `log`.
fn for_each_line(log: &[u8], mut f: impl FnMut(usize, &str, LineFlags)) {
    let mut splitter = LineSplitter::new();
    let mut buf = Vec::new();
    let mut index = 0;
    let mut emit = |raw: &[u8]| {
        buf.clear();
        let flags = normalize_physical(raw, &mut buf);
        for line in &buf {
            f(index, line, flags);
            index += 1;
        }
    };
    // Chunks of 1 MiB: the splitter copies at most one line at a time either way.
    for chunk in log.chunks(1 << 20) {
        splitter.feed(chunk, &mut emit);
    }
    splitter.finish(&mut emit);
}

/// Caps that bound the first pass's memory.
const MAX_STEPS: usize = 4096;
const MAX_BLOCKS_HEAD: usize = 256;
const MAX_BLOCKS_TAIL: usize = 64;
const MAX_COMMAND_BYTES: usize = 2048;
const MAX_OPEN: usize = 8;
/// A `##[group]Run` header (script, shell, env) longer than this has lost its `##[endgroup]`.
const MAX_HEADER_LINES: usize = 256;

#[derive(Debug, Clone, Copy)]
struct Block {
    start: usize,
    end: usize,
    strength: u8,
    summary: bool,
    kind: Kind,
    /// The line shape's id in [`Shapes`].
    shape: u32,
}

#[derive(Debug, Default)]
struct Step {
    title: Option<String>,
    command: String,
    /// First line of the step's own output (after its header).
    body_start: usize,
    /// One past the step's last line.
    end: usize,
    failed: bool,
    exit_code: Option<i32>,
    /// The first block of output and the last ones: a step can print a million errors.
    head: Vec<Block>,
    tail: std::collections::VecDeque<Block>,
    dropped: usize,
}

impl Step {
    fn push(&mut self, b: Block) {
        if self.head.len() < MAX_BLOCKS_HEAD {
            self.head.push(b);
            return;
        }
        if self.tail.len() == MAX_BLOCKS_TAIL {
            self.tail.pop_front();
            self.dropped += 1;
        }
        self.tail.push_back(b);
    }

    fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.head.iter().chain(self.tail.iter())
    }

    fn forget_blocks(&mut self) {
        self.head = Vec::new();
        self.tail = Default::default();
    }
}

#[derive(Debug, Default)]
struct Scanner {
    format: Option<LogFormat>,
    steps: Vec<Step>,
    /// Index of the first step a CI verdict named as failed.
    first_failed: Option<usize>,
    /// Inside a GitHub Actions `##[group]Run` header (the command and its shell/env lines).
    in_header: bool,
    header_done_command: bool,
    open: Vec<OpenBlock>,
    lines: usize,
    shapes: Shapes,
}

/// How often each shape of marker line occurs: the same weak marker repeated many times (`-c "if error == 0"`
/// on every file a build checks) is the build's normal chatter, not its failure.
#[derive(Debug, Default)]
struct Shapes {
    ids: std::collections::HashMap<String, u32>,
    counts: Vec<u32>,
}

/// At most this many distinct shapes are counted; later new shapes share one id that never counts as repeated.
const MAX_SHAPES: usize = 8192;

impl Shapes {
    /// Counts `line`'s shape and returns its id (0 when the table is full).
    fn count(&mut self, line: &str) -> u32 {
        if self.counts.is_empty() {
            self.counts.push(0);
        }
        let key = shape_of(line);
        let next = self.counts.len() as u32;
        let id = match self.ids.get(&key) {
            Some(id) => *id,
            None if self.counts.len() < MAX_SHAPES => {
                self.ids.insert(key, next);
                self.counts.push(0);
                next
            }
            None => 0,
        };
        if id != 0 {
            self.counts[id as usize] += 1;
        }
        id
    }

    fn repeated(&self, id: u32) -> bool {
        id != 0 && self.counts.get(id as usize).is_some_and(|n| *n > 3)
    }
}

/// A line's first 32 characters with digits and hex runs masked.
fn shape_of(line: &str) -> String {
    line.trim_start().chars().take(32).map(|c| if c.is_ascii_digit() { '0' } else { c }).collect()
}

impl Scanner {
    fn current(&mut self) -> &mut Step {
        if self.steps.is_empty() {
            self.steps.push(Step::default());
        }
        self.steps.last_mut().expect("a step")
    }

    fn line(&mut self, i: usize, line: &str, flags: LineFlags) {
        self.lines = i + 1;
        if flags.travis_marker {
            self.format = Some(LogFormat::Travis);
        } else if flags.gha_timestamp && self.format.is_none() {
            self.format = Some(LogFormat::GithubActions);
        }

        // GitHub Actions step header: `##[group]Run <command>` ... `##[endgroup]`.
        if let Some(title) = line.strip_prefix("##[group]")
            && title.starts_with("Run ")
        {
            self.format = Some(LogFormat::GithubActions);
            self.new_step(i, title.to_string(), None);
            self.in_header = true;
            self.header_done_command = false;
            return;
        }
        // A header ends at `##[endgroup]`; a cut log (see `bound`) may have lost it, so also at any other
        // runner marker or after a header's worth of lines.
        if self.in_header
            && !line.starts_with("##[endgroup]")
            && (line.starts_with("##[") || i >= self.current().body_start + MAX_HEADER_LINES)
        {
            self.in_header = false;
            let step = self.current();
            step.body_start = i;
            if step.command.is_empty() {
                step.command = step.title.as_deref().and_then(|t| t.strip_prefix("Run ")).unwrap_or("").to_string();
            }
        }
        if self.in_header {
            if line.starts_with("##[endgroup]") {
                self.in_header = false;
                let step = self.current();
                step.body_start = i + 1;
                if step.command.is_empty() {
                    step.command = step.title.as_deref().and_then(|t| t.strip_prefix("Run ")).unwrap_or("").to_string();
                }
            } else if !self.header_done_command {
                // the script's lines come first; `shell:`, `env:` and `with:` end them
                let t = line.trim_start();
                if t.starts_with("shell: ") || t == "env:" || t == "with:" {
                    self.header_done_command = true;
                } else {
                    let step = self.current();
                    if step.command.len() + line.len() < MAX_COMMAND_BYTES {
                        if !step.command.is_empty() {
                            step.command.push('\n');
                        }
                        step.command.push_str(line);
                    }
                }
            }
            return;
        }
        // Travis: `$ command` right after a `travis_time:start` marker.
        if flags.travis_step
            && let Some(cmd) = line.strip_prefix("$ ")
        {
            self.new_step(i, line.to_string(), Some(cmd.to_string()));
            self.current().body_start = i + 1;
            return;
        }

        let mut hit = scan(line);
        // `The command "x" failed. Retrying, 2 of 3.` is travis_retry going on: the step failed (once), but it
        // has not ended
        if let Some(h) = &mut hit
            && h.kind == Kind::Verdict
            && line.contains("Retrying")
        {
            h.kind = Kind::Line;
            self.mark_failed(None);
        }
        let verdict = hit.is_some_and(|h| h.kind == Kind::Verdict);
        if verdict {
            self.verdict(line);
        } else if line.starts_with("##[error]") {
            // other runner errors (`Input required and not supplied`, `The operation was canceled.`)
            self.mark_failed(None);
        }
        self.offer(i, line, hit);
        if verdict {
            // what follows a step's verdict (post-job cleanup, Travis' cache upload) is not that step's
            self.new_untitled_step(i + 1);
        }
    }

    fn new_untitled_step(&mut self, start: usize) {
        self.close_open();
        if self.steps.len() >= MAX_STEPS {
            return;
        }
        self.steps.push(Step { body_start: start, end: start, ..Step::default() });
    }

    fn new_step(&mut self, i: usize, title: String, command: Option<String>) {
        self.close_open();
        if let Some(prev) = self.steps.last_mut() {
            prev.end = i;
        }
        if self.steps.len() >= MAX_STEPS {
            return;
        }
        // Only a failed step's blocks are needed later (or the last step's, when no step failed): GitHub
        // Actions skips the steps after a failure unless they run `if: always()`.
        if let Some(prev) = self.steps.last_mut()
            && !prev.failed
        {
            prev.forget_blocks();
        }
        self.steps.push(Step {
            title: Some(title),
            command: command.unwrap_or_default(),
            body_start: i + 1,
            end: i + 1,
            ..Step::default()
        });
    }

    fn verdict(&mut self, line: &str) {
        let code = exit_code_in(line);
        self.mark_failed(code);
    }

    fn mark_failed(&mut self, code: Option<i32>) {
        let idx = self.steps.len().max(1) - 1;
        let step = self.current();
        if !step.failed {
            step.failed = true;
            step.exit_code = code;
        } else if step.exit_code.is_none() {
            step.exit_code = code;
        }
        if self.first_failed.is_none() {
            self.first_failed = Some(idx);
        }
    }

    fn offer(&mut self, i: usize, line: &str, hit: Option<Hit>) {
        let mut taken = false;
        let mut closed = Vec::new();
        for (k, b) in self.open.iter_mut().enumerate() {
            if b.offer(i, line) {
                taken = true;
                if let Some(h) = hit
                    && !h.summary
                {
                    b.strength = b.strength.max(h.strength);
                }
            } else {
                closed.push(k);
            }
        }
        for k in closed.into_iter().rev() {
            let b = self.open.remove(k);
            self.store(&b);
        }
        if let Some(h) = hit
            && (!taken || h.strength >= 3 && !h.summary && h.kind != Kind::Tagged)
        {
            if self.open.len() >= MAX_OPEN {
                let b = self.open.remove(0);
                self.store(&b);
            }
            let mut b = OpenBlock::new(h, i, line);
            b.shape = self.shapes.count(line);
            if h.kind == Kind::Trailer {
                let lo = self.current().body_start;
                b.start = i.saturating_sub(crate::markers::TRAILER_LOOKBACK).max(lo).min(i);
            }
            if h.kind == Kind::Verdict {
                self.store(&b);
            } else {
                self.open.push(b);
            }
        }
        let step = self.current();
        step.end = i + 1;
    }

    fn store(&mut self, b: &OpenBlock) {
        let block = Block {
            start: b.start,
            end: b.end,
            strength: b.strength,
            summary: b.summary,
            kind: b.kind,
            shape: b.shape,
        };
        self.current().push(block);
    }

    fn close_open(&mut self) {
        for b in std::mem::take(&mut self.open) {
            self.store(&b);
        }
    }

    fn finish(mut self, opts: &Options) -> Plan {
        self.close_open();
        if self.steps.is_empty() {
            self.steps.push(Step::default());
        }
        let idx = self.first_failed.unwrap_or(self.steps.len() - 1);
        let step = &self.steps[idx];
        let mut ranges = choose(step, &self.shapes, opts);
        // Travis goes on after a failed `script` command: the next failed commands' first errors are part of
        // the story (and often the one a person reads first).
        for later in self.steps[idx + 1..].iter().filter(|s| s.failed).take(2) {
            ranges.extend(first_error(later, &self.shapes));
        }
        let ranges = merge(ranges, opts.max_lines);
        Plan {
            format: self.format.unwrap_or(LogFormat::Plain),
            step_name: step.title.clone(),
            command: step.title.as_ref().map(|_| step.command.clone()).filter(|c| !c.is_empty()),
            exit_code: step.exit_code,
            step_failed: step.failed,
            ranges,
            log_lines: self.lines,
        }
    }
}

/// The exit code a CI verdict line names.
fn exit_code_in(line: &str) -> Option<i32> {
    for key in ["exit code ", "exited with "] {
        if let Some(pos) = line.rfind(key) {
            let digits: String = line[pos + key.len()..].chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
    }
    None
}

/// Lines before a block worth showing with it (the command or test name printed just before an error).
fn lead(kind: Kind) -> usize {
    match kind {
        Kind::Line | Kind::Stack | Kind::LineDiagnostic | Kind::Indented => 1,
        Kind::FileBlock | Kind::Located => 1,
        _ => 0,
    }
}

/// The line ranges (inclusive) to keep from a step, first error first, within the budget.
///
/// Order of preference: the first strong error block whole; the step's last lines (summaries and the
/// verdict); further strong blocks in log order (the first error explains more than the last); then weaker
/// blocks nearest the step's end first (where the failure is when no tool said so plainly). Weak markers whose
/// line shape repeats are skipped as the build's normal chatter.
fn choose(step: &Step, shapes: &Shapes, opts: &Options) -> Vec<(usize, usize)> {
    let lo = step.body_start;
    let hi = step.end.max(lo); // exclusive
    if hi == lo {
        return Vec::new();
    }
    // blocks are stored as they close: an outer block closes after the ones inside it
    let mut blocks: Vec<Block> = step
        .blocks()
        .copied()
        .filter(|b| b.end >= lo && b.start < hi)
        .filter(|b| b.strength >= 3 || !shapes.repeated(b.shape))
        .collect();
    blocks.sort_by_key(|b| (b.start, std::cmp::Reverse(b.end)));
    let mut chosen: Vec<(usize, usize)> = Vec::new();
    let mut used = 0usize;
    let clamp = |r: (usize, usize)| (r.0.max(lo), r.1.min(hi - 1));
    let with_lead = |b: &Block| (b.start.saturating_sub(lead(b.kind)), b.end);

    let primary = blocks.iter().position(|b| b.strength >= 3 && !b.summary && b.kind != Kind::Verdict);
    if let Some(p) = primary {
        let mut r = clamp(with_lead(&blocks[p]));
        // the failures that follow it directly, in the same shape (pytest's sections, one per failed test),
        // are one report: keep them together, up to a cluster's size
        for b in &blocks[p + 1..] {
            if b.kind == blocks[p].kind && b.start <= r.1 + 2 && b.end + 1 - r.0 <= MAX_CLUSTER {
                r.1 = r.1.max(b.end.min(hi - 1));
            } else if b.start > r.1 + 2 {
                break;
            }
        }
        used += count_new(&chosen, r);
        chosen.push(r);
    }
    let strong_elsewhere = blocks.iter().any(|b| b.strength >= 2 && b.kind != Kind::Verdict);
    let tail_len = if strong_elsewhere { 4 } else { 12 };
    let r = clamp((hi.saturating_sub(tail_len), hi - 1));
    used += count_new(&chosen, r);
    chosen.push(r);

    let mut rest: Vec<(usize, &Block)> = blocks.iter().enumerate().filter(|(k, _)| Some(*k) != primary).collect();
    rest.sort_by_key(|(_, b)| {
        let order = if b.strength >= 2 { b.start } else { hi - b.end };
        (std::cmp::Reverse(b.strength), b.summary, order)
    });
    // the second error's head is shown even when the first filled the budget: two failures are told apart
    // by their first lines, and a log that fails twice often names the cause in the second
    let mut second = primary.is_some();
    for (_, b) in rest {
        if second && b.strength >= 3 && !b.summary && b.kind != Kind::Verdict {
            second = false;
            let r = clamp(with_lead(b));
            if r.0 <= r.1 && count_new(&chosen, r) > 0 && used >= opts.budget_lines {
                let r = (r.0, r.1.min(r.0 + SECOND_HEAD - 1));
                used += count_new(&chosen, r);
                chosen.push(r);
                continue;
            }
        }
        if used >= opts.budget_lines {
            break;
        }
        let r = clamp(with_lead(b));
        if r.0 > r.1 {
            continue;
        }
        let new = count_new(&chosen, r);
        if new == 0 {
            continue;
        }
        // a block that does not fit: its head, when it is a strong one
        let r = if used + new > opts.budget_lines {
            if b.strength < 3 {
                continue;
            }
            (r.0, (r.0 + (opts.budget_lines - used).max(3) - 1).min(r.1))
        } else {
            r
        };
        used += count_new(&chosen, r);
        chosen.push(r);
    }
    merge(chosen, opts.max_lines)
}

/// A later failed step's first strong error block (its head) and its verdict line.
fn first_error(step: &Step, shapes: &Shapes) -> Vec<(usize, usize)> {
    let lo = step.body_start;
    let hi = step.end.max(lo);
    if hi == lo {
        return Vec::new();
    }
    // a short step is shown whole: a retried deploy prints the same error once per try, then its verdict
    if hi - lo <= SHORT_STEP {
        return vec![(lo, hi - 1)];
    }
    let mut out = vec![(hi - 1, hi - 1)];
    let first = step
        .blocks()
        .filter(|b| b.end >= lo && b.start < hi && (b.strength >= 3 || !shapes.repeated(b.shape)))
        .filter(|b| b.strength >= 3 && !b.summary && b.kind != Kind::Verdict)
        .min_by_key(|b| b.start);
    if let Some(b) = first {
        let start = b.start.saturating_sub(lead(b.kind)).max(lo);
        out.push((start, b.end.min(start + 40)));
    }
    out
}

/// A later failed step with at most this many lines is kept whole.
const SHORT_STEP: usize = 70;

/// At most this many lines of adjacent same-shape failure blocks are kept as the first error's report.
const MAX_CLUSTER: usize = 130;

/// Lines of the second error block shown when the first one filled the budget.
const SECOND_HEAD: usize = 24;

/// Lines of `r` not yet in `chosen`.
fn count_new(chosen: &[(usize, usize)], r: (usize, usize)) -> usize {
    (r.0..=r.1).filter(|i| !chosen.iter().any(|c| c.0 <= *i && *i <= c.1)).count()
}

/// Sorted, merged ranges (gaps of up to two lines are filled), cut to `max_lines` in total.
fn merge(mut ranges: Vec<(usize, usize)>, max_lines: usize) -> Vec<(usize, usize)> {
    ranges.sort();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.0 <= last.1 + 3 => last.1 = last.1.max(r.1),
            _ => out.push(r),
        }
    }
    let mut total = 0;
    let mut cut = Vec::new();
    for r in out {
        if total >= max_lines {
            break;
        }
        let take = (r.1 + 1 - r.0).min(max_lines - total);
        cut.push((r.0, r.0 + take - 1));
        total += take;
    }
    cut
}

#[derive(Debug)]
struct Plan {
    format: LogFormat,
    step_name: Option<String>,
    command: Option<String>,
    exit_code: Option<i32>,
    step_failed: bool,
    ranges: Vec<(usize, usize)>,
    log_lines: usize,
}

impl Plan {
    fn materialize(self, log: &[u8], opts: &Options) -> FailureContext {
        let mut lines = Vec::new();
        let mut windows: Vec<Window> = Vec::new();
        let mut bytes = 0usize;
        let mut truncated = false;
        let mut r = 0;
        for_each_line(log, |i, line, _| {
            while r < self.ranges.len() && self.ranges[r].1 < i {
                r += 1;
            }
            let Some(&(a, b)) = self.ranges.get(r) else { return };
            if i < a || i > b || truncated {
                return;
            }
            let room = opts.max_bytes.saturating_sub(bytes);
            if room < 16 {
                truncated = true;
                return;
            }
            // room - 1: the line's newline counts against max_bytes too
            let text = cut(line, (room - 1).min(MAX_LINE_BYTES));
            if text.len() < line.len() {
                truncated = truncated || room < MAX_LINE_BYTES;
            }
            bytes += text.len() + 1;
            match windows.last_mut() {
                Some(w) if w.first_line + w.len == i + 1 => w.len += 1,
                _ => windows.push(Window { first_line: i + 1, len: 1 }),
            }
            lines.push(text.to_string());
        });
        trim_blank_edges(&mut lines, &mut windows);
        let file_refs = file_refs(&lines, &opts.workspace_roots);
        FailureContext {
            format: self.format,
            step_name: self.step_name,
            command: self.command,
            exit_code: self.exit_code,
            step_failed: self.step_failed,
            lines,
            windows,
            file_refs,
            log_lines: self.log_lines,
            truncated,
        }
    }
}

/// One context line is cut at this size (minified code, base64 blobs).
const MAX_LINE_BYTES: usize = 4096;

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Blank lines at the start and end of each window say nothing.
fn trim_blank_edges(lines: &mut Vec<String>, windows: &mut Vec<Window>) {
    let mut out_lines = Vec::with_capacity(lines.len());
    let mut out_windows = Vec::with_capacity(windows.len());
    let mut at = 0;
    for w in windows.iter() {
        let seg = &lines[at..at + w.len];
        at += w.len;
        let first = seg.iter().position(|l| !l.trim().is_empty());
        let Some(first) = first else { continue };
        let last = seg.iter().rposition(|l| !l.trim().is_empty()).unwrap_or(first);
        out_windows.push(Window { first_line: w.first_line + first, len: last + 1 - first });
        out_lines.extend(seg[first..=last].iter().cloned());
    }
    *lines = out_lines;
    *windows = out_windows;
}
