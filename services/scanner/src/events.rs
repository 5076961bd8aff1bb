//! What the scanner logs and counts, every bounded series present from the first scrape:
//! - `sre_agent_scan_findings_total{scanner,severity,origin}`: the patched tree's findings, `origin` telling
//!   those the patch introduces from those already at head_sha (`preexisting`); `scanner="sbom"` counts the
//!   SBOM's license findings (trivy over syft's CycloneDX, offline);
//! - `sre_agent_scan_fail_total{scanner,reason}`: a scanner that did not run to completion (on the patched
//!   tree or the baseline), or whose introduced findings blocked the patch (`policy_block`);
//! - `sre_agent_scan_baseline_total{scanner,result}`: baseline scans of head_sha answered from the cache
//!   (`hit`) or run (`miss`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sre_domain::{Label, ScanFailReason, Scanner, Severity};
use sre_telemetry::{InternalEvent, SharedRegistry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    scanner: &'static str,
    severity: &'static str,
    origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BaselineLabels {
    scanner: &'static str,
    result: &'static str,
}

/// `origin` of `sre_agent_scan_findings_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Not in the scan of head_sha alone (or head_sha could not be scanned).
    Introduced,
    /// Already at head_sha.
    Preexisting,
}

impl Origin {
    pub const ALL: &'static [Origin] = &[Origin::Introduced, Origin::Preexisting];

    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Introduced => "introduced",
            Origin::Preexisting => "preexisting",
        }
    }

    pub fn of(introduced: bool) -> Self {
        if introduced { Origin::Introduced } else { Origin::Preexisting }
    }
}

/// `result` of `sre_agent_scan_baseline_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
}

impl CacheResult {
    pub const ALL: &'static [CacheResult] = &[CacheResult::Hit, CacheResult::Miss];

    pub fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
        }
    }
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
    baselines: Family<BaselineLabels, Counter>,
}

impl ScanMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self { findings: Family::default(), fails: Family::default(), baselines: Family::default() };
        registry.register(
            "sre_agent_scan_findings",
            "Findings in the patched tree by scanner, severity and origin (introduced by the patch or preexisting)",
            this.findings.clone(),
        );
        registry.register(
            "sre_agent_scan_fail",
            "Scanner runs that failed (timeout, error, unknown) or blocked the PR (policy_block)",
            this.fails.clone(),
        );
        registry.register(
            "sre_agent_scan_baseline",
            "Baseline scans of head_sha alone: answered from the cache (hit) or run (miss)",
            this.baselines.clone(),
        );
        for scanner in Scanner::ALL {
            for severity in Severity::ALL {
                for origin in Origin::ALL {
                    let labels = FindingLabels {
                        scanner: scanner.as_str(),
                        severity: severity.as_str(),
                        origin: origin.as_str(),
                    };
                    let _ = this.findings.get_or_create(&labels);
                }
            }
            for result in CacheResult::ALL {
                let _ = this
                    .baselines
                    .get_or_create(&BaselineLabels { scanner: scanner.as_str(), result: result.as_str() });
            }
            for reason in ScanFailReason::ALL {
                let _ = this.fails.get_or_create(&FailLabels { scanner: scanner.as_str(), reason: reason.as_str() });
            }
        }
        this
    }
}

/// `count` findings of one severity and origin from one scanner, in the patched tree.
pub struct FindingsFound {
    pub scanner: Scanner,
    pub severity: Severity,
    pub origin: Origin,
    pub count: u64,
}

impl InternalEvent<ScanMetrics> for FindingsFound {
    fn emit(self, m: &ScanMetrics) {
        let (scanner, severity, origin) = (self.scanner.as_str(), self.severity.as_str(), self.origin.as_str());
        tracing::info!(scanner, severity, origin, count = self.count, "scanner findings");
        m.findings.get_or_create(&FindingLabels { scanner, severity, origin }).inc_by(self.count);
    }
}

/// One scanner's baseline (head_sha alone): from the cache, or scanned for this call.
pub struct BaselineLookup {
    pub scanner: Scanner,
    pub result: CacheResult,
}

impl InternalEvent<ScanMetrics> for BaselineLookup {
    fn emit(self, m: &ScanMetrics) {
        let (scanner, result) = (self.scanner.as_str(), self.result.as_str());
        tracing::info!(scanner, result, "baseline scan");
        m.baselines.get_or_create(&BaselineLabels { scanner, result }).inc();
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
                for origin in Origin::ALL {
                    assert_event_agrees(&registry, || {
                        m.emit(FindingsFound { scanner: *scanner, severity: *severity, origin: *origin, count: 2 })
                    });
                }
            }
            for result in CacheResult::ALL {
                assert_event_agrees(&registry, || m.emit(BaselineLookup { scanner: *scanner, result: *result }));
            }
            for reason in ScanFailReason::ALL {
                assert_event_agrees(&registry, || {
                    m.emit(ScanFailed { scanner: *scanner, reason: *reason, detail: "d" })
                });
            }
        }
    }
}
