//! Rule-based planning: language detection and classification by name (for a run without a log), and the
//! whitespace-hygiene fix.

use sre_domain::{Category, Language};
use sre_proto::{FixPlan, PlanStep};

/// Files larger than this are never edited.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// A plan never touches more files than this.
pub const MAX_FILES: usize = 50;

/// Language of a repository from the files in it.
pub fn detect_language(files: &[String]) -> Language {
    let has = |name: &str| files.iter().any(|f| f == name || f.ends_with(&format!("/{name}")));
    let has_ext = |ext: &str| files.iter().any(|f| f.ends_with(ext));
    if has("Cargo.toml") {
        Language::Rust
    } else if has("go.mod") {
        Language::Go
    } else if has("tsconfig.json") {
        Language::Typescript
    } else if has("package.json") {
        Language::Javascript
    } else if has("pyproject.toml") || has("setup.py") || has("requirements.txt") || has_ext(".py") {
        Language::Python
    } else {
        Language::Unknown
    }
}

/// Category of a failure from the workflow, job or check name.
pub fn classify(name: &str) -> Category {
    let n = name.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| n.contains(w));
    if any(&["lint", "fmt", "format", "style", "whitespace", "clippy", "flake8", "ruff", "eslint"]) {
        Category::Lint
    } else if any(&["test", "spec", "pytest", "unit"]) {
        Category::Test
    } else if any(&["build", "compile"]) {
        Category::Compile
    } else {
        Category::Unknown
    }
}

/// Source-like files the hygiene rule may edit. Markdown is excluded: trailing spaces are line breaks there;
/// `.github/` too: the agent never writes workflows, actions or CODEOWNERS (policy and pr refuse it as well).
pub fn is_hygiene_candidate(path: &str) -> bool {
    if path.starts_with(".github/") {
        return false;
    }
    const EXTS: &[&str] = &[
        ".py", ".rs", ".go", ".js", ".ts", ".jsx", ".tsx", ".java", ".c", ".h", ".cc", ".cpp", ".rb", ".sh", ".toml",
        ".yaml", ".yml", ".json", ".cfg", ".ini", ".txt",
    ];
    const SKIP_DIRS: &[&str] = &["vendor/", "node_modules/", "third_party/", ".git/"];
    EXTS.iter().any(|e| path.ends_with(e))
        && !SKIP_DIRS.iter().any(|d| path.starts_with(d) || path.contains(&format!("/{d}")))
}

/// What is wrong with one file's whitespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HygieneIssues {
    pub trailing_lines: usize,
    pub missing_final_newline: bool,
}

impl HygieneIssues {
    pub fn any(&self) -> bool {
        self.trailing_lines > 0 || self.missing_final_newline
    }
}

/// Finds trailing whitespace and a missing final newline.
pub fn hygiene_issues(text: &str) -> HygieneIssues {
    HygieneIssues {
        trailing_lines: text.lines().filter(|l| l.trim_end_matches(['\r']).ends_with([' ', '\t'])).count(),
        missing_final_newline: !text.is_empty() && !text.ends_with('\n'),
    }
}

/// Strips trailing spaces/tabs (keeping CRLF endings) and adds a final newline.
pub fn fix_hygiene(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.split_inclusive('\n') {
        let (body, ending) = if let Some(b) = line.strip_suffix("\r\n") {
            (b, "\r\n")
        } else if let Some(b) = line.strip_suffix('\n') {
            (b, "\n")
        } else {
            (line, "")
        };
        out.push_str(body.trim_end_matches([' ', '\t']));
        out.push_str(ending);
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The hygiene plan for the files that need it (`files` pairs a path with its issues).
pub fn hygiene_plan(files: &[(String, HygieneIssues)]) -> FixPlan {
    let steps: Vec<PlanStep> = files
        .iter()
        .filter(|(_, issues)| issues.any())
        .take(MAX_FILES)
        .map(|(path, issues)| {
            let mut why = Vec::new();
            if issues.trailing_lines > 0 {
                why.push(format!("{} line(s) with trailing whitespace", issues.trailing_lines));
            }
            if issues.missing_final_newline {
                why.push("no newline at end of file".to_owned());
            }
            PlanStep { action: "fix_whitespace".to_owned(), path: path.clone(), rationale: why.join("; ") }
        })
        .collect();
    let summary = if steps.is_empty() {
        "no whitespace problems found; nothing to fix".to_owned()
    } else {
        format!("fix whitespace hygiene in {} file(s)", steps.len())
    };
    FixPlan {
        strategy: "rule:whitespace-hygiene".to_owned(),
        summary,
        confidence: if steps.is_empty() { 0.0 } else { 0.9 },
        steps,
        ..FixPlan::default()
    }
}

/// The plan for a category no rule covers.
pub fn no_rule_plan(category: Category, language: Language) -> FixPlan {
    FixPlan {
        strategy: "none".to_owned(),
        summary: format!("no rule fixes {category} failures in {language} repositories"),
        ..FixPlan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_languages() {
        let f = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(detect_language(&f(&["Cargo.toml", "src/lib.rs"])), Language::Rust);
        assert_eq!(detect_language(&f(&["app.py", "Makefile"])), Language::Python);
        assert_eq!(detect_language(&f(&["web/package.json"])), Language::Javascript);
        assert_eq!(detect_language(&f(&["README.md"])), Language::Unknown);
    }

    #[test]
    fn classifies_names() {
        assert_eq!(classify("Lint"), Category::Lint);
        assert_eq!(classify("cargo fmt --check"), Category::Lint);
        assert_eq!(classify("unit-tests (3.11)"), Category::Test);
        assert_eq!(classify("Build release"), Category::Compile);
        assert_eq!(classify("deploy"), Category::Unknown);
    }

    #[test]
    fn fixes_whitespace_and_keeps_crlf() {
        let text = "def add(a, b):   \n    return a + b\t\r\nx = 1";
        let issues = hygiene_issues(text);
        assert_eq!(issues, HygieneIssues { trailing_lines: 2, missing_final_newline: true });
        let fixed = fix_hygiene(text);
        assert_eq!(fixed, "def add(a, b):\n    return a + b\r\nx = 1\n");
        assert!(!hygiene_issues(&fixed).any());
    }

    #[test]
    fn candidates() {
        assert!(!is_hygiene_candidate(".github/workflows/ci.yml"));
        assert!(is_hygiene_candidate("src/app.py"));
        assert!(!is_hygiene_candidate("README.md"));
        assert!(!is_hygiene_candidate("vendor/lib.py"));
        assert!(!is_hygiene_candidate("web/node_modules/x.js"));
    }

    #[test]
    fn plans_only_files_with_issues() {
        let plan = hygiene_plan(&[
            ("a.py".into(), HygieneIssues { trailing_lines: 2, missing_final_newline: false }),
            ("b.py".into(), HygieneIssues::default()),
        ]);
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(plan.steps[0].path, "a.py");
        assert!(hygiene_plan(&[]).steps.is_empty());
    }
}
