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

static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"\bgh[pousr]_[A-Za-z0-9]{20,}", REDACTED),
        (r"\bgithub_pat_[A-Za-z0-9_]{20,}", REDACTED),
        (r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", REDACTED),
        (r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", REDACTED),
        // Keeps the scheme so the line still says what kind of credential was there.
        (r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}", "$1 [REDACTED]"),
    ]
    .into_iter()
    .map(|(pattern, with)| (Regex::new(pattern).expect("a valid redaction pattern"), with))
    .collect()
});

static REDACTED_LINES: AtomicU64 = AtomicU64::new(0);

/// `text` with every known credential shape replaced; borrowed (no copy) when there is none.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (rule, with) in RULES.iter() {
        if let Cow::Owned(replaced) = rule.replace_all(&out, *with) {
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

    #[test]
    fn several_in_one_line() {
        let line = format!("{GHP} and AKIAIOSFODNN7EXAMPLE and Bearer zzzzzzzzzz");
        assert_eq!(redact(&line), "[REDACTED] and [REDACTED] and Bearer [REDACTED]");
    }
}
