//! The REST handlers, the log blob host and the git smart-HTTP front. Paths, status codes and error bodies
//! follow GitHub's REST description and GitHub's observed behaviour (404 for repositories a token cannot
//! see, 422 `Validation Failed` with an `errors` array, 302 for job logs).

// Handlers answer early with a ready `Response` in `Err`; its size does not matter in a test fake.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::Shared;
use crate::git::{self, CommitInfo};
use crate::shapes::{self, PullGit};
use crate::state::{CheckRunState, LabelState, Principal, PullState, SeenAuth, TokenInfo, TokenKind, World};
use crate::time::{iso, now};

type Q = Query<HashMap<String, String>>;

/// Installation tokens live an hour, as on GitHub.
const TOKEN_LIFETIME: u64 = 3600;
/// Signed log URLs live a minute.
const BLOB_LIFETIME: u64 = 60;

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, "application/json; charset=utf-8".parse().expect("static header"));
    resp
}

pub(crate) fn gh_error(status: StatusCode, message: &str) -> Response {
    json_response(status, &shapes::error(message, status.as_u16()))
}

fn not_found() -> Response {
    gh_error(StatusCode::NOT_FOUND, "Not Found")
}

fn unprocessable(errors: Value) -> Response {
    json_response(StatusCode::UNPROCESSABLE_ENTITY, &shapes::validation(errors))
}

/// Parses `Authorization` (Bearer/token/Basic).
pub(crate) fn seen_auth(headers: &HeaderMap) -> SeenAuth {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return SeenAuth::None;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "token" => SeenAuth::Bearer(rest.trim().to_owned()),
        "basic" => base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| {
                s.split_once(':').map(|(u, p)| SeenAuth::Basic { user: u.to_owned(), password: p.to_owned() })
            })
            .unwrap_or_else(|| SeenAuth::Other(value.to_owned())),
        _ => SeenAuth::Other(value.to_owned()),
    }
}

/// The principal of an API call, or GitHub's 401.
fn principal(shared: &Shared, headers: &HeaderMap) -> Result<Principal, Response> {
    match seen_auth(headers) {
        SeenAuth::None => Err(gh_error(StatusCode::UNAUTHORIZED, "Requires authentication")),
        SeenAuth::Bearer(token) => {
            shared.world().principal(&token, now()).ok_or_else(|| gh_error(StatusCode::UNAUTHORIZED, "Bad credentials"))
        }
        _ => Err(gh_error(StatusCode::UNAUTHORIZED, "Bad credentials")),
    }
}

/// The principal, if it can see `owner/repo`; GitHub answers 404 for repositories a token cannot see.
fn repo_principal(
    shared: &Shared,
    headers: &HeaderMap,
    owner: &str,
    repo: &str,
) -> Result<(Principal, String), Response> {
    let who = principal(shared, headers)?;
    let full = format!("{owner}/{repo}");
    if !shared.world().can_see(&who, &full) {
        return Err(not_found());
    }
    Ok((who, full))
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() || v.is_array() => Ok(v),
        _ => Err(gh_error(StatusCode::BAD_REQUEST, "Problems parsing JSON")),
    }
}

fn page_params(q: &HashMap<String, String>) -> (usize, usize) {
    let per_page = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30usize).clamp(1, 100);
    let page = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1usize).max(1);
    (per_page, page)
}

fn paginate<T: Clone>(items: &[T], per_page: usize, page: usize) -> Vec<T> {
    items.iter().skip(per_page.saturating_mul(page - 1)).take(per_page).cloned().collect()
}

// ---------------------------------------------------------------------------------------------------------
// Apps

#[derive(serde::Deserialize)]
struct AppClaims {
    iat: u64,
    exp: u64,
    iss: Value,
}

