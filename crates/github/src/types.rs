//! Request and response bodies: only the fields sre-agent uses, named as in GitHub's REST description.
//! Unknown fields are ignored, so GitHub adding fields never breaks decoding.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use sre_domain::Conclusion;

use crate::error::GithubError;

/// A GitHub App installation id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstallationId(pub u64);

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `owner/name`, validated so it is always safe to put in a URL path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepoRef {
    owner: String,
    name: String,
}

impl RepoRef {
    /// GitHub's rules: letters, digits, `-`, `_`, `.`; at most 100 characters; not `.` or `..`.
    pub fn new(owner: &str, name: &str) -> Result<Self, GithubError> {
        let valid = |p: &str| {
            !p.is_empty()
                && p.len() <= 100
                && p != "."
                && p != ".."
                && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid(owner) || !valid(name) {
            return Err(GithubError::InvalidInput(format!("repository {owner:?}/{name:?} is not a valid name")));
        }
        Ok(Self { owner: owner.to_owned(), name: name.to_owned() })
    }

    /// Parses `owner/name`.
    pub fn parse(full_name: &str) -> Result<Self, GithubError> {
        let (owner, name) = full_name
            .split_once('/')
            .ok_or_else(|| GithubError::InvalidInput(format!("repository {full_name:?} is not owner/name")))?;
        Self::new(owner, name)
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// `null` and unknown values both become [`Conclusion::None`].
fn conclusion<'de, D: Deserializer<'de>>(d: D) -> Result<Conclusion, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    Ok(Conclusion::from_github(value.as_deref()))
}

/// A commit's `author`/`committer`: a `simple-user`, `null`, or `{}` (the REST description allows both).
fn account_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Account>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Object(map)) if map.is_empty() => Ok(None),
        Some(value) => serde_json::from_value(value).map(Some).map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

sre_domain::label_enum! {
    /// `status` of a job, a step or a check run.
    pub enum RunState {
        Queued => "queued",
        InProgress => "in_progress",
        Completed => "completed",
        Waiting => "waiting",
        Requested => "requested",
        Pending => "pending",
    }
}

/// A user or organisation as GitHub embeds it (`simple-user`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub login: String,
    pub id: u64,
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// `repository` / `full-repository`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Repository {
    pub id: u64,
    pub name: String,
    pub full_name: String,
    pub owner: Account,
    pub private: bool,
    pub default_branch: String,
    #[serde(default)]
    pub archived: bool,
}

#[derive(Deserialize)]
pub(crate) struct InstallationRepositories {
    pub total_count: u64,
    pub repositories: Vec<Repository>,
}

#[derive(Deserialize)]
pub(crate) struct InstallationToken {
    pub token: String,
    pub expires_at: String,
}

/// One step of a job.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Step {
    pub name: String,
    pub number: u32,
    pub status: RunState,
    #[serde(deserialize_with = "conclusion")]
    pub conclusion: Conclusion,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
}

/// A workflow job (`job`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Job {
    pub id: u64,
    pub run_id: u64,
    #[serde(default)]
    pub run_attempt: Option<u32>,
    pub name: String,
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub workflow_name: Option<String>,
    pub status: RunState,
    #[serde(deserialize_with = "conclusion")]
    pub conclusion: Conclusion,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub runner_name: Option<String>,
}

impl Job {
    /// The first step that concluded with a failure conclusion.
    pub fn failed_step(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.conclusion.is_failure())
    }
}

/// A workflow run (`workflow-run`), the fields the agent reads.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub run_attempt: Option<u32>,
    #[serde(default)]
    pub check_suite_id: Option<u64>,
    #[serde(default)]
    pub status: Option<RunState>,
    #[serde(deserialize_with = "conclusion")]
    pub conclusion: Conclusion,
}

#[derive(Deserialize)]
pub(crate) struct WorkflowRunList {
    pub total_count: u64,
    pub workflow_runs: Vec<WorkflowRun>,
}

#[derive(Deserialize)]
pub(crate) struct JobList {
    pub total_count: u64,
    pub jobs: Vec<Job>,
}

/// Which jobs of a workflow run to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobsOf {
    /// The latest attempt of each job (`?filter=latest`).
    Latest,
    /// Every attempt (`?filter=all`).
    All,
    /// One attempt (`/attempts/{n}/jobs`).
    Attempt(u32),
}

/// Name, email and date of a git author or committer (`git-user`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct GitPerson {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CommitDetail {
    pub message: String,
    #[serde(default)]
    pub author: Option<GitPerson>,
    #[serde(default)]
    pub committer: Option<GitPerson>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CommitParent {
    pub sha: String,
}

/// A commit (`commit`): the git data plus the GitHub accounts GitHub matched its emails to.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Commit {
    pub sha: String,
    pub commit: CommitDetail,
    /// `None` when the author email belongs to no GitHub account (GitHub sends `null` or `{}`).
    #[serde(default, deserialize_with = "account_or_empty")]
    pub author: Option<Account>,
    #[serde(default, deserialize_with = "account_or_empty")]
    pub committer: Option<Account>,
    pub parents: Vec<CommitParent>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BranchCommit {
    pub sha: String,
}

