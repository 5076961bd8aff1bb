//! Bytes of a CI log to the lines a person reads: GitHub Actions timestamps, ANSI escapes and Travis
//! fold/time markers removed; lines split at `\r\n`, `\n` and lone `\r`.
//!
//! Everything here is streaming: [`LineSplitter`] takes chunks of any size and never holds more than
//! [`MAX_PHYSICAL_LINE`] bytes of one line, so a log of any size (or one endless line) is read in bounded memory.

/// The most bytes of one physical line (between two `\n`) that are kept. Longer lines keep the text after
/// their last carriage return (a progress bar redraws itself with `\r`; what a terminal shows is the end) and
/// are then cut at this size.
pub const MAX_PHYSICAL_LINE: usize = 16 * 1024;

/// A carriage-return line with more non-blank segments than this is a progress bar or spinner: only its last
/// segment is what a terminal showed. With this many or fewer, every segment is kept as its own line, since
/// tools such as testify print `text\r\tError Trace: ...` and people (and the LogChunks labels) read both.
const MAX_KEPT_SEGMENTS: usize = 2;

/// Splits a byte stream into physical lines (at `\n`, without the `\n` and a `\r` before it).
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// True while the rest of an over-long line is being skipped.
    overflow: bool,
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; `emit` gets every physical line completed by it.
    pub fn feed(&mut self, mut chunk: &[u8], emit: &mut impl FnMut(&[u8])) {
        while let Some(pos) = memchr(b'\n', chunk) {
            let (line, rest) = chunk.split_at(pos);
            chunk = &rest[1..];
            if self.buf.is_empty() && !self.overflow {
                emit(trim_cr(clip(line)));
            } else {
                self.push(line);
                emit(trim_cr(&self.buf));
                self.buf.clear();
            }
            self.overflow = false;
        }
        self.push(chunk);
    }

    /// Ends the stream: the last line, when it had no `\n`.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(trim_cr(&self.buf));
        }
        self.buf.clear();
        self.overflow = false;
    }

    fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > MAX_PHYSICAL_LINE {
            // Keep what follows the last carriage return that still has text after it; else the start.
            let kept = clip(&self.buf).to_vec();
            self.buf = kept;
            self.overflow = true;
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// At most [`MAX_PHYSICAL_LINE`] bytes of a line, preferring the redrawn end of a progress bar.
fn clip(line: &[u8]) -> &[u8] {
    if line.len() <= MAX_PHYSICAL_LINE {
        return line;
    }
    let mut end = line.len();
    while let Some(cr) = line[..end].iter().rposition(|&b| b == b'\r') {
        let tail = &line[cr + 1..end];
        if tail.iter().any(|b| !b.is_ascii_whitespace() && *b != 0x1b) {
            let tail = &line[cr + 1..];
            return &tail[..tail.len().min(MAX_PHYSICAL_LINE)];
        }
        end = cr;
    }
    &line[..MAX_PHYSICAL_LINE]
}

/// What a physical line said besides its text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineFlags {
    /// The line carried a Travis `travis_time:start` marker: the command after it is a build step.
    pub travis_step: bool,
    /// It carried any Travis fold/time marker.
    pub travis_marker: bool,
    /// It started with a GitHub Actions timestamp.
    pub gha_timestamp: bool,
}

/// Normalises one physical line into logical lines appended to `out`: usually one; two when a carriage
/// return separates two texts; none when the line held only Travis markers. A blank line stays one empty line.
pub fn normalize_physical(raw: &[u8], out: &mut Vec<String>) -> LineFlags {
    let mut flags = LineFlags::default();
    let text = String::from_utf8_lossy(raw);
    let (text, ts) = strip_timestamp(&text);
    flags.gha_timestamp = ts;
    let text = strip_travis_markers(text, &mut flags);
    let text = strip_ansi(&text);
    if !text.contains('\r') {
        if !(flags.travis_marker && text.trim().is_empty()) {
            out.push(finish_line(&text));
        }
        return flags;
    }
    let segments: Vec<&str> = text.split('\r').filter(|s| !s.trim().is_empty()).collect();
    match segments.len() {
        0 if flags.travis_marker => {}
        0 => out.push(String::new()),
        n if n > MAX_KEPT_SEGMENTS => out.push(finish_line(segments[n - 1])),
        _ => out.extend(segments.iter().map(|s| finish_line(s))),
    }
    flags
}

/// Trailing whitespace removed; a timestamp that only a segment carried removed too.
fn finish_line(s: &str) -> String {
    strip_timestamp(s).0.trim_end().to_string()
}