/// `POST /app/installations/{installation_id}/access_tokens`: verifies the App JWT (RS256 with the App's
/// public key; `iss` = app id; `exp` at most 10 minutes ahead; `iat` in the past) and mints a token.
pub(crate) async fn create_access_token(
    State(shared): State<Arc<Shared>>,
    Path(installation_id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let SeenAuth::Bearer(jwt) = seen_auth(&headers) else {
        return gh_error(StatusCode::UNAUTHORIZED, "A JSON web token could not be decoded");
    };
    let apps: Vec<(u64, String)> = shared.world().apps.values().map(|a| (a.id, a.public_pem.clone())).collect();
    let mut verified = None;
    for (app_id, pem) in apps {
        let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()) else { continue };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iat", "iss"]);
        validation.leeway = 0;
        if let Ok(data) = jsonwebtoken::decode::<AppClaims>(&jwt, &key, &validation) {
            let iss_matches = match &data.claims.iss {
                Value::String(s) => s == &app_id.to_string(),
                Value::Number(n) => n.as_u64() == Some(app_id),
                _ => false,
            };
            if iss_matches {
                verified = Some((app_id, data.claims));
                break;
            }
        }
    }
    let Some((app_id, claims)) = verified else {
        return gh_error(StatusCode::UNAUTHORIZED, "A JSON web token could not be decoded");
    };
    let t = now();
    if claims.exp > t + 600 {
        return gh_error(StatusCode::UNAUTHORIZED, "'Expiration time' claim ('exp') is too far in the future");
    }
    if claims.iat > t {
        return gh_error(
            StatusCode::UNAUTHORIZED,
            "'Issued at' claim ('iat') must be an Integer representing a time in the past",
        );
    }
    let mut world = shared.world();
    if world.installations.get(&installation_id).is_none_or(|i| i.app_id != app_id) {
        return not_found();
    }
    let token = format!("ghs_{}", crate::random_alnum(36));
    let expires_at = t + TOKEN_LIFETIME;
    world.tokens.insert(
        token.clone(),
        TokenInfo { kind: TokenKind::Installation(installation_id), expires_at: Some(expires_at), revoked: false },
    );
    world.issued.push(token.clone());
    json_response(
        StatusCode::CREATED,
        &json!({
            "token": token,
            "expires_at": iso(expires_at),
            "permissions": {"actions": "read", "checks": "write", "contents": "write", "issues": "write",
                            "metadata": "read", "pull_requests": "write"},
            "repository_selection": "selected",
        }),
    )
}

/// `GET /installation/repositories`.
pub(crate) async fn installation_repositories(State(shared): State<Arc<Shared>>, headers: HeaderMap, q: Q) -> Response {
    let who = match principal(&shared, &headers) {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    let Principal::Installation { id, .. } = who else {
        return gh_error(StatusCode::FORBIDDEN, "This endpoint requires you to be authenticated as an installation.");
    };
    let (per_page, page) = page_params(&q);
    let world = shared.world();
    let names: Vec<String> =
        world.installations.get(&id).map(|i| i.repos.iter().cloned().collect()).unwrap_or_default();
    let repos: Vec<Value> = paginate(&names, per_page, page)
        .iter()
        .filter_map(|n| world.repos.get(n))
        .map(|r| shapes::repository(&shared.urls, r, r.created_at))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"total_count": names.len(), "repository_selection": "selected", "repositories": repos}),
    )
}

/// `GET /repos/{owner}/{repo}`.
pub(crate) async fn get_repo(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let world = shared.world();
    match world.repos.get(&full) {
        Some(r) => json_response(StatusCode::OK, &shapes::repository(&shared.urls, r, r.created_at)),
        None => not_found(),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Actions

fn jobs_json(shared: &Shared, world: &World, full: &str, run_id: u64, attempts: &[usize]) -> Option<Vec<Value>> {
    let run = world.repos.get(full)?.runs.get(&run_id)?;
    let mut out = Vec::new();
    for &n in attempts {
        for job in run.attempts.get(n.checked_sub(1)?)? {
            out.push(shapes::job(
                &shared.urls,
                full,
                run_id,
                n,
                &run.workflow_name,
                &run.head_sha,
                &run.head_branch,
                job,
                shared.started,
            ));
        }
    }
    Some(out)
}

/// `GET /repos/{owner}/{repo}/actions/runs` with the `check_suite_id`, `head_sha` and `branch` filters.
pub(crate) async fn list_runs(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    q: Q,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let suite = match q.get("check_suite_id").map(|v| v.parse::<u64>()) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            return unprocessable(json!([{"resource": "WorkflowRun", "field": "check_suite_id", "code": "invalid"}]));
        }
    };
    let world = shared.world();
    let Some(r) = world.repos.get(&full) else { return not_found() };
    let runs: Vec<Value> = r
        .runs
        .values()
        .rev()
        .filter(|run| suite.is_none_or(|id| run.check_suite_id == id))
        .filter(|run| q.get("head_sha").is_none_or(|sha| &run.head_sha == sha))
        .filter(|run| q.get("branch").is_none_or(|b| &run.head_branch == b))
        .map(|run| shapes::workflow_run(&shared.urls, &full, run, shared.started))
        .collect();
    let (per_page, page) = page_params(&q);
    json_response(StatusCode::OK, &json!({"total_count": runs.len(), "workflow_runs": paginate(&runs, per_page, page)}))
}

