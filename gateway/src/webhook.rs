//! GitHub webhook semantics, free of I/O: signature verification and turning a delivery into either a
//! failure to fix or a reason to ignore it.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use sre_domain::{Conclusion, EventKind, Failure};

/// Checks `X-Hub-Signature-256` (`sha256=<hex>`) against the body in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else { return false };
    let Ok(sig) = hex::decode(hex_sig.trim()) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// `sha256=<hex>` for `body`: what GitHub sends (used by tests and the smoke script's twin).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a delivery's body cannot be read as a payload.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("unsupported Content-Type {0:?}: GitHub sends application/json or application/x-www-form-urlencoded")]
    UnsupportedMediaType(String),
    #[error("an application/x-www-form-urlencoded delivery must carry the JSON in a `payload` field")]
    NoPayloadField,
}

/// The JSON payload of a delivery, from either content type a GitHub webhook can be configured with: the
/// body itself (`application/json`), or the `payload` field of a form (`application/x-www-form-urlencoded`).
/// The signature is always checked over the raw body, before this.
pub fn payload<'a>(content_type: Option<&str>, body: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, BodyError> {
    let media = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(std::borrow::Cow::Borrowed(body)),
        "application/x-www-form-urlencoded" => form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| std::borrow::Cow::Owned(v.into_owned().into_bytes()))
            .ok_or(BodyError::NoPayloadField),
        _ => Err(BodyError::UnsupportedMediaType(content_type.unwrap_or("none").chars().take(100).collect())),
    }
}

/// A JSON error as a sender may be told and a log may keep it: serde quotes the offending string value
/// ("invalid type: string \"...\"") and that value could be anything the payload carries, credentials
/// included, so quoted text is left out.
pub fn json_error(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let mut out = String::with_capacity(message.len());
    let (mut quoted, mut escaped) = (false, false);
    for c in message.chars() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => quoted = false,
            (true, false, _) => {}
            (false, _, '"') => {
                quoted = true;
                out.push_str("\"…\"");
            }
            (false, _, c) => out.push(c),
        }
    }
    out
}

/// What a delivery means.
#[derive(Debug, PartialEq, Eq)]
pub enum Classified {
    /// A failed job: a run.
    Failure(Failure),
    /// A failure named without its job (a failed workflow run or check suite): resolved into job runs later.
    Pending(Failure),
    /// Which repositories the App may act on changed.
    Installation(sre_store::InstallationChange),
    Ignored(String),
}

