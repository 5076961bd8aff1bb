//! Writing to stdout and stderr without `print!`'s panic when the reader has gone (`sre-agent runs | head`):
//! what cannot be written is dropped.

use std::io::Write;

/// Writes `text` to stdout and flushes it (progress lines show as they happen).
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes `text` to stderr.
pub fn stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `println!` to stdout, never panicking.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::out::stdout(&format!("{}\n", format_args!($($arg)*))) };
}

/// `print!` to stdout, never panicking.
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::stdout(&format!($($arg)*)) };
}

/// `eprintln!`, never panicking.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::out::stderr(&format!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {errln, out, outln};