/// `GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs?filter=latest|all`.
pub(crate) async fn list_jobs(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, run_id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    q: Q,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let world = shared.world();
    let Some(count) = world.repos.get(&full).and_then(|r| r.runs.get(&run_id)).map(|r| r.attempts.len()) else {
        return not_found();
    };
    let attempts: Vec<usize> = match q.get("filter").map(String::as_str) {
        None | Some("latest") => vec![count],
        Some("all") => (1..=count).collect(),
        Some(_) => {
            return unprocessable(json!([{"resource": "WorkflowJob", "field": "filter", "code": "invalid"}]));
        }
    };
    let jobs = jobs_json(&shared, &world, &full, run_id, &attempts).unwrap_or_default();
    let (per_page, page) = page_params(&q);
    json_response(StatusCode::OK, &json!({"total_count": jobs.len(), "jobs": paginate(&jobs, per_page, page)}))
}

/// `GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs`.
pub(crate) async fn list_attempt_jobs(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, run_id, attempt)): Path<(String, String, u64, usize)>,
    headers: HeaderMap,
    q: Q,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let world = shared.world();
    let Some(jobs) = jobs_json(&shared, &world, &full, run_id, &[attempt]) else {
        return not_found();
    };
    let (per_page, page) = page_params(&q);
    json_response(StatusCode::OK, &json!({"total_count": jobs.len(), "jobs": paginate(&jobs, per_page, page)}))
}

/// `GET /repos/{owner}/{repo}/actions/jobs/{job_id}` (its latest attempt).
pub(crate) async fn get_job(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, job_id)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let world = shared.world();
    let Some(r) = world.repos.get(&full) else { return not_found() };
    for run in r.runs.values() {
        for (i, jobs) in run.attempts.iter().enumerate().rev() {
            if let Some(job) = jobs.iter().find(|j| j.id == job_id) {
                let body = shapes::job(
                    &shared.urls,
                    &full,
                    run.id,
                    i + 1,
                    &run.workflow_name,
                    &run.head_sha,
                    &run.head_branch,
                    job,
                    shared.started,
                );
                return json_response(StatusCode::OK, &body);
            }
        }
    }
    not_found()
}

/// `GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs`: 302 to a signed, one-minute URL on the blob host.
pub(crate) async fn job_logs(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, job_id)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let mut world = shared.world();
    if world.logs.get(&job_id).is_none_or(|(repo, _)| repo != &full) {
        return not_found();
    }
    let key = crate::random_alnum(24);
    let sig = crate::random_alnum(32);
    let expires_at = now() + BLOB_LIFETIME;
    world.blobs.insert(key.clone(), crate::state::Blob { job_id, sig: sig.clone(), expires_at });
    let location = format!("{}/job-logs/{key}?sv=2023-01-01&se={expires_at}&sig={sig}", shared.blob_base);
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    if let Ok(v) = location.parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The blob host: serves a log for a valid signature and refuses any request that carries `Authorization`
/// (as the storage hosts GitHub redirects to do: one auth mechanism per request).
pub(crate) async fn blob(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    q: Q,
) -> Response {
    let xml = |status: StatusCode, code: &str| {
        let mut resp = Response::new(Body::from(format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code></Error>"
        )));
        *resp.status_mut() = status;
        resp.headers_mut().insert(header::CONTENT_TYPE, "application/xml".parse().expect("static header"));
        resp
    };
    if headers.contains_key(header::AUTHORIZATION) {
        return xml(StatusCode::BAD_REQUEST, "InvalidAuthenticationInfo");
    }
    let world = shared.world();
    let Some(b) = world.blobs.get(&key) else { return xml(StatusCode::NOT_FOUND, "BlobNotFound") };
    if q.get("sig") != Some(&b.sig) || b.expires_at < now() {
        return xml(StatusCode::FORBIDDEN, "AuthenticationFailed");
    }
    let Some((_, bytes)) = world.logs.get(&b.job_id) else { return xml(StatusCode::NOT_FOUND, "BlobNotFound") };
    let mut resp = Response::new(Body::from(bytes.clone()));
    resp.headers_mut().insert(header::CONTENT_TYPE, "text/plain".parse().expect("static header"));
    resp
}

