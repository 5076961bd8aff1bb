//! JSON bodies in the shapes of GitHub's REST description (`@octokit/openapi`): every property the schema
//! marks required is present, with the type it says. The schema test (`tests/schema.rs`) checks that.

use serde_json::{Value, json};

use crate::git::CommitInfo;
use crate::state::{CheckRunState, LabelState, PullState, RepoState};
use crate::time::iso;

/// The fake's public URLs, for the `*_url` fields.
#[derive(Clone, Debug)]
pub(crate) struct Urls {
    /// API root including any prefix (`http://127.0.0.1:P/api/v3`).
    pub api: String,
    /// Web/git root (`http://127.0.0.1:Q`).
    pub html: String,
}

pub(crate) fn error(message: &str, status: u16) -> Value {
    json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.to_string(),
    })
}

pub(crate) fn validation(errors: Value) -> Value {
    json!({
        "message": "Validation Failed",
        "errors": errors,
        "documentation_url": "https://docs.github.com/rest",
        "status": "422",
    })
}

/// `simple-user`.
pub(crate) fn user(u: &Urls, login: &str, id: u64) -> Value {
    let kind = if login.ends_with("[bot]") { "Bot" } else { "User" };
    let api = format!("{}/users/{}", u.api, login);
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_{id}"),
        "avatar_url": format!("{}/avatars/{id}", u.html),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("{}/{}", u.html, login),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": kind,
        "site_admin": false,
        "user_view_type": "public",
    })
}

/// `repository` / `full-repository` (the full form has three more required counts; both are sent).
pub(crate) fn repository(u: &Urls, r: &RepoState, pushed_at: u64) -> Value {
    let full = format!("{}/{}", r.owner, r.name);
    let api = format!("{}/repos/{full}", u.api);
    let html = format!("{}/{full}", u.html);
    let mut v = json!({
        "id": r.id,
        "node_id": format!("R_{}", r.id),
        "name": r.name,
        "full_name": full,
        "owner": user(u, &r.owner, r.owner_id),
        "private": r.private,
        "html_url": html,
        "description": null,
        "fork": false,
        "url": api,
        "clone_url": format!("{html}.git"),
        "git_url": format!("git://fake/{full}.git"),
        "ssh_url": format!("git@fake:{full}.git"),
        "svn_url": html,
        "mirror_url": null,
        "homepage": null,
        "language": null,
        "forks": 0,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 0,
        "default_branch": r.default_branch,
        "open_issues": r.pulls.iter().filter(|p| p.open).count(),
        "open_issues_count": r.pulls.iter().filter(|p| p.open).count(),
        "is_template": false,
        "topics": [],
        "has_issues": true,
        "has_projects": false,
        "has_wiki": false,
        "has_pages": false,
        "has_downloads": false,
        "has_discussions": false,
        "archived": false,
        "disabled": false,
        "visibility": if r.private { "private" } else { "public" },
        "license": null,
        "pushed_at": iso(pushed_at),
        "created_at": iso(r.created_at),
        "updated_at": iso(pushed_at),
        "allow_forking": true,
        "web_commit_signoff_required": false,
        "network_count": 0,
        "subscribers_count": 0,
        "permissions": {"admin": false, "maintain": false, "push": true, "triage": true, "pull": true},
    });
    let suffixes: &[(&str, &str)] = &[
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        ("notifications_url", "/notifications{?since,all,participating}"),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ];
    if let Some(obj) = v.as_object_mut() {
        for (field, suffix) in suffixes {
            obj.insert((*field).to_owned(), Value::String(format!("{api}{suffix}")));
        }
    }
    v
}

/// `commit` (as the single-commit and list endpoints return it). `author`/`committer` are the GitHub
/// accounts of the emails, or null.
pub(crate) fn commit(u: &Urls, full: &str, c: &CommitInfo, author: Option<Value>, committer: Option<Value>) -> Value {
    let api = format!("{}/repos/{full}", u.api);
    let html = format!("{}/{full}", u.html);
    json!({
        "url": format!("{api}/commits/{}", c.sha),
        "sha": c.sha,
        "node_id": format!("C_{}", c.sha),
        "html_url": format!("{html}/commit/{}", c.sha),
        "comments_url": format!("{api}/commits/{}/comments", c.sha),
        "commit": {
            "url": format!("{api}/git/commits/{}", c.sha),
            "author": {"name": c.author_name, "email": c.author_email, "date": iso(c.author_time)},
            "committer": {"name": c.committer_name, "email": c.committer_email, "date": iso(c.committer_time)},
            "message": c.message,
            "comment_count": 0,
            "tree": {"sha": c.tree, "url": format!("{api}/git/trees/{}", c.tree)},
        },
        "author": author,
        "committer": committer,
        "parents": c.parents.iter().map(|p| json!({
            "sha": p,
            "url": format!("{api}/commits/{p}"),
            "html_url": format!("{html}/commit/{p}"),
        })).collect::<Vec<_>>(),
    })
}

