//! The git half both backends share: the fix committed on `head_sha` with git's plumbing, in a throwaway
//! index (no checkout at all), then the failure's branch on the remote brought to it, or left alone.
//!
//! 1. The diff is applied to a temporary index holding `head_sha`'s tree (`GIT_INDEX_FILE`, `git read-tree`,
//!    `git apply --cached`, `git write-tree`), never to a checkout anyone uses, and no repository file is
//!    ever written or run; a change under `.github/` is refused (`git diff-tree` of the two trees); the commit
//!    (`git commit-tree`, the message cleaned up as `git commit` does) is made as the agent (author and
//!    committer), with no hook (plumbing runs none; the push has `core.hooksPath=/dev/null`, `--no-verify`)
//!    and no signing.
//! 2. `git ls-remote`, while the commit is made, reads the branch and the base on the remote (a missing base
//!    is refused here, before anything is pushed). A base whose tip is no longer `head_sha` (a newer commit, a
//!    force-push) makes the failure superseded → [`BranchResult::Refused`], nothing pushed: the new commit's
//!    CI decides.
//!    - Absent: pushed with `--force-with-lease=<branch>:` (it must still be absent) → [`BranchResult::Created`].
//!    - Present: its tip is fetched and every commit on it above `head_sha` is read. Any commit authored or
//!      committed by someone other than the agent → [`BranchResult::Refused`], nothing pushed (the agent
//!      never pushes over others' work, as Renovate stops touching a branch once someone else commits to
//!      it). The same tree on the same base → [`BranchResult::Unchanged`], nothing pushed. Otherwise the
//!      new commit replaces the agent's with `--force-with-lease=<branch>:<old tip>` → [`BranchResult::Updated`].
//!      A lease that fails (the branch moved in between) is [`PrError::BranchMoved`] (ABORTED: retried).
//!
//! Credentials reach git only through the child's environment (`Workspace::env`); URLs are clean.

use std::time::Duration;

use sre_gitwork::{CachedRepo, GitError, GitOptions, Remote, Repo, git, git_with};

use crate::error::PrError;

/// Longest a push, fetch or ls-remote may take.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(180);
/// Commits above `head_sha` read from an existing branch (the agent's branches hold one).
const MAX_BRANCH_COMMITS: usize = 50;

/// Who the agent's commits are by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// Where the worktree comes from and where the branch goes.
pub enum Workspace<'a> {
    /// The remote is a repository on this disk: worktrees are made in it and the branch is pushed to it.
    Local { repo: &'a Repo, url: String },
    /// A clone in the repository cache and the remote it came from.
    Cached { cached: &'a CachedRepo, remote: &'a Remote },
}

impl Workspace<'_> {
    fn repo(&self) -> &Repo {
        match self {
            Self::Local { repo, .. } => repo,
            Self::Cached { cached, .. } => cached.repo(),
        }
    }

    fn url(&self) -> &str {
        match self {
            Self::Local { url, .. } => url,
            Self::Cached { remote, .. } => remote.url(),
        }
    }

    fn env(&self) -> &[(String, String)] {
        match self {
            Self::Local { .. } => &[],
            Self::Cached { remote, .. } => remote.env(),
        }
    }

    /// Makes the commit `sha` (a remote branch tip) readable locally.
    async fn ensure_commit(&self, sha: &str) -> Result<(), PrError> {
        match self {
            // The remote's own object store.
            Self::Local { .. } => Ok(()),
            Self::Cached { cached, remote } => Ok(cached.fetch_commit(remote, sha).await?),
        }
    }
}

/// What happened to the branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BranchResult {
    /// The branch did not exist; it now holds `commit`.
    Created { commit: String },
    /// The branch held only the agent's commits with another change; `commit` replaced `previous`.
    Updated { commit: String, previous: String },
    /// The branch already held this change on `head_sha`: nothing pushed.
    Unchanged { commit: String },
    /// Someone else's commits are on the branch: nothing pushed.
    Refused { reason: String, tip: String, foreign_commits: usize },
}

impl BranchResult {
    /// The commit the branch holds afterwards.
    pub fn tip(&self) -> &str {
        match self {
            Self::Created { commit } | Self::Updated { commit, .. } | Self::Unchanged { commit } => commit,
            Self::Refused { tip, .. } => tip,
        }
    }

    /// True when something was pushed.
    pub fn pushed(&self) -> bool {
        matches!(self, Self::Created { .. } | Self::Updated { .. })
    }
}