// ---------------------------------------------------------------------------------------------------------
// Commits and branches

/// GitHub accounts for a commit's author and committer emails.
fn accounts(shared: &Shared, c: &CommitInfo) -> (Option<Value>, Option<Value>) {
    let mut world = shared.world();
    let mut account = |email: &str| {
        let login = world.users.get(email).cloned()?;
        let id = world.login_id(&login);
        Some(shapes::user(&shared.urls, &login, id))
    };
    (account(&c.author_email), account(&c.committer_email))
}

fn commit_json(shared: &Shared, full: &str, c: &CommitInfo) -> Value {
    let (author, committer) = accounts(shared, c);
    shapes::commit(&shared.urls, full, c, author, committer)
}

/// `GET /repos/{owner}/{repo}/commits/{ref}`.
pub(crate) async fn get_commit(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, reference)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let dir = git::repo_dir(&shared.root, &full);
    let Some(sha) = git::resolve(&dir, &reference).await else {
        return unprocessable_commit(&reference);
    };
    match git::log(&dir, &sha, 0, 1).await.first() {
        Some(c) => json_response(StatusCode::OK, &commit_json(&shared, &full, c)),
        None => unprocessable_commit(&reference),
    }
}

fn unprocessable_commit(reference: &str) -> Response {
    gh_error(StatusCode::UNPROCESSABLE_ENTITY, &format!("No commit found for SHA: {reference}"))
}

/// `GET /repos/{owner}/{repo}/commits?sha=&per_page=&page=`.
pub(crate) async fn list_commits(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    q: Q,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let dir = git::repo_dir(&shared.root, &full);
    let reference = match q.get("sha") {
        Some(r) => r.clone(),
        None => shared.world().repos.get(&full).map(|r| r.default_branch.clone()).unwrap_or_default(),
    };
    let Some(sha) = git::resolve(&dir, &reference).await else {
        return not_found();
    };
    let (per_page, page) = page_params(&q);
    let commits = git::log(&dir, &sha, per_page * (page - 1), per_page).await;
    let body: Vec<Value> = commits.iter().map(|c| commit_json(&shared, &full, c)).collect();
    json_response(StatusCode::OK, &Value::Array(body))
}

/// `GET /repos/{owner}/{repo}/branches/{branch}`.
pub(crate) async fn get_branch(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, branch)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let dir = git::repo_dir(&shared.root, &full);
    let Some(sha) = git::branch_head(&dir, &branch).await else {
        return gh_error(StatusCode::NOT_FOUND, "Branch not found");
    };
    let Some(c) = git::log(&dir, &sha, 0, 1).await.into_iter().next() else {
        return gh_error(StatusCode::NOT_FOUND, "Branch not found");
    };
    let head = commit_json(&shared, &full, &c);
    json_response(StatusCode::OK, &shapes::branch(&shared.urls, &full, &branch, head))
}

// ---------------------------------------------------------------------------------------------------------
// Pull requests

async fn pull_git(shared: &Shared, full: &str, p: &PullState, with_stats: bool) -> PullGit {
    let dir = git::repo_dir(&shared.root, full);
    let head_sha = git::branch_head(&dir, &p.head).await.unwrap_or_else(|| "0".repeat(40));
    let base_sha = git::branch_head(&dir, &p.base).await.unwrap_or_else(|| "0".repeat(40));
    let (commits, additions, deletions, changed_files) =
        if with_stats { git::diff_stats(&dir, &base_sha, &head_sha).await } else { (0, 0, 0, 0) };
    PullGit { head_sha, base_sha, pushed_at: shared.started, commits, additions, deletions, changed_files }
}

async fn render_pull(shared: &Shared, full: &str, p: &PullState, with_stats: bool) -> Value {
    let g = pull_git(shared, full, p, with_stats).await;
    let mut world = shared.world();
    let login = world.login_of(&p.author);
    let id = world.login_id(&login);
    let author = shapes::user(&shared.urls, &login, id);
    let Some(repo) = world.repos.get(full) else { return Value::Null };
    let labels = p
        .labels
        .iter()
        .filter_map(|n| repo.labels.iter().find(|l| &l.name == n))
        .map(|l| shapes::label(&shared.urls, full, l))
        .collect();
    shapes::pull(&shared.urls, repo, p, labels, author, &g, with_stats)
}