/// `branch-with-protection`.
pub(crate) fn branch(u: &Urls, full: &str, name: &str, head: Value) -> Value {
    let api = format!("{}/repos/{full}/branches/{name}", u.api);
    json!({
        "name": name,
        "commit": head,
        "_links": {"html": format!("{}/{full}/tree/{name}", u.html), "self": api},
        "protected": false,
        "protection": {
            "enabled": false,
            "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
        },
        "protection_url": format!("{api}/protection"),
    })
}

/// `label`.
pub(crate) fn label(u: &Urls, full: &str, l: &LabelState) -> Value {
    json!({
        "id": l.id,
        "node_id": format!("LA_{}", l.id),
        "url": format!("{}/repos/{full}/labels/{}", u.api, l.name.replace(' ', "%20")),
        "name": l.name,
        "description": l.description,
        "color": l.color,
        "default": false,
    })
}

/// One side (`head`/`base`) of a pull request.
fn pull_side(u: &Urls, repo: &RepoState, pushed_at: u64, branch: &str, sha: &str) -> Value {
    json!({
        "label": format!("{}:{branch}", repo.owner),
        "ref": branch,
        "sha": sha,
        "user": user(u, &repo.owner, repo.owner_id),
        "repo": repository(u, repo, pushed_at),
    })
}

/// Facts about a pull request that come from git.
pub(crate) struct PullGit {
    pub head_sha: String,
    pub base_sha: String,
    pub pushed_at: u64,
    pub commits: u64,
    pub additions: u64,
    pub deletions: u64,
    pub changed_files: u64,
}

/// `pull-request-simple` when `full` is false (lists), `pull-request` otherwise.
pub(crate) fn pull(
    u: &Urls,
    repo: &RepoState,
    p: &PullState,
    labels: Vec<Value>,
    author: Value,
    g: &PullGit,
    full: bool,
) -> Value {
    let full_name = format!("{}/{}", repo.owner, repo.name);
    let api = format!("{}/repos/{full_name}", u.api);
    let html = format!("{}/{full_name}/pull/{}", u.html, p.number);
    let own = format!("{api}/pulls/{}", p.number);
    let issue = format!("{api}/issues/{}", p.number);
    let statuses = format!("{api}/statuses/{}", g.head_sha);
    let mut v = json!({
        "url": own,
        "id": p.id,
        "node_id": format!("PR_{}", p.id),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": issue,
        "commits_url": format!("{own}/commits"),
        "review_comments_url": format!("{own}/comments"),
        "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
        "comments_url": format!("{issue}/comments"),
        "statuses_url": statuses,
        "number": p.number,
        "state": if p.open { "open" } else { "closed" },
        "locked": false,
        "title": p.title,
        "user": author,
        "body": p.body,
        "labels": labels,
        "milestone": null,
        "active_lock_reason": null,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "closed_at": p.closed_at.map(iso),
        "merged_at": null,
        "merge_commit_sha": null,
        "assignee": null,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": pull_side(u, repo, g.pushed_at, &p.head, &g.head_sha),
        "base": pull_side(u, repo, g.pushed_at, &p.base, &g.base_sha),
        "_links": {
            "self": {"href": own},
            "html": {"href": html},
            "issue": {"href": issue},
            "comments": {"href": format!("{issue}/comments")},
            "review_comments": {"href": format!("{own}/comments")},
            "review_comment": {"href": format!("{api}/pulls/comments{{/number}}")},
            "commits": {"href": format!("{own}/commits")},
            "statuses": {"href": statuses},
        },
        "author_association": "NONE",
        "auto_merge": null,
        "draft": p.draft,
    });
    if full && let Some(obj) = v.as_object_mut() {
        for (k, val) in [
            ("merged", json!(false)),
            ("mergeable", Value::Null),
            ("rebaseable", Value::Null),
            ("mergeable_state", json!("unknown")),
            ("merged_by", Value::Null),
            ("comments", json!(0)),
            ("review_comments", json!(0)),
            ("maintainer_can_modify", json!(false)),
            ("commits", json!(g.commits)),
            ("additions", json!(g.additions)),
            ("deletions", json!(g.deletions)),
            ("changed_files", json!(g.changed_files)),
        ] {
            obj.insert(k.to_owned(), val);
        }
    }
    v
}

