//! What the validator logs and counts: `sre_agent_validation_runs_total{result}`, one per validation, every
//! result series present from the first scrape. The log line and the counter come from one `emit()`, so they
//! never disagree; neither carries a command's output.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sre_domain::{Label, ValidationResult};
use sre_telemetry::{InternalEvent, SharedRegistry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone)]
pub struct ValidatorMetrics {
    runs: Family<ResultLabels, Counter>,
}

impl ValidatorMetrics {
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self { runs: Family::default() };
        registry.register(
            "sre_agent_validation_runs",
            "Validations by verdict: whether re-running the failed CI step proved the fix",
            this.runs.clone(),
        );
        for result in ValidationResult::ALL {
            let _ = this.runs.get_or_create(&ResultLabels { result: result.as_str() });
        }
        this
    }
}

/// One validation reached its verdict.
pub struct ValidationFinished<'a> {
    pub result: ValidationResult,
    pub reproduced: bool,
    pub passed: bool,
    /// "bwrap" or "unsafe-none".
    pub sandbox: &'static str,
    /// The job and step re-run (workflow facts, never output).
    pub job: &'a str,
    pub step: &'a str,
    pub total_ms: u64,
}

impl InternalEvent<ValidatorMetrics> for ValidationFinished<'_> {
    fn emit(self, m: &ValidatorMetrics) {
        let result = self.result.as_str();
        tracing::info!(
            result,
            reproduced = self.reproduced,
            passed = self.passed,
            sandbox = self.sandbox,
            job = self.job,
            step = self.step,
            total_ms = self.total_ms,
            "validation finished"
        );
        m.runs.get_or_create(&ResultLabels { result }).inc();
    }
}

#[cfg(test)]
mod tests {
    use sre_telemetry::Emit;
    use sre_telemetry::testing::assert_event_agrees;

    use super::*;

    #[test]
    fn every_series_starts_at_zero_and_every_event_logs_what_it_counts() {
        let registry = SharedRegistry::default();
        let m = ValidatorMetrics::register(&registry);
        let text = registry.encode(false);
        for result in ValidationResult::ALL {
            let line = format!("sre_agent_validation_runs_total{{result=\"{}\"}} 0", result.as_str());
            assert!(text.contains(&line), "{line} missing:\n{text}");
        }
        for result in ValidationResult::ALL {
            let changed = assert_event_agrees(&registry, || {
                m.emit(ValidationFinished {
                    result: *result,
                    reproduced: true,
                    passed: false,
                    sandbox: "bwrap",
                    job: "lint",
                    step: "Lint",
                    total_ms: 5,
                })
            });
            assert_eq!(changed.len(), 1);
        }
    }
}
