//! The client and the fix protocol against a fake OpenAI-compatible server on 127.0.0.1:0, applied to real
//! temporary git repositories.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sre_domain::{Category, Label, Language, Tool};
use sre_llm::{
    BudgetScope, FileRef, FixOutcome, FixOutcomeLabel, FixRequest, LlmClient, LlmConfig, LlmError, LlmMetrics,
    RejectReason, RequestOutcome, Secret, SkipReason, TokenDirection,
};
use sre_telemetry::SharedRegistry;
use sre_telemetry::testing::{Captured, parse_exposition};
use support::{FakeOpenAi, Reply, diff, repo};
use tracing_subscriber::layer::SubscriberExt;

const KEY: &str = "sk-test-KEY-0123456789abcdef";
const FILE_MARK: &str = "UNIQUE_FILE_CONTENT_7f3a";
const LOG_MARK: &str = "UNIQUE_LOG_LINE_91c2";
const SUMMARY_MARK: &str = "UNIQUE_SUMMARY_55ab";

const LIB_RS: &str = "//! Lists. UNIQUE_FILE_CONTENT_7f3a\n\
                      pub fn is_empty_list(v: &[u8]) -> bool {\n    v.len() == 0\n}\n";

fn fixture(dir: &Path) {
    repo(
        dir,
        &[
            ("src/lib.rs", LIB_RS),
            ("Cargo.toml", "[package]\nname = \"lists\"\n"),
            (".github/workflows/ci.yml", "on: push\n"),
        ],
    );
}

fn request() -> FixRequest {
    FixRequest {
        step: "Clippy".into(),
        command: "cargo clippy --all-targets -- -D warnings".into(),
        category: Category::Lint,
        language: Language::Rust,
        tool: Tool::Clippy,
        context_lines: vec![
            "error: length comparison to zero".into(),
            " --> src/lib.rs:3:5".into(),
            "3 |     v.len() == 0".into(),
            "  |     ^^^^^^^^^^^^ help: using `is_empty` is clearer and more explicit: `v.is_empty()`".into(),
            format!("  = note: {LOG_MARK} `-D clippy::len-zero` implied by `-D warnings`"),
        ],
        references: vec![FileRef::new("src/lib.rs", Some(3))],
    }
}

fn good() -> String {
    format!(
        r#"{{"summary": "Use is_empty ({SUMMARY_MARK})", "confidence": 0.9, "edits": [{{"path": "src/lib.rs", "search": "    v.len() == 0\n", "replace": "    v.is_empty()\n"}}]}}"#
    )
}

fn edit(path: &str, search: &str, replace: &str) -> String {
    serde_json::json!({"summary": "s", "confidence": 0.5, "edits": [{"path": path, "search": search, "replace": replace}]})
        .to_string()
}

fn config(server: &FakeOpenAi) -> LlmConfig {
    let mut c = LlmConfig::new(&server.base_url, "test-model");
    c.api_key = Some(Secret::new(KEY));
    c.retry_base_delay = Duration::from_millis(10);
    c.timeout = Duration::from_secs(10);
    c
}

fn client(config: LlmConfig) -> (LlmClient, SharedRegistry) {
    let registry = SharedRegistry::default();
    let client = LlmClient::new(config, LlmMetrics::register(&registry)).expect("valid config");
    (client, registry)
}

/// The value of `name{label="value"}` (of `name` without labels when `label` is empty) in the exposition.
fn sample(registry: &SharedRegistry, name: &str, label: &str, value: &str) -> f64 {
    parse_exposition(&registry.encode(false))
        .into_iter()
        .find(|((n, l), _)| {
            n == name && if label.is_empty() { l.is_empty() } else { l.get(label).map(String::as_str) == Some(value) }
        })
        .map_or_else(|| panic!("no sample {name}{{{label}={value:?}}}"), |(_, v)| v)
}

fn requests(registry: &SharedRegistry, outcome: RequestOutcome) -> f64 {
    sample(registry, "sre_agent_llm_requests_total", "outcome", outcome.as_str())
}

