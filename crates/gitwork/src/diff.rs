//! A git unified diff read the way `git apply` reads it: file sections from their headers (`diff --git`, or a
//! traditional `---`/`+++` pair), hunks by the line counts in their `@@` headers.
//!
//! The counts matter: `git apply` ends a hunk when its counts are used up and reads what follows as the next
//! file's header. A reader that only looks at line prefixes would take a second file's `---`/`+++`/`@@`
//! lines for changed lines of the first, and check the wrong paths (the policy service's checks of protected
//! and credential paths depend on this).

/// One file's section of a diff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilePatch {
    /// The path after the change (before it, for a deletion).
    pub path: String,
    /// Every path the section names, `path` first: both sides of the header, rename and copy sources.
    pub paths: Vec<String>,
    pub added: u32,
    pub removed: u32,
    pub new_file: bool,
    pub deleted: bool,
    pub binary: bool,
    pub mode_change: bool,
    /// The added lines, without their `+`.
    pub added_lines: Vec<String>,
}

impl FilePatch {
    fn named(&mut self, path: &str) {
        if path.is_empty() || path == "/dev/null" {
            return;
        }
        if self.path.is_empty() {
            self.path = path.to_owned();
        }
        if !self.paths.iter().any(|p| p == path) {
            self.paths.push(path.to_owned());
        }
    }
}

/// Why a text is not a diff `git apply` would apply as it reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("line {0}: text before the first file header")]
    NoHeader(usize),
    #[error("line {0}: malformed hunk header")]
    BadHunkHeader(usize),
    #[error("line {0}: the hunk ends before the line counts of its header")]
    ShortHunk(usize),
    #[error("line {0}: more lines than the hunk header counts")]
    LongHunk(usize),
    #[error("line {0}: a changed line outside any hunk")]
    StrayLine(usize),
}

/// The file sections of `diff`, or the first reason it is not a diff.
pub fn parse_diff(diff: &str) -> Result<Vec<FilePatch>, DiffError> {
    let (files, result) = parse(diff);
    result.map(|()| files)
}

/// The sections read up to the first error, and the error.
pub(crate) fn parse(diff: &str) -> (Vec<FilePatch>, Result<(), DiffError>) {
    let mut files: Vec<FilePatch> = Vec::new();
    // Lines still due in the current hunk: (old side, new side).
    let mut hunk: Option<(u64, u64)> = None;
    // After `diff --git`, until its `+++` line or first hunk: the `---`/`+++` lines belong to it.
    let mut git_header_open = false;
    let mut minus: Option<String> = None;
    let mut last = 0;
    for (i, line) in diff.lines().enumerate() {
        let n = i + 1;
        last = n;
        if let Some((old, new)) = hunk.as_mut() {
            let file = files.last_mut().expect("a hunk belongs to a file");
            let (take_old, take_new) = match line.as_bytes().first() {
                Some(b'+') => (0, 1),
                Some(b'-') => (1, 0),
                Some(b' ') | None => (1, 1),
                Some(b'\\') => (0, 0),
                _ => return (files, Err(DiffError::ShortHunk(n))),
            };
            if take_old > *old || take_new > *new {
                return (files, Err(DiffError::LongHunk(n)));
            }
            *old -= take_old;
            *new -= take_new;
            if take_new == 1 && take_old == 0 {
                file.added += 1;
                file.added_lines.push(line[1..].to_owned());
            } else if take_old == 1 && take_new == 0 {
                file.removed += 1;
            }
            if (*old, *new) == (0, 0) {
                hunk = None;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let mut file = FilePatch::default();
            if let Some((a, b)) = rest.split_once(" b/") {
                file.named(b);
                file.named(a.strip_prefix("a/").unwrap_or(a));
            } else {
                file.named(rest);
            }
            files.push(file);
            git_header_open = true;
            minus = None;
            continue;
        }
        if let Some(p) = line.strip_prefix("--- ") {
            minus = Some(header_path(p, "a/").to_owned());
            continue;
        }
        if let Some(p) = line.strip_prefix("+++ ") {
            let plus = header_path(p, "b/");
            if !git_header_open {
                // A traditional header: `git apply` starts another file here.
                files.push(FilePatch::default());
            }
            git_header_open = false;
            let file = files.last_mut().expect("pushed above or by diff --git");
            let old = minus.take().unwrap_or_default();
            file.deleted |= plus == "/dev/null";
            file.new_file |= old == "/dev/null";
            file.named(if plus == "/dev/null" { &old } else { plus });
            file.named(&old);
            continue;
        }
        let Some(file) = files.last_mut() else {
            if line.trim().is_empty() {
                continue;
            }
            return (files, Err(DiffError::NoHeader(n)));
        };
        if line.starts_with("@@") {
            let Some(counts) = hunk_counts(line) else { return (files, Err(DiffError::BadHunkHeader(n))) };
            git_header_open = false;
            hunk = (counts != (0, 0)).then_some(counts);
        } else if line.starts_with("deleted file mode") {
            file.deleted = true;
        } else if line.starts_with("new file mode") {
            file.new_file = true;
        } else if line.starts_with("Binary files") || line.starts_with("GIT binary patch") {
            file.binary = true;
        } else if line.starts_with("new mode") || line.starts_with("old mode") {
            file.mode_change = true;
        } else if let Some(p) =
            ["rename from ", "rename to ", "copy from ", "copy to "].iter().find_map(|prefix| line.strip_prefix(prefix))
        {
            file.named(p);
        } else if line.starts_with(['+', '-', ' ']) && !line.trim().is_empty() {
            return (files, Err(DiffError::StrayLine(n)));
        }
        // Anything else (`index`, `similarity index`, the binary patch's data) changes no path or count.
    }
    if hunk.is_some() {
        return (files, Err(DiffError::ShortHunk(last + 1)));
    }
    (files, Ok(()))
}

/// The path of a `---`/`+++` line: its side's prefix dropped, a traditional diff's tab and timestamp cut.
fn header_path<'a>(p: &'a str, side: &str) -> &'a str {
    let p = p.split('\t').next().unwrap_or(p);
    if p == "/dev/null" { p } else { p.strip_prefix(side).unwrap_or(p) }
}