/// `job`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn job(
    u: &Urls,
    full: &str,
    run_id: u64,
    attempt: usize,
    workflow: &str,
    head_sha: &str,
    head_branch: &str,
    j: &crate::state::JobSpec,
    started: u64,
) -> Value {
    let api = format!("{}/repos/{full}", u.api);
    let completed = j.status == "completed";
    json!({
        "id": j.id,
        "run_id": run_id,
        "run_url": format!("{api}/actions/runs/{run_id}"),
        "run_attempt": attempt,
        "node_id": format!("CR_{}", j.id),
        "head_sha": head_sha,
        "url": format!("{api}/actions/jobs/{}", j.id),
        "html_url": format!("{}/{full}/actions/runs/{run_id}/job/{}", u.html, j.id),
        "status": j.status,
        "conclusion": j.conclusion,
        "created_at": iso(started),
        "started_at": iso(started),
        "completed_at": completed.then(|| iso(started + 60)),
        "name": j.name,
        "steps": j.steps.iter().enumerate().map(|(i, (name, conclusion))| json!({
            "name": name,
            "status": if conclusion.is_some() { "completed" } else { "queued" },
            "conclusion": conclusion,
            "number": i + 1,
            "started_at": iso(started + i as u64),
            "completed_at": conclusion.as_ref().map(|_| iso(started + i as u64 + 1)),
        })).collect::<Vec<_>>(),
        "check_run_url": format!("{api}/check-runs/{}", j.id),
        "labels": ["ubuntu-latest"],
        "runner_id": 1,
        "runner_name": "GitHub Actions 1",
        "runner_group_id": 1,
        "runner_group_name": "GitHub Actions",
        "workflow_name": workflow,
        "head_branch": head_branch,
    })
}

/// `workflow-run`, the fields GitHub always sends that the agent may read.
pub(crate) fn workflow_run(u: &Urls, full: &str, run: &crate::state::RunSpec, started: u64) -> Value {
    let api = format!("{}/repos/{full}", u.api);
    let attempt = run.attempts.len().max(1);
    let jobs = run.attempts.last().map(Vec::as_slice).unwrap_or_default();
    let done = jobs.iter().all(|j| j.status == "completed");
    let conclusion = done.then(|| {
        if jobs.iter().any(|j| matches!(j.conclusion.as_deref(), Some("failure" | "timed_out" | "cancelled"))) {
            "failure"
        } else {
            "success"
        }
    });
    json!({
        "id": run.id,
        "name": run.workflow_name,
        "node_id": format!("WFR_{}", run.id),
        "head_branch": run.head_branch,
        "head_sha": run.head_sha,
        "path": ".github/workflows/ci.yml",
        "run_number": run.id,
        "run_attempt": attempt,
        "event": "push",
        "status": if done { "completed" } else { "in_progress" },
        "conclusion": conclusion,
        "workflow_id": 1,
        "check_suite_id": run.check_suite_id,
        "check_suite_node_id": format!("CS_{}", run.check_suite_id),
        "url": format!("{api}/actions/runs/{}", run.id),
        "html_url": format!("{}/{full}/actions/runs/{}", u.html, run.id),
        "jobs_url": format!("{api}/actions/runs/{}/jobs", run.id),
        "logs_url": format!("{api}/actions/runs/{}/logs", run.id),
        "created_at": iso(started),
        "updated_at": iso(started + 60),
        "run_started_at": iso(started),
    })
}

/// `check-run`; `app` is the `integration` of the App that owns it.
pub(crate) fn check_run(u: &Urls, full: &str, c: &CheckRunState, app: Value) -> Value {
    let api = format!("{}/repos/{full}", u.api);
    json!({
        "id": c.id,
        "head_sha": c.head_sha,
        "node_id": format!("CR_{}", c.id),
        "external_id": c.external_id.clone().unwrap_or_default(),
        "url": format!("{api}/check-runs/{}", c.id),
        "html_url": format!("{}/{full}/runs/{}", u.html, c.id),
        "details_url": c.details_url,
        "status": c.status,
        "conclusion": c.conclusion,
        "started_at": iso(c.started_at),
        "completed_at": c.completed_at.map(iso),
        "output": {
            "title": c.title,
            "summary": c.summary,
            "text": c.text,
            "annotations_count": 0,
            "annotations_url": format!("{api}/check-runs/{}/annotations", c.id),
        },
        "name": c.name,
        "check_suite": {"id": c.id + 500_000},
        "app": app,
        "pull_requests": [],
    })
}

/// `integration`.
pub(crate) fn app(u: &Urls, id: u64, slug: &str, owner: Value) -> Value {
    json!({
        "id": id,
        "slug": slug,
        "node_id": format!("A_{id}"),
        "client_id": format!("Iv1.{id}"),
        "owner": owner,
        "name": slug,
        "description": null,
        "external_url": format!("{}/apps/{slug}", u.html),
        "html_url": format!("{}/apps/{slug}", u.html),
        "created_at": iso(0),
        "updated_at": iso(0),
        "permissions": {"checks": "write", "contents": "write", "pull_requests": "write", "actions": "read",
                         "metadata": "read", "issues": "write"},
        "events": ["check_run", "check_suite", "workflow_run", "workflow_job"],
    })
}