#[tokio::test]
async fn a_good_edit_is_applied_to_the_worktree_and_git_diff_shows_it() {
    let (_captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    // Models wrap JSON in prose and fences; the answer is found anyway.
    let server =
        FakeOpenAi::start(Some(KEY), vec![Reply::answer(format!("Here is the fix:\n```json\n{}\n```", good()))]).await;
    let (client, registry) = client(config(&server));
    let run = client.run_budget();

    let outcome = client.fix(&request(), dir.path(), &run).await.expect("fix");
    let FixOutcome::Applied(fix) = outcome else { panic!("not applied: {outcome:?}") };
    assert_eq!(fix.changed_files, vec!["src/lib.rs".to_owned()]);
    assert_eq!((fix.edits, fix.answers, fix.confidence), (1, 1, 0.9));
    assert!(fix.summary.contains(SUMMARY_MARK));
    let diff = diff(dir.path());
    assert!(diff.starts_with("diff --git a/src/lib.rs b/src/lib.rs\n"), "{diff}");
    assert!(diff.contains("\n-    v.len() == 0\n+    v.is_empty()\n"), "{diff}");
    assert_eq!(diff.matches("diff --git").count(), 1, "{diff}");
    let plan = fix.plan();
    assert_eq!((plan.strategy.as_str(), plan.steps.len(), plan.steps[0].action.as_str()), ("llm", 1, "llm_edit"));
    assert_eq!(plan.steps[0].path, "src/lib.rs");

    // What was sent: the real API's shape, the key only in the header, the context and the referenced file.
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!(req.authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert!(!req.all_text().contains(KEY), "the key is never in the body");
    assert_eq!(req.body["model"], "test-model");
    assert_eq!(req.body["response_format"]["type"], "json_object");
    assert_eq!(req.body["max_tokens"], 4096);
    assert_eq!(req.body["temperature"], 0.0);
    assert_eq!(req.body["stream"], false);
    assert_eq!((req.messages(), req.role(0).as_str(), req.role(1).as_str()), (2, "system", "user"));
    let user = req.message(1);
    assert!(user.contains("Command: cargo clippy --all-targets -- -D warnings\n"), "{user}");
    assert!(user.contains("Category: lint; language: rust; tool: clippy\n"), "{user}");
    assert!(user.contains(LOG_MARK));
    assert!(
        user.contains("\n --> src/lib.rs:3:5\n3 |     v.len() == 0\n  |     ^^^^"),
        "log indentation is kept: {user}"
    );
    assert!(user.contains("----- BEGIN FILE src/lib.rs (complete, 4 lines; referenced lines 3) -----\n"), "{user}");
    assert!(user.contains(LIB_RS));
    assert!(!user.contains("on: push"), "unreferenced files are not sent");

    // Tokens: the response's usage, charged to the run and to the process's hour.
    let input = sample(&registry, "sre_agent_llm_tokens_total", "direction", TokenDirection::Input.as_str());
    let output = sample(&registry, "sre_agent_llm_tokens_total", "direction", TokenDirection::Output.as_str());
    assert!(input > 100.0 && output > 10.0, "{input} {output}");
    assert_eq!(run.used(), (input + output) as u64);
    assert_eq!(fix.tokens, run.used());
    assert_eq!(client.hour_budget().used(), run.used());
    assert_eq!(client.run_budget().used(), 0, "each run has its own budget");
    assert_eq!(requests(&registry, RequestOutcome::Ok), 1.0);
    assert_eq!(sample(&registry, "sre_agent_llm_fixes_total", "outcome", "applied"), 1.0);
}

#[tokio::test]
async fn malformed_json_is_sent_back_with_the_error_and_the_next_answer_applies() {
    let (_captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let server = FakeOpenAi::start(
        Some(KEY),
        vec![Reply::answer("Sure! I will replace the comparison with is_empty()."), Reply::answer(good())],
    )
    .await;
    let (client, registry) = client(config(&server));

    let outcome = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap();
    let FixOutcome::Applied(fix) = outcome else { panic!("{outcome:?}") };
    assert_eq!(fix.answers, 2);
    assert!(diff(dir.path()).contains("+    v.is_empty()\n"));

    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    let retry = &sent[1];
    assert_eq!(retry.messages(), 4);
    assert_eq!(retry.message(1), sent[0].message(1), "the first request is kept as it was");
    assert_eq!(
        (retry.role(2).as_str(), retry.message(2).as_str()),
        ("assistant", "Sure! I will replace the comparison with is_empty().")
    );
    let feedback = retry.message(3);
    assert_eq!(retry.role(3), "user");
    assert!(feedback.starts_with("Your answer could not be applied: the answer holds no JSON object\n"), "{feedback}");
    assert!(feedback.contains("2 attempt(s) left"), "{feedback}");

    assert_eq!(requests(&registry, RequestOutcome::Malformed), 1.0);
    assert_eq!(requests(&registry, RequestOutcome::Ok), 1.0);
    assert_eq!(sample(&registry, "sre_agent_llm_answers_rejected_total", "reason", "not_json"), 1.0);
}

#[tokio::test]
async fn a_search_text_never_found_ends_skipped_after_max_attempts() {
    let (_captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let wrong = edit("src/lib.rs", "    v.len() == 0\n    // done\n", "    v.is_empty()\n");
    let server = FakeOpenAi::start(
        Some(KEY),
        vec![Reply::answer(&wrong), Reply::answer(&wrong), Reply::answer(&wrong), Reply::answer(good())],
    )
    .await;
    let (client, registry) = client(config(&server));

    let outcome = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap();
    let FixOutcome::Skipped(reason) = outcome else { panic!("{outcome:?}") };
    assert_eq!(reason, SkipReason::UnusableAnswers { answers: 3, last: RejectReason::SearchNotFound });
    assert_eq!(
        reason.to_string(),
        "the model's answers could not be applied after 3 attempt(s) (last: search_not_found)"
    );
    assert_eq!(server.requests().len(), 3, "max_attempts bounds the answers");
    assert_eq!(server.unused_replies(), 1);
    assert_eq!(diff(dir.path()), "", "nothing is written");
    for retry in &server.requests()[1..] {
        let feedback = retry.message(3);
        assert!(feedback.contains("edits[0].search does not occur in src/lib.rs"), "{feedback}");
        assert!(feedback.contains("first line matches line 3"), "{feedback}");
    }
    assert_eq!(sample(&registry, "sre_agent_llm_answers_rejected_total", "reason", "search_not_found"), 3.0);
    assert_eq!(sample(&registry, "sre_agent_llm_fixes_total", "outcome", "skipped"), 1.0);
}

#[tokio::test]
async fn paths_outside_the_repository_or_under_github_are_refused() {
    let (_captured, _guard) = Captured::install();
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("repo");
    fixture(&dir);
    let server = FakeOpenAi::start(
        Some(KEY),
        vec![
            Reply::answer(edit("../outside.txt", "x", "y")),
            Reply::answer(edit(".github/workflows/ci.yml", "on: push", "on: [push, pull_request]")),
            Reply::answer(
                serde_json::json!({"edits": [{"path": "src/new.rs", "content": "pub fn f() {}\n"}]}).to_string(),
            ),
        ],
    )
    .await;
    let (client, registry) = client(config(&server));

    let outcome = client.fix(&request(), &dir, &client.run_budget()).await.unwrap();
    assert!(
        matches!(
            outcome,
            FixOutcome::Skipped(SkipReason::UnusableAnswers { answers: 3, last: RejectReason::UnknownFile })
        ),
        "{outcome:?}"
    );
    assert_eq!(diff(&dir), "");
    assert!(!outer.path().join("outside.txt").exists());
    assert!(!dir.join("src/new.rs").exists(), "no file is created");
    assert_eq!(std::fs::read_to_string(dir.join(".github/workflows/ci.yml")).unwrap(), "on: push\n");
    let sent = server.requests();
    assert!(
        sent[1].message(3).contains("edits[0].path \"../outside.txt\" leaves the repository"),
        "{}",
        sent[1].message(3)
    );
    assert!(sent[2].message(3).contains("is under .github/"), "{}", sent[2].message(3));
    assert_eq!(sample(&registry, "sre_agent_llm_answers_rejected_total", "reason", "forbidden_path"), 2.0);
    assert_eq!(sample(&registry, "sre_agent_llm_answers_rejected_total", "reason", "unknown_file"), 1.0);
}

#[tokio::test]
async fn files_outside_the_worktree_and_credentials_are_never_sent() {
    let (_captured, _guard) = Captured::install();
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("repo");
    fixture(&dir);
    std::fs::write(outer.path().join("secret.txt"), "OUTSIDE_SECRET_e81d\n").unwrap();
    std::os::unix::fs::symlink(outer.path().join("secret.txt"), dir.join("src/link.rs")).unwrap();
    std::fs::write(dir.join(".env"), "TOKEN=ENV_SECRET_4c0b\n").unwrap();
    std::fs::write(dir.join("blob.bin"), b"\x00\x01\x02").unwrap();
    let server = FakeOpenAi::start(Some(KEY), vec![Reply::answer(good())]).await;
    let (client, registry) = client(config(&server));
    let mut req = request();
    req.references = vec![
        FileRef::new("src/link.rs", Some(1)),
        FileRef::new(".env", None),
        FileRef::new("blob.bin", None),
        FileRef::new("../secret.txt", None),
        FileRef::new(".github/workflows/ci.yml", Some(1)),
        FileRef::new("src/missing.rs", Some(1)),
    ];

    let outcome = client.fix(&req, &dir, &client.run_budget()).await.unwrap();
    assert!(matches!(outcome, FixOutcome::Skipped(SkipReason::NoFiles)), "{outcome:?}");
    assert!(server.requests().is_empty(), "nothing to send: no request");
    assert_eq!(sample(&registry, "sre_agent_llm_fixes_total", "outcome", "skipped"), 1.0);

    // With one sendable file, the others are named as not sent, their content never.
    req.references.push(FileRef::new("src/lib.rs", Some(3)));
    let outcome = client.fix(&req, &dir, &client.run_budget()).await.unwrap();
    assert!(matches!(outcome, FixOutcome::Applied(_)), "{outcome:?}");
    let text = server.requests()[0].all_text();
    for secret in ["OUTSIDE_SECRET_e81d", "ENV_SECRET_4c0b", "on: push"] {
        assert!(!text.contains(secret), "{secret} was sent");
    }
    let user = server.requests()[0].message(1);
    assert!(user.contains("src/link.rs (leaves the repository)"), "{user}");
    assert!(user.contains(".env (is a credentials file"), "{user}");
    assert!(user.contains("blob.bin (binary)"), "{user}");
    assert!(user.contains("../secret.txt (leaves the repository)"), "{user}");
    assert!(user.contains(".github/workflows/ci.yml (is under .github/"), "{user}");
    assert!(user.contains("src/missing.rs (not found)"), "{user}");
}

#[tokio::test]
async fn rate_limits_and_overload_are_retried_honouring_retry_after() {
    let (_captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let server =
        FakeOpenAi::start(Some(KEY), vec![Reply::unavailable(), Reply::rate_limited("1"), Reply::answer(good())]).await;
    // The backoff is 10 ms: a wait of a second or more is the server's retry-after.
    let (client, registry) = client(config(&server));
    let run = client.run_budget();

    let started = Instant::now();
    let outcome = client.fix(&request(), dir.path(), &run).await.unwrap();
    let elapsed = started.elapsed();
    let FixOutcome::Applied(fix) = outcome else { panic!("{outcome:?}") };
    assert_eq!(fix.answers, 1, "HTTP retries are not answers");
    assert_eq!(server.requests().len(), 3);
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(requests(&registry, RequestOutcome::HttpError), 1.0);
    assert_eq!(requests(&registry, RequestOutcome::RateLimited), 1.0);
    assert_eq!(requests(&registry, RequestOutcome::Ok), 1.0);
    assert_eq!(sample(&registry, "sre_agent_llm_request_duration_seconds_count", "", ""), 3.0);
    // Only the successful request is charged.
    let charged = sample(&registry, "sre_agent_llm_tokens_total", "direction", "input")
        + sample(&registry, "sre_agent_llm_tokens_total", "direction", "output");
    assert_eq!(run.used(), charged as u64);

    // A retry-after beyond the longest wait is not waited for.
    let server = FakeOpenAi::start(Some(KEY), vec![Reply::rate_limited("3600"), Reply::answer(good())]).await;
    let (client, _) = self::client(self::config(&server));
    let err = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap_err();
    assert!(
        matches!(err, LlmError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3600)),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(server.requests().len(), 1);

    // `retry-after: 0` forever still ends after 1 + http_retries requests.
    let server = FakeOpenAi::start(Some(KEY), vec![Reply::rate_limited("0"); 5]).await;
    let (client, _) = self::client(self::config(&server));
    let err = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap_err();
    assert!(matches!(err, LlmError::RateLimited { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_wrong_key_is_a_typed_error_that_never_holds_the_key() {
    let (captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let server = FakeOpenAi::start(Some("sk-the-right-one"), vec![Reply::answer(good())]).await;
    let (client, registry) = client(config(&server));

    let err = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap_err();
    assert!(matches!(&err, LlmError::Unauthorized { status: 401, code: Some(c) } if c == "invalid_api_key"), "{err:?}");
    assert_eq!(err.to_string(), "the LLM server refused the credentials (HTTP 401, invalid_api_key)");
    assert!(!err.is_transient());
    for text in [err.to_string(), format!("{err:?}"), captured.lines().join("\n")] {
        assert!(!text.contains(KEY) && !text.contains("0123456789abcdef"), "{text}");
    }
    assert_eq!(server.requests().len(), 1, "not retried");
    assert_eq!(requests(&registry, RequestOutcome::HttpError), 1.0);
    assert_eq!(sample(&registry, "sre_agent_llm_fixes_total", "outcome", "failed"), 1.0);
    assert_eq!(diff(dir.path()), "");
}

#[tokio::test]
async fn a_request_over_budget_is_refused_before_calling() {
    let (_captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let server = FakeOpenAi::start(Some(KEY), vec![Reply::answer(good()), Reply::answer(good())]).await;

    // The run budget: smaller than the prompt plus max_output_tokens.
    let mut small_run = config(&server);
    small_run.per_run_token_budget = 3_000;
    let (client, registry) = client(small_run);
    let outcome = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap();
    let FixOutcome::Skipped(SkipReason::Budget(e)) = outcome else { panic!("{outcome:?}") };
    assert_eq!((e.scope, e.remaining, e.limit), (BudgetScope::Run, 3_000, 3_000));
    assert!(e.needed > 4_096, "{e}");
    assert!(server.requests().is_empty(), "refused before calling");
    assert_eq!(requests(&registry, RequestOutcome::BudgetExceeded), 1.0);

    // The hour budget is the process's: a second run is refused once the first used it up.
    let mut small_hour = config(&server);
    // The worst case of a request is its prompt estimate (~800) plus 2000; it used ~600.
    small_hour.max_output_tokens = 2_000;
    small_hour.per_hour_token_budget = 3_000;
    let (client, registry) = self::client(small_hour);
    let first = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap();
    assert!(matches!(first, FixOutcome::Applied(_)), "{first:?}");
    sre_gitwork::testing::git(dir.path(), &["checkout", "--", "."]);
    let second = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap();
    let FixOutcome::Skipped(SkipReason::Budget(e)) = second else { panic!("{second:?}") };
    assert_eq!(e.scope, BudgetScope::Hour);
    assert_eq!(e.remaining, 3_000 - client.hour_budget().used());
    assert!(e.to_string().starts_with("hour token budget exceeded: the request may use up to "), "{e}");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(requests(&registry, RequestOutcome::BudgetExceeded), 1.0);
}

#[tokio::test]
async fn a_timeout_is_typed_not_retried_and_charged() {
    let (_captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let server =
        FakeOpenAi::start(Some(KEY), vec![Reply::Slow(Duration::from_secs(3), Box::new(Reply::answer(good())))]).await;
    let mut config = config(&server);
    config.timeout = Duration::from_secs(1);
    let (client, registry) = client(config);
    let run = client.run_budget();

    let err = client.fix(&request(), dir.path(), &run).await.unwrap_err();
    assert!(matches!(err, LlmError::Timeout(d) if d == Duration::from_secs(1)), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(server.requests().len(), 1);
    assert!(run.used() > 4_096, "the worst case is charged: the server may have done the work");
    assert_eq!(requests(&registry, RequestOutcome::Timeout), 1.0);
}

#[tokio::test]
async fn a_server_without_json_mode_is_asked_again_without_it() {
    let (_captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let unsupported = Reply::Error {
        status: 400,
        message: "Invalid parameter: 'response_format' of type 'json_object' is not supported with this model.".into(),
        kind: "invalid_request_error".into(),
        code: None,
        param: Some("response_format".into()),
        headers: vec![],
    };
    // A local server without usage, and a body that is no chat completion first.
    let server =
        FakeOpenAi::start(None, vec![unsupported, Reply::Garbage("<html>proxy</html>".into()), Reply::NoUsage(good())])
            .await;
    let mut config = config(&server);
    config.api_key = None;
    let (client, registry) = client(config);
    let run = client.run_budget();

    let outcome = client.fix(&request(), dir.path(), &run).await.unwrap();
    let FixOutcome::Applied(fix) = outcome else { panic!("{outcome:?}") };
    assert_eq!(fix.answers, 2, "the garbage body used an answer");
    let sent = server.requests();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].body["response_format"]["type"], "json_object");
    assert!(sent[1].body.get("response_format").is_none() && sent[2].body.get("response_format").is_none());
    assert!(sent.iter().all(|r| r.authorization.is_none()), "no key configured, no header");
    assert_eq!(sample(&registry, "sre_agent_llm_answers_rejected_total", "reason", "bad_response"), 1.0);
    assert!(run.used() > 0, "estimated without usage");
}

#[tokio::test]
async fn a_declined_or_cut_answer_is_a_typed_outcome() {
    let (_captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let server = FakeOpenAi::start(
        Some(KEY),
        vec![
            Reply::Cut(r#"{"summary": "Use is_empty", "edits": [{"path": "src/lib.rs", "search": "    v.le"#.into()),
            Reply::answer(r#"{"summary": "the lint is a false positive", "confidence": 0, "edits": []}"#),
        ],
    )
    .await;
    let (client, registry) = client(config(&server));
    let outcome = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap();
    let FixOutcome::Skipped(reason) = outcome else { panic!("{outcome:?}") };
    assert_eq!(reason, SkipReason::Declined { answers: 2 });
    assert_eq!(reason.to_string(), "the model proposed no edit");
    assert!(server.requests()[1].message(3).contains("stopped at the output token limit"));
    assert_eq!(sample(&registry, "sre_agent_llm_answers_rejected_total", "reason", "truncated"), 1.0);
}

#[tokio::test]
async fn a_large_file_is_sent_as_an_excerpt_and_the_prompt_is_bounded() {
    let (_captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    let big: String = (1..=3000).map(|i| format!("pub const C{i}: u32 = {i};\n")).collect();
    repo(dir.path(), &[("src/big.rs", &big)]);
    let rewrite = serde_json::json!({"edits": [{"path": "src/big.rs", "content": "pub const C1500: u32 = 1501;\n"}]});
    let server = FakeOpenAi::start(
        Some(KEY),
        vec![
            Reply::answer(rewrite.to_string()),
            Reply::answer(edit("src/big.rs", "pub const C1500: u32 = 1500;\n", "pub const C1500: u32 = 1501;\n")),
        ],
    )
    .await;
    let (client, registry) = client(config(&server));
    let mut req = request();
    // As a CI log names it: the runner's absolute path.
    req.references = vec![FileRef::new("/home/runner/work/app/app/src/big.rs", Some(1500))];

    let outcome = client.fix(&req, dir.path(), &client.run_budget()).await.unwrap();
    let FixOutcome::Applied(fix) = outcome else { panic!("{outcome:?}") };
    assert_eq!(fix.changed_files, vec!["src/big.rs".to_owned()]);
    let diff = diff(dir.path());
    assert!(diff.contains("\n-pub const C1500: u32 = 1500;\n+pub const C1500: u32 = 1501;\n"), "{diff}");

    let first = &server.requests()[0];
    let sent: usize = (0..first.messages()).map(|i| first.message(i).len()).sum();
    let limits = sre_llm::PromptLimits::default();
    assert!(sent <= limits.max_prompt_bytes, "{sent} bytes sent");
    let user = first.message(1);
    assert!(user.contains("----- BEGIN FILE src/big.rs (excerpt: lines "), "{}", &user[..2000.min(user.len())]);
    assert!(user.contains("of 3000 shown; referenced lines 1500) -----\n[sre-agent: lines 1-"));
    assert!(user.contains("pub const C1500: u32 = 1500;\n") && !user.contains("pub const C1: u32 = 1;\n"));
    assert!(user.matches("pub const C").count() * 25 < limits.max_file_bytes + 2_000, "at most one file's worth");
    assert!(server.requests()[1].message(3).contains("which you saw only in excerpts"));
    assert_eq!(sample(&registry, "sre_agent_llm_answers_rejected_total", "reason", "partial_file"), 1.0);
}

#[tokio::test]
async fn an_unreachable_server_is_retried_then_a_typed_error() {
    let (captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = LlmConfig::new(format!("http://127.0.0.1:{port}/v1"), "test-model");
    config.api_key = Some(Secret::new(KEY));
    config.retry_base_delay = Duration::from_millis(10);
    let (client, registry) = client(config);

    let err = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap_err();
    assert!(matches!(err, LlmError::Unreachable(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(err.to_string().starts_with("the LLM server is unreachable: "), "{err}");
    assert!(!err.to_string().contains(KEY) && !captured.lines().join(" ").contains(KEY));
    assert_eq!(requests(&registry, RequestOutcome::Unreachable), 3.0, "1 + http_retries");
}

/// Installs a capture layer and an OpenTelemetry layer exporting to memory on this thread.
fn capture_with_otel() -> (Captured, InMemorySpanExporter, SdkTracerProvider, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let subscriber = tracing_subscriber::registry()
        .with(captured.clone())
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, exporter, provider, guard)
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn spans_and_logs_carry_gen_ai_attributes_and_never_prompt_completion_file_or_key() {
    let (captured, exporter, provider, guard) = capture_with_otel();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let server = FakeOpenAi::start(
        Some(KEY),
        vec![Reply::answer(format!("no JSON here: {SUMMARY_MARK}")), Reply::answer(good())],
    )
    .await;
    let (client, registry) = client(config(&server));

    let outcome = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap();
    assert!(matches!(outcome, FixOutcome::Applied(_)), "{outcome:?}");
    drop(guard);
    let _ = provider.force_flush();

    // Logs and span fields: counts, labels and gen_ai attributes, no text of the prompt, the answers, the
    // file or the key.
    let lines = captured.lines().join("\n");
    for secret in [KEY, FILE_MARK, LOG_MARK, SUMMARY_MARK, "is_empty()", "v.len() == 0", "You fix one failing CI step"]
    {
        assert!(!lines.contains(secret), "{secret:?} reached a span or a log:\n{lines}");
    }
    for expected in [
        "otel.name=chat test-model",
        "otel.kind=client",
        "gen_ai.operation.name=chat",
        "gen_ai.provider.name=openai_compatible",
        "gen_ai.system=openai_compatible",
        "gen_ai.request.model=test-model",
        "gen_ai.response.model=test-model-2026-01-01",
        "server.address=127.0.0.1",
        "http.response.status_code=200",
        "sre.llm.answer_rejected=not_json",
        "sre.llm.outcome=applied",
    ] {
        assert!(lines.contains(expected), "{expected:?} not recorded:\n{lines}");
    }
    let input_tokens: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            let n: u64 = r.body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["content"].as_str().unwrap().len() as u64 / 4 + 4)
                .sum();
            format!("gen_ai.usage.input_tokens={n}")
        })
        .collect();
    for t in &input_tokens {
        assert!(lines.contains(t), "{t} not recorded:\n{lines}");
    }
    let events = captured.events();
    let finished: Vec<_> =
        events.iter().filter(|e| e.fields.get("message").is_some_and(|m| m.starts_with("llm "))).collect();
    assert!(finished.iter().any(|e| e.fields.get("reason").map(String::as_str) == Some("not_json")), "{finished:?}");

    // The exported spans: `chat {model}` client spans under the `llm fix` span, per the gen_ai conventions.
    let spans = exporter.get_finished_spans().unwrap();
    let chats: Vec<&SpanData> = spans.iter().filter(|s| s.name == "chat test-model").collect();
    assert_eq!(chats.len(), 2, "{:?}", spans.iter().map(|s| s.name.clone()).collect::<Vec<_>>());
    let fix = spans.iter().find(|s| s.name == "llm fix").expect("llm fix span");
    for chat in &chats {
        assert_eq!(chat.span_kind, SpanKind::Client);
        assert_eq!(chat.parent_span_id, fix.span_context.span_id());
        assert_eq!(attr(chat, "gen_ai.operation.name").as_deref(), Some("chat"));
        assert_eq!(attr(chat, "gen_ai.request.model").as_deref(), Some("test-model"));
        assert_eq!(attr(chat, "gen_ai.response.model").as_deref(), Some("test-model-2026-01-01"));
        assert_eq!(attr(chat, "gen_ai.response.finish_reasons").as_deref(), Some("[\"stop\"]"));
        assert!(attr(chat, "gen_ai.usage.input_tokens").is_some_and(|v| v.parse::<u64>().unwrap() > 100));
        assert!(attr(chat, "gen_ai.usage.output_tokens").is_some_and(|v| v.parse::<u64>().unwrap() > 0));
        assert_eq!(
            attr(chat, "server.port").as_deref(),
            Some(server.base_url.rsplit(':').next().unwrap().trim_end_matches("/v1"))
        );
        let all = chat.attributes.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect::<Vec<_>>().join(" ");
        for secret in [KEY, FILE_MARK, LOG_MARK, SUMMARY_MARK] {
            assert!(!all.contains(secret), "{secret} in span attributes: {all}");
        }
    }
    assert_eq!(sample(&registry, "sre_agent_llm_requests_total", "outcome", "malformed"), 1.0);

    // Sample output for docs/llm.md (`cargo test -p sre-llm --test fix spans_and_logs -- --nocapture`).
    println!("--- log events");
    for e in &events {
        println!("{} {:?}", e.level, e.fields);
    }
    println!("--- spans");
    for s in &spans {
        let attrs: Vec<String> = s.attributes.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect();
        println!("{} [{:?}] {}", s.name, s.span_kind, attrs.join(" "));
    }
    println!("--- metrics\n{}", registry.encode(false));
}

#[tokio::test]
async fn an_http_error_is_marked_on_its_span() {
    let (_captured, exporter, provider, guard) = capture_with_otel();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let server = FakeOpenAi::start(Some("sk-other"), vec![]).await;
    let (client, _) = client(config(&server));
    let _ = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap_err();
    drop(guard);
    let _ = provider.force_flush();
    let spans = exporter.get_finished_spans().unwrap();
    let chat = spans.iter().find(|s| s.name == "chat test-model").expect("chat span");
    assert_eq!(attr(chat, "error.type").as_deref(), Some("401"));
    assert_eq!(attr(chat, "http.response.status_code").as_deref(), Some("401"));
    assert!(matches!(chat.status, opentelemetry::trace::Status::Error { .. }), "{:?}", chat.status);
    let fix = spans.iter().find(|s| s.name == "llm fix").expect("fix span");
    assert_eq!(attr(fix, "error.type").as_deref(), Some("unauthorized"));
}

#[tokio::test]
async fn metric_labels_stay_within_their_bounded_sets() {
    let (_captured, _guard) = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let server =
        FakeOpenAi::start(Some(KEY), vec![Reply::answer("{}"), Reply::rate_limited("0"), Reply::answer(good())]).await;
    let (client, registry) = client(config(&server));
    let _ = client.fix(&request(), dir.path(), &client.run_budget()).await.unwrap();
    for ((name, labels), _) in parse_exposition(&registry.encode(false)) {
        assert!(name.starts_with("sre_agent_llm_"), "{name}");
        for (label, value) in &labels {
            let allowed: Vec<&str> = match label.as_str() {
                "outcome" if name.starts_with("sre_agent_llm_requests") => RequestOutcome::spellings(),
                "outcome" => FixOutcomeLabel::spellings(),
                "direction" => TokenDirection::spellings(),
                "reason" => RejectReason::spellings(),
                "le" => continue,
                other => panic!("unexpected label {other} on {name}"),
            };
            assert!(allowed.contains(&value.as_str()), "{name}{{{label}={value}}}");
            assert!(!value.contains("test-model"), "the model is no label");
        }
    }
    assert_eq!(sample(&registry, "sre_agent_llm_answers_rejected_total", "reason", "wrong_shape"), 1.0);
    assert_eq!(requests(&registry, RequestOutcome::RateLimited), 1.0);
}
