//! GitHub webhook semantics, free of I/O: signature verification and turning a delivery into either a
//! failure to fix or a reason to ignore it.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

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

/// The event types that can carry a CI failure, plus ping. Also the bounded `event` metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    WorkflowRun,
    WorkflowJob,
    CheckRun,
    CheckSuite,
    Ping,
    Other,
}

impl EventKind {
    pub fn parse(header: &str) -> Self {
        match header {
            "workflow_run" => Self::WorkflowRun,
            "workflow_job" => Self::WorkflowJob,
            "check_run" => Self::CheckRun,
            "check_suite" => Self::CheckSuite,
            "ping" => Self::Ping,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkflowRun => "workflow_run",
            Self::WorkflowJob => "workflow_job",
            Self::CheckRun => "check_run",
            Self::CheckSuite => "check_suite",
            Self::Ping => "ping",
            Self::Other => "other",
        }
    }
}

/// A CI failure worth a pipeline run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub event: EventKind,
    pub action: String,
    /// `owner/name`.
    pub repo: String,
    pub head_sha: String,
    pub head_branch: String,
    /// Workflow, job or check name.
    pub name: String,
    /// `<event>:<id>`.
    pub failure_id: String,
    pub attempt: u32,
}

impl Failure {
    /// `<repo>:<name>:<head_sha>`: the same failure redelivered or re-run maps to the same key.
    pub fn run_key(&self) -> String {
        format!("{}:{}:{}", self.repo, self.name, self.head_sha)
    }
}

/// What a delivery means.
#[derive(Debug, PartialEq, Eq)]
pub enum Classified {
    Failure(Failure),
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
struct WorkflowRunPayload {
    action: String,
    workflow_run: WorkflowRun,
    repository: Repository,
}

#[derive(Deserialize)]
struct WorkflowRun {
    id: u64,
    name: Option<String>,
    head_sha: String,
    head_branch: Option<String>,
    conclusion: Option<String>,
    run_attempt: Option<u32>,
}

#[derive(Deserialize)]
struct WorkflowJobPayload {
    action: String,
    workflow_job: WorkflowJob,
    repository: Repository,
}

#[derive(Deserialize)]
struct WorkflowJob {
    id: u64,
    name: String,
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
    head_branch: Option<String>,
}

#[derive(Deserialize)]
struct CheckSuitePayload {
    action: String,
    check_suite: CheckSuite,
    repository: Repository,
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

/// Parses the payload of `event` and decides whether it is a failure to fix.
pub fn classify(event: EventKind, body: &[u8]) -> Result<Classified, PayloadError> {
    let err = |e: serde_json::Error| PayloadError { event: event.as_str(), message: e.to_string() };
    let (action, conclusion, failure) = match event {
        EventKind::Ping => return Ok(Classified::Ignored("ping".into())),
        EventKind::Other => return Ok(Classified::Ignored("event type is not handled".into())),
        EventKind::WorkflowRun => {
            let p: WorkflowRunPayload = serde_json::from_slice(body).map_err(err)?;
            let r = p.workflow_run;
            let name = r.name.unwrap_or_else(|| "workflow".into());
            (
                p.action.clone(),
                r.conclusion,
                Failure {
                    event,
                    action: p.action,
                    repo: p.repository.full_name,
                    head_sha: r.head_sha,
                    head_branch: r.head_branch.unwrap_or_default(),
                    name,
                    failure_id: format!("workflow_run:{}", r.id),
                    attempt: r.run_attempt.unwrap_or(1),
                },
            )
        }
        EventKind::WorkflowJob => {
            let p: WorkflowJobPayload = serde_json::from_slice(body).map_err(err)?;
            let j = p.workflow_job;
            (
                p.action.clone(),
                j.conclusion,
                Failure {
                    event,
                    action: p.action,
                    repo: p.repository.full_name,
                    head_sha: j.head_sha,
                    head_branch: j.head_branch.unwrap_or_default(),
                    name: j.name,
                    failure_id: format!("workflow_job:{}", j.id),
                    attempt: j.run_attempt.unwrap_or(1),
                },
            )
        }
        EventKind::CheckRun => {
            let p: CheckRunPayload = serde_json::from_slice(body).map_err(err)?;
            let c = p.check_run;
            (
                p.action.clone(),
                c.conclusion,
                Failure {
                    event,
                    action: p.action,
                    repo: p.repository.full_name,
                    head_sha: c.head_sha,
                    head_branch: c.check_suite.and_then(|s| s.head_branch).unwrap_or_default(),
                    name: c.name,
                    failure_id: format!("check_run:{}", c.id),
                    attempt: 1,
                },
            )
        }
        EventKind::CheckSuite => {
            let p: CheckSuitePayload = serde_json::from_slice(body).map_err(err)?;
            let s = p.check_suite;
            (
                p.action.clone(),
                s.conclusion,
                Failure {
                    event,
                    action: p.action,
                    repo: p.repository.full_name,
                    head_sha: s.head_sha,
                    head_branch: s.head_branch.unwrap_or_default(),
                    name: s.app.and_then(|a| a.name).unwrap_or_else(|| "check_suite".into()),
                    failure_id: format!("check_suite:{}", s.id),
                    attempt: 1,
                },
            )
        }
    };
    if action != "completed" {
        return Ok(Classified::Ignored(format!("action is {action:?}, not \"completed\"")));
    }
    match conclusion.as_deref() {
        Some("failure") => {}
        other => {
            return Ok(Classified::Ignored(format!("conclusion is {:?}, not \"failure\"", other.unwrap_or("none"))));
        }
    }
    if failure.repo.split('/').count() != 2 || failure.head_sha.is_empty() {
        return Err(PayloadError { event: event.as_str(), message: "repository.full_name or head_sha missing".into() });
    }
    Ok(Classified::Failure(failure))
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
        let Classified::Failure(f) = classify(EventKind::WorkflowRun, &workflow_run("completed", "failure")).unwrap()
        else {
            panic!("expected a failure")
        };
        assert_eq!(f.failure_id, "workflow_run:7");
        assert_eq!(f.run_key(), "acme/app:lint:abc1234");
        assert_eq!(f.attempt, 2);
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
        assert_eq!((f.failure_id.as_str(), f.head_branch.as_str()), ("check_run:9", "dev"));
        let job = br#"{"action":"completed","workflow_job":{"id":3,"name":"build","head_sha":"abc","conclusion":"failure"},"repository":{"full_name":"a/b"}}"#;
        assert!(matches!(classify(EventKind::WorkflowJob, job).unwrap(), Classified::Failure(_)));
        let suite = br#"{"action":"completed","check_suite":{"id":4,"head_sha":"abc","conclusion":"failure","app":{"name":"CI"}},"repository":{"full_name":"a/b"}}"#;
        let Classified::Failure(f) = classify(EventKind::CheckSuite, suite).unwrap() else { panic!() };
        assert_eq!(f.name, "CI");
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(classify(EventKind::WorkflowRun, b"not json").is_err());
        assert!(classify(EventKind::WorkflowRun, br#"{"action":"completed"}"#).is_err());
        let bad_repo = br#"{"action":"completed","workflow_run":{"id":1,"head_sha":"a","conclusion":"failure"},"repository":{"full_name":"noslash"}}"#;
        assert!(classify(EventKind::WorkflowRun, bad_repo).is_err());
    }
}
