//! The local backend's record of pull requests: `<git dir>/sre-agent/pulls.json`, rewritten atomically (temp
//! file, fsync, rename). Naming rules (branch, label, number) are pure functions.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Branches the local backend creates live under this prefix.
pub const BRANCH_PREFIX: &str = "sre-agent/";

/// One pull request of the local backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRecord {
    pub number: u64,
    pub run_id: String,
    pub branch: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub label: String,
    pub commit_sha: String,
    pub head_sha: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pulls {
    pub pulls: Vec<PullRecord>,
}

impl Pulls {
    /// The PR already opened for `run_id`, if any.
    pub fn by_run_id(&self, run_id: &str) -> Option<&PullRecord> {
        self.pulls.iter().find(|p| p.run_id == run_id)
    }

    /// The next PR number: one more than the largest, starting at 1.
    pub fn next_number(&self) -> u64 {
        self.pulls.iter().map(|p| p.number).max().unwrap_or(0) + 1
    }
}

/// The stored label: `label` when it is `safe` or `needs-review`, otherwise `unknown`.
pub fn normalize_label(label: &str) -> sre_domain::PrLabel {
    use sre_domain::{Label, PrLabel};
    match PrLabel::parse(label) {
        Some(l @ (PrLabel::Safe | PrLabel::NeedsReview)) => l,
        _ => PrLabel::Unknown,
    }
}

/// `sre-agent/<first 12 of run_id's [a-z0-9-] characters>` (lower-cased first), or `None` when nothing is left.
pub fn branch_name(run_id: &str) -> Option<String> {
    let slug: String = run_id
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .take(12)
        .collect();
    let slug = slug.trim_matches('-');
    (!slug.is_empty()).then(|| format!("{BRANCH_PREFIX}{slug}"))
}

/// The commit message: the title's first line (or a default), a blank line, the body.
pub fn commit_message(title: &str, body: &str) -> String {
    let title = title.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("sre-agent: automated fix");
    let body = body.trim();
    if body.is_empty() { format!("{title}\n") } else { format!("{title}\n\n{body}\n") }
}

/// Where the record lives for a repository whose git dir is `git_dir`.
pub fn pulls_path(git_dir: &Path) -> PathBuf {
    git_dir.join("sre-agent").join("pulls.json")
}

/// A record file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid pull request record: {source}")]
    Corrupt {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

/// Reads the record; a missing file is an empty record.
pub async fn load(path: &Path) -> Result<Pulls, StoreError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|source| StoreError::Corrupt { path: path.display().to_string(), source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Pulls::default()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Replaces the record atomically: a temp file in the same directory, fsynced, renamed over the old one.
pub async fn save(path: &Path, pulls: &Pulls) -> Result<(), StoreError> {
    use tokio::io::AsyncWriteExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir).await.map_err(io_err(dir))?;
    let mut json = serde_json::to_vec_pretty(pulls)
        .map_err(|source| StoreError::Corrupt { path: path.display().to_string(), source })?;
    json.push(b'\n');
    let tmp = dir.join(format!(".pulls.json.tmp-{}", std::process::id()));
    let write = async {
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(&json).await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(&tmp, path).await
    };
    if let Err(e) = write.await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(io_err(path)(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(number: u64, run_id: &str) -> PullRecord {
        PullRecord {
            number,
            run_id: run_id.to_owned(),
            branch: branch_name(run_id).unwrap(),
            base: "main".to_owned(),
            title: "t".to_owned(),
            body: String::new(),
            label: "safe".to_owned(),
            commit_sha: "a".repeat(40),
            head_sha: "b".repeat(40),
            created_at: 0,
        }
    }

    #[test]
    fn names_branches_from_run_ids() {
        assert_eq!(branch_name("3F2A9C1E-5B7D-4C1A-9E2F-000000000001").unwrap(), "sre-agent/3f2a9c1e-5b7");
        assert_eq!(branch_name("run_1/../x y").unwrap(), "sre-agent/run1xy");
        assert_eq!(branch_name("---abc").unwrap(), "sre-agent/abc");
        assert_eq!(branch_name("ÄÖÜ/..!"), None);
        assert_eq!(branch_name(""), None);
    }

    #[test]
    fn normalizes_labels() {
        use sre_domain::PrLabel;
        assert_eq!(normalize_label("safe"), PrLabel::Safe);
        assert_eq!(normalize_label("needs-review"), PrLabel::NeedsReview);
        assert_eq!(normalize_label("SAFE"), PrLabel::Unknown);
        assert_eq!(normalize_label("ship-it"), PrLabel::Unknown);
        assert_eq!(normalize_label(""), PrLabel::Unknown);
    }

    #[test]
    fn numbers_and_finds_pulls() {
        let mut pulls = Pulls::default();
        assert_eq!(pulls.next_number(), 1);
        pulls.pulls.push(record(1, "run-a"));
        pulls.pulls.push(record(7, "run-b"));
        assert_eq!(pulls.next_number(), 8);
        assert_eq!(pulls.by_run_id("run-b").unwrap().number, 7);
        assert!(pulls.by_run_id("run-c").is_none());
    }

    #[test]
    fn builds_commit_messages() {
        assert_eq!(commit_message("Fix lint\nsecond", "  body text \n"), "Fix lint\n\nbody text\n");
        assert_eq!(commit_message("  ", ""), "sre-agent: automated fix\n");
    }

    #[tokio::test]
    async fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = pulls_path(dir.path());
        assert_eq!(load(&path).await.unwrap(), Pulls::default());
        let pulls = Pulls { pulls: vec![record(1, "run-a")] };
        save(&path, &pulls).await.unwrap();
        assert_eq!(load(&path).await.unwrap(), pulls);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp file left behind");
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(load(&path).await, Err(StoreError::Corrupt { .. })));
    }
}
