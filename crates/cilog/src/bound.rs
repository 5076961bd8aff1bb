//! A huge job log cut to a size worth storing: its head, its error-marked lines (with a little context) and
//! its tail, with `[... N lines omitted ...]` where lines were left out.
//!
//! [`LogBounder`] takes the log in chunks as it streams in and holds at most about `max_bytes` of it, so a
//! client can store a multi-gigabyte log without reading it into memory. What it keeps is raw (timestamps,
//! markers and colours intact), so [`crate::FailureContext::from_log`] reads the bounded log as it would the
//! whole one.

use crate::markers::scan;
use crate::normalize::{LineSplitter, normalize_physical};
use std::collections::VecDeque;

/// Lines kept before a marked line, and after it.
const BEFORE: usize = 2;
const AFTER: usize = 6;
/// Room kept for the omission markers.
const MARKER_RESERVE: usize = 512;

/// Streams a log and keeps its head, its error lines and its tail within `max_bytes`.
#[derive(Debug)]
pub struct LogBounder {
    max_bytes: usize,
    splitter: LineSplitter,
    lines: usize,
    /// The whole log, while it still fits.
    whole: Option<Vec<u8>>,
    head: Vec<(usize, String)>,
    head_room: usize,
    marked: Vec<(usize, String)>,
    marked_room: usize,
    /// The last few lines, for the context before a marked line.
    recent: VecDeque<(usize, String)>,
    after: usize,
    tail: VecDeque<(usize, String)>,
    tail_bytes: usize,
    tail_room: usize,
    scratch: Vec<String>,
}

impl LogBounder {
    /// A bounder that keeps at most about `max_bytes` (a quarter head, half error lines, a quarter tail).
    pub fn new(max_bytes: usize) -> Self {
        let usable = max_bytes.saturating_sub(MARKER_RESERVE).max(64);
        LogBounder {
            max_bytes,
            splitter: LineSplitter::new(),
            lines: 0,
            whole: Some(Vec::new()),
            head: Vec::new(),
            head_room: usable / 4,
            marked: Vec::new(),
            marked_room: usable / 2,
            recent: VecDeque::new(),
            after: 0,
            tail: VecDeque::new(),
            tail_bytes: 0,
            tail_room: usable / 4,
            scratch: Vec::new(),
        }
    }

    /// Feeds the next chunk of the log.
    pub fn feed(&mut self, chunk: &[u8]) {
        if let Some(whole) = &mut self.whole {
            if whole.len() + chunk.len() <= self.max_bytes {
                whole.extend_from_slice(chunk);
            } else {
                self.whole = None;
            }
        }
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.feed(chunk, &mut |raw| self.line(raw));
        self.splitter = splitter;
    }

    fn line(&mut self, raw: &[u8]) {
        let n = self.lines;
        self.lines += 1;
        let text = String::from_utf8_lossy(raw).into_owned();
        self.scratch.clear();
        normalize_physical(raw, &mut self.scratch);
        let marked = self.scratch.iter().any(|l| scan(l).is_some_and(|h| h.strength >= 2));
        let cost = text.len() + 1;

        if cost <= self.head_room && self.head.len() == n {
            self.head_room -= cost;
            self.head.push((n, text));
            return;
        }
        if marked || self.after > 0 {
            if marked {
                // the lines just before it, once
                while let Some((k, l)) = self.recent.pop_front() {
                    if l.len() < self.marked_room && self.marked.last().is_none_or(|m| m.0 < k) {
                        self.marked_room -= l.len() + 1;
                        self.marked.push((k, l));
                    }
                }
                self.after = AFTER;
            } else {
                self.after -= 1;
            }
            if cost <= self.marked_room {
                self.marked_room -= cost;
                self.marked.push((n, text.clone()));
            }
        } else {
            self.recent.push_back((n, text.clone()));
            if self.recent.len() > BEFORE {
                self.recent.pop_front();
            }
        }
        self.tail_bytes += cost;
        self.tail.push_back((n, text));
        while self.tail_bytes > self.tail_room {
            match self.tail.pop_front() {
                Some((_, l)) => self.tail_bytes -= l.len() + 1,
                None => break,
            }
        }
    }

