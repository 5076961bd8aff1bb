//! Log redaction, the last line of defence: whatever a log line carries, known credential shapes are
//! replaced before it is written. Code must still never log secrets (payloads, tokens, diffs); this catches
//! the ones that slip through, e.g. inside an error message that quotes its input.
//!
//! Shapes: GitHub tokens (`ghp_`, `gho_`, `ghs_`, `ghu_`, `ghr_`, `github_pat_`), AWS access key IDs
//! (`AKIA`/`ASIA` + 16), `Bearer <token>` credentials, and JWTs (`eyJ<header>.eyJ<payload>.<signature>`).

use std::borrow::Cow;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use regex::Regex;

/// What replaces a credential.
pub const REDACTED: &str = "[REDACTED]";

/// One credential shape: the pattern, what replaces a match, and a cheap test that is true for every text the
/// pattern could match (it looks for a literal every match contains), so the regex only runs when it might
/// find something. Most lines hold none of the literals: five vectorised scans instead of five regex searches.
struct Rule {
    pattern: Regex,
    with: &'static str,
    could_match: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

/// `could_match` for a pattern whose every match contains `literal`.
fn containing(literal: &'static str) -> Box<dyn Fn(&str) -> bool + Send + Sync> {
    let finder = memchr::memmem::Finder::new(literal);
    Box::new(move |text| finder.find(text.as_bytes()).is_some())
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let rules = [
        (r"\bgh[pousr]_[A-Za-z0-9]{20,}", REDACTED, containing("gh")),
        (r"\bgithub_pat_[A-Za-z0-9_]{20,}", REDACTED, containing("github_pat_")),
        // `AKIA` and `ASIA` both end in `IA`.
        (r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", REDACTED, containing("IA")),
        (r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", REDACTED, containing("eyJ")),
        // Keeps the scheme so the line still says what kind of credential was there. Under `(?i)` only the
        // ASCII letters match `bearer`'s letters (no other character case-folds to b, e, a or r: tested).
        (r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}", "$1 [REDACTED]", Box::new(contains_bearer)),
    ];
    rules
        .into_iter()
        .map(|(pattern, with, could_match)| Rule {
            pattern: Regex::new(pattern).expect("a valid redaction pattern"),
            with,
            could_match,
        })
        .collect()
});

/// Whether `text` contains `bearer` in any ASCII case.
fn contains_bearer(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr2_iter(b'b', b'B', bytes)
        .any(|at| bytes.get(at..at + 6).is_some_and(|word| word.eq_ignore_ascii_case(b"bearer")))
}

static REDACTED_LINES: AtomicU64 = AtomicU64::new(0);

/// `text` with every known credential shape replaced; borrowed (no copy) when there is none.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for rule in RULES.iter() {
        if (rule.could_match)(&out)
            && let Cow::Owned(replaced) = rule.pattern.replace_all(&out, rule.with)
        {
            out = Cow::Owned(replaced);
        }
    }
    out
}

/// [`redact`] for a log line, counted in [`redacted_lines`].
pub(crate) fn redact_log_line(line: &str) -> Cow<'_, str> {
    let out = redact(line);
    if matches!(out, Cow::Owned(_)) {
        REDACTED_LINES.fetch_add(1, Ordering::Relaxed);
    }
    out
}