/// What `publish` needs.
pub struct Change<'a> {
    pub head_sha: &'a str,
    /// The pull request's base: it must exist on the remote (checked before anything is pushed).
    pub base: &'a str,
    pub diff: &'a str,
    pub message: &'a str,
    pub branch: &'a str,
    pub identity: &'a Identity,
}

async fn out(dir: &std::path::Path, args: &[&str]) -> Result<String, PrError> {
    Ok(String::from_utf8_lossy(&git(dir, args, None).await?).trim().to_owned())
}

/// Commits the change and brings the remote branch to it (see the module docs).
pub async fn publish(ws: &Workspace<'_>, change: &Change<'_>) -> Result<BranchResult, PrError> {
    // The temporary index lives in a directory of its own (git writes `index.lock` next to it).
    let scratch = tempfile::Builder::new().prefix("sre-pr-index-").tempdir().map_err(GitError::Io)?;
    let (repo, index) = (ws.repo().path(), scratch.path().join("index"));
    // The commit and the remote's tips are independent: both at once, the commit's error first.
    let (committed, tips) =
        tokio::join!(commit(repo, &index, change), remote_tips(ws, repo, change.branch, change.base));
    let (new, new_tree) = committed?;
    publish_in(ws, change, repo, &new, &new_tree, tips?).await
}