/// A payload that is not what its event header promises.
#[derive(Debug, thiserror::Error)]
#[error("malformed {event} payload: {message}")]
pub struct PayloadError {
    pub event: &'static str,
    pub message: String,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct Account {
    login: String,
}

#[derive(Deserialize)]
struct InstallationDetail {
    id: u64,
    account: Option<Account>,
}

#[derive(Deserialize)]
struct NamedRepo {
    full_name: String,
}

#[derive(Deserialize)]
struct InstallationPayload {
    action: String,
    installation: InstallationDetail,
    #[serde(default)]
    repositories: Vec<NamedRepo>,
}

#[derive(Deserialize)]
struct InstallationReposPayload {
    action: String,
    installation: InstallationDetail,
    #[serde(default)]
    repositories_added: Vec<NamedRepo>,
    #[serde(default)]
    repositories_removed: Vec<NamedRepo>,
}

#[derive(Deserialize)]
struct WorkflowRunPayload {
    action: String,
    workflow_run: WorkflowRun,
    repository: Repository,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct WorkflowRun {
    id: u64,
    name: Option<String>,
    head_sha: String,
    head_branch: Option<String>,
    conclusion: Option<String>,
    run_attempt: Option<u32>,
    check_suite_id: Option<u64>,
}

#[derive(Deserialize)]
struct WorkflowJobPayload {
    action: String,
    workflow_job: WorkflowJob,
    repository: Repository,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct WorkflowJob {
    id: u64,
    run_id: Option<u64>,
    name: String,
    workflow_name: Option<String>,
    head_sha: String,
    head_branch: Option<String>,
    conclusion: Option<String>,
    run_attempt: Option<u32>,
}

#[derive(Deserialize)]
struct CheckRunPayload {
    action: String,
    check_run: CheckRun,
    repository: Repository,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct CheckRun {
    id: u64,
    name: String,
    head_sha: String,
    conclusion: Option<String>,
    check_suite: Option<CheckSuiteRef>,
}

#[derive(Deserialize)]
struct CheckSuiteRef {
    id: Option<u64>,
    head_branch: Option<String>,
}

#[derive(Deserialize)]
struct CheckSuitePayload {
    action: String,
    check_suite: CheckSuite,
    repository: Repository,
    installation: Option<Installation>,
}

#[derive(Deserialize)]
struct CheckSuite {
    id: u64,
    head_sha: String,
    head_branch: Option<String>,
    conclusion: Option<String>,
    app: Option<App>,
}

#[derive(Deserialize)]
struct App {
    name: Option<String>,
}

/// Parses the payload of `event` and decides whether it is a failure to fix. The failure carries every fact
/// the payload gives (workflow and job names and IDs, run attempt, installation).
pub fn classify(event: EventKind, body: &[u8]) -> Result<Classified, PayloadError> {
    let err = |e: serde_json::Error| PayloadError { event: event.as_str(), message: json_error(&e) };
    let installation = |i: Option<Installation>| i.map(|i| i.id);
    let (action, failure) = match event {
        EventKind::Ping => return Ok(Classified::Ignored("ping".into())),
        EventKind::WorkflowRun => {
            let p: WorkflowRunPayload = serde_json::from_slice(body).map_err(err)?;
            let r = p.workflow_run;
            let failure = Failure {
                repo: p.repository.full_name,
                head_sha: r.head_sha,
                head_branch: r.head_branch.unwrap_or_default(),
                event: Some(event),
                conclusion: Some(Conclusion::from_github(r.conclusion.as_deref())),
                run_attempt: r.run_attempt.unwrap_or(1),
                workflow_name: r.name.unwrap_or_default(),
                workflow_run_id: Some(r.id),
                check_suite_id: r.check_suite_id,
                installation_id: installation(p.installation),
                ..Failure::default()
            };
            (p.action, failure)
        }
        EventKind::WorkflowJob => {
            let p: WorkflowJobPayload = serde_json::from_slice(body).map_err(err)?;
            let j = p.workflow_job;
            let failure = Failure {
                repo: p.repository.full_name,
                head_sha: j.head_sha,
                head_branch: j.head_branch.unwrap_or_default(),
                event: Some(event),
                conclusion: Some(Conclusion::from_github(j.conclusion.as_deref())),
                run_attempt: j.run_attempt.unwrap_or(1),
                workflow_name: j.workflow_name.unwrap_or_default(),
                workflow_run_id: j.run_id,
                job_name: j.name,
                job_id: Some(j.id),
                installation_id: installation(p.installation),
                ..Failure::default()
            };
            (p.action, failure)
        }
        EventKind::CheckRun => {
            let p: CheckRunPayload = serde_json::from_slice(body).map_err(err)?;
            let c = p.check_run;
            let suite = c.check_suite.unwrap_or(CheckSuiteRef { id: None, head_branch: None });
            let failure = Failure {
                repo: p.repository.full_name,
                head_sha: c.head_sha,
                head_branch: suite.head_branch.unwrap_or_default(),
                event: Some(event),
                conclusion: Some(Conclusion::from_github(c.conclusion.as_deref())),
                run_attempt: 1,
                job_name: c.name,
                // For GitHub Actions a check run's id is its job's id.
                job_id: Some(c.id),
                check_suite_id: suite.id,
                installation_id: installation(p.installation),
                ..Failure::default()
            };
            (p.action, failure)
        }
        EventKind::CheckSuite => {
            let p: CheckSuitePayload = serde_json::from_slice(body).map_err(err)?;
            let s = p.check_suite;
            let failure = Failure {
                repo: p.repository.full_name,
                head_sha: s.head_sha,
                head_branch: s.head_branch.unwrap_or_default(),
                event: Some(event),
                conclusion: Some(Conclusion::from_github(s.conclusion.as_deref())),
                run_attempt: 1,
                workflow_name: s.app.and_then(|a| a.name).unwrap_or_else(|| "check_suite".into()),
                check_suite_id: Some(s.id),
                installation_id: installation(p.installation),
                ..Failure::default()
            };
            (p.action, failure)
        }
        EventKind::Installation => {
            let p: InstallationPayload = serde_json::from_slice(body).map_err(err)?;
            let names = |repos: Vec<NamedRepo>| repos.into_iter().map(|r| r.full_name).collect::<Vec<_>>();
            let mut change = sre_store::InstallationChange {
                installation_id: p.installation.id,
                account: p.installation.account.map(|a| a.login).unwrap_or_default(),
                ..Default::default()
            };
            match p.action.as_str() {
                "created" | "new_permissions_accepted" | "unsuspend" => change.repos_added = names(p.repositories),
                "suspend" => change.suspended = true,
                "deleted" => change.removed = true,
                other => return Ok(Classified::Ignored(format!("installation action {other:?} changes nothing"))),
            }
            return Ok(Classified::Installation(change));
        }
        EventKind::InstallationRepositories => {
            let p: InstallationReposPayload = serde_json::from_slice(body).map_err(err)?;
            if !matches!(p.action.as_str(), "added" | "removed") {
                return Ok(Classified::Ignored(format!("installation_repositories action {:?}", p.action)));
            }
            let names = |repos: Vec<NamedRepo>| repos.into_iter().map(|r| r.full_name).collect::<Vec<_>>();
            return Ok(Classified::Installation(sre_store::InstallationChange {
                installation_id: p.installation.id,
                account: p.installation.account.map(|a| a.login).unwrap_or_default(),
                repos_added: names(p.repositories_added),
                repos_removed: names(p.repositories_removed),
                ..Default::default()
            }));
        }
        EventKind::Local | EventKind::Other => {
            return Ok(Classified::Ignored("event type is not handled".into()));
        }
    };
    if action != "completed" {
        return Ok(Classified::Ignored(format!("action is {action:?}, not \"completed\"")));
    }
    let conclusion = failure.conclusion.unwrap_or(Conclusion::None);
    if !conclusion.is_failure() {
        return Ok(Classified::Ignored(format!("conclusion is {:?}, not a failure", conclusion.as_str())));
    }
    if failure.repo.split('/').count() != 2 || failure.head_sha.is_empty() {
        return Err(PayloadError { event: event.as_str(), message: "repository.full_name or head_sha missing".into() });
    }
    Ok(if failure.job_name.is_empty() { Classified::Pending(failure) } else { Classified::Failure(failure) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let sig = sign(b"s3cret", body);
        assert!(verify_signature(b"s3cret", body, Some(&sig)));
        assert!(!verify_signature(b"other", body, Some(&sig)));
        assert!(!verify_signature(b"s3cret", b"tampered", Some(&sig)));
        assert!(!verify_signature(b"s3cret", body, None));
        assert!(!verify_signature(b"s3cret", body, Some("sha1=abc")));
        assert!(!verify_signature(b"s3cret", body, Some("sha256=zz")));
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            sign(b"key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    fn workflow_run(action: &str, conclusion: &str) -> Vec<u8> {
        format!(
            r#"{{"action":"{action}","workflow_run":{{"id":7,"name":"lint","head_sha":"abc1234","head_branch":"main","conclusion":"{conclusion}","run_attempt":2}},"repository":{{"full_name":"acme/app"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn workflow_run_failure() {
        let Classified::Pending(f) = classify(EventKind::WorkflowRun, &workflow_run("completed", "failure")).unwrap()
        else {
            panic!("a workflow run names no job: pending")
        };
        assert_eq!(f.failure_id(), "workflow_run:7");
        assert_eq!(f.run_key(), "acme/app@abc1234/lint", "until resolved, the workflow stands in for the job");
        assert_eq!(f.run_attempt, 2);
        assert_eq!((f.workflow_name.as_str(), f.workflow_run_id), ("lint", Some(7)));
    }

    #[test]
    fn ignores_success_and_other_actions() {
        assert!(
            matches!(classify(EventKind::WorkflowRun, &workflow_run("completed", "success")).unwrap(), Classified::Ignored(r) if r.contains("success"))
        );
        assert!(
            matches!(classify(EventKind::WorkflowRun, &workflow_run("requested", "failure")).unwrap(), Classified::Ignored(r) if r.contains("requested"))
        );
        assert!(matches!(classify(EventKind::Other, b"{}").unwrap(), Classified::Ignored(_)));
    }

    #[test]
    fn check_run_and_job_and_suite() {
        let cr = br#"{"action":"completed","check_run":{"id":9,"name":"tests","head_sha":"abc","conclusion":"failure","check_suite":{"head_branch":"dev"}},"repository":{"full_name":"a/b"}}"#;
        let Classified::Failure(f) = classify(EventKind::CheckRun, cr).unwrap() else { panic!() };
        assert_eq!((f.failure_id().as_str(), f.head_branch.as_str()), ("check_run:9", "dev"));
        let job = br#"{"action":"completed","workflow_job":{"id":3,"run_id":70,"run_attempt":3,"name":"build","workflow_name":"CI","head_sha":"abc","conclusion":"failure"},"repository":{"full_name":"a/b"},"installation":{"id":12}}"#;
        let Classified::Failure(f) = classify(EventKind::WorkflowJob, job).unwrap() else { panic!() };
        assert_eq!((f.job_id, f.workflow_run_id, f.run_attempt, f.installation_id), (Some(3), Some(70), 3, Some(12)));
        assert_eq!((f.job_name.as_str(), f.workflow_name.as_str()), ("build", "CI"));
        let suite = br#"{"action":"completed","check_suite":{"id":4,"head_sha":"abc","conclusion":"timed_out","app":{"name":"CI"}},"repository":{"full_name":"a/b"}}"#;
        let Classified::Pending(f) = classify(EventKind::CheckSuite, suite).unwrap() else { panic!() };
        assert_eq!((f.workflow_name.as_str(), f.conclusion), ("CI", Some(Conclusion::TimedOut)));
    }

    #[test]
    fn both_content_types_github_sends() {
        let json = br#"{"zen":"x"}"#;
        assert_eq!(payload(Some("application/json"), json).unwrap().as_ref(), json);
        assert_eq!(payload(Some("Application/JSON; charset=utf-8"), json).unwrap().as_ref(), json);
        let form = b"payload=%7B%22zen%22%3A%22a+b%22%7D";
        assert_eq!(payload(Some("application/x-www-form-urlencoded"), form).unwrap().as_ref(), br#"{"zen":"a b"}"#);
        assert_eq!(payload(Some("application/x-www-form-urlencoded"), b"x=1"), Err(BodyError::NoPayloadField));
        assert!(matches!(payload(Some("text/plain"), json), Err(BodyError::UnsupportedMediaType(_))));
        assert!(matches!(payload(None, json), Err(BodyError::UnsupportedMediaType(_))));
    }

    #[test]
    fn installations_record_repositories() {
        let created = br#"{"action":"created","installation":{"id":9,"account":{"login":"acme"}},"repositories":[{"full_name":"acme/app"}]}"#;
        let Classified::Installation(c) = classify(EventKind::Installation, created).unwrap() else { panic!() };
        assert_eq!(
            (c.installation_id, c.account.as_str(), c.repos_added.clone()),
            (9, "acme", vec!["acme/app".to_owned()])
        );
        let removed = br#"{"action":"removed","installation":{"id":9},"repositories_added":[],"repositories_removed":[{"full_name":"acme/app"}]}"#;
        let Classified::Installation(c) = classify(EventKind::InstallationRepositories, removed).unwrap() else {
            panic!()
        };
        assert_eq!(c.repos_removed, vec!["acme/app".to_owned()]);
        let deleted = br#"{"action":"deleted","installation":{"id":9}}"#;
        let Classified::Installation(c) = classify(EventKind::Installation, deleted).unwrap() else { panic!() };
        assert!(c.removed);
    }

    #[test]
    fn json_errors_do_not_repeat_the_values() {
        let secret = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
        let body = format!(r#"{{"action":"completed","workflow_run":{{"id":"{secret} \"q\"","head_sha":"a"}}}}"#);
        let err = classify(EventKind::WorkflowRun, body.as_bytes()).unwrap_err().to_string();
        assert!(!err.contains(secret) && !err.contains('q'), "{err}");
        assert!(err.contains("invalid type: string \"…\", expected u64 at line 1"), "{err}");
        let missing = classify(EventKind::WorkflowRun, br#"{"action":"completed"}"#).unwrap_err().to_string();
        assert!(missing.contains("missing field `workflow_run`"), "{missing}");
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(classify(EventKind::WorkflowRun, b"not json").is_err());
        assert!(classify(EventKind::WorkflowRun, br#"{"action":"completed"}"#).is_err());
        let bad_repo = br#"{"action":"completed","workflow_run":{"id":1,"head_sha":"a","conclusion":"failure"},"repository":{"full_name":"noslash"}}"#;
        assert!(classify(EventKind::WorkflowRun, bad_repo).is_err());
    }
}
