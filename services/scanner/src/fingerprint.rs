//! Stable finding fingerprints, and the comparison of the patched tree's findings with head_sha's.
//!
//! A fingerprint is HMAC-SHA256, under a key drawn at random when the process starts, over the scanner, the
//! rule ID, the path, the anchor (the package name of a vulnerability or license finding, so a version bump
//! that keeps the CVE or the license is not new) and the content of the finding's line with surrounding
//! whitespace trimmed, **never the line number** (nor the title, which carries a package's version): a patch that
//! inserts lines above an old secret, or strips trailing whitespace from its line, leaves its fingerprint as
//! it was. (gitleaks' own `Fingerprint` in `dir` mode is `file:rule:line`, so it cannot serve.) Editing the
//! line itself, renaming the file or adding a second identical occurrence makes a new finding.
//!
//! The line's content is read from the scanned worktree, hashed and dropped: fingerprints never leave the
//! process (not in a response, a log line or the cache key), and the key makes them useless to anyone who
//! could read them (no offline guessing of a secret from its line's hash).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sre_proto::Finding;

use crate::parse::Found;

pub type Fingerprint = [u8; 32];

/// How many times each fingerprint occurs in one scan.
pub type Counts = HashMap<Fingerprint, u32>;

/// Files larger than this are not read for their line (the fingerprint then has no line content).
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct Fingerprinter {
    key: [u8; 64],
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fingerprinter(..)")
    }
}

impl Fingerprinter {
    pub fn with_key(key: [u8; 64]) -> Self {
        Self { key }
    }

    /// A key from the kernel's random source, or, when /dev/urandom cannot be read, from the standard
    /// library's per-process random hash keys (also drawn from the OS).
    pub fn random() -> Self {
        let mut key = [0u8; 64];
        let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key));
        if let Err(err) = read {
            tracing::warn!(error = %err, "/dev/urandom unreadable; fingerprint key from the hasher's random keys");
            use std::hash::{BuildHasher, Hasher};
            let state = std::collections::hash_map::RandomState::new();
            for (i, chunk) in key.chunks_mut(8).enumerate() {
                let mut h = state.build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        Self { key }
    }

    /// The fingerprint of `found`, given the content of its line (None: no line, or it could not be read).
    pub fn of(&self, found: &Found, line_content: Option<&[u8]>) -> Fingerprint {
        let f = &found.finding;
        let mut mac = <Hmac<Sha256> as Mac>::new((&self.key).into());
        for part in [f.scanner.as_bytes(), f.rule_id.as_bytes(), f.path.as_bytes()] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.update(&(found.anchor.len() as u64).to_le_bytes());
        mac.update(found.anchor.as_bytes());
        match line_content {
            Some(content) => {
                mac.update(&[1]);
                mac.update(&(content.len() as u64).to_le_bytes());
                mac.update(content);
            }
            None => mac.update(&[0]),
        }
        mac.finalize().into_bytes().into()
    }

    /// Fingerprints of every finding of one scan of `root`, each file read at most once (blocking I/O: call
    /// it off the async runtime).
    pub fn all(&self, root: &Path, found: Vec<Found>) -> Vec<(Fingerprint, Finding)> {
        let mut files: HashMap<String, Option<Vec<u8>>> = HashMap::new();
        found
            .into_iter()
            .map(|f| {
                let content = if f.finding.line > 0 {
                    let text =
                        files.entry(f.finding.path.clone()).or_insert_with(|| read_bounded(root, &f.finding.path));
                    text.as_deref().and_then(|t| nth_line(t, f.finding.line))
                } else {
                    None
                };
                (self.of(&f, content), f.finding)
            })
            .collect()
    }
}

/// The file at `rel` under `root`, when `rel` is a plain relative path (no `..`, not absolute), names a
/// regular file (not a symlink) and is at most [`MAX_FILE_BYTES`].
fn read_bounded(root: &Path, rel: &str) -> Option<Vec<u8>> {
    let rel = Path::new(rel);
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return None;
    }
    let path = root.join(rel);
    let meta = std::fs::symlink_metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let mut out = Vec::new();
    std::fs::File::open(&path).ok()?.take(MAX_FILE_BYTES).read_to_end(&mut out).ok()?;
    Some(out)
}

/// Line `n` (1-based) of `text`, surrounding whitespace (and a CR) trimmed.
fn nth_line(text: &[u8], n: u32) -> Option<&[u8]> {
    let index = usize::try_from(n.checked_sub(1)?).ok()?;
    text.split(|b| *b == b'\n').nth(index).map(<[u8]>::trim_ascii)
}

