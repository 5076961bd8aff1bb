//! Any bytes are a job log: the failure context stays inside its caps (lines, bytes), its windows account for
//! every line in log order, its lines are clean text, the diagnosis is one bounded line with nothing left to
//! mask, and the JSON artifact round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sre_cilog::classify::{MAX_SUMMARY, redact};
use sre_cilog::{FailureContext, Options, classify};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, log)) = data.split_first() else { return };
    // Small caps half of the time, so the fuzzer reaches truncation without megabyte inputs.
    let opts = if knob & 1 == 0 {
        Options::default()
    } else {
        Options {
            budget_lines: usize::from(knob >> 4),
            max_lines: 1 + usize::from(knob >> 3),
            max_bytes: 64 + usize::from(knob) * 4,
            ..Options::default()
        }
    };
    let ctx = FailureContext::from_log_with(log, &opts);
    assert!(ctx.lines.len() <= opts.max_lines, "{} lines", ctx.lines.len());
    let bytes: usize = ctx.lines.iter().map(|l| l.len() + 1).sum();
    assert!(bytes <= opts.max_bytes, "{bytes} bytes for max {}", opts.max_bytes);
    assert!(ctx.lines.iter().all(|l| !l.contains(['\n', '\r', '\x1b'])), "{:?}", ctx.lines);
    assert_eq!(ctx.windows.iter().map(|w| w.len).sum::<usize>(), ctx.lines.len());
    let mut next = 1;
    for w in &ctx.windows {
        assert!(w.len > 0 && w.first_line >= next, "windows out of order: {:?}", ctx.windows);
        next = w.first_line + w.len;
    }
    assert!(next <= ctx.log_lines + 1, "window past the log's {} lines: {:?}", ctx.log_lines, ctx.windows);
    let _ = ctx.render();

    let d = classify(&ctx);
    assert!(!d.summary.contains('\n') && d.summary.chars().count() <= MAX_SUMMARY, "{:?}", d.summary);
    assert_eq!(redact(&d.summary), d.summary, "the summary still holds something to mask");

    let json = serde_json::to_string(&ctx).expect("serialise");
    let back: FailureContext = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, ctx);
});
