//! The files a fix may read and change: path rules, bounded reading from the worktree (whole files, or
//! excerpts around the referenced lines), and the all-or-nothing write.
//!
//! The same rules decide what is sent and what may be edited: a path must be relative, stay inside the
//! worktree (symlinks resolved), and not be under `.git/` or `.github/`, nor a credentials file (`.env`,
//! `*.pem`, `id_rsa`, ...: never sent to a model). Only files that were sent may be edited; none is created.

use std::path::{Path, PathBuf};

use crate::error::LlmError;
use crate::prompt::{FixRequest, PromptLimits};

/// No file larger than this is read or written, whatever the limits.
pub const HARD_MAX_FILE_BYTES: usize = 1024 * 1024;
/// Below this many bytes of room left, a file is not sent at all.
const MIN_EXCERPT_BYTES: usize = 256;
/// Begins every line that stands for lines left out of an excerpt.
pub(crate) const OMISSION_MARKER: &str = "[sre-agent: lines ";

/// Why a path may not be read or edited.
pub(crate) fn check_path(path: &str) -> Result<String, &'static str> {
    if path.is_empty() || path.len() > 1024 {
        return Err("is empty or too long");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err("has control characters or backslashes");
    }
    if path.starts_with('/') || path.as_bytes().get(1) == Some(&b':') {
        return Err("is absolute");
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("leaves the repository"),
            p => parts.push(p),
        }
    }
    let Some(name) = parts.last() else { return Err("names no file") };
    let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    if lower.iter().any(|p| p == ".git") {
        return Err("is inside .git/");
    }
    if lower[0] == ".github" {
        return Err("is under .github/ (CI definitions are never changed)");
    }
    let name = name.to_ascii_lowercase();
    const SECRET_NAMES: &[&str] =
        &[".env", "id_rsa", "id_ecdsa", "id_ed25519", ".npmrc", ".pypirc", ".netrc", "credentials"];
    const SECRET_EXTS: &[&str] = &[".pem", ".key", ".p12", ".pfx"];
    if SECRET_NAMES.contains(&name.as_str())
        || name.starts_with(".env.")
        || SECRET_EXTS.iter().any(|e| name.ends_with(e))
        || lower.iter().any(|p| p == ".ssh")
    {
        return Err("is a credentials file (never sent or changed)");
    }
    Ok(parts.join("/"))
}

/// How much of a file the model saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Shown {
    Complete,
    /// Half-open 0-based line ranges, in order, of `total` lines.
    Excerpt {
        segments: Vec<(usize, usize)>,
        total: usize,
    },
}

/// A file sent to the model: its full text on disk and what of it was shown.
pub(crate) struct SentFile {
    pub path: String,
    pub abs: PathBuf,
    pub text: String,
    pub shown: Shown,
    /// 1-based lines the failure context points at.
    pub lines: Vec<u32>,
}

impl SentFile {
    /// The text as the model sees it: whole, or the excerpt's lines with a marker for each gap.
    pub fn rendered(&self) -> String {
        let Shown::Excerpt { segments, total } = &self.shown else { return self.text.clone() };
        let lines: Vec<&str> = self.text.split_inclusive('\n').collect();
        let mut out = String::new();
        let mut at = 0;
        for &(start, end) in segments {
            if start > at {
                out.push_str(&format!("{OMISSION_MARKER}{}-{} not shown]\n", at + 1, start));
            }
            for line in &lines[start..end] {
                out.push_str(line);
            }
            if !out.ends_with('\n') {
                out.push('\n');
            }
            at = end;
        }
        if at < *total {
            out.push_str(&format!("{OMISSION_MARKER}{}-{} not shown]\n", at + 1, total));
        }
        out
    }

    pub fn is_complete(&self) -> bool {
        self.shown == Shown::Complete
    }
}

/// The files sent, and those the context pointed at that were not sent (with why).
#[derive(Default)]
pub(crate) struct FileSet {
    pub files: Vec<SentFile>,
    pub not_sent: Vec<(String, &'static str)>,
}

impl FileSet {
    pub fn find(&self, path: &str) -> Option<usize> {
        self.files.iter().position(|f| f.path == path)
    }

    pub fn paths(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.path.as_str()).collect()
    }
}

fn io(path: &Path, source: std::io::Error) -> LlmError {
    LlmError::Io { path: path.display().to_string(), source }
}

