//! A fake OpenAI-compatible server for the tests: `POST /v1/chat/completions` with the real API's status
//! codes and JSON shapes, answers scripted per call, every request recorded.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One scripted reply.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with a chat completion whose `choices[0].message.content` is this.
    Answer(String),
    /// 200 with a chat completion cut at the token limit (`finish_reason: length`).
    Cut(String),
    /// 200 with a chat completion without `usage` (some local servers).
    NoUsage(String),
    /// A status with OpenAI's error body and extra headers.
    Error {
        status: u16,
        message: String,
        kind: String,
        code: Option<String>,
        param: Option<String>,
        headers: Vec<(String, String)>,
    },
    /// 200 with a body that is not a chat completion.
    Garbage(String),
    /// Waits, then replies.
    Slow(Duration, Box<Reply>),
}

impl Reply {
    pub fn answer(content: impl Into<String>) -> Self {
        Self::Answer(content.into())
    }

    /// 429 as OpenAI sends it, with `retry-after: <seconds>`.
    pub fn rate_limited(retry_after_seconds: &str) -> Self {
        Self::Error {
            status: 429,
            message: "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1.".into(),
            kind: "requests".into(),
            code: Some("rate_limit_exceeded".into()),
            param: None,
            headers: vec![("retry-after".into(), retry_after_seconds.into())],
        }
    }

    pub fn unavailable() -> Self {
        Self::Error {
            status: 503,
            message: "The server is overloaded or not ready yet.".into(),
            kind: "server_error".into(),
            code: None,
            param: None,
            headers: vec![],
        }
    }
}

/// What the server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub authorization: Option<String>,
    pub body: Value,
}

impl Recorded {
    /// `messages[i].content`.
    pub fn message(&self, i: usize) -> String {
        self.body["messages"][i]["content"].as_str().unwrap_or_default().to_owned()
    }
    pub fn role(&self, i: usize) -> String {
        self.body["messages"][i]["role"].as_str().unwrap_or_default().to_owned()
    }
    pub fn messages(&self) -> usize {
        self.body["messages"].as_array().map_or(0, Vec::len)
    }
    /// Every byte of text sent.
    pub fn all_text(&self) -> String {
        self.body.to_string()
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    requests: Vec<Recorded>,
    key: Option<String>,
}

type Shared = Arc<Mutex<Inner>>;

/// The server; it stops when the test's runtime ends.
pub struct FakeOpenAi {
    pub base_url: String,
    state: Shared,
}

impl FakeOpenAi {
    /// Serves on 127.0.0.1:0; requests must carry `Authorization: Bearer <key>` when a key is given.
    pub async fn start(key: Option<&str>, script: Vec<Reply>) -> Self {
        let state: Shared =
            Arc::new(Mutex::new(Inner { script: script.into(), requests: Vec::new(), key: key.map(str::to_owned) }));
        let app =
            axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base_url: format!("http://{addr}/v1"), state }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn unused_replies(&self) -> usize {
        self.state.lock().unwrap().script.len()
    }
}

fn error(status: u16, message: &str, kind: &str, code: Option<&str>, param: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    (StatusCode::from_u16(status).expect("status"), Json(body)).into_response()
}

fn completion(model: &str, prompt_tokens: u64, content: &str, finish_reason: &str, usage: bool, n: usize) -> Value {
    let completion_tokens = content.len() as u64 / 4 + 1;
    let mut body = json!({
        "id": format!("chatcmpl-fake{n}"),
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": format!("{model}-2026-01-01"),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": finish_reason
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        },
        "system_fingerprint": "fp_fake"
    });
    if !usage {
        body.as_object_mut().expect("object").remove("usage");
    }
    body
}

async fn chat(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "We could not parse the JSON body of your request.", "invalid_request_error", None, None);
    };
    let (reply, key, n) = {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded { authorization: authorization.clone(), body: json.clone() });
        let n = s.requests.len();
        let key = s.key.clone();
        // A refused key does not consume a scripted answer.
        let authorized = key.as_ref().is_none_or(|k| authorization.as_deref() == Some(&format!("Bearer {k}")));
        (if authorized { s.script.pop_front() } else { None }, key, n)
    };
    if let Some(key) = key
        && authorization.as_deref() != Some(&format!("Bearer {key}"))
    {
        // Worse than OpenAI, which masks most of it: echo the whole key the client sent.
        let given = authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
        return error(
            401,
            &format!(
                "Incorrect API key provided: {given}. You can find your API key at https://platform.openai.com/account/api-keys."
            ),
            "invalid_request_error",
            Some("invalid_api_key"),
            None,
        );
    }
    let (Some(model), Some(messages)) = (json["model"].as_str(), json["messages"].as_array()) else {
        return error(400, "'model' and 'messages' are required properties", "invalid_request_error", None, None);
    };
    let prompt_tokens = messages.iter().map(|m| m["content"].as_str().unwrap_or_default().len() as u64 / 4 + 4).sum();
    let mut reply = reply.unwrap_or(Reply::Error {
        status: 500,
        message: "the fake server has no scripted reply left".into(),
        kind: "server_error".into(),
        code: None,
        param: None,
        headers: vec![],
    });
    while let Reply::Slow(wait, next) = reply {
        tokio::time::sleep(wait).await;
        reply = *next;
    }
    match reply {
        Reply::Answer(content) => Json(completion(model, prompt_tokens, &content, "stop", true, n)).into_response(),
        Reply::Cut(content) => Json(completion(model, prompt_tokens, &content, "length", true, n)).into_response(),
        Reply::NoUsage(content) => Json(completion(model, prompt_tokens, &content, "stop", false, n)).into_response(),
        Reply::Garbage(text) => (StatusCode::OK, text).into_response(),
        Reply::Error { status, message, kind, code, param, headers } => {
            let mut response = error(status, &message, &kind, code.as_deref(), param.as_deref());
            for (k, v) in headers {
                response
                    .headers_mut()
                    .insert(header::HeaderName::from_bytes(k.as_bytes()).expect("header"), v.parse().expect("value"));
            }
            response
        }
        Reply::Slow(..) => unreachable!("unwrapped above"),
    }
}

/// A committed git repository in `dir` holding `files`.
pub fn repo(dir: &Path, files: &[(&str, &str)]) {
    sre_gitwork::testing::init_repo(dir);
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    sre_gitwork::testing::git(dir, &["add", "-A"]);
    sre_gitwork::testing::git(dir, &["commit", "-q", "-m", "init"]);
}

/// `git diff` of the working tree.
pub fn diff(dir: &Path) -> String {
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(["diff"]).output().expect("git diff");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
