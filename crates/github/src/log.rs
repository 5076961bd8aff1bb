//! Bounded job logs. A job log can be hundreds of megabytes; the client streams it through a
//! [`LogCollector`] that keeps at most [`LogLimits::max_bytes`]: the first lines (setup, versions), the last
//! lines (where the failing step and the runner's `##[error]` summary are), and in between the lines a
//! [`LineFilter`] marks as interesting, as long as their share of the budget lasts. Everything else is
//! counted and dropped.

use std::collections::VecDeque;

/// Decides which lines from the middle of a log are worth keeping.
pub trait LineFilter: Send + Sync {
    fn keep(&self, line: &str) -> bool;
}

impl<F: Fn(&str) -> bool + Send + Sync> LineFilter for F {
    fn keep(&self, line: &str) -> bool {
        self(line)
    }
}

/// The default filter: the runner's `##[error]` annotations and lines that say `error`, `failed` or
/// `panicked` (any case).
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorLines;

impl LineFilter for ErrorLines {
    fn keep(&self, line: &str) -> bool {
        if line.contains("##[error]") {
            return true;
        }
        let lower = line.to_ascii_lowercase();
        lower.contains("error") || lower.contains("failed") || lower.contains("panicked")
    }
}

/// How much of a log is kept.
#[derive(Clone, Copy, Debug)]
pub struct LogLimits {
    /// Upper bound of the kept text (line bytes plus one per newline).
    pub max_bytes: usize,
    /// A longer line is cut to this many bytes.
    pub max_line_bytes: usize,
}

impl LogLimits {
    /// Keeps up to `max_bytes`: a quarter head, a quarter filtered middle lines, half tail.
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes, max_line_bytes: 8 * 1024 }
    }

    fn head_budget(&self) -> usize {
        self.max_bytes / 4
    }
    fn marked_budget(&self) -> usize {
        self.max_bytes / 4
    }
    fn tail_budget(&self) -> usize {
        self.max_bytes - self.head_budget() - self.marked_budget()
    }
}

impl Default for LogLimits {
    /// 1 MiB.
    fn default() -> Self {
        Self::new(1024 * 1024)
    }
}

/// One kept line and its 1-based number in the whole log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub number: u64,
    pub text: String,
}

/// What was kept of a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLog {
    /// Kept lines in log order.
    pub lines: Vec<LogLine>,
    /// Size of the whole log as downloaded.
    pub total_bytes: u64,
    /// Lines in the whole log.
    pub total_lines: u64,
    /// True when any line was dropped or cut.
    pub truncated: bool,
}

impl JobLog {
    /// The kept lines joined by newlines, with a `[… N lines omitted …]` line wherever lines were dropped.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut next = 1u64;
        for line in &self.lines {
            if line.number > next {
                out.push_str(&format!("[… {} lines omitted …]\n", line.number - next));
            }
            out.push_str(&line.text);
            out.push('\n');
            next = line.number + 1;
        }
        if self.total_lines >= next && !self.lines.is_empty() {
            out.push_str(&format!("[… {} lines omitted …]\n", self.total_lines - next + 1));
        }
        out
    }
}

/// Incremental, bounded line collector. Feed it chunks as they arrive, then [`LogCollector::finish`].
pub struct LogCollector<'f> {
    limits: LogLimits,
    filter: &'f dyn LineFilter,
    pending: Vec<u8>,
    pending_cut: bool,
    total_bytes: u64,
    line_no: u64,
    head: Vec<LogLine>,
    head_bytes: usize,
    head_open: bool,
    marked: Vec<LogLine>,
    marked_bytes: usize,
    tail: VecDeque<LogLine>,
    tail_bytes: usize,
    truncated: bool,
}

impl<'f> LogCollector<'f> {
    pub fn new(limits: LogLimits, filter: &'f dyn LineFilter) -> Self {
        Self {
            limits,
            filter,
            pending: Vec::new(),
            pending_cut: false,
            total_bytes: 0,
            line_no: 0,
            head: Vec::new(),
            head_bytes: 0,
            head_open: true,
            marked: Vec::new(),
            marked_bytes: 0,
            tail: VecDeque::new(),
            tail_bytes: 0,
            truncated: false,
        }
    }