/// `GET /repos/{owner}/{repo}/pulls?state=&head=owner:branch&base=&per_page=&page=`.
pub(crate) async fn list_pulls(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    q: Q,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let state = q.get("state").map(String::as_str).unwrap_or("open");
    if !matches!(state, "open" | "closed" | "all") {
        return unprocessable(json!([{"resource": "PullRequest", "field": "state", "code": "invalid"}]));
    }
    let pulls: Vec<PullState> = {
        let world = shared.world();
        let Some(r) = world.repos.get(&full) else { return not_found() };
        r.pulls
            .iter()
            .rev()
            .filter(|p| match state {
                "open" => p.open,
                "closed" => !p.open,
                _ => true,
            })
            // GitHub ignores a `head` without the `owner:` part.
            .filter(|p| match q.get("head").and_then(|h| h.split_once(':')) {
                Some((o, b)) => o == r.owner && b == p.head,
                None => true,
            })
            .filter(|p| q.get("base").is_none_or(|b| b == &p.base))
            .cloned()
            .collect()
    };
    let (per_page, page) = page_params(&q);
    let mut body = Vec::new();
    for p in paginate(&pulls, per_page, page) {
        body.push(render_pull(&shared, &full, &p, false).await);
    }
    json_response(StatusCode::OK, &Value::Array(body))
}

/// `POST /repos/{owner}/{repo}/pulls`.
pub(crate) async fn create_pull(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (who, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(title), Some(head), Some(base)) = (field("title"), field("head"), field("base")) else {
        let missing: Vec<Value> = ["title", "head", "base"]
            .iter()
            .filter(|k| field(k).is_none())
            .map(|k| json!({"resource": "PullRequest", "field": k, "code": "missing_field"}))
            .collect();
        return unprocessable(Value::Array(missing));
    };
    let head_branch = match head.split_once(':') {
        Some((o, b)) if o == owner => b.to_owned(),
        Some(_) => return unprocessable(json!([{"resource": "PullRequest", "field": "head", "code": "invalid"}])),
        None => head.clone(),
    };
    let dir = git::repo_dir(&shared.root, &full);
    let Some(head_sha) = git::branch_head(&dir, &head_branch).await else {
        return unprocessable(json!([{"resource": "PullRequest", "field": "head", "code": "invalid"}]));
    };
    let Some(base_sha) = git::branch_head(&dir, &base).await else {
        return unprocessable(json!([{"resource": "PullRequest", "field": "base", "code": "invalid"}]));
    };
    let (ahead, ..) = git::diff_stats(&dir, &base_sha, &head_sha).await;
    let pull = {
        let mut world = shared.world();
        let id = world.next_id();
        let Some(r) = world.repos.get_mut(&full) else { return not_found() };
        if r.pulls.iter().any(|p| p.open && p.head == head_branch && p.base == base) {
            return unprocessable(json!([{
                "resource": "PullRequest",
                "code": "custom",
                "message": format!("A pull request already exists for {owner}:{head_branch}."),
            }]));
        }
        if ahead == 0 {
            return unprocessable(json!([{
                "resource": "PullRequest",
                "code": "custom",
                "message": format!("No commits between {base} and {head_branch}"),
            }]));
        }
        let t = now();
        let pull = PullState {
            id,
            number: r.pulls.len() as u64 + 1,
            title,
            body: field("body"),
            head: head_branch,
            base,
            draft: body.get("draft").and_then(Value::as_bool).unwrap_or(false),
            open: true,
            author: who,
            labels: Vec::new(),
            created_at: t,
            updated_at: t,
            closed_at: None,
        };
        r.pulls.push(pull.clone());
        pull
    };
    json_response(StatusCode::CREATED, &render_pull(&shared, &full, &pull, true).await)
}

/// `GET /repos/{owner}/{repo}/pulls/{pull_number}`.
pub(crate) async fn get_pull(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let pull = shared.world().repos.get(&full).and_then(|r| r.pulls.iter().find(|p| p.number == number).cloned());
    match pull {
        Some(p) => json_response(StatusCode::OK, &render_pull(&shared, &full, &p, true).await),
        None => not_found(),
    }
}

