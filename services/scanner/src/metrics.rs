//! `sre_agent_scan_findings_total{scanner,severity}` and `sre_agent_scan_fail_total{scanner,reason}`.
//!
//! Label values come only from fixed sets: scanner ∈ {gitleaks, trivy, sbom}; severity ∈ {LOW, MEDIUM, HIGH,
//! CRITICAL, UNKNOWN}; reason ∈ {timeout, error, policy_block, unknown}.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sre_proto::Severity;
use sre_telemetry::SharedRegistry;

use crate::parse::severity_label;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    scanner: String,
    severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailLabels {
    scanner: String,
    reason: String,
}

/// Why a scanner run counts as a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    Timeout,
    Error,
    PolicyBlock,
}

impl FailReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Error => "error",
            Self::PolicyBlock => "policy_block",
        }
    }
}

#[derive(Clone)]
pub struct ScanMetrics {
    findings: Family<FindingLabels, Counter>,
    fails: Family<FailLabels, Counter>,
}

impl ScanMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self { findings: Family::default(), fails: Family::default() };
        registry.register("sre_agent_scan_findings", "Scanner findings by scanner and severity", this.findings.clone());
        registry.register(
            "sre_agent_scan_fail",
            "Scanner runs that failed (timeout, error) or blocked the PR (policy_block)",
            this.fails.clone(),
        );
        this
    }

    /// Counts one finding. `scanner` is one of the crate's scanner constants.
    pub fn finding(&self, scanner: &'static str, severity: Severity) {
        self.findings
            .get_or_create(&FindingLabels {
                scanner: scanner.to_owned(),
                severity: severity_label(severity).to_owned(),
            })
            .inc();
    }

    pub fn fail(&self, scanner: &'static str, reason: FailReason) {
        self.fails.get_or_create(&FailLabels { scanner: scanner.to_owned(), reason: reason.label().to_owned() }).inc();
    }
}