/// Removes a leading GitHub Actions timestamp (`2024-01-01T00:00:00.0000000Z `).
pub fn strip_timestamp(line: &str) -> (&str, bool) {
    let b = line.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return (line, false);
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if b.get(i) != Some(&b'Z') {
        return (line, false);
    }
    i += 1;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    (&line[i..], true)
}

/// Removes `travis_fold:start:NAME`, `travis_fold:end:NAME`, `travis_time:start:ID` and
/// `travis_time:end:ID:start=..,finish=..,duration=..` markers. A marker ends at the `\r` or ESC that
/// follows it (Travis writes `marker\r\x1b[0K`), which is removed with it.
fn strip_travis_markers<'a>(line: &'a str, flags: &mut LineFlags) -> std::borrow::Cow<'a, str> {
    if !line.contains("travis_") {
        return line.into();
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(pos) = rest.find("travis_") {
        let after = &rest[pos..];
        let kind = ["travis_fold:start:", "travis_fold:end:", "travis_time:start:", "travis_time:end:"]
            .into_iter()
            .find(|k| after.starts_with(k));
        let Some(kind) = kind else {
            out.push_str(&rest[..pos + "travis_".len()]);
            rest = &rest[pos + "travis_".len()..];
            continue;
        };
        flags.travis_marker = true;
        if kind == "travis_time:start:" {
            flags.travis_step = true;
        }
        out.push_str(&rest[..pos]);
        let body = &after[kind.len()..];
        let end = body.find(['\r', '\x1b']).unwrap_or(body.len());
        let mut tail = &body[end..];
        // the marker's own terminator: `\r` and/or `ESC[0K`
        tail = tail.strip_prefix('\r').unwrap_or(tail);
        tail = tail.strip_prefix("\x1b[0K").unwrap_or(tail);
        rest = tail;
    }
    out.push_str(rest);
    out.into()
}

/// Removes ANSI escape sequences the way the LogChunks scorer does: CSI (`ESC [ params final`), OSC
/// (`ESC ] ... BEL` or `ESC ] ... ESC \`) and other two-byte escapes (`ESC` + `@`..`_`). Also drops the
/// `(B` that follows `ESC` in some terminfo sequences (`ESC ( B`, charset selection) and stray NULs.
pub fn strip_ansi(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\x1b') && !s.contains('\0') {
        return s.into();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0x1b => {
                i += 1;
                match b.get(i) {
                    Some(b'[') => {
                        i += 1;
                        while i < b.len() && (0x30..=0x3f).contains(&b[i]) {
                            i += 1;
                        }
                        while i < b.len() && (0x20..=0x2f).contains(&b[i]) {
                            i += 1;
                        }
                        if i < b.len() && (0x40..=0x7e).contains(&b[i]) {
                            i += 1;
                        }
                    }
                    Some(b']') => {
                        i += 1;
                        while i < b.len() {
                            if b[i] == 0x07 {
                                i += 1;
                                break;
                            }
                            if b[i] == 0x1b {
                                if b.get(i + 1) == Some(&b'\\') {
                                    i += 2;
                                }
                                break;
                            }
                            i += 1;
                        }
                    }
                    Some(b'(') | Some(b')') => {
                        // charset designation: ESC ( B
                        i += 1;
                        if i < b.len() && b[i].is_ascii() {
                            i += 1;
                        }
                    }
                    Some(c) if (b'@'..=b'_').contains(c) => i += 1,
                    _ => {}
                }
            }
            0 => i += 1,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were removed, so what is left is still valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()).into()
}