/// `PATCH /repos/{owner}/{repo}/pulls/{pull_number}`: title, body, state, base (not draft: GraphQL only).
pub(crate) async fn update_pull(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if let Some(state) = body.get("state").and_then(Value::as_str)
        && !matches!(state, "open" | "closed")
    {
        return unprocessable(json!([{"resource": "PullRequest", "field": "state", "code": "invalid"}]));
    }
    if let Some(base) = body.get("base").and_then(Value::as_str)
        && git::branch_head(&git::repo_dir(&shared.root, &full), base).await.is_none()
    {
        return unprocessable(json!([{"resource": "PullRequest", "field": "base", "code": "invalid"}]));
    }
    let pull = {
        let mut world = shared.world();
        let Some(p) = world.repos.get_mut(&full).and_then(|r| r.pulls.iter_mut().find(|p| p.number == number)) else {
            return not_found();
        };
        if let Some(t) = body.get("title").and_then(Value::as_str) {
            p.title = t.to_owned();
        }
        if let Some(b) = body.get("body") {
            p.body = b.as_str().map(str::to_owned);
        }
        if let Some(b) = body.get("base").and_then(Value::as_str) {
            p.base = b.to_owned();
        }
        if let Some(state) = body.get("state").and_then(Value::as_str) {
            p.open = state == "open";
            p.closed_at = (!p.open).then(now);
        }
        p.updated_at = now();
        p.clone()
    };
    json_response(StatusCode::OK, &render_pull(&shared, &full, &pull, true).await)
}

// ---------------------------------------------------------------------------------------------------------
// Labels

fn new_label(world: &mut World, name: &str, color: &str, description: Option<String>) -> LabelState {
    LabelState { id: world.next_id(), name: name.to_owned(), color: color.to_owned(), description }
}

/// `GET /repos/{owner}/{repo}/labels`.
pub(crate) async fn list_labels(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    q: Q,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let world = shared.world();
    let labels: Vec<Value> = world
        .repos
        .get(&full)
        .map(|r| r.labels.iter().map(|l| shapes::label(&shared.urls, &full, l)).collect())
        .unwrap_or_default();
    let (per_page, page) = page_params(&q);
    json_response(StatusCode::OK, &Value::Array(paginate(&labels, per_page, page)))
}

/// `POST /repos/{owner}/{repo}/labels`: 201, or 422 `already_exists` (names compare case-insensitively).
pub(crate) async fn create_label(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let Some(name) = body.get("name").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) else {
        return unprocessable(json!([{"resource": "Label", "field": "name", "code": "missing_field"}]));
    };
    let color = body.get("color").and_then(Value::as_str).unwrap_or("ededed").trim_start_matches('#');
    if color.len() != 6 || !color.bytes().all(|b| b.is_ascii_hexdigit()) {
        return unprocessable(json!([{"resource": "Label", "field": "color", "code": "invalid"}]));
    }
    let description = body.get("description").and_then(Value::as_str).map(str::to_owned);
    let mut world = shared.world();
    let exists = world.repos.get(&full).is_some_and(|r| r.labels.iter().any(|l| l.name.eq_ignore_ascii_case(name)));
    if exists {
        return unprocessable(json!([{"resource": "Label", "code": "already_exists", "field": "name"}]));
    }
    let label = new_label(&mut world, name, color, description);
    let value = shapes::label(&shared.urls, &full, &label);
    if let Some(r) = world.repos.get_mut(&full) {
        r.labels.push(label);
    }
    json_response(StatusCode::CREATED, &value)
}