async fn publish_in(
    ws: &Workspace<'_>,
    change: &Change<'_>,
    dir: &std::path::Path,
    new: &str,
    new_tree: &str,
    (tip, base_tip): (Option<String>, Option<String>),
) -> Result<BranchResult, PrError> {
    let new = new.to_owned();
    let Some(base_tip) = base_tip else {
        return Err(PrError::MissingBase(change.base.to_owned()));
    };
    if base_tip != change.head_sha {
        // A newer commit (or a force-push) on the base: the failure at head_sha is superseded, and the new
        // commit's CI reports its own failure if there still is one. A fix for the old commit is not offered.
        let reason = format!(
            "{} moved on to {} since the failure at {}: superseded, nothing pushed",
            change.base,
            short(&base_tip),
            short(change.head_sha)
        );
        return Ok(BranchResult::Refused { reason, tip: tip.unwrap_or_default(), foreign_commits: 0 });
    }
    let Some(old) = tip else {
        push(ws, dir, change.branch, &new, "").await?;
        return Ok(BranchResult::Created { commit: new });
    };
    ws.ensure_commit(&old).await?;
    let commits = branch_commits(dir, &old, change.head_sha).await?;
    let foreign: Vec<&BranchCommit> = commits.iter().filter(|c| !c.by(change.identity)).collect();
    if !foreign.is_empty() || commits.len() > MAX_BRANCH_COMMITS {
        let reason = refusal(change.branch, change.identity, &foreign, commits.len());
        return Ok(BranchResult::Refused { reason, tip: old, foreign_commits: foreign.len() });
    }
    let old_tree = out(dir, &["rev-parse", &format!("{old}^{{tree}}")]).await?;
    let on_head = git(dir, &["merge-base", "--is-ancestor", change.head_sha, &old], None).await.is_ok();
    if old_tree == new_tree && on_head {
        return Ok(BranchResult::Unchanged { commit: old });
    }
    push(ws, dir, change.branch, &new, &old).await?;
    Ok(BranchResult::Updated { commit: new, previous: old })
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Applies the diff to `head_sha`'s tree in the temporary index `index`, refuses `.github/`, commits the tree
/// as the agent; returns the commit and its tree.
async fn commit(
    repo: &std::path::Path,
    index: &std::path::Path,
    change: &Change<'_>,
) -> Result<(String, String), PrError> {
    let index_env = [("GIT_INDEX_FILE".to_owned(), index.to_string_lossy().into_owned())];
    let in_index = GitOptions { env: &index_env, ..GitOptions::default() };
    git_with(repo, &["read-tree", change.head_sha], in_index).await?;
    let apply = GitOptions { stdin: Some(change.diff.as_bytes()), ..in_index };
    git_with(repo, &["apply", "--cached", "--whitespace=nowarn", "-"], apply).await.map_err(|e| {
        tracing::warn!(error = %e, "diff does not apply");
        PrError::DoesNotApply { sha: change.head_sha.to_owned(), message: e.to_string() }
    })?;
    let tree = String::from_utf8_lossy(&git_with(repo, &["write-tree"], in_index).await?).trim().to_owned();
    let message = cleanup_message(change.message);
    if message.is_empty() {
        return Err(PrError::Commit("empty commit message".to_owned()));
    }
    let id = change.identity;
    let env = [
        ("GIT_AUTHOR_NAME", id.name.as_str()),
        ("GIT_AUTHOR_EMAIL", id.email.as_str()),
        ("GIT_COMMITTER_NAME", id.name.as_str()),
        ("GIT_COMMITTER_EMAIL", id.email.as_str()),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let commit_args = ["commit-tree", "--no-gpg-sign", &tree, "-p", change.head_sha, "-F", "-"];
    let commit_opts = GitOptions { stdin: Some(message.as_bytes()), env: &env, ..GitOptions::default() };
    // What the tree changes decides whether the commit is used; both at once (a refused commit stays an
    // unreferenced object, as the blobs of a refused change do).
    let diff_args = ["diff-tree", "-r", "--name-only", "--no-renames", "-z", change.head_sha, &tree];
    let (changed, commit) = tokio::join!(git(repo, &diff_args, None), git_with(repo, &commit_args, commit_opts));
    let mut any = false;
    for path in changed?.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        any = true;
        let path = String::from_utf8_lossy(path);
        if path == ".github" || path.starts_with(".github/") {
            tracing::warn!("diff touches .github/; refused");
            return Err(PrError::ProtectedPath(path.into_owned()));
        }
    }
    if !any {
        tracing::warn!("the diff changes no file; nothing to commit");
        return Err(PrError::Commit("nothing to commit: the diff changes no file".to_owned()));
    }
    let commit = commit.map_err(|e| {
        tracing::warn!(error = %e, "commit failed");
        PrError::Commit(e.to_string())
    })?;
    Ok((String::from_utf8_lossy(&commit).trim().to_owned(), tree))
}

/// The message as `git commit -F` records it (its default cleanup, `whitespace`): trailing whitespace of every
/// line, leading and trailing empty lines removed, runs of empty lines made one, a final newline.
fn cleanup_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 1);
    let mut empties = 0;
    for line in message.split('\n') {
        let line = line.trim_end_matches([' ', '\t', '\r']);
        if line.is_empty() {
            empties += 1;
            continue;
        }
        if empties > 0 && !out.is_empty() {
            out.push('\n');
        }
        empties = 0;
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The tips of the branch and of the base on the remote (`None`: absent), in one `git ls-remote`.
async fn remote_tips(
    ws: &Workspace<'_>,
    wt: &std::path::Path,
    branch: &str,
    base: &str,
) -> Result<(Option<String>, Option<String>), PrError> {
    let (full, full_base) = (format!("refs/heads/{branch}"), format!("refs/heads/{base}"));
    let opts = GitOptions { env: ws.env(), timeout: NETWORK_TIMEOUT, ..GitOptions::default() };
    let args = ["-c", "credential.helper=", "ls-remote", "--heads", "--", ws.url(), &full, &full_base];
    let listing = String::from_utf8_lossy(&git_with(wt, &args, opts).await?).into_owned();
    let tip = |want: &str| {
        listing
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .find(|(_, name)| *name == want)
            .map(|(sha, _)| sha.trim().to_owned())
    };
    Ok((tip(&full), tip(&full_base)))
}

/// `new` to `refs/heads/<branch>` if the remote's branch is still `expect` (empty: still absent).
async fn push(ws: &Workspace<'_>, wt: &std::path::Path, branch: &str, new: &str, expect: &str) -> Result<(), PrError> {
    let lease = format!("--force-with-lease=refs/heads/{branch}:{expect}");
    let refspec = format!("{new}:refs/heads/{branch}");
    let args = [
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "credential.helper=",
        "push",
        "--no-verify",
        &lease,
        "--",
        ws.url(),
        &refspec,
    ];
    let opts = GitOptions { env: ws.env(), timeout: NETWORK_TIMEOUT, ..GitOptions::default() };
    match git_with(wt, &args, opts).await {
        Ok(_) => Ok(()),
        Err(GitError::Command { message, .. }) if message.contains("stale info") => {
            tracing::warn!(branch, "branch moved while pushing");
            Err(PrError::BranchMoved(branch.to_owned()))
        }
        Err(GitError::Command { message, .. }) => {
            tracing::warn!(branch, error = %message, "push refused");
            Err(PrError::PushRejected { branch: branch.to_owned(), message })
        }
        Err(e) => Err(e.into()),
    }
}

/// One commit of an existing branch.
struct BranchCommit {
    author_name: String,
    author_email: String,
    committer_name: String,
    committer_email: String,
}

impl BranchCommit {
    /// Authored and committed by the agent (emails are what git records; names are shown).
    fn by(&self, id: &Identity) -> bool {
        self.author_email.eq_ignore_ascii_case(&id.email) && self.committer_email.eq_ignore_ascii_case(&id.email)
    }

    /// Who the reason names: the author, or the committer when only the committer is someone else.
    fn who(&self, id: &Identity) -> &str {
        if self.author_email.eq_ignore_ascii_case(&id.email) { &self.committer_name } else { &self.author_name }
    }
}

/// The commits reachable from `tip` and not from `head_sha`, newest first (at most one more than the bound).
async fn branch_commits(wt: &std::path::Path, tip: &str, head_sha: &str) -> Result<Vec<BranchCommit>, PrError> {
    let max = format!("--max-count={}", MAX_BRANCH_COMMITS + 1);
    let not_head = format!("^{head_sha}");
    let listing = out(wt, &["log", "--format=%an%x00%ae%x00%cn%x00%ce", &max, tip, &not_head, "--"]).await?;
    Ok(listing
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\0').map(str::to_owned);
            Some(BranchCommit {
                author_name: f.next()?,
                author_email: f.next()?,
                committer_name: f.next()?,
                committer_email: f.next()?,
            })
        })
        .collect())
}

