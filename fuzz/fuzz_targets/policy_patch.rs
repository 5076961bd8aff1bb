//! Policy scoring of any patch and any plan. The decision is coherent (allowed exactly when nothing blocks,
//! `safe` exactly when nothing was found and the score is low, a finite score, violation families from the
//! bounded set); it counts the lines the planner's diff stat counts; and adding a file that carries a token
//! blocks the patch, adding a workflow change makes it need review, whatever came before.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sre_domain::{Label, PrLabel, ViolationType};
use sre_policy::rules::{MAX_CHANGED_LINES, SAFE_BELOW, check_patch, check_plan};
use sre_proto::{FixPlan, PlanStep, PolicyDecision};

const TOKEN_FILE: &str = "diff --git a/z.py b/z.py\n--- a/z.py\n+++ b/z.py\n@@ -0,0 +1 @@\n+TOKEN = \"ghp_0123456789abcdefghijABCDEFGHIJ\"\n";
const WORKFLOW_FILE: &str = "diff --git a/.github/workflows/ci.yml b/.github/workflows/ci.yml\n\
    --- a/.github/workflows/ci.yml\n+++ b/.github/workflows/ci.yml\n@@ -1 +1 @@\n-on: push\n+on: [push]\n";

fn coherent(d: &PolicyDecision) {
    assert!(d.danger_score.is_finite() && d.danger_score >= 0.0, "{d:?}");
    assert_eq!(d.allowed, !d.violations.iter().any(|v| v.blocking), "{d:?}");
    let safe = d.violations.is_empty() && d.danger_score < SAFE_BELOW;
    let label = if safe { PrLabel::Safe } else { PrLabel::NeedsReview };
    assert_eq!(d.label, label.as_str(), "{d:?}");
    for v in &d.violations {
        let family = v.code.split('.').next().unwrap_or_default();
        assert!(ViolationType::parse(family).is_some(), "unbounded family {:?}", v.code);
    }
}

// Input: a flags byte (bit 0: put a git header first), the plan's confidence (8 bytes, little-endian f64),
// then the diff; the plan's steps are the diff's first lines read as `action path`.
fuzz_target!(|data: &[u8]| {
    let [flags, c0, c1, c2, c3, c4, c5, c6, c7, rest @ ..] = data else { return };
    let confidence = f64::from_le_bytes([*c0, *c1, *c2, *c3, *c4, *c5, *c6, *c7]);
    let text = String::from_utf8_lossy(rest);
    let diff = if flags & 1 == 1 { format!("diff --git a/x.py b/x.py\n{text}") } else { text.clone().into_owned() };
    let d = check_patch(&diff);
    coherent(&d);
    if let Ok(files) = sre_gitwork::parse_diff(&diff)
        && !files.is_empty()
    {
        let stat = sre_gitwork::diff_stat(&diff);
        let too_many = d.violations.iter().any(|v| v.code == "size.too_many_lines");
        assert_eq!(too_many, stat.added + stat.removed > MAX_CHANGED_LINES, "{stat:?} {d:?}");
    }
    let sep = if diff.ends_with('\n') { "" } else { "\n" };
    let with_token = check_patch(&format!("{diff}{sep}{TOKEN_FILE}"));
    coherent(&with_token);
    assert!(!with_token.allowed, "a token got through: {with_token:?}");
    let with_workflow = check_patch(&format!("{diff}{sep}{WORKFLOW_FILE}"));
    coherent(&with_workflow);
    assert_eq!(with_workflow.label, PrLabel::NeedsReview.as_str(), "{with_workflow:?}");

    let plan = FixPlan {
        strategy: "fuzz".into(),
        summary: String::new(),
        steps: text
            .lines()
            .take(usize::from(flags >> 1))
            .map(|l| {
                let (action, path) = l.split_once(' ').unwrap_or((l, ""));
                PlanStep { action: action.to_owned(), path: path.to_owned(), rationale: String::new() }
            })
            .collect(),
        confidence,
        ..Default::default()
    };
    let p = check_plan(&plan);
    coherent(&p);
    // Only a confidence of at least 0.5 (not NaN, not below) goes without the low-confidence review.
    if !plan.steps.is_empty() && !(plan.confidence >= 0.5) {
        assert!(p.violations.iter().any(|v| v.code == "plan.low_confidence"), "confidence {}: {p:?}", plan.confidence);
    }
});
