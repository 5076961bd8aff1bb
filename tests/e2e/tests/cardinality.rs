//! Cardinality under hostile traffic: thousands of requests with random paths, methods, event types,
//! repositories, delivery IDs, signatures and payloads to the gateway, and gRPC calls with random methods
//! and absurd fields to every service. Afterwards every family stays inside its label sets (the contract of
//! docs/observability.md) and under its series budget (the product of its label sets' sizes), and no
//! request-supplied string appears in any label.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::Request;
use sre_e2e::contract::Contract;
use sre_e2e::{Mesh, MeshOptions, SECRET};

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn word(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_.%";
        (0..len).map(|_| ALPHABET[self.below(ALPHABET.len())] as char).collect()
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_traffic_stays_inside_every_label_set_and_budget() {
    let contract = Contract::load();
    // No orchestrator: the stored runs would only keep it busy; the services are called directly below.
    let mesh = Mesh::start(MeshOptions { orchestrator: false, ..MeshOptions::default() }).await;
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let mut minted = BTreeSet::new();

    for i in 0..3000 {
        let req = match i % 6 {
            // Random paths and methods.
            0 => {
                let path = format!("/{}/{}", rng.word(6), rng.word(10));
                minted.insert(path.clone());
                let method = rng.pick(&["GET", "POST", "PUT", "DELETE", "PROPFIND", "BREW", "PATCH"]);
                Request::builder().method(method).uri(path).body(Body::empty()).unwrap()
            }
            // Runs API with random IDs and artifact kinds.
            1 => {
                let (id, kind) = (rng.word(12), rng.word(5));
                minted.insert(id.clone());
                minted.insert(kind.clone());
                Request::get(format!("/api/v1/runs/{id}/artifacts/{kind}")).body(Body::empty()).unwrap()
            }
            // Webhooks with random event types, delivery IDs, repositories; half of them badly signed.
            _ => {
                let event = if rng.below(3) == 0 {
                    let e = rng.word(8);
                    minted.insert(e.clone());
                    e
                } else {
                    rng.pick(&["workflow_run", "workflow_job", "check_run", "check_suite", "ping"]).to_owned()
                };
                let repo = format!("{}/{}", rng.word(5), rng.word(7));
                minted.insert(repo.clone());
                let body = match rng.below(3) {
                    0 => format!("{{not json {}", rng.word(20)),
                    1 => format!(
                        r#"{{"action":"completed","workflow_job":{{"id":{},"run_id":{},"name":"{}","head_sha":"{}","conclusion":"failure"}},"repository":{{"full_name":"{repo}"}}}}"#,
                        rng.next() % 1_000_000,
                        rng.next() % 1_000_000,
                        rng.word(6),
                        rng.word(40)
                    ),
                    _ => format!(
                        r#"{{"action":"{}","workflow_run":{{"id":1,"head_sha":"x","conclusion":"{}"}},"repository":{{"full_name":"{repo}"}}}}"#,
                        rng.word(5),
                        rng.word(5)
                    ),
                };
                let delivery = if rng.below(4) == 0 { format!("{} bad", rng.word(4)) } else { rng.word(20) };
                minted.insert(delivery.clone());
                let signature = if rng.below(2) == 0 {
                    sre_gateway::webhook::sign(SECRET, body.as_bytes())
                } else {
                    format!("sha256={}", rng.word(64))
                };
                Request::post("/webhooks/github")
                    .header("x-github-event", event)
                    .header("x-github-delivery", delivery)
                    .header("x-hub-signature-256", signature)
                    .body(Body::from(body))
                    .unwrap()
            }
        };
        let (status, _) = mesh.send(req).await;
        assert!(status.as_u16() < 600 && status.as_u16() != 500, "request {i} answered {status}");
    }

    // gRPC: real methods with absurd contexts, and methods that do not exist.
    for (name, service) in [
        ("planner", "sre.v1.Planner"),
        ("policy", "sre.v1.Policy"),
        ("scanner", "sre.v1.Scanner"),
        ("validator", "sre.v1.Validator"),
        ("pr", "sre.v1.PullRequests"),
    ] {
        let channel = tonic::transport::Endpoint::from_shared(mesh.services[name].url()).unwrap().connect_lazy();
        let mut grpc = tonic::client::Grpc::new(channel);
        for _ in 0..60 {
            let method = if rng.below(2) == 0 {
                let m = rng.word(9);
                minted.insert(m.clone());
                m
            } else {
                rng.pick(&[
                    "GeneratePlan",
                    "GeneratePatch",
                    "CheckPlan",
                    "CheckPatch",
                    "RunScans",
                    "Validate",
                    "CreatePullRequest",
                ])
                .to_owned()
            };
            let repo = format!("{}/{}", rng.word(4), rng.word(4));
            minted.insert(repo.clone());
            let ctx = sre_proto::RunContext {
                repo,
                head_sha: rng.word(40),
                run_id: rng.word(30),
                language: rng.word(5),
                ..Default::default()
            };
            let request = sre_proto::CheckPatchRequest { context: Some(ctx), diff: rng.word(200) };
            grpc.ready().await.unwrap();
            let path = format!("/{service}/{method}").parse().unwrap();
            let codec = tonic_prost::ProstCodec::<sre_proto::CheckPatchRequest, sre_proto::PolicyDecision>::default();
            // Any answer will do (most are errors); what matters is what the server counted.
            let _ = grpc.unary(tonic::Request::new(request), path, codec).await;
        }
    }

    let scrapes: BTreeMap<&str, String> = mesh.registries.iter().map(|(p, r)| (*p, r.encode(false))).collect();
    let problems = contract.check_mesh(&scrapes, false);
    assert!(problems.is_empty(), "outside the contract after hostile traffic:\n  {}", problems.join("\n  "));

    let mut report = Vec::new();
    let mut total = 0;
    for (process, text) in &scrapes {
        let mut per_family: BTreeMap<String, BTreeSet<BTreeMap<String, String>>> = BTreeMap::new();
        for (sample, labels) in sre_telemetry::testing::parse_exposition(text).keys() {
            for value in labels.values() {
                assert!(!minted.contains(value), "{process}: {sample} carries a request-supplied value {value:?}");
            }
            if let Some(row) = contract.family_of(sample) {
                let mut labels = labels.clone();
                labels.remove("le");
                per_family.entry(row.name.clone()).or_default().insert(labels);
            }
        }
        for (family, sets) in per_family {
            let budget = contract.metric(&family).unwrap().budget();
            assert!(sets.len() <= budget, "{process}: {family} has {} series, budget {budget}", sets.len());
            total += sets.len();
            report.push(format!("{process:>12} {family:<48} {:>4} / {budget}", sets.len()));
        }
    }
    eprintln!(
        "series per family after the hostile traffic (label sets, budget):\n{}\ntotal: {total}",
        report.join("\n")
    );
    mesh.stop().await;
}