/// Reads the files the request references from `root`, within `file_budget` bytes in total.
pub(crate) async fn read_files(
    root: &Path,
    request: &FixRequest,
    limits: &PromptLimits,
    file_budget: usize,
) -> Result<FileSet, LlmError> {
    let root = tokio::fs::canonicalize(root).await.map_err(|e| io(root, e))?;
    let mut set = FileSet::default();
    let mut left = file_budget.min(limits.max_total_file_bytes);
    for (raw, lines) in request.files_in_order() {
        if set.files.len() >= limits.max_files {
            set.not_sent.push((short(&raw), "beyond the file limit"));
            continue;
        }
        let path = match check_path(&raw) {
            Ok(p) => p,
            // CI logs name files by the runner's absolute path (/home/runner/work/app/app/src/x.rs).
            Err(_)
                if raw.starts_with('/')
                    && let Some(p) = runner_relative(&root, &raw).await =>
            {
                p
            }
            Err(why) => {
                set.not_sent.push((short(&raw), why));
                continue;
            }
        };
        if set.find(&path).is_some() {
            continue;
        }
        let abs = match tokio::fs::canonicalize(root.join(&path)).await {
            Ok(abs) => abs,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                set.not_sent.push((path, "not found"));
                continue;
            }
            Err(_) => {
                set.not_sent.push((path, "unreadable"));
                continue;
            }
        };
        // A symlink may point out of the worktree, or into a forbidden place inside it.
        let inside = abs.strip_prefix(&root).ok().and_then(|rel| rel.to_str()).map(check_path);
        match inside {
            Some(Ok(_)) => {}
            Some(Err(why)) => {
                set.not_sent.push((path, why));
                continue;
            }
            None => {
                set.not_sent.push((path, "leaves the repository"));
                continue;
            }
        }
        let meta = match tokio::fs::metadata(&abs).await {
            Ok(m) if m.is_file() => m,
            _ => {
                set.not_sent.push((path, "not a regular file"));
                continue;
            }
        };
        if meta.len() > HARD_MAX_FILE_BYTES as u64 {
            set.not_sent.push((path, "too large"));
            continue;
        }
        let bytes = tokio::fs::read(&abs).await.map_err(|e| io(&abs, e))?;
        let text = match String::from_utf8(bytes) {
            Ok(t) if !t.contains('\0') => t,
            _ => {
                set.not_sent.push((path, "binary"));
                continue;
            }
        };
        let cap = limits.max_file_bytes.min(left);
        if cap < MIN_EXCERPT_BYTES.min(text.len().max(1)) {
            set.not_sent.push((path, "beyond the prompt size limit"));
            continue;
        }
        let shown = if text.len() <= cap {
            Shown::Complete
        } else {
            match excerpt(&text, &lines, cap) {
                Some(shown) => shown,
                None => {
                    set.not_sent.push((path, "lines too long to excerpt"));
                    continue;
                }
            }
        };
        let file = SentFile { path, abs, text, shown, lines };
        left = left.saturating_sub(file.rendered().len());
        set.files.push(file);
    }
    Ok(set)
}

/// The longest suffix of an absolute path that names a file in the worktree (`/home/runner/work/app/app/src/x.rs`
/// → `src/x.rs`, or `app/src/x.rs` when the repository has that file). Checked by the same path rules.
async fn runner_relative(root: &Path, raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw.split('/').filter(|p| !p.is_empty()).collect();
    for start in 1..parts.len().min(32) {
        let Ok(candidate) = check_path(&parts[start..].join("/")) else { continue };
        if tokio::fs::metadata(root.join(&candidate)).await.is_ok_and(|m| m.is_file()) {
            return Some(candidate);
        }
    }
    None
}

/// A model-supplied path made short enough to quote back.
pub(crate) fn short(path: &str) -> String {
    let mut s: String = path.chars().filter(|c| !c.is_control()).take(200).collect();
    if path.chars().count() > 200 {
        s.push('…');
    }
    s
}

