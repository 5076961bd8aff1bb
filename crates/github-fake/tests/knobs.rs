//! The latency knob of one method: `POST` on pulls (creating a PR) is delayed, listing pulls is not; what the
//! drills use to hold a run between its push and its PR creation.

use std::time::{Duration, Instant};

use sre_github_fake::{FakeGithub, Route};

#[tokio::test]
async fn method_latency_delays_only_that_method() {
    let fake = FakeGithub::start().await.unwrap();
    fake.add_repo("acme/app", "main").unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/repos/acme/app/pulls", fake.api_url());
    let delay = Duration::from_millis(1500);
    fake.set_method_latency(Route::Pulls, "post", delay);

    let t = Instant::now();
    let listed = http.get(&url).send().await.unwrap();
    let list_took = t.elapsed();
    let t = Instant::now();
    let created =
        http.post(&url).json(&serde_json::json!({"title": "x", "head": "b", "base": "main"})).send().await.unwrap();
    let create_took = t.elapsed();
    println!("GET {} in {list_took:?}, POST {} in {create_took:?}", listed.status(), created.status());
    assert!(list_took < delay, "GET pulls delayed: {list_took:?}");
    assert!(create_took >= delay, "POST pulls not delayed: {create_took:?}");
    let posts = fake.calls_to(Route::Pulls).into_iter().filter(|c| c.method == "POST").count();
    assert_eq!(posts, 1);

    // Zero removes it.
    fake.set_method_latency(Route::Pulls, "POST", Duration::ZERO);
    let t = Instant::now();
    http.post(&url).json(&serde_json::json!({"title": "x", "head": "b", "base": "main"})).send().await.unwrap();
    assert!(t.elapsed() < delay, "still delayed: {:?}", t.elapsed());
}
