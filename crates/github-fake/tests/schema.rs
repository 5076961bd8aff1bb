//! Every body the fake answers, checked against GitHub's REST description (the fragments in `schemas/`):
//! required properties present, types and enums as described, nullability respected.

use serde_json::{Value, json};
use sre_github_fake::{AppKey, FakeGithub, JobSpec, RunSpec};

const FRAGMENTS: &str = include_str!("../schemas/rest-fragments.json");
const TOKEN: &str = "ghp_schemaTestToken";

/// Checks `v` against a schema fragment (the subset `extract.py` keeps); collects mismatches with their path.
fn check(schema: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    let s = schema.as_object().cloned().unwrap_or_default();
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for sub in all {
            check(sub, v, path, errs);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let ok = alts.iter().any(|alt| {
                let mut e = Vec::new();
                check(alt, v, path, &mut e);
                e.is_empty()
            });
            let null_ok = v.is_null() && s.get("nullable") == Some(&json!(true));
            if !ok && !null_ok {
                errs.push(format!("{path}: matches no {key} alternative"));
            }
        }
    }
    if v.is_null() {
        let typed = s.contains_key("type") || s.contains_key("properties");
        if typed && s.get("nullable") != Some(&json!(true)) {
            errs.push(format!("{path}: null but not nullable"));
        }
        return;
    }
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = match t {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            _ => true,
        };
        if !ok {
            errs.push(format!("{path}: expected {t}, got {v}"));
            return;
        }
    }
    if let (Some(allowed), Some(value)) = (s.get("enum").and_then(Value::as_array), v.as_str())
        && !allowed.iter().any(|a| a.as_str() == Some(value))
    {
        errs.push(format!("{path}: {value:?} not in {allowed:?}"));
    }
    if let Some(obj) = v.as_object() {
        for req in s.get("required").and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = req.as_str()
                && !obj.contains_key(name)
            {
                errs.push(format!("{path}: missing required {name}"));
            }
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                if let Some(child) = obj.get(name) {
                    check(sub, child, &format!("{path}.{name}"), errs);
                }
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check(items, item, &format!("{path}[{i}]"), errs);
        }
    }
}

struct Checker {
    fragments: Value,
    http: reqwest::Client,
    base: String,
    checked: Vec<String>,
}

impl Checker {
    /// Calls the fake and checks the answer's status and body against the fragment `op`.
    async fn call(&mut self, op: &str, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let status: u16 = op.rsplit(' ').next().unwrap().parse().unwrap();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{op} {path}");
        let v: Value = resp.json().await.unwrap();
        let schema = self.fragments.get(op).unwrap_or_else(|| panic!("no fragment {op}"));
        let mut errs = Vec::new();
        check(schema, &v, "$", &mut errs);
        assert!(errs.is_empty(), "{op}: the fake's body does not match GitHub's description:\n{}", errs.join("\n"));
        self.checked.push(op.to_owned());
        v
    }
}