/// "commits by A, B are on sre-agent/...: not updating a branch others work on".
fn refusal(branch: &str, id: &Identity, foreign: &[&BranchCommit], total: usize) -> String {
    if foreign.is_empty() {
        return format!("{total} commits are on {branch}: not updating a branch that grew beyond the agent's fix");
    }
    let mut names: Vec<String> = Vec::new();
    for c in foreign {
        let who = c.who(id).trim();
        let who = if who.is_empty() { "someone else" } else { who };
        if !names.iter().any(|n| n == who) {
            names.push(who.chars().take(64).collect());
        }
    }
    let shown = if names.len() > 3 {
        format!("{} and {} others", names[..3].join(", "), names.len() - 3)
    } else {
        names.join(", ")
    };
    format!("commits by {shown} are on {branch}: not updating a branch others work on")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(author: (&str, &str), committer: (&str, &str)) -> BranchCommit {
        BranchCommit {
            author_name: author.0.into(),
            author_email: author.1.into(),
            committer_name: committer.0.into(),
            committer_email: committer.1.into(),
        }
    }

    #[test]
    fn cleans_the_message_up_as_git_commit_does() {
        assert_eq!(cleanup_message("Fix lint\n\nbody text\n"), "Fix lint\n\nbody text\n");
        assert_eq!(cleanup_message("Fix"), "Fix\n");
        assert_eq!(
            cleanup_message("\n  \nTitle  \t\n\n\n\nline one \r\n  indented\n\n# kept\n\n \n"),
            "Title\n\nline one\n  indented\n\n# kept\n"
        );
        assert_eq!(cleanup_message(" \n\t\n"), "");
    }

    #[test]
    fn refusals_name_who_committed() {
        let agent = Identity { name: "sre-agent".into(), email: "bot@x".into() };
        let own = c(("sre-agent", "BOT@x"), ("sre-agent", "bot@x"));
        assert!(own.by(&agent));
        let amended = c(("sre-agent", "bot@x"), ("Jane", "jane@x"));
        let human = c(("Ann", "ann@x"), ("Ann", "ann@x"));
        assert!(!amended.by(&agent) && !human.by(&agent));
        let foreign: Vec<&BranchCommit> = vec![&human, &amended, &human];
        let reason = refusal("sre-agent/lint/abc", &agent, &foreign, 4);
        // The committer is named when the agent is the author (someone amended the agent's commit).
        assert_eq!(reason, "commits by Ann, Jane are on sre-agent/lint/abc: not updating a branch others work on");
        let many: Vec<BranchCommit> = (0..5).map(|i| c((&format!("P{i}"), "p@x"), ("P", "p@x"))).collect();
        let refs: Vec<&BranchCommit> = many.iter().collect();
        assert!(refusal("b", &agent, &refs, 5).starts_with("commits by P0, P1, P2 and 2 others are on b"));
    }
}