/// `GET` and `POST /repos/{owner}/{repo}/issues/{issue_number}/labels` (POST body `{"labels": [...]}` or a
/// bare array; unknown labels are created, as GitHub does).
pub(crate) async fn issue_labels(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let mut names = Vec::new();
    if method == Method::POST {
        let body = match parse_body(&body) {
            Ok(b) => b,
            Err(resp) => return resp,
        };
        let list = body.get("labels").cloned().unwrap_or(body);
        let Some(items) = list.as_array() else {
            return unprocessable(json!([{"resource": "Label", "field": "labels", "code": "invalid"}]));
        };
        for item in items {
            match item.as_str().or_else(|| item.get("name").and_then(Value::as_str)) {
                Some(n) if !n.trim().is_empty() => names.push(n.to_owned()),
                _ => return unprocessable(json!([{"resource": "Label", "field": "labels", "code": "invalid"}])),
            }
        }
    }
    let mut world = shared.world();
    let Some(r) = world.repos.get(&full) else { return not_found() };
    if !r.pulls.iter().any(|p| p.number == number) {
        return not_found();
    }
    for name in &names {
        let known = world.repos.get(&full).is_some_and(|r| r.labels.iter().any(|l| &l.name == name));
        if !known {
            let label = new_label(&mut world, name, "ededed", None);
            if let Some(r) = world.repos.get_mut(&full) {
                r.labels.push(label);
            }
        }
    }
    let Some(r) = world.repos.get_mut(&full) else { return not_found() };
    let Some(p) = r.pulls.iter_mut().find(|p| p.number == number) else { return not_found() };
    for name in names {
        if !p.labels.contains(&name) {
            p.labels.push(name);
        }
    }
    let on_issue = p.labels.clone();
    let body: Vec<Value> = on_issue
        .iter()
        .filter_map(|n| r.labels.iter().find(|l| &l.name == n))
        .map(|l| shapes::label(&shared.urls, &full, l))
        .collect();
    json_response(StatusCode::OK, &Value::Array(body))
}

// ---------------------------------------------------------------------------------------------------------
// Check runs

const CHECK_STATUSES: [&str; 3] = ["queued", "in_progress", "completed"];
const CHECK_CONCLUSIONS: [&str; 8] =
    ["action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"];

fn check_run_json(shared: &Shared, world: &mut World, full: &str, c: &CheckRunState) -> Value {
    let slug = world.apps.get(&c.app_id).map(|a| a.slug.clone()).unwrap_or_else(|| "app".to_owned());
    let owner = world.repos.get(full).map(|r| (r.owner.clone(), r.owner_id));
    let owner = owner.map(|(login, id)| shapes::user(&shared.urls, &login, id)).unwrap_or(Value::Null);
    let app = shapes::app(&shared.urls, c.app_id, &slug, owner);
    shapes::check_run(&shared.urls, full, c, app)
}

/// Applies `status`/`conclusion`/`details_url`/`external_id`/`output` of a create or update body.
fn apply_check_fields(c: &mut CheckRunState, body: &Value) -> Result<(), Response> {
    let invalid = |field: &str| unprocessable(json!([{"resource": "CheckRun", "field": field, "code": "invalid"}]));
    if let Some(s) = body.get("status") {
        match s.as_str() {
            Some(s) if CHECK_STATUSES.contains(&s) => c.status = s.to_owned(),
            _ => return Err(invalid("status")),
        }
    }
    if let Some(v) = body.get("conclusion") {
        match v.as_str() {
            Some(v) if CHECK_CONCLUSIONS.contains(&v) => {
                c.conclusion = Some(v.to_owned());
                // Providing a conclusion sets the status to completed.
                c.status = "completed".to_owned();
            }
            _ => return Err(invalid("conclusion")),
        }
    }
    if c.status == "completed" {
        if c.conclusion.is_none() {
            return Err(invalid("conclusion"));
        }
        c.completed_at.get_or_insert_with(now);
    }
    for (key, slot) in [("details_url", &mut c.details_url), ("external_id", &mut c.external_id)] {
        if let Some(v) = body.get(key).and_then(Value::as_str) {
            *slot = Some(v.to_owned());
        }
    }
    if let Some(output) = body.get("output") {
        let title = output.get("title").and_then(Value::as_str);
        let summary = output.get("summary").and_then(Value::as_str);
        let (Some(title), Some(summary)) = (title, summary) else {
            return Err(invalid("output"));
        };
        if summary.chars().count() > 65_535 {
            return Err(invalid("output"));
        }
        c.title = Some(title.to_owned());
        c.summary = Some(summary.to_owned());
        c.text = output.get("text").and_then(Value::as_str).map(str::to_owned);
    }
    Ok(())
}

fn app_of(who: &Principal) -> Result<u64, Response> {
    match who {
        Principal::Installation { app_id, .. } => Ok(*app_id),
        Principal::User { .. } => Err(gh_error(StatusCode::FORBIDDEN, "You must authenticate via a GitHub App.")),
    }
}

