//! The bounded label sets of the seed's pipeline, queue, safety and scan metrics.

use crate::label_enum;

label_enum! {
    /// `sre_agent_pipeline_retry_total{reason}`: why a run was tried again later.
    pub enum RetryReason {
        /// A failed attempt of this run_key is cooling down before the next one.
        Cooldown => "cooldown",
        /// The repository is at its concurrency or PR-rate limit.
        RepoThrottled => "repo_throttled",
        /// A stage service was unreachable, overloaded or timed out.
        TransientError => "transient_error",
        /// The job queue redelivered the job: a worker died and its pending job was reclaimed.
        CeleryRetry => "celery_retry",
    }
}

label_enum! {
    /// `sre_agent_pipeline_loop_blocked_total{reason}`: why the loop guard stopped a run.
    pub enum LoopBlockedReason {
        /// The run was started more than `SRE_MAX_ATTEMPTS` times.
        MaxAttempts => "max_attempts",
        /// Any other loop: the failure is on the agent's own commit or branch, or the agent already
        /// committed N times in a row on the branch.
        BlockedReasonOther => "blocked_reason_other",
    }
}

label_enum! {
    /// `sre_agent_pipeline_throttled_total{scope}`: which limit deferred or refused work.
    pub enum ThrottleScope {
        /// Open agent PRs per repository, or PRs per hour for a repository.
        Repo => "repo",
        /// Limits across an installation (owner).
        Org => "org",
        /// Webhook ingest rate.
        Webhook => "webhook",
        /// Runs at once on one repository.
        RepoConcurrency => "repo_concurrency",
    }
}

label_enum! {
    /// `sre_agent_celery_tasks_total{task}`: the job-queue task family ("celery" names it, after the seed).
    pub enum Task {
        /// Turning a stored event into a run to execute: claim, loop guard, limits.
        ProcessPipelineEvent => "process_pipeline_event",
        /// Turning the CI log into the failure context.
        BuildFailureContext => "build_failure_context",
        /// The fix pipeline's stages.
        RunFixPipeline => "run_fix_pipeline",
    }
}

label_enum! {
    /// `sre_agent_celery_tasks_total{status}`.
    pub enum TaskStatus {
        Started => "started",
        Success => "success",
        Fail => "fail",
        Retry => "retry",
    }
}

label_enum! {
    /// `scanner` of the scan metrics.
    pub enum Scanner {
        Gitleaks => "gitleaks",
        Trivy => "trivy",
        Sbom => "sbom",
    }
}

label_enum! {
    /// `severity` of `sre_agent_scan_findings_total`.
    pub enum Severity {
        Low => "LOW",
        Medium => "MEDIUM",
        High => "HIGH",
        Critical => "CRITICAL",
        Unknown => "UNKNOWN",
    }
}

impl Severity {
    /// A scanner's severity word (any case); anything unrecognised is `UNKNOWN`.
    pub fn from_tool(value: &str) -> Self {
        match value.to_ascii_uppercase().as_str() {
            "LOW" | "INFO" | "NOTE" => Self::Low,
            "MEDIUM" | "MODERATE" | "WARNING" => Self::Medium,
            "HIGH" | "ERROR" => Self::High,
            "CRITICAL" => Self::Critical,
            _ => Self::Unknown,
        }
    }
}

label_enum! {
    /// `reason` of `sre_agent_scan_fail_total`.
    pub enum ScanFailReason {
        Timeout => "timeout",
        /// The tool crashed, printed something unreadable or is not installed.
        Error => "error",
        /// Its findings blocked the PR.
        PolicyBlock => "policy_block",
        /// A failure that fits none of the above (e.g. the scanner service itself was unreachable).
        Unknown => "unknown",
    }
}

label_enum! {
    /// `type` of `sre_agent_policy_violations_total`: the family of a violation code `<family>.<detail>`.
    pub enum ViolationType {
        Path => "path",
        Size => "size",
        Action => "action",
        Secret => "secret",
        Plan => "plan",
        Diff => "diff",
    }
}

impl ViolationType {
    /// The family of a violation code `<family>.<detail>`, or `None` when it names no known family.
    pub fn of_code(code: &str) -> Option<Self> {
        <Self as crate::Label>::parse(code.split('.').next().unwrap_or_default())
    }
}

label_enum! {
    /// The validator's verdict on a patch (`result` of `sre_agent_validation_runs_total`, `verdict` of the
    /// response): whether re-running the CI step that failed proved the fix.
    pub enum ValidationResult {
        /// The step failed without the patch and passes with it (and the test command, if any, passes).
        ReproducedAndFixed => "reproduced_and_fixed",
        /// The step passes without the patch, or no step could be found to re-run: the fix is unproven.
        NotReproduced => "not_reproduced",
        /// With the patch the step (or the test command) still fails.
        StillFailing => "still_failing",
        /// The step cannot run in the sandbox: it needs secrets, services, an action, an unsupported shell or
        /// an expression that cannot be resolved.
        Refused => "refused",
        /// The patch does not apply at head_sha.
        PatchFailed => "patch_failed",
        /// A run hit the validation's time budget.
        Timeout => "timeout",
    }
}

label_enum! {
    /// What a run stores beside its record (served by `GET /api/v1/runs/{run_id}/artifacts/{kind}`).
    pub enum ArtifactKind {
        /// The CI job log (bounded: the head, the error-marked lines and the tail).
        Log => "log",
        /// The failure context: failing step, command, the lines that explain it, file references (JSON).
        Context => "context",
        /// The fix plan (JSON).
        Plan => "plan",
        /// The patch (unified diff).
        Diff => "diff",
        /// Findings and scanner runs (JSON).
        ScanReport => "scan_report",
        /// What validation ran and proved: commands, exit codes, durations, log tails (JSON).
        Validation => "validation",
        /// The pull request: number, branch, URL, commit (JSON).
        PullRequest => "pull_request",
    }
}

impl ArtifactKind {
    /// The content type served for it.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Log => "text/plain; charset=utf-8",
            Self::Diff => "text/x-diff; charset=utf-8",
            _ => "application/json",
        }
    }
}