/// A branch and its head (`branch-with-protection`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Branch {
    pub name: String,
    pub commit: BranchCommit,
    #[serde(default)]
    pub protected: bool,
}

/// `head`/`base` of a pull request.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PullRef {
    /// `owner:branch`.
    pub label: String,
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
}

/// A pull request (`pull-request` / `pull-request-simple`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    pub id: u64,
    pub number: u64,
    pub state: String,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub draft: bool,
    pub html_url: String,
    pub user: Option<Account>,
    pub head: PullRef,
    pub base: PullRef,
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// `POST /repos/{o}/{r}/pulls`.
#[derive(Clone, Debug, Serialize)]
pub struct NewPullRequest {
    pub title: String,
    /// The branch with the changes. Same-repository branch name (`fix/x`) or `owner:branch` for a fork.
    pub head: String,
    pub base: String,
    pub body: String,
    /// Open as a draft (converting later needs GraphQL; see the crate docs).
    pub draft: bool,
    pub maintainer_can_modify: bool,
}

/// `PATCH /repos/{o}/{r}/pulls/{n}`: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PullRequestUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `open` or `closed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// What [`crate::Session::create_pull`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedPull {
    pub pull: PullRequest,
    /// True when GitHub answered "A pull request already exists" and this is that pull request.
    pub already_existed: bool,
}

/// A label (`label`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Label {
    pub id: u64,
    pub name: String,
    pub color: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `POST /repos/{o}/{r}/labels`.
#[derive(Clone, Debug, Serialize)]
pub struct NewLabel {
    pub name: String,
    /// Six hex digits without `#`.
    pub color: String,
    pub description: String,
}

/// `output` of a check run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutput {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
}

/// A check run (`check-run`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    pub status: RunState,
    #[serde(deserialize_with = "conclusion")]
    pub conclusion: Conclusion,
    #[serde(default)]
    pub details_url: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    pub output: CheckOutput,
}

sre_domain::label_enum! {
    /// The conclusions a check run may be given (GitHub refuses `stale` and `startup_failure` from Apps).
    pub enum CheckConclusion {
        Success => "success",
        Failure => "failure",
        Neutral => "neutral",
        Cancelled => "cancelled",
        Skipped => "skipped",
        TimedOut => "timed_out",
        ActionRequired => "action_required",
    }
}

/// `POST /repos/{o}/{r}/check-runs`.
#[derive(Clone, Debug, Serialize)]
pub struct NewCheckRun {
    pub name: String,
    pub head_sha: String,
    pub status: RunState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<CheckConclusion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<CheckOutput>,
}

/// `PATCH /repos/{o}/{r}/check-runs/{id}`: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckRunUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<RunState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<CheckConclusion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<CheckOutput>,
}

#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_are_validated() {
        assert!(RepoRef::parse("octo/hello-world.rs").is_ok());
        for bad in ["octo", "octo/..", "../x", "o/r/x", "o/r?x", "o/r#", "o /r", "/r", "o/"] {
            assert!(RepoRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn job_decodes_with_null_and_unknown_conclusions() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "id": 1, "run_id": 2, "name": "test", "head_sha": "abc", "status": "completed",
            "conclusion": "failure", "extra": true,
            "steps": [
                {"name": "a", "number": 1, "status": "completed", "conclusion": "success"},
                {"name": "b", "number": 2, "status": "completed", "conclusion": "failure"},
                {"name": "c", "number": 3, "status": "queued", "conclusion": null},
                {"name": "d", "number": 4, "status": "completed", "conclusion": "brand_new"}
            ]
        }))
        .unwrap();
        assert_eq!(job.conclusion, Conclusion::Failure);
        assert_eq!(job.failed_step().unwrap().name, "b");
        assert_eq!(job.steps[2].conclusion, Conclusion::None);
        assert_eq!(job.steps[3].conclusion, Conclusion::None);
    }

    #[test]
    fn commit_accounts_may_be_null_or_empty() {
        let c: Commit = serde_json::from_value(serde_json::json!({
            "sha": "a", "commit": {"message": "m"}, "author": {}, "committer": null, "parents": [{"sha": "b"}]
        }))
        .unwrap();
        assert_eq!((c.author, c.committer), (None, None));
        let c: Commit = serde_json::from_value(serde_json::json!({
            "sha": "a", "commit": {"message": "m"}, "author": {"login": "dev", "id": 1}, "parents": []
        }))
        .unwrap();
        assert_eq!(c.author.unwrap().login, "dev");
    }

    #[test]
    fn updates_skip_unset_fields() {
        let u = PullRequestUpdate { title: Some("t".into()), ..Default::default() };
        assert_eq!(serde_json::to_value(&u).unwrap(), serde_json::json!({"title": "t"}));
        let c = CheckRunUpdate { conclusion: Some(CheckConclusion::Success), ..Default::default() };
        assert_eq!(serde_json::to_value(&c).unwrap(), serde_json::json!({"conclusion": "success"}));
    }
}