/// How many times each fingerprint occurs.
pub fn counts<'a>(fingerprints: impl IntoIterator<Item = &'a Fingerprint>) -> Counts {
    let mut out = Counts::new();
    for fp in fingerprints {
        *out.entry(*fp).or_default() += 1;
    }
    out
}

/// Sets `introduced` on each finding of the patched tree: of the n findings sharing a fingerprint that
/// head_sha has m times, the first min(n, m) were already there and the rest are introduced. Without a
/// baseline (head_sha could not be scanned) every finding counts as introduced: nothing proves otherwise.
/// Returns how many of head_sha's findings the patched tree no longer has.
pub fn mark_introduced(patched: &mut [(Fingerprint, Finding)], baseline: Option<&Counts>) -> u32 {
    let Some(baseline) = baseline else {
        for (_, f) in patched.iter_mut() {
            f.introduced = true;
        }
        return 0;
    };
    let mut left = baseline.clone();
    for (fp, f) in patched.iter_mut() {
        match left.get_mut(fp) {
            Some(n) if *n > 0 => {
                *n -= 1;
                f.introduced = false;
            }
            _ => f.introduced = true,
        }
    }
    u32::try_from(left.values().map(|n| u64::from(*n)).sum::<u64>()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(rule: &str, path: &str, line: u32) -> Found {
        Found {
            finding: Finding {
                scanner: "gitleaks".into(),
                rule_id: rule.into(),
                path: path.into(),
                line,
                title: "t".into(),
                ..Default::default()
            },
            anchor: String::new(),
        }
    }

    #[test]
    fn a_shifted_line_keeps_its_fingerprint_and_an_edited_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let fp = Fingerprinter::with_key([7; 64]);
        std::fs::write(dir.path().join("a.py"), "import os\nKEY = 'x'   \n").unwrap();
        let before = fp.all(dir.path(), vec![found("r", "a.py", 2)]);
        std::fs::write(dir.path().join("a.py"), "# new\n\nimport os\n  KEY = 'x'\n").unwrap();
        let shifted = fp.all(dir.path(), vec![found("r", "a.py", 4)]);
        assert_eq!(before[0].0, shifted[0].0, "line moved and re-indented: same finding");
        std::fs::write(dir.path().join("a.py"), "import os\nKEY = 'y'\n").unwrap();
        let edited = fp.all(dir.path(), vec![found("r", "a.py", 2)]);
        assert_ne!(before[0].0, edited[0].0);
        // Another rule, path or key: another fingerprint.
        assert_ne!(fp.of(&found("r", "a.py", 2), Some(b"x")), fp.of(&found("s", "a.py", 2), Some(b"x")));
        assert_ne!(fp.of(&found("r", "a.py", 2), Some(b"x")), fp.of(&found("r", "b.py", 2), Some(b"x")));
        assert_ne!(fp.of(&found("r", "a.py", 2), Some(b"x")), fp.of(&found("r", "a.py", 2), None));
        let other = Fingerprinter::with_key([8; 64]);
        assert_ne!(fp.of(&found("r", "a.py", 2), Some(b"x")), other.of(&found("r", "a.py", 2), Some(b"x")));
        assert_ne!(Fingerprinter::random().key, Fingerprinter::random().key);
    }

    #[test]
    fn reads_only_plain_relative_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\r\n").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).unwrap();
        assert_eq!(nth_line(&read_bounded(dir.path(), "a.txt").unwrap(), 2), Some(&b"two"[..]));
        assert_eq!(nth_line(b"one", 0), None);
        assert_eq!(nth_line(b"one", 5), None);
        assert!(read_bounded(dir.path(), "link").is_none());
        assert!(read_bounded(dir.path(), "../a.txt").is_none());
        assert!(read_bounded(dir.path(), "/etc/hostname").is_none());
        assert!(read_bounded(dir.path(), "").is_none());
        assert!(read_bounded(dir.path(), "missing").is_none());
    }

    #[test]
    fn marks_what_the_patch_introduced() {
        let f = |n: u8| ([n; 32], Finding::default());
        let baseline = counts(&[[1; 32], [2; 32], [2; 32], [9; 32]]);
        // 1 stays, 2 once of twice (one removed), 3 is new, a second 1 is new, 9 was removed.
        let mut patched = vec![f(1), f(2), f(3), f(1)];
        let resolved = mark_introduced(&mut patched, Some(&baseline));
        let flags: Vec<bool> = patched.iter().map(|(_, f)| f.introduced).collect();
        assert_eq!(flags, [false, false, true, true]);
        assert_eq!(resolved, 2);
        let mut patched = vec![f(1), f(2)];
        assert_eq!(mark_introduced(&mut patched, None), 0);
        assert!(patched.iter().all(|(_, f)| f.introduced), "no baseline: nothing is proven pre-existing");
    }
}