/// The old and new line counts of `@@ -a[,b] +c[,d] @@` (a missing count is 1).
fn hunk_counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let count = |r: &str| -> Option<u64> {
        let (start, len) = r.split_once(',').unwrap_or((r, "1"));
        start.parse::<u64>().ok()?;
        len.parse::<u64>().ok()
    };
    Some((count(old)?, count(new)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_FILES: &str = "diff --git a/x.py b/x.py\nindex 1..2 100644\n--- a/x.py\n+++ b/x.py\n\
        @@ -1,2 +1,2 @@\n-a \n+a\n b\n\\ No newline at end of file\n\
        diff --git a/gone b/gone\ndeleted file mode 100644\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";

    #[test]
    fn reads_files_and_counts() {
        let files = parse_diff(TWO_FILES).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].path.as_str(), files[0].added, files[0].removed), ("x.py", 1, 1));
        assert_eq!(files[0].added_lines, ["a"]);
        assert_eq!((files[1].path.as_str(), files[1].deleted, files[1].removed), ("gone", true, 1));
    }

    /// `git apply` ends the first hunk after its one line each side and applies the second, traditional
    /// section to the workflow file: so must the reader.
    #[test]
    fn a_hunk_ends_where_its_counts_say() {
        let diff = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-a\n+b\n\
            --- a/.github/workflows/ci.yml\n+++ b/.github/workflows/ci.yml\n@@ -1 +1 @@\n-on: push\n+on: [push]\n";
        let files = parse_diff(diff).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["app.py", ".github/workflows/ci.yml"]);
        assert_eq!(files.iter().map(|f| (f.added, f.removed)).collect::<Vec<_>>(), [(1, 1), (1, 1)]);
    }

    #[test]
    fn renames_name_both_paths() {
        let diff = "diff --git a/.github/workflows/ci.yml b/ci.yml\nsimilarity index 100%\n\
            rename from .github/workflows/ci.yml\nrename to ci.yml\n";
        let files = parse_diff(diff).unwrap();
        assert_eq!(files[0].path, "ci.yml");
        assert_eq!(files[0].paths, ["ci.yml", ".github/workflows/ci.yml"]);
    }

    #[test]
    fn miscounted_and_stray_lines_are_errors() {
        let head = "diff --git a/x b/x\n--- a/x\n+++ b/x\n";
        assert_eq!(parse_diff(&format!("{head}@@ -1,2 +1,2 @@\n-a\n+b\n")), Err(DiffError::ShortHunk(7)));
        assert_eq!(parse_diff(&format!("{head}@@ -1 +1 @@\n-a\n+b\n+c\n")), Err(DiffError::StrayLine(7)));
        assert_eq!(parse_diff(&format!("{head}@@ -1 +1 @@\n+b\n+c\n")), Err(DiffError::LongHunk(6)));
        assert_eq!(parse_diff(&format!("{head}@@ -1 +x @@\n")), Err(DiffError::BadHunkHeader(4)));
        assert_eq!(parse_diff("hello\n"), Err(DiffError::NoHeader(1)));
        assert_eq!(parse_diff(""), Ok(vec![]));
    }
}
