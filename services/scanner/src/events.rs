//! What the scanner logs and counts: `sre_agent_scan_findings_total{scanner,severity}` and
//! `sre_agent_scan_fail_total{scanner,reason}`, every bounded series present from the first scrape.
//! `scanner="sbom"` counts syft's failures; syft itself reports components, not findings (see
//! docs/conventions.md), so `scan_findings{scanner="sbom"}` stays at zero.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sre_domain::{Label, ScanFailReason, Scanner, Severity};
use sre_telemetry::{InternalEvent, SharedRegistry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    scanner: &'static str,
    severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailLabels {
    scanner: &'static str,
    reason: &'static str,
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
            "Scanner runs that failed (timeout, error, unknown) or blocked the PR (policy_block)",
            this.fails.clone(),
        );
        for scanner in Scanner::ALL {
            for severity in Severity::ALL {
                let _ = this
                    .findings
                    .get_or_create(&FindingLabels { scanner: scanner.as_str(), severity: severity.as_str() });
            }
            for reason in ScanFailReason::ALL {
                let _ = this.fails.get_or_create(&FailLabels { scanner: scanner.as_str(), reason: reason.as_str() });
            }
        }
        this
    }
}

/// `count` findings of one severity from one scanner.
pub struct FindingsFound {
    pub scanner: Scanner,
    pub severity: Severity,
    pub count: u64,
}

impl InternalEvent<ScanMetrics> for FindingsFound {
    fn emit(self, m: &ScanMetrics) {
        let (scanner, severity) = (self.scanner.as_str(), self.severity.as_str());
        tracing::info!(scanner, severity, count = self.count, "scanner findings");
        m.findings.get_or_create(&FindingLabels { scanner, severity }).inc_by(self.count);
    }
}

/// A scanner that did not run to completion, or whose findings blocked the PR.
pub struct ScanFailed<'a> {
    pub scanner: Scanner,
    pub reason: ScanFailReason,
    pub detail: &'a str,
}

impl InternalEvent<ScanMetrics> for ScanFailed<'_> {
    fn emit(self, m: &ScanMetrics) {
        let (scanner, reason) = (self.scanner.as_str(), self.reason.as_str());
        if self.reason == ScanFailReason::PolicyBlock {
            tracing::info!(scanner, reason, detail = self.detail, "scanner findings block the patch");
        } else {
            tracing::warn!(scanner, reason, detail = self.detail, "scanner did not run to completion");
        }
        m.fails.get_or_create(&FailLabels { scanner, reason }).inc();
    }
}

#[cfg(test)]
mod tests {
    use sre_telemetry::Emit;
    use sre_telemetry::testing::assert_event_agrees;

    use super::*;

    #[test]
    fn every_event_logs_what_it_counts() {
        let registry = SharedRegistry::default();
        let m = ScanMetrics::register(&registry);
        for scanner in Scanner::ALL {
            for severity in Severity::ALL {
                assert_event_agrees(&registry, || {
                    m.emit(FindingsFound { scanner: *scanner, severity: *severity, count: 2 })
                });
            }
            for reason in ScanFailReason::ALL {
                assert_event_agrees(&registry, || {
                    m.emit(ScanFailed { scanner: *scanner, reason: *reason, detail: "d" })
                });
            }
        }
    }
}
