//! Every gRPC service refuses a request with missing or absurd fields with INVALID_ARGUMENT and a message that
//! says what is wrong: no context, an empty repo, a repo that escapes the repos dir, a head_sha that is not
//! hex, a diff past the limit. The services run as their binaries serve them (sre-e2e's Mesh).

use sre_e2e::{Mesh, MeshOptions, lint_failure_repo};
use sre_proto::planner_client::PlannerClient;
use sre_proto::policy_client::PolicyClient;
use sre_proto::pull_requests_client::PullRequestsClient;
use sre_proto::scanner_client::ScannerClient;
use sre_proto::validator_client::ValidatorClient;
use sre_proto::{
    BuildFailureContextRequest, CheckPatchRequest, CheckPlanRequest, CreatePullRequestRequest, FailureInfo, FixPlan,
    GeneratePatchRequest, GeneratePlanRequest, PlanStep, RunContext, RunScansRequest, ValidateRequest,
};
use tonic::Code;

fn ctx(repo: &str, sha: &str) -> Option<RunContext> {
    Some(RunContext {
        run_id: "bad-input".into(),
        run_key: "acme/app@x/lint".into(),
        repo: repo.into(),
        head_sha: sha.into(),
        ..Default::default()
    })
}

fn assert_invalid(what: &str, result: Result<(), tonic::Status>, says: &str) {
    assert_refused(what, result, Code::InvalidArgument, says);
}