/// Lines around the referenced ones (or the head of the file without any), at most `cap` bytes of file text.
/// `None` when not even one line fits.
fn excerpt(text: &str, refs: &[u32], cap: usize) -> Option<Shown> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let n = lines.len();
    let mut centers: Vec<usize> = Vec::new();
    for line in refs.iter().filter(|l| **l > 0) {
        let idx = (*line as usize - 1).min(n.saturating_sub(1));
        if !centers.contains(&idx) {
            centers.push(idx);
        }
    }
    let head = centers.is_empty();
    if head {
        centers.push(0);
    }
    let share = cap / centers.len();
    let mut selected = vec![false; n];
    let mut used = 0usize;
    let mut limit = 0usize;
    for &c in &centers {
        limit += share;
        let mut take = |i: usize, used: &mut usize| -> bool {
            if selected[i] {
                return true;
            }
            if *used + lines[i].len() > limit {
                return false;
            }
            selected[i] = true;
            *used += lines[i].len();
            true
        };
        if !take(c, &mut used) {
            continue;
        }
        let (mut lo, mut hi) = (c, c);
        loop {
            let mut grew = false;
            if hi + 1 < n && take(hi + 1, &mut used) {
                hi += 1;
                grew = true;
            }
            if !head && lo > 0 && take(lo - 1, &mut used) {
                lo -= 1;
                grew = true;
            }
            if !grew {
                break;
            }
        }
    }
    let mut segments = Vec::new();
    let mut i = 0;
    while i < n {
        if selected[i] {
            let start = i;
            while i < n && selected[i] {
                i += 1;
            }
            segments.push((start, i));
        } else {
            i += 1;
        }
    }
    (!segments.is_empty()).then_some(Shown::Excerpt { segments, total: n })
}

/// Writes the new contents; on a failure, puts back what was already written.
pub(crate) async fn write_all(files: &FileSet, writes: &[(usize, String)]) -> Result<(), LlmError> {
    for (done, (idx, text)) in writes.iter().enumerate() {
        let file = &files.files[*idx];
        if let Err(e) = tokio::fs::write(&file.abs, text).await {
            for (prev, _) in &writes[..done] {
                let f = &files.files[*prev];
                let _ = tokio::fs::write(&f.abs, &f.text).await;
            }
            return Err(io(Path::new(&file.path), e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        assert_eq!(check_path("src/lib.rs"), Ok("src/lib.rs".into()));
        assert_eq!(check_path("./src//lib.rs"), Ok("src/lib.rs".into()));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "src/../../x",
            "C:/x",
            "src\\x.rs",
            ".git/config",
            "sub/.git/hooks/pre-commit",
            ".github/workflows/ci.yml",
            ".GitHub/dependabot.yml",
            "./.github/x",
            ".env",
            "config/.env.production",
            "certs/server.pem",
            "home/.ssh/known_hosts",
            "a\0b",
            ".",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        // Only the top-level .github is CI configuration.
        assert!(check_path("docs/.github-notes.md").is_ok());
    }

    fn file(text: &str, shown: Shown) -> SentFile {
        SentFile { path: "f".into(), abs: PathBuf::new(), text: text.into(), shown, lines: vec![] }
    }

    #[test]
    fn excerpts_center_on_the_referenced_lines() {
        let text: String = (1..=100).map(|i| format!("line {i:03}\n")).collect(); // 9 bytes a line
        let Some(Shown::Excerpt { segments, total }) = excerpt(&text, &[50], 45) else { panic!() };
        assert_eq!((segments.as_slice(), total), (&[(47, 52)][..], 100));
        let rendered = file(&text, Shown::Excerpt { segments, total }).rendered();
        assert!(rendered.starts_with("[sre-agent: lines 1-47 not shown]\nline 048\n"), "{rendered}");
        assert!(rendered.ends_with("line 052\n[sre-agent: lines 53-100 not shown]\n"), "{rendered}");
        // Two references share the room; no reference: the head.
        let Some(Shown::Excerpt { segments, .. }) = excerpt(&text, &[10, 90], 36) else { panic!() };
        assert_eq!(segments, vec![(9, 11), (89, 91)]);
        let Some(Shown::Excerpt { segments, .. }) = excerpt(&text, &[], 30) else { panic!() };
        assert_eq!(segments, vec![(0, 3)]);
        // A line longer than the room: nothing to show.
        assert!(excerpt(&"x".repeat(100), &[1], 10).is_none());
        // A reference past the end clamps to the last line.
        let Some(Shown::Excerpt { segments, .. }) = excerpt(&text, &[1000], 18) else { panic!() };
        assert_eq!(segments, vec![(98, 100)]);
    }
}
