//! Real bare repositories under a temp dir, read with the git CLI for the REST answers, and served over git
//! smart HTTP by spawning `git http-backend` (CGI) per request.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest CGI answer kept in memory (test repositories are small).
const MAX_CGI_OUTPUT: usize = 256 * 1024 * 1024;

/// One commit as the REST shapes need it.
#[derive(Clone, Debug)]
pub(crate) struct CommitInfo {
    pub sha: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    pub author_time: u64,
    pub committer_name: String,
    pub committer_email: String,
    pub committer_time: u64,
    pub message: String,
}

/// `root/owner/name.git`.
pub(crate) fn repo_dir(root: &Path, full_name: &str) -> PathBuf {
    root.join(format!("{full_name}.git"))
}

/// Refuses refs that git could read as options or that escape `refs/`.
pub(crate) fn safe_ref(r: &str) -> bool {
    !r.is_empty()
        && !r.starts_with('-')
        && !r.contains("..")
        && r.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'^' | b'~' | b'@'))
}

/// Runs git in `dir` (sync: seeding from tests).
pub(crate) fn git_sync(
    dir: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Result<String, String> {
    use std::io::Write as _;
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C").arg(dir).args(args).env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("git: {e}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).map_err(|e| format!("git stdin: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("git: {e}"))?;
    if !out.status.success() {
        return Err(format!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs git in `dir` (async: request handlers). `None` when git fails (unknown ref and the like).
pub(crate) async fn git_async(dir: &Path, args: &[&str]) -> Option<String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `git init --bare` with what GitHub allows: fetching any reachable sha, pushing over HTTP.
pub(crate) fn init_bare(dir: &Path, default_branch: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    git_sync(dir, &["init", "-q", "--bare", "-b", default_branch], &[], None)?;
    git_sync(dir, &["config", "uploadpack.allowReachableSHA1InWant", "true"], &[], None)?;
    git_sync(dir, &["config", "http.receivepack", "true"], &[], None)?;
    Ok(())
}

/// Writes one commit with `files` on top of `branch` (or as a root commit) without a work tree; returns its
/// sha.
pub(crate) fn commit_files(
    dir: &Path,
    branch: &str,
    files: &[(&str, &str)],
    message: &str,
    author: (&str, &str),
) -> Result<String, String> {
    let index = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let index_path = index.path().to_string_lossy().into_owned();
    let env = [
        ("GIT_INDEX_FILE", index_path.as_str()),
        ("GIT_AUTHOR_NAME", author.0),
        ("GIT_AUTHOR_EMAIL", author.1),
        ("GIT_COMMITTER_NAME", author.0),
        ("GIT_COMMITTER_EMAIL", author.1),
    ];
    let refname = format!("refs/heads/{branch}");
    let parent = git_sync(dir, &["rev-parse", "--verify", "--quiet", &refname], &[], None).ok();
    match &parent {
        Some(p) => git_sync(dir, &["read-tree", p], &env, None)?,
        None => git_sync(dir, &["read-tree", "--empty"], &env, None)?,
    };
    for (path, content) in files {
        let blob = git_sync(dir, &["hash-object", "-w", "--stdin"], &env, Some(content.as_bytes()))?;
        git_sync(dir, &["update-index", "--add", "--cacheinfo", &format!("100644,{blob},{path}")], &env, None)?;
    }
    let tree = git_sync(dir, &["write-tree"], &env, None)?;
    let mut args = vec!["commit-tree", tree.as_str(), "-m", message];
    if let Some(p) = &parent {
        args.extend(["-p", p.as_str()]);
    }
    let sha = git_sync(dir, &args, &env, None)?;
    git_sync(dir, &["update-ref", &refname, &sha], &[], None)?;
    Ok(sha)
}

/// The sha a ref names, if it names a commit.
pub(crate) async fn resolve(dir: &Path, reference: &str) -> Option<String> {
    if !safe_ref(reference) {
        return None;
    }
    let out = git_async(dir, &["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")]).await?;
    Some(out.trim().to_owned())
}

/// The head of `refs/heads/{branch}`.
pub(crate) async fn branch_head(dir: &Path, branch: &str) -> Option<String> {
    if !safe_ref(branch) {
        return None;
    }
    let out = git_async(dir, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}^{{commit}}")]).await?;
    Some(out.trim().to_owned())
}

const LOG_FORMAT: &str = "--format=%H%x00%T%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B%x1e";

/// Up to `count` commits reachable from `sha`, newest first, after skipping `skip`.
pub(crate) async fn log(dir: &Path, sha: &str, skip: usize, count: usize) -> Vec<CommitInfo> {
    let (skip, count) = (format!("--skip={skip}"), format!("--max-count={count}"));
    let Some(out) = git_async(dir, &["log", LOG_FORMAT, &skip, &count, sha, "--"]).await else {
        return Vec::new();
    };
    out.split('\u{1e}').filter_map(parse_commit).collect()
}

fn parse_commit(record: &str) -> Option<CommitInfo> {
    let record = record.trim_start_matches('\n');
    let mut f = record.splitn(10, '\0');
    let mut next = || f.next().map(str::to_owned);
    let sha = next()?;
    if sha.is_empty() {
        return None;
    }
    let tree = next()?;
    let parents = next()?.split_whitespace().map(str::to_owned).collect();
    let (author_name, author_email, author_time) = (next()?, next()?, next()?.parse().ok()?);
    let (committer_name, committer_email, committer_time) = (next()?, next()?, next()?.parse().ok()?);
    let message = next()?.trim_end().to_owned();
    Some(CommitInfo {
        sha,
        tree,
        parents,
        author_name,
        author_email,
        author_time,
        committer_name,
        committer_email,
        committer_time,
        message,
    })
}

/// `(commits, additions, deletions, changed files)` of `base...head`.
pub(crate) async fn diff_stats(dir: &Path, base: &str, head: &str) -> (u64, u64, u64, u64) {
    let range = format!("{base}...{head}");
    let commits = git_async(dir, &["rev-list", "--count", &format!("{base}..{head}")])
        .await
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let (mut add, mut del, mut files) = (0, 0, 0);
    if let Some(out) = git_async(dir, &["diff", "--numstat", &range]).await {
        for line in out.lines() {
            let mut parts = line.split('\t');
            add += parts.next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            del += parts.next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            files += 1;
        }
    }
    (commits, add, del, files)
}

/// Serves one smart-HTTP request by running `git http-backend` as a CGI program.
pub(crate) async fn http_backend(
    root: &Path,
    method: &str,
    path_info: &str,
    query: &str,
    headers: &HeaderMap,
    body: axum::body::Bytes,
    remote_user: &str,
) -> Response<Body> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", root)
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", method)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("HTTP_GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", remote_user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("git http-backend: {e}")),
    };
    let mut stdin = child.stdin.take();
    let writer = tokio::spawn(async move {
        if let Some(pipe) = stdin.as_mut() {
            let _ = pipe.write_all(&body).await;
        }
        drop(stdin);
    });
    let mut stdout = Vec::new();
    let read = match child.stdout.take() {
        Some(out) => out.take(MAX_CGI_OUTPUT as u64 + 1).read_to_end(&mut stdout).await,
        None => Ok(0),
    };
    let _ = writer.await;
    let status = child.wait().await;
    if read.is_err() || stdout.len() > MAX_CGI_OUTPUT || status.is_err() {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "git http-backend failed");
    }
    parse_cgi(&stdout)
}

/// A CGI answer: header lines, a blank line, the body. `Status:` sets the status code.
fn parse_cgi(out: &[u8]) -> Response<Body> {
    let (head, body) = match find(out, b"\r\n\r\n").map(|i| (i, 4)).or_else(|| find(out, b"\n\n").map(|i| (i, 2))) {
        Some((i, sep)) => (&out[..i], &out[i + sep..]),
        None => return plain(StatusCode::BAD_GATEWAY, "malformed CGI answer"),
    };
    let mut resp = Response::builder();
    let mut status = StatusCode::OK;
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let Ok(v) = HeaderValue::from_str(value) {
            resp = resp.header(name.trim(), v);
        }
    }
    resp.status(status)
        .body(Body::from(body.to_vec()))
        .unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "bad CGI header"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(Body::from(text.to_owned()));
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_answers_parse() {
        let r = parse_cgi(b"Status: 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nno");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers()["content-type"], "text/plain");
        let r = parse_cgi(b"Content-Type: application/x-git-upload-pack-advertisement\n\n0000");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(parse_cgi(b"garbage").status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn refs_are_checked() {
        assert!(safe_ref("main") && safe_ref("sre-agent/fix-1") && safe_ref("abc123^"));
        assert!(!safe_ref("--upload-pack=x") && !safe_ref("a..b") && !safe_ref("a b") && !safe_ref(""));
    }
}
