//! The local backend's record of pull requests, `<git dir>/sre-agent/pulls.json` of the remote repository:
//! one record per run_key, rewritten atomically (temp file, fsync, rename) under an exclusive flock on
//! `<git dir>/sre-agent/pulls.lock`, so several pr processes share it. Naming rules (branch, label, title,
//! commit message) are pure functions, shared by both backends.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sre_domain::{Category, Label, PrLabel};

/// Every branch the agent creates lives under this prefix.
pub use sre_domain::{AGENT_BRANCH_PREFIX as BRANCH_PREFIX, short_key};
/// The label every pull request of the agent carries.
pub const AGENT_LABEL: &str = "sre-agent";
/// Longest title (GitHub's limit is 256 characters) and body kept.
pub const MAX_TITLE_CHARS: usize = 256;
pub const MAX_BODY_BYTES: usize = 60 * 1024;

/// Whether a pull request is still open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullState {
    #[default]
    Open,
    Closed,
}

/// One pull request of the local backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRecord {
    pub number: u64,
    /// The failure it fixes: at most one record per run_key (records written before run_keys have none).
    #[serde(default)]
    pub run_key: String,
    /// The pipeline run that last created or updated it.
    pub run_id: String,
    pub branch: String,
    pub base: String,
    pub title: String,
    pub body: String,
    /// `safe`, `needs-review` or `unknown` (the request's label).
    pub label: String,
    /// The labels on the pull request: `sre-agent` and `safe` or `needs-review`.
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub state: PullState,
    pub commit_sha: String,
    pub head_sha: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    #[serde(default)]
    pub updated_at: u64,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pulls {
    pub pulls: Vec<PullRecord>,
}

impl Pulls {
    /// The pull request of `run_key`, if any.
    pub fn by_run_key(&self, run_key: &str) -> Option<&PullRecord> {
        self.pulls.iter().find(|p| !p.run_key.is_empty() && p.run_key == run_key)
    }

    /// The next PR number: one more than the largest, starting at 1.
    pub fn next_number(&self) -> u64 {
        self.pulls.iter().map(|p| p.number).max().unwrap_or(0) + 1
    }
}

/// The stored label: `label` when it is `safe` or `needs-review`, otherwise `unknown`.
pub fn normalize_label(label: &str) -> PrLabel {
    match PrLabel::parse(label) {
        Some(l @ (PrLabel::Safe | PrLabel::NeedsReview)) => l,
        _ => PrLabel::Unknown,
    }
}

/// The labels a pull request carries: `sre-agent` and the review label; a label that is neither `safe` nor
/// `needs-review` asks for review.
pub fn pull_labels(label: PrLabel) -> Vec<String> {
    let review = if label == PrLabel::Safe { PrLabel::Safe } else { PrLabel::NeedsReview };
    vec![AGENT_LABEL.to_owned(), review.as_str().to_owned()]
}

/// `sre-agent/<category>/<short key>`: the category when it is one of the known ones, else `unknown`.
pub fn branch_name(category: &str, run_key: &str) -> String {
    sre_domain::agent_branch(Category::parse(category).unwrap_or(Category::Unknown), run_key)
}

/// A branch name safe on a git command line, in a refspec and in a URL path (base branches come from
/// webhooks).
pub fn valid_branch(branch: &str) -> bool {
    !branch.is_empty()
        && branch.len() <= 255
        && !branch.starts_with(['-', '/', '.'])
        && !branch.ends_with(['/', '.'])
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.contains("/.")
        && branch.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
}

/// The pull request title: the first non-empty line, at most [`MAX_TITLE_CHARS`], or a default.
pub fn title(raw: &str) -> String {
    let line = raw.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("sre-agent: automated fix");
    line.chars().take(MAX_TITLE_CHARS).collect()
}

/// The pull request body, at most [`MAX_BODY_BYTES`] (cut on a character boundary).
pub fn body(raw: &str) -> String {
    let raw = raw.trim();
    if raw.len() <= MAX_BODY_BYTES {
        return raw.to_owned();
    }
    let mut end = MAX_BODY_BYTES;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    raw[..end].to_owned()
}

/// The commit message: the title, a blank line, the body.
pub fn commit_message(title: &str, body: &str) -> String {
    if body.is_empty() { format!("{title}\n") } else { format!("{title}\n\n{body}\n") }
}

/// Where the record lives for a repository whose git dir is `git_dir`.
pub fn pulls_path(git_dir: &Path) -> PathBuf {
    git_dir.join("sre-agent").join("pulls.json")
}

