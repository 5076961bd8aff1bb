//! Policy checks and the danger score. Pure functions over the plan and the unified diff.
//!
//! Violation codes are `<family>.<detail>`; the family is the bounded metric label.

use sre_domain::{PrLabel, ViolationType};
use sre_proto::{FixPlan, PolicyDecision, Violation};

/// Plan actions the planner executes: the whitespace rule, the deterministic fixers (one action per tool,
/// named as their strategy) and the LLM planner's edit.
pub const KNOWN_ACTIONS: &[&str] = &[
    "fix_whitespace",
    "ruff_format",
    "ruff_fix",
    "black",
    "cargo_fmt",
    "clippy_fix",
    "prettier",
    "eslint_fix",
    "gofmt",
    "llm_edit",
];

/// Limits on one patch.
pub const MAX_FILES: usize = 20;
pub const MAX_CHANGED_LINES: u32 = 500;
/// Scores below this with no review-level violation are labelled `safe`.
pub const SAFE_BELOW: f64 = 30.0;

/// Paths a fix may never touch (blocking).
const FORBIDDEN_PREFIXES: &[&str] = &[".git/", ".ssh/"];
/// GitHub's own configuration (workflows, actions, dependabot, CODEOWNERS): the agent never writes it, the pr
/// service refuses to commit it and the App has no `Workflows` permission, so a plan or patch touching it is
/// refused here, before any scan or validation is spent on a change that can never become a PR.
const GITHUB_DIR: &str = ".github/";
/// Paths that need a human: other CI definitions, ownership.
const REVIEW_PREFIXES: &[&str] = &[".gitlab-ci", ".circleci/", "CODEOWNERS", "docs/CODEOWNERS"];
/// Dependency manifests and lock files.
const DEPENDENCY_FILES: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "package.json",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "requirements.txt",
    "poetry.lock",
    "pyproject.toml",
    "go.mod",
    "go.sum",
    "Gemfile.lock",
];
/// Lock files: a patch that changes only these is churn no fixer should make (and cannot be validated
/// offline).
const LOCK_FILES: &[&str] = &[
    "Cargo.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "go.sum",
    "Gemfile.lock",
    "composer.lock",
];
/// File names that hold credentials.
const SECRET_FILES: &[&str] = &[
    ".env",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".git-credentials",
    ".htpasswd",
    "credentials",
    "credentials.json",
    "service-account.json",
];
const SECRET_EXTS: &[&str] = &[".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".ppk", ".kdbx"];
/// Directories whose files hold credentials wherever they sit.
const SECRET_DIRS: &[&str] = &[".aws/", ".ssh/", ".docker/", ".kube/", ".gnupg/"];

/// A violation `<family>.<detail>`; the family is the bounded `type` label of the violations metric.
fn violation(family: ViolationType, detail: &str, message: impl Into<String>, path: &str, blocking: bool) -> Violation {
    Violation {
        code: format!("{}.{detail}", family.as_str()),
        message: message.into(),
        path: path.to_owned(),
        blocking,
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Path checks shared by plans and patches.
fn check_path(path: &str, out: &mut Vec<Violation>) {
    if path.starts_with('/') || path.split('/').any(|c| c == "..") {
        out.push(violation(ViolationType::Path, "traversal", "path leaves the repository", path, true));
        return;
    }
    if FORBIDDEN_PREFIXES.iter().any(|p| path.starts_with(p) || path.contains(&format!("/{p}"))) {
        out.push(violation(ViolationType::Path, "forbidden", "path may never be changed by the agent", path, true));
    }
    let name = file_name(path);
    let in_secret_dir = SECRET_DIRS.iter().any(|d| path.starts_with(d) || path.contains(&format!("/{d}")));
    // `.env.production`, `.env.local`: dotenv files of every environment.
    let dotenv = name.starts_with(".env.");
    if SECRET_FILES.contains(&name) || SECRET_EXTS.iter().any(|e| name.ends_with(e)) || dotenv || in_secret_dir {
        out.push(violation(ViolationType::Path, "credentials", "file looks like it holds credentials", path, true));
    }
    if path.starts_with(GITHUB_DIR) || path == ".github" {
        out.push(violation(
            ViolationType::Path,
            "github",
            "the agent never writes under .github/ (workflows, actions, CODEOWNERS)",
            path,
            true,
        ));
    } else if REVIEW_PREFIXES.iter().any(|p| path.starts_with(p)) {
        out.push(violation(
            ViolationType::Path,
            "protected",
            "CI or ownership configuration needs review",
            path,
            false,
        ));
    }
}

/// Danger weights of a plan or patch, summed into the score.
#[derive(Debug, Default)]
struct Score(f64);

impl Score {
    fn add(&mut self, points: f64) {
        self.0 += points;
    }
}

/// Turns violations and a score into a decision.
fn decide(score: f64, violations: Vec<Violation>) -> PolicyDecision {
    let allowed = !violations.iter().any(|v| v.blocking);
    let review = !violations.is_empty() || score >= SAFE_BELOW;
    PolicyDecision {
        allowed,
        danger_score: (score * 10.0).round() / 10.0,
        label: if review { PrLabel::NeedsReview } else { PrLabel::Safe }.as_str().to_owned(),
        violations,
    }
}

/// Checks a fix plan before any patch exists.
pub fn check_plan(plan: &FixPlan) -> PolicyDecision {
    let mut v = Vec::new();
    let mut score = Score::default();
    if plan.steps.len() > MAX_FILES {
        v.push(violation(
            ViolationType::Size,
            "too_many_files",
            format!("plan touches {} files (limit {MAX_FILES})", plan.steps.len()),
            "",
            true,
        ));
    }
    for step in &plan.steps {
        if !KNOWN_ACTIONS.contains(&step.action.as_str()) {
            v.push(violation(
                ViolationType::Action,
                "unknown",
                format!("unknown action {:?}", step.action),
                &step.path,
                true,
            ));
        }
        check_path(&step.path, &mut v);
        score.add(2.0);
    }
    if is_lockfile_only(plan.steps.iter().map(|s| s.path.as_str())) {
        v.push(violation(
            ViolationType::Plan,
            "lockfile_only",
            "the plan changes only lock files: churn, not a fix",
            "",
            true,
        ));
    }
    // NaN (a planner's 0/0) is low too: `NaN < 0.5` alone is false.
    if !plan.steps.is_empty() && (plan.confidence.is_nan() || plan.confidence < 0.5) {
        v.push(violation(
            ViolationType::Plan,
            "low_confidence",
            format!("confidence {:.2} below 0.50", plan.confidence),
            "",
            false,
        ));
        score.add(20.0);
    }
    decide(score.0, v)
}

/// True when there is at least one path and every one is a lock file.
fn is_lockfile_only<'a>(mut paths: impl Iterator<Item = &'a str>) -> bool {
    let mut any = false;
    let all = paths.all(|p| {
        any = true;
        LOCK_FILES.contains(&file_name(p))
    });
    any && all
}

/// True when an added line looks like it carries a credential. Deliberately simple and conservative: the
/// scanner service runs gitleaks over the patched tree; this catches the obvious before any tool runs.
pub fn looks_like_secret(line: &str) -> bool {
    let l = line.trim();
    if l.contains("-----BEGIN") && l.contains("PRIVATE KEY") {
        return true;
    }
    // AWS access key IDs: AKIA/ASIA + 16 upper-case alphanumerics.
    let bytes = l.as_bytes();
    for i in 0..bytes.len().saturating_sub(19) {
        let head = &bytes[i..i + 4];
        if (head == b"AKIA" || head == b"ASIA")
            && bytes[i + 4..i + 20].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return true;
        }
    }
    // GitHub tokens.
    ["ghp_", "gho_", "ghs_", "github_pat_"].iter().any(|p| {
        l.find(p).is_some_and(|at| {
            l[at + p.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').count() >= 20
        })
    })
}

/// Checks a patch and scores its danger from the diff itself.
pub fn check_patch(diff: &str) -> PolicyDecision {
    let mut v = Vec::new();
    let mut score = Score::default();
    if diff.trim().is_empty() {
        v.push(violation(ViolationType::Diff, "empty", "the patch changes nothing", "", true));
        return decide(0.0, v);
    }
    // Read as `git apply` reads it (hunks end where their counts say), so the paths checked are the paths
    // the patch changes.
    let files = match sre_gitwork::parse_diff(diff) {
        Ok(files) if !files.is_empty() => files,
        parsed => {
            let why = parsed.err().map_or_else(|| "no file header".to_owned(), |e| e.to_string());
            v.push(violation(ViolationType::Diff, "malformed", format!("not a git unified diff: {why}"), "", true));
            return decide(100.0, v);
        }
    };
    let changed: u32 = files.iter().map(|f| f.added + f.removed).sum();
    if files.len() > MAX_FILES {
        v.push(violation(
            ViolationType::Size,
            "too_many_files",
            format!("{} files (limit {MAX_FILES})", files.len()),
            "",
            true,
        ));
    }
    if changed > MAX_CHANGED_LINES {
        v.push(violation(
            ViolationType::Size,
            "too_many_lines",
            format!("{changed} changed lines (limit {MAX_CHANGED_LINES})"),
            "",
            true,
        ));
    }
    if is_lockfile_only(files.iter().map(|f| f.path.as_str())) {
        v.push(violation(
            ViolationType::Diff,
            "lockfile_only",
            "the patch changes only lock files: churn, not a fix",
            "",
            true,
        ));
        score.add(40.0);
    }
    // Size: up to 25 points for lines, up to 15 for files.
    score.add((f64::from(changed) / 10.0).min(25.0));
    score.add((files.len() as f64 * 1.5).min(15.0));
    for f in &files {
        let before = v.len();
        // A rename's source, both sides of a header: every path the section names.
        for path in &f.paths {
            check_path(path, &mut v);
        }
        for added in &v[before..] {
            score.add(if added.blocking { 60.0 } else { 35.0 });
        }
        if let Some(manifest) = f.paths.iter().find(|p| DEPENDENCY_FILES.contains(&file_name(p))) {
            v.push(violation(
                ViolationType::Diff,
                "dependency_change",
                "dependency manifest or lock file changes",
                manifest,
                false,
            ));
            score.add(20.0);
        }
        if f.deleted {
            v.push(violation(ViolationType::Diff, "file_deleted", "the patch deletes a file", &f.path, false));
            score.add(20.0);
        }
        if f.binary {
            v.push(violation(ViolationType::Diff, "binary", "binary change cannot be reviewed as text", &f.path, true));
            score.add(40.0);
        }
        if f.mode_change {
            v.push(violation(ViolationType::Diff, "mode_change", "file mode changes", &f.path, false));
            score.add(10.0);
        }
        if f.added_lines.iter().any(|l| looks_like_secret(l)) {
            v.push(violation(ViolationType::Secret, "suspected", "added line looks like a credential", &f.path, true));
            score.add(100.0);
        }
    }
    decide(score.0, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sre_proto::PlanStep;

    const WHITESPACE_FIX: &str = "diff --git a/app.py b/app.py\nindex 1..2 100644\n--- a/app.py\n+++ b/app.py\n\
        @@ -1,2 +1,2 @@\n-def add(a, b):   \n-    return a + b  \n+def add(a, b):\n+    return a + b\n";

    #[test]
    fn small_fix_is_safe() {
        let d = check_patch(WHITESPACE_FIX);
        assert!(d.allowed);
        assert_eq!(d.label, "safe");
        assert!(d.danger_score > 0.0 && d.danger_score < SAFE_BELOW, "{}", d.danger_score);
        assert!(d.violations.is_empty());
    }

    #[test]
    fn score_grows_with_the_diff() {
        let big: String = (0..200).map(|i| format!("+line {i}\n")).collect();
        let diff = format!("diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -0,0 +1,200 @@\n{big}");
        assert!(check_patch(&diff).danger_score > check_patch(WHITESPACE_FIX).danger_score);
    }

    #[test]
    fn a_change_under_github_is_refused_and_other_ci_config_needs_review() {
        let diff = WHITESPACE_FIX.replace("app.py", ".github/workflows/ci.yml");
        let d = check_patch(&diff);
        assert!(!d.allowed);
        assert_eq!(d.label, "needs-review");
        assert_eq!((d.violations[0].code.as_str(), d.violations[0].blocking), ("path.github", true));
        assert!(d.danger_score >= SAFE_BELOW);
        let d = check_patch(&WHITESPACE_FIX.replace("app.py", ".gitlab-ci.yml"));
        assert!(d.allowed);
        assert_eq!(d.label, "needs-review");
        assert_eq!(d.violations[0].code, "path.protected");
    }

    #[test]
    fn secrets_and_traversal_block() {
        let key = format!("AKIA{}", "ABCDEFGHIJKLMNOP");
        let diff = format!("diff --git a/c.py b/c.py\n--- a/c.py\n+++ b/c.py\n@@ -0,0 +1 @@\n+KEY = \"{key}\"\n");
        let d = check_patch(&diff);
        assert!(!d.allowed);
        assert!(d.violations.iter().any(|v| v.code == "secret.suspected"));
        assert!(d.danger_score >= 100.0);

        let d = check_patch(&WHITESPACE_FIX.replace("app.py", "../etc/passwd"));
        assert!(!d.allowed);
        assert_eq!(d.violations[0].code, "path.traversal");
    }

    #[test]
    fn empty_and_malformed_diffs_block() {
        assert_eq!(check_patch("").violations[0].code, "diff.empty");
        assert_eq!(check_patch("hello\nworld\n").violations[0].code, "diff.malformed");
        // more lines than the hunk counts: `git apply` would drop the extra ones, so what was checked is not
        // what would be applied
        let long = WHITESPACE_FIX.replace("+    return a + b\n", "+    return a + b\n+import os\n");
        let d = check_patch(&long);
        assert!(!d.allowed && d.violations[0].code == "diff.malformed", "{d:?}");
    }

    /// A second file in the traditional format after the first file's hunk: `git apply` applies it (shown in
    /// sre-gitwork's diff tests), so its path is checked.
    #[test]
    fn a_file_hidden_after_a_hunk_is_checked() {
        let diff = format!(
            "{WHITESPACE_FIX}--- a/.github/workflows/ci.yml\n+++ b/.github/workflows/ci.yml\n@@ -1 +1 @@\n-on: push\n+on: [push]\n"
        );
        let d = check_patch(&diff);
        assert!(!d.allowed, "{d:?}");
        assert!(d.violations.iter().any(|v| v.code == "path.github" && v.path == ".github/workflows/ci.yml"));
    }

    #[test]
    fn a_rename_checks_its_source() {
        let diff = "diff --git a/.github/workflows/ci.yml b/ci.yml\nsimilarity index 100%\n\
            rename from .github/workflows/ci.yml\nrename to ci.yml\n";
        let d = check_patch(diff);
        assert!(d.violations.iter().any(|v| v.code == "path.github"), "{d:?}");
        assert!(!d.allowed);
    }

    #[test]
    fn plan_checks() {
        let step =
            |action: &str, path: &str| PlanStep { action: action.into(), path: path.into(), rationale: String::new() };
        let ok = FixPlan {
            strategy: "rule".into(),
            summary: String::new(),
            steps: vec![step("fix_whitespace", "a.py")],
            confidence: 0.9,
            ..FixPlan::default()
        };
        assert!(check_plan(&ok).allowed);
        assert_eq!(check_plan(&ok).label, "safe");
        let bad = FixPlan { steps: vec![step("rm_rf", ".git/config")], confidence: 0.2, ..ok.clone() };
        let d = check_plan(&bad);
        assert!(!d.allowed);
        let codes: Vec<_> = d.violations.iter().map(|v| v.code.as_str()).collect();
        assert_eq!(codes, ["action.unknown", "path.forbidden", "plan.low_confidence"]);
        for action in ["ruff_format", "cargo_fmt", "gofmt", "prettier", "llm_edit"] {
            assert!(check_plan(&FixPlan { steps: vec![step(action, "src/a.rs")], ..ok.clone() }).allowed, "{action}");
        }
        let lock = FixPlan { steps: vec![step("ruff_fix", "uv.lock")], ..ok.clone() };
        let d = check_plan(&lock);
        assert!(!d.allowed);
        assert_eq!(d.violations[0].code, "plan.lockfile_only");
    }

    fn one_line(path: &str) -> String {
        format!("diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-a\n+b\n")
    }

    #[test]
    fn github_credentials_and_lock_files() {
        // Anything under .github/ is refused, not only workflows; in a plan as in a patch.
        for path in [".github/workflows/ci.yml", ".github/dependabot.yml", ".github/CODEOWNERS"] {
            let d = check_patch(&one_line(path));
            assert!(!d.allowed, "{path}");
            assert!(d.violations.iter().any(|v| v.code == "path.github" && v.blocking), "{path}: {:?}", d.violations);
            let plan = FixPlan {
                steps: vec![PlanStep { action: "prettier".into(), path: path.into(), rationale: String::new() }],
                confidence: 0.9,
                ..FixPlan::default()
            };
            let d = check_plan(&plan);
            assert!(!d.allowed, "{path}");
            assert_eq!(d.violations[0].code, "path.github", "{path}");
        }
        let d = check_patch(&one_line("CODEOWNERS"));
        assert!(d.allowed && d.label == "needs-review", "{d:?}");
        for path in
            [".env.production", "deploy/.aws/credentials", "keys/release.jks", ".netrc", "ci/.docker/config.json"]
        {
            let d = check_patch(&one_line(path));
            assert!(!d.allowed, "{path}");
            assert!(d.violations.iter().any(|v| v.code == "path.credentials"), "{path}: {:?}", d.violations);
        }
        let lock_only = format!("{}{}", one_line("Cargo.lock"), one_line("web/package-lock.json"));
        let d = check_patch(&lock_only);
        assert!(!d.allowed);
        assert!(d.violations.iter().any(|v| v.code == "diff.lockfile_only" && v.blocking), "{:?}", d.violations);
        // A lock file beside the code it belongs to is a dependency change: review, not refused.
        let with_code = format!("{}{}", one_line("Cargo.lock"), one_line("src/lib.rs"));
        let d = check_patch(&with_code);
        assert!(d.allowed);
        assert!(!d.violations.iter().any(|v| v.code == "diff.lockfile_only"));
    }

    /// Found by the policy_patch fuzz target: a NaN confidence passed as a confident plan.
    #[test]
    fn a_nan_confidence_is_low() {
        let plan = FixPlan {
            strategy: "rule".into(),
            summary: String::new(),
            steps: vec![PlanStep { action: "fix_whitespace".into(), path: "a.py".into(), rationale: String::new() }],
            confidence: f64::NAN,
            ..Default::default()
        };
        let d = check_plan(&plan);
        assert_eq!(d.label, "needs-review");
        assert!(d.violations.iter().any(|v| v.code == "plan.low_confidence"), "{d:?}");
    }
}