/// Normalises a whole log held in memory (tests and small logs; the extractor streams instead).
pub fn normalize(bytes: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut splitter = LineSplitter::new();
    let mut emit = |raw: &[u8]| {
        normalize_physical(raw, &mut lines);
    };
    splitter.feed(bytes, &mut emit);
    splitter.finish(&mut emit);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_timestamps_ansi_and_splits_lines() {
        let log = b"2024-01-01T00:00:00.0000000Z \x1b[31merror\x1b[0m: boom\r\n2024-01-01T00:00:01Z plain\nlast";
        assert_eq!(normalize(log), ["error: boom", "plain", "last"]);
    }

    #[test]
    fn timestamp_needs_the_whole_shape() {
        assert_eq!(strip_timestamp("2024-01-01 not a stamp").0, "2024-01-01 not a stamp");
        assert_eq!(strip_timestamp("2024-01-01T00:00:00.123Z x"), ("x", true));
        assert!(!strip_timestamp("2024-01-01T00:00:00.123 x").1);
    }

    #[test]
    fn progress_bars_keep_their_last_segment() {
        let log = b"Downloading  10%\rDownloading  50%\rDownloading 100%\ndone\n";
        assert_eq!(normalize(log), ["Downloading 100%", "done"]);
    }

    #[test]
    fn two_segment_lines_keep_both() {
        // testify: "\t<autogenerated>:31: \r                        \r\tError Trace:\tproxied_test.go:126"
        let log = b"\t<autogenerated>:31: \r                        \r\tError Trace:\tx_test.go:126\r\n";
        assert_eq!(normalize(log), ["\t<autogenerated>:31:", "\tError Trace:\tx_test.go:126"]);
    }

    #[test]
    fn travis_markers_go_and_mark_steps() {
        let line = b"travis_fold:start:install\r\x1b[0Ktravis_time:start:3b9b974b\r\x1b[0K$ ci/install.sh\r";
        let mut out = Vec::new();
        let flags = normalize_physical(line, &mut out);
        assert_eq!(out, ["$ ci/install.sh"]);
        assert!(flags.travis_step && flags.travis_marker);
        let line = b"travis_fold:end:worker_info\x1b[0Ktravis_fold:start:system_info\x1b[0KBuild system information";
        out.clear();
        normalize_physical(line, &mut out);
        assert_eq!(out, ["Build system information"]);
        let line = b"travis_time:end:0336:start=1,finish=2,duration=1\r\x1b[0K\x1b[31;1mThe command \"x\" exited with 1.\x1b[0m";
        out.clear();
        normalize_physical(line, &mut out);
        assert_eq!(out, ["The command \"x\" exited with 1."]);
        out.clear();
        normalize_physical(b"travis_fold:end:install\r\x1b[0K", &mut out);
        assert!(out.is_empty(), "a marker-only line is no line: {out:?}");
    }

    #[test]
    fn ansi_kinds() {
        assert_eq!(strip_ansi("\x1b]0;title\x07a\x1b]8;;http://x\x1b\\b\x1bMc\x1b(Bd\x1b[1;32;40me"), "abcde");
        assert_eq!(strip_ansi("unterminated \x1b["), "unterminated ");
    }

    #[test]
    fn invalid_utf8_and_nuls_survive() {
        assert_eq!(normalize(b"a\xff\xfeb\0c\n"), ["a\u{fffd}\u{fffd}bc"]);
    }

    #[test]
    fn endless_lines_are_bounded() {
        let mut splitter = LineSplitter::new();
        let mut lens = Vec::new();
        let chunk = vec![b'x'; 10_000];
        for _ in 0..100 {
            splitter.feed(&chunk, &mut |l: &[u8]| lens.push(l.len()));
        }
        splitter.feed(b"\nnext\n", &mut |l: &[u8]| lens.push(l.len()));
        assert_eq!(lens, [MAX_PHYSICAL_LINE, 4]);
        assert!(splitter.buf.capacity() < 4 * MAX_PHYSICAL_LINE + 20_000);
    }

    #[test]
    fn endless_progress_bar_keeps_its_end() {
        let mut splitter = LineSplitter::new();
        let mut lines = Vec::new();
        for i in 0..50_000 {
            splitter.feed(format!("\rBuilding [{i}/50000]").as_bytes(), &mut |l: &[u8]| {
                lines.push(String::from_utf8_lossy(l).into_owned())
            });
        }
        splitter.finish(&mut |l: &[u8]| lines.push(String::from_utf8_lossy(l).into_owned()));
        assert_eq!(lines.len(), 1);
        let mut out = Vec::new();
        normalize_physical(lines[0].as_bytes(), &mut out);
        assert_eq!(out.last().map(String::as_str), Some("Building [49999/50000]"));
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let log: &[u8] = b"one\r\ntwo\rthree\r\n\x1b[31mfour\x1b[0m\nfive";
        let whole = normalize(log);
        for size in 1..log.len() {
            let mut splitter = LineSplitter::new();
            let mut lines = Vec::new();
            let mut emit = |raw: &[u8]| {
                normalize_physical(raw, &mut lines);
            };
            for chunk in log.chunks(size) {
                splitter.feed(chunk, &mut emit);
            }
            splitter.finish(&mut emit);
            assert_eq!(lines, whole, "chunk size {size}");
        }
    }
}