/// How many log lines of this process had to be redacted: anything above 0 is a leak caught late, worth
/// finding at its source.
pub fn redacted_lines() -> u64 {
    REDACTED_LINES.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GHP: &str = "ghp_0123456789abcdefghijABCDEFGHIJ012345";

    #[test]
    fn known_shapes_are_replaced() {
        for token in [
            GHP,
            "gho_0123456789abcdefghijABCDEFGHIJ012345",
            "ghs_0123456789abcdefghijABCDEFGHIJ012345",
            "ghu_0123456789abcdefghijABCDEFGHIJ012345",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAIOSFODNN7EXAMPLE",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ] {
            let line = format!(r#"{{"message":"request failed","error":"bad credential {token} given"}}"#);
            let out = redact(&line);
            assert!(!out.contains(token), "{token} survived: {out}");
            assert!(out.contains("bad credential [REDACTED] given"), "{out}");
            assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok(), "still one JSON object: {out}");
        }
    }

    #[test]
    fn bearer_keeps_its_scheme() {
        assert_eq!(redact("Authorization: Bearer abc.def-ghi_jkl"), "Authorization: Bearer [REDACTED]");
        assert_eq!(redact("authorization=bearer s3cr3t-t0ken"), "authorization=bearer [REDACTED]");
        assert_eq!(redact(&format!("token {GHP}")), "token [REDACTED]");
    }

    #[test]
    fn ordinary_text_is_untouched_and_not_copied() {
        for text in [
            "run acme/app@0123456789abcdef0123456789abcdef01234567/lint stored",
            "ghp_short is not a token; AKIA alone is not a key; the bearer of bad news",
            r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","run_id":"2f6f0c1e-9b7a-4c53-8d1e-6a1f5b2c3d4e"}"#,
            "eyJ is the start of base64 JSON but not a JWT",
        ] {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text}");
        }
    }

    /// `redact` without the `could_match` tests: every rule's regex over the whole text.
    fn redact_every_rule(text: &str) -> String {
        RULES.iter().fold(text.to_owned(), |out, rule| rule.pattern.replace_all(&out, rule.with).into_owned())
    }

    #[test]
    fn the_cheap_tests_never_skip_a_match() {
        // Texts made of the patterns' own pieces, in every case, so that many of them match.
        let pieces = [
            "gh",
            "ghp_",
            "ghr_",
            "gho_",
            "gh_",
            "p",
            "_",
            "github",
            "github_pat_",
            "_pat_",
            "AKIA",
            "ASIA",
            "IA",
            "IOSFODNN7EXAMPLE",
            "eyJ",
            "eyj",
            "eyJhbGciOiJIUzI1NiJ9.",
            "eyJzdWIiOiIxMjM0NTY3ODkwIn0.",
            ".",
            "Bearer ",
            "bEaReR",
            "BEARER",
            "bearer",
            "bear",
            "er",
            " ",
            "\t",
            "\u{a0}",
            "\u{2028}",
            "0123456789",
            "abcdefghijABCDEFGHIJ",
            "XYZ",
            "-",
            "=",
            "\"",
            "é",
            "\u{212a}",
            "\u{17f}",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 32) as usize % below
        };
        let mut matched = [0; 5];
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..next(24) {
                text.push_str(pieces[next(pieces.len())]);
            }
            for (n, rule) in RULES.iter().enumerate() {
                if rule.pattern.is_match(&text) {
                    matched[n] += 1;
                    assert!((rule.could_match)(&text), "rule {n} skipped {text:?}");
                }
            }
            assert_eq!(redact(&text), redact_every_rule(&text), "{text:?}");
        }
        eprintln!("matches per rule: {matched:?}");
        assert!(matched.iter().all(|&m| m >= 20), "every rule matched some texts: {matched:?}");
        for text in ["xx bearer 0123456789", "BEARER abcdefghij", "a bEaReR\u{a0}zzzzzzzzzz", "Bearer  ~~~~~~~~"] {
            assert!((RULES[4].could_match)(text), "{text}");
            assert_ne!(redact(text), text);
        }
    }

    #[test]
    fn only_ascii_letters_fold_to_bearers_letters() {
        let non_ascii: String = ('\u{80}'..=char::MAX).collect();
        let letters = Regex::new("(?i)[bear]").unwrap();
        assert_eq!(letters.find(&non_ascii).map(|m| m.as_str().to_owned()), None);
    }

    #[test]
    fn case_insensitive_search_finds_every_offset() {
        for len in 0..40 {
            for at in 0..=len.max(6) - 6 {
                let mut text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                if len >= 6 {
                    text.splice(at..at + 6, *b"BeArEr");
                }
                let text = String::from_utf8(text).unwrap();
                assert_eq!(contains_bearer(&text), len >= 6, "{text}");
            }
        }
        assert!(!contains_bearer("bearebearBEAREbea"));
        assert!(contains_bearer("xxxxxxxbbbbbbbbbbbearer"));
    }

    #[test]
    fn several_in_one_line() {
        let line = format!("{GHP} and AKIAIOSFODNN7EXAMPLE and Bearer zzzzzzzzzz");
        assert_eq!(redact(&line), "[REDACTED] and [REDACTED] and Bearer [REDACTED]");
    }
}