    /// Ends the log and returns what was kept.
    pub fn finish(mut self) -> String {
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.finish(&mut |raw| self.line(raw));
        if let Some(whole) = self.whole.take() {
            return String::from_utf8_lossy(&whole).into_owned();
        }
        let mut kept: Vec<(usize, String)> = Vec::with_capacity(self.head.len() + self.marked.len() + self.tail.len());
        kept.append(&mut self.head);
        kept.append(&mut self.marked);
        kept.extend(self.tail.drain(..));
        kept.sort_by_key(|(n, _)| *n);
        kept.dedup_by_key(|(n, _)| *n);
        let mut out = String::with_capacity(self.max_bytes);
        let mut next = 0;
        for (n, line) in kept {
            if n > next {
                out.push_str(&omitted(n - next));
            }
            out.push_str(&line);
            out.push('\n');
            next = n + 1;
        }
        if self.lines > next {
            out.push_str(&omitted(self.lines - next));
        }
        out
    }
}

fn omitted(n: usize) -> String {
    format!("[... {n} {} omitted ...]\n", if n == 1 { "line" } else { "lines" })
}

/// The most of a CI log a run stores (a submitted log, a job log read from GitHub); a longer one is kept as
/// its head, its error lines and its tail.
pub const MAX_STORED_LOG_BYTES: usize = 2 * 1024 * 1024;

/// `log` cut to about `max_bytes`: unchanged when it fits, else its head, error lines and tail.
pub fn bound_log(log: &[u8], max_bytes: usize) -> String {
    let mut b = LogBounder::new(max_bytes);
    for chunk in log.chunks(64 * 1024) {
        b.feed(chunk);
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big_log() -> Vec<u8> {
        let mut log = Vec::new();
        log.extend_from_slice(b"2024-01-01T00:00:00.0000000Z ##[group]Run cargo test\n");
        log.extend_from_slice(b"2024-01-01T00:00:00.0000000Z cargo test\n");
        log.extend_from_slice(b"2024-01-01T00:00:00.0000000Z shell: /usr/bin/bash -e {0}\n");
        log.extend_from_slice(b"2024-01-01T00:00:00.0000000Z ##[endgroup]\n");
        for i in 0..20_000 {
            log.extend_from_slice(format!("2024-01-01T00:00:00.0000000Z    Compiling crate{i} v0.1.0\n").as_bytes());
            if i == 10_000 {
                log.extend_from_slice(b"2024-01-01T00:00:00.0000000Z error[E0308]: mismatched types\n");
                log.extend_from_slice(b"2024-01-01T00:00:00.0000000Z  --> src/lib.rs:2:5\n");
            }
        }
        log.extend_from_slice(b"2024-01-01T00:00:00.0000000Z ##[error]Process completed with exit code 101.\n");
        log
    }

    #[test]
    fn small_logs_are_kept_whole() {
        assert_eq!(bound_log(b"a\r\nb\n\xffc", 1000), "a\r\nb\n\u{fffd}c");
    }

    #[test]
    fn big_logs_keep_head_errors_and_tail() {
        let log = big_log();
        let out = bound_log(&log, 16 * 1024);
        assert!(out.len() <= 16 * 1024 + 1024, "{} bytes", out.len());
        assert!(out.contains("##[group]Run cargo test"));
        assert!(out.contains("error[E0308]: mismatched types") && out.contains(" --> src/lib.rs:2:5"));
        assert!(out.contains("##[error]Process completed with exit code 101."));
        assert!(out.contains("lines omitted ...]"));
        // what is kept still reads as the same failure
        let ctx = crate::FailureContext::from_log(out.as_bytes());
        assert_eq!((ctx.exit_code, ctx.command.as_deref()), (Some(101), Some("cargo test")));
        assert!(ctx.lines.iter().any(|l| l.starts_with("error[E0308]")));
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let log = big_log();
        let whole = bound_log(&log, 8 * 1024);
        let mut b = LogBounder::new(8 * 1024);
        for chunk in log.chunks(7) {
            b.feed(chunk);
        }
        assert_eq!(b.finish(), whole);
    }
}
