//! The diff reader (policy's patch checks, the planner's diff stat) over any text: counts never exceed the
//! `+`/`-` lines there are, the stat's files are distinct and are the reader's, and a well-formed diff
//! followed by a second file counts as the sum of the two (nothing of one file's section is attributed to the
//! next).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sre_gitwork::{diff_stat, parse_diff};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Two sections: what comes before the split point, and a second file from there on.
    let split = text.char_indices().nth(usize::from(data.first().copied().unwrap_or(0))).map_or(text.len(), |(i, _)| i);
    let (first, rest) = text.split_at(split);
    let stat = diff_stat(&text);
    let plus = text.lines().filter(|l| l.starts_with('+')).count();
    let minus = text.lines().filter(|l| l.starts_with('-')).count();
    assert!(stat.added as usize <= plus && stat.removed as usize <= minus, "{stat:?}");
    let mut seen = std::collections::HashSet::new();
    assert!(stat.files.iter().all(|f| seen.insert(f)), "a file listed twice: {stat:?}");

    if let Ok(files) = parse_diff(&text) {
        assert_eq!(stat.added, files.iter().map(|f| f.added).sum::<u32>());
        assert_eq!(stat.removed, files.iter().map(|f| f.removed).sum::<u32>());
        assert!(stat.files.iter().all(|s| files.iter().any(|f| &f.path == s)));
        for f in &files {
            assert_eq!(f.added as usize, f.added_lines.len());
            assert!(f.paths.first().is_none_or(|p| p == &f.path), "{f:?}");
        }
    }
    // (A first part ending in `\r` would become a CRLF line end with the `\n` added below.)
    if parse_diff(first).is_err() || first.ends_with('\r') {
        return;
    }
    let second = format!("diff --git a/second b/second\n{rest}");
    let whole = format!("{first}\n{second}");
    let (a, b, ab) = (diff_stat(first), diff_stat(&second), diff_stat(&whole));
    assert_eq!((ab.added, ab.removed), (a.added + b.added, a.removed + b.removed), "{first:?} + {second:?}");
    let mut files = a.files.clone();
    for f in b.files {
        if !files.contains(&f) {
            files.push(f);
        }
    }
    assert_eq!(ab.files, files, "{first:?} + {second:?}");
});