/// The lock every writer of the record holds.
pub fn lock_path(git_dir: &Path) -> PathBuf {
    git_dir.join("sre-agent").join("pulls.lock")
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

    fn record(number: u64, run_key: &str) -> PullRecord {
        PullRecord {
            number,
            run_key: run_key.to_owned(),
            run_id: "run".to_owned(),
            branch: branch_name("lint", run_key),
            base: "main".to_owned(),
            title: "t".to_owned(),
            body: String::new(),
            label: "safe".to_owned(),
            labels: pull_labels(PrLabel::Safe),
            draft: false,
            state: PullState::Open,
            commit_sha: "a".repeat(40),
            head_sha: "b".repeat(40),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn names_branches_from_category_and_run_key() {
        // sha256("workflow_job:123") = 0ee8250c07... (python3 -c 'import hashlib; ...').
        let key = "workflow_job:123";
        let digest = "0ee8250c07";
        assert_eq!(short_key(key), digest);
        assert_eq!(branch_name("lint", key), format!("sre-agent/lint/{}", &digest[..10]));
        assert_eq!(branch_name("", key), format!("sre-agent/unknown/{}", &digest[..10]));
        assert_eq!(branch_name("../../etc", key), format!("sre-agent/unknown/{}", &digest[..10]));
        assert_ne!(branch_name("lint", "workflow_job:124"), branch_name("lint", key));
        for category in Category::ALL {
            assert!(valid_branch(&branch_name(category.as_str(), key)));
        }
    }

    #[test]
    fn checks_branch_names() {
        for good in ["main", "release/1.2", "feat_x-y"] {
            assert!(valid_branch(good), "{good}");
        }
        for bad in ["", "-x", "a..b", "a b", "a:b", "/a", "a/", "a.lock", "a//b", "a/.b", "x~1", "x^", "é"] {
            assert!(!valid_branch(bad), "{bad}");
        }
    }

    #[test]
    fn normalizes_labels() {
        assert_eq!(normalize_label("safe"), PrLabel::Safe);
        assert_eq!(normalize_label("needs-review"), PrLabel::NeedsReview);
        assert_eq!(normalize_label("SAFE"), PrLabel::Unknown);
        assert_eq!(normalize_label("ship-it"), PrLabel::Unknown);
        assert_eq!(normalize_label(""), PrLabel::Unknown);
        assert_eq!(pull_labels(PrLabel::Safe), ["sre-agent", "safe"]);
        assert_eq!(pull_labels(PrLabel::NeedsReview), ["sre-agent", "needs-review"]);
        assert_eq!(pull_labels(PrLabel::Unknown), ["sre-agent", "needs-review"]);
    }

    #[test]
    fn numbers_and_finds_pulls() {
        let mut pulls = Pulls::default();
        assert_eq!(pulls.next_number(), 1);
        pulls.pulls.push(record(1, "key-a"));
        pulls.pulls.push(record(7, "key-b"));
        pulls.pulls.push(record(8, ""));
        assert_eq!(pulls.next_number(), 9);
        assert_eq!(pulls.by_run_key("key-b").unwrap().number, 7);
        assert!(pulls.by_run_key("key-c").is_none());
        assert!(pulls.by_run_key("").is_none(), "old records without a run_key match nothing");
    }

    #[test]
    fn bounds_titles_bodies_and_messages() {
        assert_eq!(title("  \nFix lint\nsecond"), "Fix lint");
        assert_eq!(title("  "), "sre-agent: automated fix");
        assert_eq!(title(&"é".repeat(300)).chars().count(), MAX_TITLE_CHARS);
        assert_eq!(body("  body text \n"), "body text");
        let long = "é".repeat(MAX_BODY_BYTES);
        let cut = body(&long);
        assert!(cut.len() <= MAX_BODY_BYTES && cut.len() > MAX_BODY_BYTES - 2);
        assert_eq!(commit_message("Fix lint", "body text"), "Fix lint\n\nbody text\n");
        assert_eq!(commit_message("Fix", ""), "Fix\n");
    }

    #[test]
    fn reads_records_written_before_run_keys() {
        let old = r#"{"pulls":[{"number":1,"run_id":"r","branch":"sre-agent/r","base":"main","title":"t","body":"",
            "label":"safe","commit_sha":"a","head_sha":"b","created_at":5}]}"#;
        let pulls: Pulls = serde_json::from_str(old).unwrap();
        assert_eq!(pulls.pulls[0].state, PullState::Open);
        assert_eq!(pulls.pulls[0].run_key, "");
        assert_eq!(pulls.next_number(), 2);
    }

    #[tokio::test]
    async fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = pulls_path(dir.path());
        assert_eq!(load(&path).await.unwrap(), Pulls::default());
        let pulls = Pulls { pulls: vec![record(1, "key-a")] };
        save(&path, &pulls).await.unwrap();
        assert_eq!(load(&path).await.unwrap(), pulls);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp file left behind");
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(load(&path).await, Err(StoreError::Corrupt { .. })));
    }
}
