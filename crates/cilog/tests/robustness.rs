//! Any bytes are a log: no panic, bounded output, and the streaming pieces agree with the whole.

use proptest::prelude::*;
use sre_cilog::{FailureContext, LogBounder, Options, bound_log, classify};

/// Bytes biased towards what logs are made of: markers, escapes, carriage returns, error words, junk.
fn logish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"2024-01-01T00:00:00.0000000Z ".to_vec()),
        Just(b"##[group]Run cargo test\n".to_vec()),
        Just(b"##[endgroup]\n".to_vec()),
        Just(b"##[error]Process completed with exit code 1.\n".to_vec()),
        Just(b"travis_fold:start:x\r\x1b[0Ktravis_time:start:1\r\x1b[0K$ make\n".to_vec()),
        Just(b"The command \"make\" exited with 2.\n".to_vec()),
        Just(b"error[E0432]: unresolved import `x`\n --> src/a.rs:1:5\n".to_vec()),
        Just(b"Traceback (most recent call last):\n  File \"a.py\", line 1\n".to_vec()),
        Just(b"\x1b[31m\x1b]0;t\x07\x1b".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"    at f (x.js:1:2)\n".to_vec()),
        Just(b"FAILED t.py::x - E\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_log_gives_a_bounded_context(log in logish()) {
        let opts = Options { max_lines: 50, max_bytes: 2048, ..Options::default() };
        let ctx = FailureContext::from_log_with(&log, &opts);
        prop_assert!(ctx.lines.len() <= 50);
        prop_assert!(ctx.lines.iter().map(|l| l.len() + 1).sum::<usize>() <= 2048);
        prop_assert_eq!(ctx.windows.iter().map(|w| w.len).sum::<usize>(), ctx.lines.len());
        prop_assert!(ctx.lines.iter().all(|l| !l.contains('\n') && !l.contains('\r') && !l.contains('\x1b')));
        let d = classify(&ctx);
        prop_assert!(!d.summary.contains('\n') && d.summary.chars().count() <= sre_cilog::classify::MAX_SUMMARY);
        // the JSON artifact round-trips
        let json = serde_json::to_string(&ctx).expect("serialise");
        let back: FailureContext = serde_json::from_str(&json).expect("deserialise");
        prop_assert_eq!(back, ctx);
    }

    #[test]
    fn bounding_is_bounded_and_chunk_independent(log in logish(), size in 1usize..97, max in 256usize..4096) {
        let whole = bound_log(&log, max);
        prop_assert!(whole.len() <= max + 1024, "{} bytes for max {}", whole.len(), max);
        let mut b = LogBounder::new(max);
        for chunk in log.chunks(size) {
            b.feed(chunk);
        }
        prop_assert_eq!(b.finish(), whole);
    }
}

/// A 200 MB log of one endless progress line and a million short lines: bounded work and output.
#[test]
fn huge_logs() {
    let mut log = Vec::with_capacity(64 << 20);
    for i in 0..1_000_000u32 {
        log.extend_from_slice(format!("2024-01-01T00:00:00.0000000Z line {i}\n").as_bytes());
    }
    log.extend_from_slice(b"error: something broke\n");
    for _ in 0..200_000 {
        log.extend_from_slice(b"\rDownloading [=====>      ] 45%");
    }
    log.extend_from_slice(b"\n##[error]Process completed with exit code 1.\n");
    let ctx = FailureContext::from_log(&log);
    assert!(ctx.lines.iter().any(|l| l == "error: something broke"), "{}", ctx.render());
    assert!(ctx.lines.len() <= 200 && ctx.lines.iter().map(String::len).sum::<usize>() <= 32 * 1024);
    assert_eq!(ctx.exit_code, Some(1));
    let bounded = bound_log(&log, 64 * 1024);
    assert!(bounded.len() <= 65 * 1024);
    assert!(bounded.contains("error: something broke") && bounded.contains("exit code 1."));
}

/// Found by the cilog_context fuzz target: a line cut to the room left took all of it, and its newline made
/// the context one byte longer than `max_bytes`.
#[test]
fn a_cut_line_leaves_room_for_its_newline() {
    let log = format!("error: {}\n##[error]Process completed with exit code 1.\n", "x".repeat(300));
    for max_bytes in 16..200 {
        let opts = Options { max_bytes, ..Options::default() };
        let ctx = FailureContext::from_log_with(log.as_bytes(), &opts);
        let bytes: usize = ctx.lines.iter().map(|l| l.len() + 1).sum();
        assert!(bytes <= max_bytes, "{bytes} bytes for max {max_bytes}: {:?}", ctx.lines);
    }
}