/// `POST /repos/{owner}/{repo}/check-runs` (GitHub Apps only).
pub(crate) async fn create_check_run(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (who, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let app_id = match app_of(&who) {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(name), Some(head_sha)) = (field("name"), field("head_sha")) else {
        return unprocessable(json!([{"resource": "CheckRun", "code": "missing_field"}]));
    };
    if git::resolve(&git::repo_dir(&shared.root, &full), &head_sha).await.as_deref() != Some(head_sha.as_str()) {
        return unprocessable(json!([{"resource": "CheckRun", "field": "head_sha", "code": "invalid",
                                     "message": format!("No commit found for SHA: {head_sha}")}]));
    }
    let mut world = shared.world();
    let mut run = CheckRunState {
        id: world.next_id(),
        app_id,
        name,
        head_sha,
        status: "queued".to_owned(),
        conclusion: None,
        details_url: None,
        external_id: None,
        title: None,
        summary: None,
        text: None,
        started_at: now(),
        completed_at: None,
    };
    if let Err(resp) = apply_check_fields(&mut run, &body) {
        return resp;
    }
    let value = check_run_json(&shared, &mut world, &full, &run);
    if let Some(r) = world.repos.get_mut(&full) {
        r.check_runs.push(run);
    }
    json_response(StatusCode::CREATED, &value)
}

/// `GET` and `PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}` (only the owning App may update).
pub(crate) async fn check_run(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (who, full) = match repo_principal(&shared, &headers, &owner, &repo) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let mut world = shared.world();
    let Some(mut run) = world.repos.get(&full).and_then(|r| r.check_runs.iter().find(|c| c.id == id).cloned()) else {
        return not_found();
    };
    if method == Method::PATCH {
        let app_id = match app_of(&who) {
            Ok(id) => id,
            Err(resp) => return resp,
        };
        if app_id != run.app_id {
            return gh_error(
                StatusCode::FORBIDDEN,
                "Invalid app_id `other` - check run can only be modified by the GitHub App that created it.",
            );
        }
        let body = match parse_body(&body) {
            Ok(b) => b,
            Err(resp) => return resp,
        };
        if let Some(n) = body.get("name").and_then(Value::as_str) {
            run.name = n.to_owned();
        }
        if let Err(resp) = apply_check_fields(&mut run, &body) {
            return resp;
        }
        if let Some(slot) = world.repos.get_mut(&full).and_then(|r| r.check_runs.iter_mut().find(|c| c.id == id)) {
            *slot = run.clone();
        }
    }
    json_response(StatusCode::OK, &check_run_json(&shared, &mut world, &full, &run))
}

// ---------------------------------------------------------------------------------------------------------
// Git smart HTTP

/// `/{owner}/{repo}.git/{info/refs, git-upload-pack, git-receive-pack}`: Basic auth with a valid token
/// (`x-access-token:<installation token>`, any user for a plain token), then `git http-backend`.
pub(crate) async fn git_http(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path((owner, repo_git, rest)): Path<(String, String, String)>,
    headers: HeaderMap,
    q: axum::extract::RawQuery,
    body: Bytes,
) -> Response {
    let challenge = || {
        let mut resp = git::plain(StatusCode::UNAUTHORIZED, "Authentication failed");
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, "Basic realm=\"GitHub\"".parse().expect("static header"));
        resp
    };
    let Some(repo) = repo_git.strip_suffix(".git") else { return git::plain(StatusCode::NOT_FOUND, "Not Found") };
    if !matches!(rest.as_str(), "info/refs" | "git-upload-pack" | "git-receive-pack") {
        return git::plain(StatusCode::NOT_FOUND, "Not Found");
    }
    let SeenAuth::Basic { user, password } = seen_auth(&headers) else { return challenge() };
    let full = format!("{owner}/{repo}");
    {
        let world = shared.world();
        let Some(who) = world.principal(&password, now()) else { return challenge() };
        if matches!(who, Principal::Installation { .. }) && user != "x-access-token" {
            return challenge();
        }
        if !world.can_see(&who, &full) {
            return git::plain(StatusCode::NOT_FOUND, "Repository not found.");
        }
    }
    let path_info = format!("/{full}.git/{rest}");
    git::http_backend(&shared.root, method.as_str(), &path_info, q.0.as_deref().unwrap_or(""), &headers, body, &user)
        .await
}
