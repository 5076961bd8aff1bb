//! Test support (feature `testing`): a fake OpenAI-compatible server for the planner's and the end-to-end
//! tests. The model endpoint is a remote third party, so a fake stands in for it, with the real API's shapes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// The request bodies a [`fake_openai`] server received, in order.
pub type Seen = Arc<Mutex<Vec<serde_json::Value>>>;

/// Serves `POST /v1/chat/completions` on a loopback port with the real response shape, answering `answers`
/// in order (an empty content once they run out); returns the base URL (`http://127.0.0.1:PORT/v1`) and the
/// requests it saw. The server runs on the caller's runtime until that ends.
pub async fn fake_openai(answers: Vec<String>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let script = Arc::new(Mutex::new(VecDeque::from(answers)));
    let (s, q) = (seen.clone(), script.clone());
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let (s, q) = (s.clone(), q.clone());
            async move {
                s.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(body);
                let content =
                    q.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front().unwrap_or_default();
                axum::Json(serde_json::json!({
                    "id": "chatcmpl-planner1", "object": "chat.completion", "created": 1_767_225_600,
                    "model": "fix-model-2026-01-01",
                    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                                 "message": {"role": "assistant", "content": content, "refusal": null}}],
                    "usage": {"prompt_tokens": 500, "completion_tokens": 40, "total_tokens": 540}
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), seen)
}
