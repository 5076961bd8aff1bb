//! A small client of the gateway's runs API (`/api/v1/runs...`), with a timeout on every call and errors
//! that say what to do.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use sre_domain::{ArtifactKind, Run};

use crate::config::{DEFAULT_GATEWAY, GatewayArgs, Token};
use crate::error::{CliError, CliResult};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reads of the API: a run record, a list, an artifact.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A submission carries a log of up to a few MB.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// An artifact's metadata as the run record lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct ArtifactMeta {
    pub kind: String,
    pub content_type: String,
    pub bytes: i64,
}

/// `GET /api/v1/runs/{run_id}`: the run and its artifacts.
#[derive(Clone, Debug, Deserialize)]
pub struct RunView {
    #[serde(flatten)]
    pub run: Run,
    #[serde(default)]
    pub artifacts: Vec<ArtifactMeta>,
}

/// `POST /api/v1/runs`'s answer.
#[derive(Clone, Debug, Deserialize)]
pub struct Submitted {
    pub run_id: String,
    pub run_key: String,
    pub attempt: u32,
}

#[derive(Deserialize)]
struct RunList {
    runs: Vec<serde_json::Value>,
}

pub struct Gateway {
    base: Url,
    /// As the user gave it, for messages.
    shown: String,
    token: Option<Token>,
    client: reqwest::Client,
}

impl Gateway {
    pub fn new(args: &GatewayArgs) -> CliResult<Self> {
        let given = if args.gateway.trim().is_empty() { DEFAULT_GATEWAY } else { args.gateway.trim() };
        let shown = given.trim_end_matches('/').to_owned();
        let bad =
            |why: &str| CliError::new(format!("--gateway {given:?} ({why}): expected a URL such as {DEFAULT_GATEWAY}"));
        let mut base = Url::parse(&shown).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(bad("not an http(s) URL with a host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("a base URL takes no query or fragment"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("sre-agent/", env!("CARGO_PKG_VERSION")));
        // A proxy from the environment must not capture the local mesh.
        let host = base.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if loopback {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| CliError::new(format!("cannot set up the HTTP client: {e}")))?;
        let token = args.token.clone().filter(|t| !t.is_empty());
        Ok(Self { base, shown, token, client })
    }

    /// The absolute URL of an API path (no leading slash).
    pub fn endpoint(&self, path: &str) -> String {
        self.base.join(path).map(String::from).unwrap_or_else(|_| format!("{}/{path}", self.shown))
    }

    /// Sends one request; returns the status and body of a 2xx answer, a [`CliError`] for anything else.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        timeout: Duration,
    ) -> CliResult<(StatusCode, String)> {
        let url = self.endpoint(path);
        let mut req = self.client.request(method.clone(), &url).timeout(timeout);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e, timeout))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport_error(&e, timeout))?;
        if status.is_success() {
            return Ok((status, text));
        }
        Err(self.status_error(&method, path, status, &text))
    }

    fn transport_error(&self, err: &reqwest::Error, timeout: Duration) -> CliError {
        if err.is_connect() {
            CliError::new(format!("cannot reach the gateway at {}: start the mesh with scripts/up.sh", self.shown))
        } else if err.is_timeout() {
            CliError::new(format!("the gateway at {} did not answer within {} s", self.shown, timeout.as_secs()))
        } else {
            // reqwest's Display omits the cause ("error sending request"): include the chain.
            let mut message = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            CliError::new(format!("talking to the gateway at {}: {message}", self.shown))
        }
    }

    fn status_error(&self, method: &Method, path: &str, status: StatusCode, body: &str) -> CliError {
        // The API answers {"error": ...}; the webhook-style answers {"reason": ...}.
        let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let said = parsed
            .as_ref()
            .and_then(|v| v.get("error").or_else(|| v.get("reason")))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        let message = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => format!(
                "the gateway at {} refused the request ({status}){}: set SRE_API_TOKEN (or --token) to its API token",
                self.shown,
                if self.token.is_some() { " with the token given" } else { "" }
            ),
            StatusCode::NOT_FOUND if parsed.is_none() => {
                format!("{} has no {method} /{path} ({status}): is --gateway the sre-agent gateway's URL?", self.shown)
            }
            StatusCode::PAYLOAD_TOO_LARGE => format!("the gateway refused the submission as too large: {said}"),
            StatusCode::SERVICE_UNAVAILABLE => {
                format!("the gateway at {} is not ready ({said}): check `scripts/up.sh` and its logs", self.shown)
            }
            _ if said.is_empty() => format!("the gateway answered {status} to {method} /{path}"),
            _ => format!("the gateway answered {status}: {said}"),
        };
        CliError::new(message)
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, what: &str, text: &str) -> CliResult<T> {
        serde_json::from_str(text).map_err(|e| {
            let start: String = text.chars().take(200).collect();
            CliError::new(format!("unexpected {what} from the gateway at {} ({e}): {start}", self.shown))
        })
    }

    /// `POST /api/v1/runs`.
    pub async fn submit(&self, body: &serde_json::Value) -> CliResult<Submitted> {
        let (_, text) = self.call(Method::POST, "api/v1/runs", Some(body.to_string()), SUBMIT_TIMEOUT).await?;
        self.decode("answer to the submission", &text)
    }

    /// `GET /api/v1/runs?limit=N` as the gateway sent it.
    pub async fn list_raw(&self, limit: u16) -> CliResult<serde_json::Value> {
        let (_, text) = self.call(Method::GET, &format!("api/v1/runs?limit={limit}"), None, READ_TIMEOUT).await?;
        self.decode("run list", &text)
    }

    /// `GET /api/v1/runs?limit=N`, typed.
    pub async fn list(&self, limit: u16) -> CliResult<Vec<Run>> {
        let (_, text) = self.call(Method::GET, &format!("api/v1/runs?limit={limit}"), None, READ_TIMEOUT).await?;
        let list: RunList = self.decode("run list", &text)?;
        list.runs.into_iter().map(|v| self.decode("run record", &v.to_string())).collect()
    }

    /// `GET /api/v1/runs/{run_id}` as the gateway sent it, and typed.
    pub async fn run(&self, run_id: &str) -> CliResult<(serde_json::Value, RunView)> {
        check_id(run_id)?;
        let (_, text) = self.call(Method::GET, &format!("api/v1/runs/{run_id}"), None, READ_TIMEOUT).await?;
        Ok((self.decode("run record", &text)?, self.decode("run record", &text)?))
    }

    /// `GET /api/v1/runs/{run_id}/artifacts/{kind}`: the body as stored.
    pub async fn artifact(&self, run_id: &str, kind: ArtifactKind) -> CliResult<String> {
        check_id(run_id)?;
        let path = format!("api/v1/runs/{run_id}/artifacts/{}", kind.as_str());
        Ok(self.call(Method::GET, &path, None, READ_TIMEOUT).await?.1)
    }
}

