//! What CI told us about a failure, and what diagnosis makes of it.

use crate::label_enum;

label_enum! {
    /// `X-GitHub-Event` values the gateway knows; also the `event` label of the webhook metric.
    pub enum EventKind {
        WorkflowRun => "workflow_run",
        WorkflowJob => "workflow_job",
        CheckRun => "check_run",
        CheckSuite => "check_suite",
        Ping => "ping",
        Installation => "installation",
        InstallationRepositories => "installation_repositories",
        /// A run submitted through the runs API (the embedded default: no GitHub).
        Local => "local",
        Other => "other",
    }
}

impl EventKind {
    /// The event named by an `X-GitHub-Event` header (`local` is never a GitHub event).
    pub fn from_header(header: &str) -> Self {
        match <Self as crate::Label>::parse(header) {
            Some(Self::Local) | None => Self::Other,
            Some(kind) => kind,
        }
    }

    /// True for the four events that report CI results.
    pub fn is_ci(self) -> bool {
        matches!(self, Self::WorkflowRun | Self::WorkflowJob | Self::CheckRun | Self::CheckSuite | Self::Local)
    }
}

label_enum! {
    /// A GitHub check / workflow conclusion (`none` when GitHub sent null).
    pub enum Conclusion {
        Success => "success",
        Failure => "failure",
        Neutral => "neutral",
        Cancelled => "cancelled",
        Skipped => "skipped",
        TimedOut => "timed_out",
        ActionRequired => "action_required",
        Stale => "stale",
        StartupFailure => "startup_failure",
        None => "none",
    }
}

impl Conclusion {
    /// The conclusion GitHub sent (`null` or a value this agent does not know is `none`).
    pub fn from_github(value: Option<&str>) -> Self {
        value.and_then(<Self as crate::Label>::parse).unwrap_or(Self::None)
    }

    /// Conclusions that mean "the code or the CI configuration is broken": worth diagnosing.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failure | Self::TimedOut | Self::StartupFailure)
    }
}

label_enum! {
    /// Why CI failed, from the log's content (see docs/diagnosis.md): a bounded set that follows the failure
    /// study in the CI-bots notes.
    pub enum Category {
        /// A formatter's check (rustfmt, black, ruff format, prettier, gofmt).
        Format => "format",
        /// A linter (clippy, ruff, eslint, golangci-lint, mypy).
        Lint => "lint",
        /// Compilation or type checking of the project's own code.
        Compile => "compile",
        /// Missing, unresolved or out-of-sync dependencies and lock files.
        Dependency => "dependency",
        /// Tests ran and failed.
        Test => "test",
        /// The workflow or tool configuration is wrong.
        Config => "config",
        /// Network, runner or service trouble: nothing in the code to fix.
        Infra => "infra",
        /// Missing secrets, tokens or permissions (bot and fork PRs): never fixed with code.
        Permissions => "permissions",
        Unknown => "unknown",
    }
}

impl PrLabel {
    /// The label of a change two checks labelled: needs-review when either asks for review (a plan the policy
    /// sent to review stays there whatever its patch looks like), unknown when either is, else safe.
    pub fn strictest(self, other: Self) -> Self {
        match (self, other) {
            (Self::NeedsReview, _) | (_, Self::NeedsReview) => Self::NeedsReview,
            (Self::Unknown, _) | (_, Self::Unknown) => Self::Unknown,
            (Self::Safe, Self::Safe) => Self::Safe,
        }
    }
}

impl Category {
    /// True for categories that no code change can fix (the run ends skipped with the reason).
    pub fn is_environmental(self) -> bool {
        matches!(self, Self::Infra | Self::Permissions)
    }
}

label_enum! {
    /// The ecosystem of the failing step.
    pub enum Language {
        Rust => "rust",
        Python => "python",
        Javascript => "javascript",
        Typescript => "typescript",
        Go => "go",
        Unknown => "unknown",
    }
}

label_enum! {
    /// The tool whose output explains the failure.
    pub enum Tool {
        Cargo => "cargo",
        Rustc => "rustc",
        Rustfmt => "rustfmt",
        Clippy => "clippy",
        Pytest => "pytest",
        Ruff => "ruff",
        Black => "black",
        Mypy => "mypy",
        Pip => "pip",
        Npm => "npm",
        Eslint => "eslint",
        Prettier => "prettier",
        Tsc => "tsc",
        Jest => "jest",
        Go => "go",
        Gofmt => "gofmt",
        GolangciLint => "golangci-lint",
        Make => "make",
        Unknown => "unknown",
    }
}

label_enum! {
    /// A PR's review label: the seed's `label` of `sre_agent_pr_created_total`.
    pub enum PrLabel {
        Safe => "safe",
        NeedsReview => "needs-review",
        Unknown => "unknown",
    }
}