    pub fn push(&mut self, mut chunk: &[u8]) {
        self.total_bytes += chunk.len() as u64;
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            self.append_pending(&chunk[..pos]);
            self.end_line();
            chunk = &chunk[pos + 1..];
        }
        self.append_pending(chunk);
    }

    pub fn finish(mut self) -> JobLog {
        if !self.pending.is_empty() || self.pending_cut {
            self.end_line();
        }
        let mut lines = self.head;
        lines.append(&mut self.marked);
        lines.extend(self.tail);
        JobLog { lines, total_bytes: self.total_bytes, total_lines: self.line_no, truncated: self.truncated }
    }

    fn append_pending(&mut self, bytes: &[u8]) {
        let room = self.limits.max_line_bytes.saturating_sub(self.pending.len());
        if bytes.len() > room {
            self.pending_cut = true;
        }
        self.pending.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn end_line(&mut self) {
        self.line_no += 1;
        if self.pending.last() == Some(&b'\r') {
            self.pending.pop();
        }
        let mut bytes = std::mem::take(&mut self.pending);
        if self.line_no == 1 && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes.drain(..3);
        }
        if std::mem::take(&mut self.pending_cut) {
            self.truncated = true;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let cost = text.len() + 1;
        let line = LogLine { number: self.line_no, text };

        if self.head_open {
            if self.head_bytes + cost <= self.limits.head_budget() {
                self.head_bytes += cost;
                self.head.push(line);
                return;
            }
            self.head_open = false;
        }
        if cost > self.limits.tail_budget() {
            // Cannot fit even alone in the tail: keep it only as a marked line.
            self.evicted(line);
            return;
        }
        self.tail_bytes += cost;
        self.tail.push_back(line);
        while self.tail_bytes > self.limits.tail_budget() {
            let Some(old) = self.tail.pop_front() else { break };
            self.tail_bytes -= old.text.len() + 1;
            self.evicted(old);
        }
    }

    /// A line leaves the tail window: keep it if the filter wants it and the budget allows, else drop it.
    fn evicted(&mut self, line: LogLine) {
        let cost = line.text.len() + 1;
        if self.marked_bytes + cost <= self.limits.marked_budget() && self.filter.keep(&line.text) {
            self.marked_bytes += cost;
            self.marked.push(line);
        } else {
            self.truncated = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], limits: LogLimits, chunk: usize) -> JobLog {
        let mut c = LogCollector::new(limits, &ErrorLines);
        for part in input.chunks(chunk.max(1)) {
            c.push(part);
        }
        c.finish()
    }

    #[test]
    fn small_log_is_kept_whole() {
        let log = collect(b"\xEF\xBB\xBFone\r\ntwo\nthree", LogLimits::new(1000), 2);
        assert!(!log.truncated);
        assert_eq!(log.total_lines, 3);
        assert_eq!(log.total_bytes, 17);
        assert_eq!(log.render(), "one\ntwo\nthree\n");
    }

    #[test]
    fn big_log_keeps_head_tail_and_error_lines_within_budget() {
        let mut input = String::new();
        for i in 0..10_000 {
            if i == 5000 {
                input.push_str("##[error]the middle failure\n");
            } else {
                input.push_str(&format!("line {i:05} ok\n"));
            }
        }
        let limits = LogLimits::new(4096);
        for chunk in [1, 7, 4096, 1 << 20] {
            let log = collect(input.as_bytes(), limits, chunk);
            assert!(log.truncated);
            assert_eq!(log.total_lines, 10_000);
            assert_eq!(log.total_bytes, input.len() as u64);
            let kept: usize = log.lines.iter().map(|l| l.text.len() + 1).sum();
            assert!(kept <= 4096, "kept {kept}");
            assert_eq!(log.lines[0].text, "line 00000 ok");
            assert_eq!(log.lines.last().unwrap().text, "line 09999 ok");
            assert!(log.lines.iter().any(|l| l.number == 5001 && l.text.contains("middle failure")));
            assert!(log.lines.windows(2).all(|w| w[0].number < w[1].number));
            let text = log.render();
            assert!(text.contains("lines omitted"));
        }
    }

    #[test]
    fn endless_line_is_cut_not_buffered() {
        let limits = LogLimits { max_bytes: 1000, max_line_bytes: 100 };
        let input = vec![b'x'; 1 << 20];
        let log = collect(&input, limits, 4096);
        assert!(log.truncated);
        assert_eq!(log.total_lines, 1);
        assert_eq!(log.lines[0].text.len(), 100);
    }

    #[test]
    fn zero_budget_keeps_nothing_and_does_not_panic() {
        let log = collect(b"a\nb\nc\n", LogLimits { max_bytes: 0, max_line_bytes: 0 }, 1);
        assert!(log.truncated);
        assert!(log.lines.is_empty());
        assert_eq!(log.total_lines, 3);
    }

    #[test]
    fn custom_filter_is_used() {
        let mut input = String::new();
        for i in 0..1000 {
            input.push_str(&format!("{i:04} {}\n", if i == 500 { "KEEPME" } else { "-" }));
        }
        let filter = |l: &str| l.contains("KEEPME");
        let mut c = LogCollector::new(LogLimits::new(200), &filter);
        c.push(input.as_bytes());
        let log = c.finish();
        assert!(log.lines.iter().any(|l| l.text == "0500 KEEPME"));
    }
}
