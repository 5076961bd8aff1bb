//! A log cut to a size to store: about `max` bytes whatever the log, the same bytes however the log is
//! chunked as it streams in, the whole log when it fits, and still a log the extractor reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sre_cilog::{FailureContext, LogBounder, bound_log};

fuzz_target!(|data: &[u8]| {
    let [a, b, chunk, log @ ..] = data else { return };
    let max = 256 + usize::from(u16::from_le_bytes([*a, *b]) % 8192);
    let whole = bound_log(log, max);
    if log.len() <= max {
        assert_eq!(whole, String::from_utf8_lossy(log), "a log that fits is kept whole");
    }
    assert!(whole.len() <= max + 1024, "{} bytes kept for max {max}", whole.len());
    let mut bounder = LogBounder::new(max);
    for piece in log.chunks(1 + usize::from(*chunk)) {
        bounder.feed(piece);
    }
    assert_eq!(bounder.finish(), whole, "chunking changed what was kept");
    let _ = FailureContext::from_log(whole.as_bytes());
});