fn assert_refused(what: &str, result: Result<(), tonic::Status>, code: Code, says: &str) {
    let status = result.err().unwrap_or_else(|| panic!("{what}: accepted"));
    assert_eq!(status.code(), code, "{what}: {status:?}");
    assert!(status.message().contains(says), "{what}: {:?} does not say {says:?}", status.message());
    println!("| {what} | {code:?} | {} |", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_requests_are_invalid_argument_with_a_message() {
    let mesh = Mesh::start(MeshOptions { orchestrator: false, ..MeshOptions::default() }).await;
    let sha = lint_failure_repo(mesh.repos_dir());
    let url = |name: &str| mesh.services[name].url();
    let mut planner = PlannerClient::connect(url("planner")).await.unwrap();
    let mut policy = PolicyClient::connect(url("policy")).await.unwrap();
    let mut scanner = ScannerClient::connect(url("scanner")).await.unwrap();
    let mut validator = ValidatorClient::connect(url("validator")).await.unwrap();
    let mut pr = PullRequestsClient::connect(url("pr")).await.unwrap();
    let huge = format!("diff --git a/x b/x\n{}", "+".repeat(sre_service_kit::MAX_DIFF_BYTES));
    let failure = Some(FailureInfo { job_name: "lint".into(), workflow_name: "CI".into(), ..Default::default() });

    // (what is wrong, the context, what the message must say)
    let contexts: [(&str, Option<RunContext>, &str); 6] = [
        ("no context", None, "context is required"),
        ("empty repo", ctx("", &sha), "repo"),
        ("repo escaping the repos dir", ctx("../../etc", &sha), "../../etc"),
        ("repo with a nested path", ctx("acme/app/../../../etc", &sha), "acme/app/../../../etc"),
        ("head_sha not hex", ctx("acme/app", "HEAD; rm -rf /"), "HEAD; rm -rf /"),
        ("empty head_sha", ctx("acme/app", ""), "head_sha"),
    ];
    for (what, context, says) in contexts {
        let r = planner
            .build_failure_context(BuildFailureContextRequest {
                context: context.clone(),
                failure: failure.clone(),
                log: "app.py:1:15: W291 trailing whitespace".into(),
                ..Default::default()
            })
            .await;
        assert_invalid(&format!("Planner/BuildFailureContext, {what}"), r.map(drop), says);
        let r = planner
            .generate_plan(GeneratePlanRequest {
                context: context.clone(),
                failure: failure.clone(),
                ..Default::default()
            })
            .await;
        assert_invalid(&format!("Planner/GeneratePlan, {what}"), r.map(drop), says);
        let r = scanner.run_scans(RunScansRequest { context: context.clone(), diff: String::new() }).await;
        assert_invalid(&format!("Scanner/RunScans, {what}"), r.map(drop), says);
        let r = validator
            .validate(ValidateRequest { context: context.clone(), failure: failure.clone(), ..Default::default() })
            .await;
        assert_invalid(&format!("Validator/Validate, {what}"), r.map(drop), says);
        let r = pr
            .create_pull_request(CreatePullRequestRequest {
                context: context.clone(),
                diff: "diff --git a/app.py b/app.py\n".into(),
                title: "Fix lint".into(),
                label: "safe".into(),
                failure: failure.clone(),
                ..Default::default()
            })
            .await;
        assert_invalid(&format!("PullRequests/CreatePullRequest, {what}"), r.map(drop), says);
    }

    // A diff past the limit, wherever a diff is taken: the service's own bound (INVALID_ARGUMENT naming it),
    // not the transport's (the decode limit, MAX_GRPC_MESSAGE_BYTES, is above it; tonic's default 4 MiB
    // answered OUT_OF_RANGE before the handler ran).
    assert!(sre_service_kit::MAX_GRPC_MESSAGE_BYTES > huge.len() + 1024);
    let good = ctx("acme/app", &sha);
    let says = "the limit is";
    let too_large = |what: &str, r: Result<(), tonic::Status>| assert_refused(what, r, Code::InvalidArgument, says);
    let r = policy.check_patch(CheckPatchRequest { context: good.clone(), diff: huge.clone() }).await;
    too_large("Policy/CheckPatch, oversized diff", r.map(drop));
    let r = scanner.run_scans(RunScansRequest { context: good.clone(), diff: huge.clone() }).await;
    too_large("Scanner/RunScans, oversized diff", r.map(drop));
    let r = validator
        .validate(ValidateRequest {
            context: good.clone(),
            diff: huge.clone(),
            failure: failure.clone(),
            ..Default::default()
        })
        .await;
    too_large("Validator/Validate, oversized diff", r.map(drop));
    let r = pr
        .create_pull_request(CreatePullRequestRequest {
            context: good.clone(),
            diff: huge.clone(),
            title: "Fix lint".into(),
            label: "safe".into(),
            failure: failure.clone(),
            ..Default::default()
        })
        .await;
    too_large("PullRequests/CreatePullRequest, oversized diff", r.map(drop));
    // A job log past the planner's 8 MiB bound, which is also past tonic's default decode limit.
    let r = planner
        .build_failure_context(BuildFailureContextRequest {
            context: good.clone(),
            failure: failure.clone(),
            log: "x".repeat(8 * 1024 * 1024 + 1),
            ..Default::default()
        })
        .await;
    assert_invalid("Planner/BuildFailureContext, oversized log", r.map(drop), "8388609");
    // A message past the decode limit itself is still refused by the transport, before it is buffered.
    let absurd = format!("diff --git a/x b/x\n{}", "+".repeat(sre_service_kit::MAX_GRPC_MESSAGE_BYTES));
    let r = policy.check_patch(CheckPatchRequest { context: good.clone(), diff: absurd }).await;
    assert_refused("Policy/CheckPatch, message past the decode limit", r.map(drop), Code::OutOfRange, "message");

    // A plan that is missing, or whose steps leave the repository.
    let r = policy.check_plan(CheckPlanRequest { context: good.clone(), plan: None }).await;
    assert_invalid("Policy/CheckPlan, no plan", r.map(drop), "plan");
    let escaping = FixPlan {
        strategy: "strip_trailing_whitespace".into(),
        summary: "strip".into(),
        steps: vec![PlanStep {
            action: "fix_whitespace".into(),
            path: "../../../etc/passwd".into(),
            rationale: "x".into(),
        }],
        confidence: 0.9,
        ..Default::default()
    };
    let r = planner
        .generate_patch(GeneratePatchRequest { context: good.clone(), plan: Some(escaping), ..Default::default() })
        .await;
    assert_invalid("Planner/GeneratePatch, plan path escaping the repository", r.map(drop), "../../../etc/passwd");
    let unknown = FixPlan {
        steps: vec![PlanStep { action: "rm -rf".into(), path: "app.py".into(), rationale: "x".into() }],
        ..Default::default()
    };
    let r = planner
        .generate_patch(GeneratePatchRequest { context: good.clone(), plan: Some(unknown), ..Default::default() })
        .await;
    assert_invalid("Planner/GeneratePatch, unknown plan action", r.map(drop), "unknown plan action");
    let r =
        planner.generate_patch(GeneratePatchRequest { context: good.clone(), plan: None, ..Default::default() }).await;
    assert_invalid("Planner/GeneratePatch, no plan", r.map(drop), "plan");

    mesh.stop().await;
}