/// Run IDs are UUIDs; anything else must not reach a URL path.
fn check_id(run_id: &str) -> CliResult<()> {
    if run_id.is_empty() || run_id.len() > 64 || !run_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(CliError::new(format!("{run_id:?} is not a run ID (runs are named by UUIDs)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(url: &str) -> CliResult<Gateway> {
        Gateway::new(&GatewayArgs { gateway: url.to_owned(), token: None })
    }

    #[test]
    fn base_urls_keep_their_path_and_refuse_nonsense() {
        let g = gateway("http://127.0.0.1:8000").unwrap();
        assert_eq!(g.endpoint("api/v1/runs"), "http://127.0.0.1:8000/api/v1/runs");
        let g = gateway("https://sre.example/agent/").unwrap();
        assert_eq!(g.endpoint("api/v1/runs?limit=3"), "https://sre.example/agent/api/v1/runs?limit=3");
        let g = gateway(" ").unwrap();
        assert_eq!(g.endpoint("api/v1/runs"), "http://127.0.0.1:8000/api/v1/runs", "an empty SRE_GATEWAY_URL");
        for bad in ["127.0.0.1:8000", "ftp://x", "http://", "not a url", "http://h/?q=1"] {
            let err = gateway(bad).err().unwrap_or_else(|| panic!("{bad} accepted")).0;
            assert!(err.contains("--gateway"), "{err}");
        }
    }

    #[test]
    fn run_ids_cannot_reach_other_paths() {
        assert!(check_id("6c1f0d2e-5b0a-4c53-9a57-0f1d7e1c2b3a").is_ok());
        for bad in ["", "../diff", "a/b", "x?y", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_answers_become_messages() {
        let g = gateway("http://127.0.0.1:8000").unwrap();
        let m = |status: u16, body: &str| {
            g.status_error(&Method::GET, "api/v1/runs/x", StatusCode::from_u16(status).unwrap(), body).0
        };
        assert_eq!(m(404, r#"{"error":"run not found"}"#), "the gateway answered 404 Not Found: run not found");
        assert!(m(404, "<html>").contains("is --gateway the sre-agent gateway's URL?"));
        assert!(m(401, "").contains("set SRE_API_TOKEN (or --token)"));
        assert!(m(503, r#"{"error":"store unavailable"}"#).contains("not ready (store unavailable)"));
        assert_eq!(
            m(400, r#"{"error":"head_sha must be 7-64 hex characters"}"#).split(": ").last().unwrap(),
            "head_sha must be 7-64 hex characters"
        );
    }
}