/// An installation token, minted with a real App JWT.
async fn installation_token(http: &reqwest::Client, base: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({"iat": now - 60, "exp": now + 540, "iss": "7"});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(AppKey::shared().private_pem.as_bytes()).unwrap();
    let jwt = jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key).unwrap();
    let resp = http.post(format!("{base}/app/installations/3/access_tokens")).bearer_auth(jwt).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    resp.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_answer_matches_the_rest_description() {
    let fake = FakeGithub::start().await.unwrap();
    fake.add_app(7, "bot", &AppKey::shared().public_pem);
    fake.add_installation(3, 7, &["o/r"]);
    fake.add_plain_token(TOKEN, "octocat");
    fake.add_user("dev", "dev@example.com");
    fake.add_repo("o/r", "main").unwrap();
    let base_sha = fake.commit("o/r", "main", &[("a", "a\n")], "one", ("Dev", "dev@example.com")).unwrap();
    fake.commit("o/r", "fix/x", &[("b", "b\n")], "two", ("Bot", "bot@example.com")).unwrap();
    fake.add_run(
        "o/r",
        RunSpec {
            id: 5,
            check_suite_id: 5005,
            workflow_name: "CI".into(),
            head_sha: base_sha.clone(),
            head_branch: "main".into(),
            attempts: vec![vec![JobSpec::completed(50, "test", "failure", &[("Run tests", "failure")])]],
        },
    );

    let http = reqwest::Client::new();
    let mut c = Checker {
        fragments: serde_json::from_str(FRAGMENTS).unwrap(),
        http: http.clone(),
        base: fake.api_url(),
        checked: Vec::new(),
    };
    let inst = installation_token(&http, &fake.api_url()).await;
    c.checked.push("POST /app/installations/{installation_id}/access_tokens 201".into());

    c.call("GET /installation/repositories 200", "GET", "/installation/repositories", &inst, None).await;
    c.call("GET /repos/{owner}/{repo} 200", "GET", "/repos/o/r", TOKEN, None).await;
    c.call("GET /repos/{owner}/{repo} 404", "GET", "/repos/o/missing", TOKEN, None).await;
    c.call(
        "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs 200",
        "GET",
        "/repos/o/r/actions/runs/5/jobs",
        TOKEN,
        None,
    )
    .await;
    c.call(
        "GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs 200",
        "GET",
        "/repos/o/r/actions/runs/5/attempts/1/jobs",
        TOKEN,
        None,
    )
    .await;
    c.call("GET /repos/{owner}/{repo}/actions/jobs/{job_id} 200", "GET", "/repos/o/r/actions/jobs/50", TOKEN, None)
        .await;
    c.call(
        "GET /repos/{owner}/{repo}/commits/{ref} 200",
        "GET",
        &format!("/repos/o/r/commits/{base_sha}"),
        TOKEN,
        None,
    )
    .await;
    c.call("GET /repos/{owner}/{repo}/commits 200", "GET", "/repos/o/r/commits?sha=fix/x", TOKEN, None).await;
    c.call("GET /repos/{owner}/{repo}/branches/{branch} 200", "GET", "/repos/o/r/branches/fix/x", TOKEN, None).await;
    let pull = json!({"title": "t", "head": "fix/x", "base": "main", "body": "b", "draft": true});
    let created =
        c.call("POST /repos/{owner}/{repo}/pulls 201", "POST", "/repos/o/r/pulls", &inst, Some(pull.clone())).await;
    c.call("POST /repos/{owner}/{repo}/pulls 422", "POST", "/repos/o/r/pulls", &inst, Some(pull)).await;
    c.call("GET /repos/{owner}/{repo}/pulls 200", "GET", "/repos/o/r/pulls?head=o:fix/x&state=open", TOKEN, None).await;
    let n = created["number"].as_u64().unwrap();
    c.call("GET /repos/{owner}/{repo}/pulls/{pull_number} 200", "GET", &format!("/repos/o/r/pulls/{n}"), TOKEN, None)
        .await;
    c.call(
        "PATCH /repos/{owner}/{repo}/pulls/{pull_number} 200",
        "PATCH",
        &format!("/repos/o/r/pulls/{n}"),
        TOKEN,
        Some(json!({"title": "t2"})),
    )
    .await;
    let label = json!({"name": "sre-agent", "color": "0e8a16", "description": "d"});
    c.call("POST /repos/{owner}/{repo}/labels 201", "POST", "/repos/o/r/labels", TOKEN, Some(label)).await;
    c.call("GET /repos/{owner}/{repo}/labels 200", "GET", "/repos/o/r/labels", TOKEN, None).await;
    c.call(
        "POST /repos/{owner}/{repo}/issues/{issue_number}/labels 200",
        "POST",
        &format!("/repos/o/r/issues/{n}/labels"),
        TOKEN,
        Some(json!({"labels": ["sre-agent", "new-one"]})),
    )
    .await;
    let run = json!({"name": "sre-agent", "head_sha": base_sha, "status": "in_progress",
                     "output": {"title": "t", "summary": "s"}, "details_url": "https://x.example/1"});
    let created =
        c.call("POST /repos/{owner}/{repo}/check-runs 201", "POST", "/repos/o/r/check-runs", &inst, Some(run)).await;
    let id = created["id"].as_u64().unwrap();
    c.call(
        "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id} 200",
        "PATCH",
        &format!("/repos/o/r/check-runs/{id}"),
        &inst,
        Some(json!({"conclusion": "success"})),
    )
    .await;

    // Every fragment was exercised.
    let fragments = c.fragments.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    for op in fragments {
        assert!(c.checked.contains(&op), "fragment {op} not exercised");
    }
}

#[test]
fn the_checker_finds_mismatches() {
    let schema = json!({"type": "object", "required": ["a", "b"], "properties": {
        "a": {"type": "integer"}, "b": {"type": "string", "nullable": true, "enum": ["x", "y"]},
        "c": {"type": "array", "items": {"type": "boolean"}}}});
    let mut errs = Vec::new();
    check(&schema, &json!({"a": 1, "b": null, "c": [true]}), "$", &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    check(&schema, &json!({"a": "1", "c": [1]}), "$", &mut errs);
    assert_eq!(errs.len(), 3, "{errs:?}");
    let mut errs = Vec::new();
    check(&schema, &json!({"a": 1, "b": "z"}), "$", &mut errs);
    assert_eq!(errs.len(), 1, "{errs:?}");
}
