//! `sre_agent_github_requests_total{endpoint,status_class}` and
//! `sre_agent_github_request_duration_seconds{endpoint}`: one observation per HTTP attempt (a retried call
//! counts each attempt), labels from two closed enums, every series created at 0 on registration.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use sre_domain::{Label, label_enum};
use sre_telemetry::SharedRegistry;
use sre_telemetry::metrics::{LATENCY_BUCKETS, TraceExemplar};

label_enum! {
    /// The family of a GitHub call: the `endpoint` label, and the name errors carry.
    pub enum Endpoint {
        /// `POST /app/installations/{id}/access_tokens`.
        AppToken => "app_token",
        /// `GET /installation/repositories`.
        InstallationRepos => "installation_repos",
        /// `GET /repos/{o}/{r}`.
        Repo => "repo",
        /// `GET .../actions/runs?check_suite_id=` (the workflow runs of a check suite).
        WorkflowRuns => "workflow_runs",
        /// Workflow-run jobs and single jobs.
        Jobs => "jobs",
        /// `GET .../actions/jobs/{id}/logs` (the 302).
        JobLog => "job_log",
        /// The log download from the redirect target (another host, no credentials).
        JobLogBlob => "job_log_blob",
        /// Single commits and commit lists.
        Commits => "commits",
        Branches => "branches",
        Pulls => "pulls",
        /// Repository labels and labels on issues/PRs.
        Labels => "labels",
        CheckRuns => "check_runs",
    }
}

label_enum! {
    /// `status_class`: the HTTP status class, or `error` when no response arrived.
    pub enum StatusClass {
        S2xx => "2xx",
        S3xx => "3xx",
        S4xx => "4xx",
        S5xx => "5xx",
        Error => "error",
    }
}

impl StatusClass {
    pub fn of(status: u16) -> Self {
        match status {
            200..=299 => Self::S2xx,
            300..=399 => Self::S3xx,
            400..=499 => Self::S4xx,
            500..=599 => Self::S5xx,
            _ => Self::Error,
        }
    }
}

impl EncodeLabelValue for Endpoint {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for StatusClass {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: Endpoint,
    status_class: StatusClass,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: Endpoint,
}

/// The client's metric families.
#[derive(Clone)]
pub struct GithubMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<EndpointLabels, HistogramWithExemplars<TraceExemplar>>,
}

impl GithubMetrics {
    /// Registers both families and creates every label combination at 0.
    pub fn register(registry: &SharedRegistry) -> Self {
        let this = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| HistogramWithExemplars::new(LATENCY_BUCKETS.into_iter())),
        };
        registry.register(
            "sre_agent_github_requests",
            "GitHub HTTP attempts by endpoint family and status class",
            this.requests.clone(),
        );
        registry.register(
            "sre_agent_github_request_duration_seconds",
            "GitHub HTTP attempt latency by endpoint family",
            this.duration.clone(),
        );
        for &endpoint in Endpoint::ALL {
            for &status_class in StatusClass::ALL {
                let _ = this.requests.get_or_create(&RequestLabels { endpoint, status_class });
            }
            let _ = this.duration.get_or_create(&EndpointLabels { endpoint });
        }
        this
    }

    pub(crate) fn observe(&self, endpoint: Endpoint, status_class: StatusClass, seconds: f64, span: &tracing::Span) {
        self.requests.get_or_create(&RequestLabels { endpoint, status_class }).inc();
        let exemplar = sre_telemetry::propagation::trace_id(span).map(|trace_id| TraceExemplar { trace_id });
        self.duration.get_or_create(&EndpointLabels { endpoint }).observe(seconds, exemplar, None);
    }

    /// The current count of one series (tests and diagnostics).
    pub fn requests_count(&self, endpoint: Endpoint, status_class: StatusClass) -> u64 {
        self.requests.get_or_create(&RequestLabels { endpoint, status_class }).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_at_zero() {
        let registry = SharedRegistry::default();
        let _metrics = GithubMetrics::register(&registry);
        let text = registry.encode(false);
        for e in Endpoint::ALL {
            for s in StatusClass::ALL {
                let series = format!(
                    "sre_agent_github_requests_total{{endpoint=\"{}\",status_class=\"{}\"}} 0",
                    e.as_str(),
                    s.as_str()
                );
                assert!(text.contains(&series), "missing {series}");
            }
            assert!(text.contains(&format!(
                "sre_agent_github_request_duration_seconds_count{{endpoint=\"{}\"}} 0",
                e.as_str()
            )));
        }
    }

    #[test]
    fn status_classes() {
        assert_eq!(StatusClass::of(201), StatusClass::S2xx);
        assert_eq!(StatusClass::of(302), StatusClass::S3xx);
        assert_eq!(StatusClass::of(422), StatusClass::S4xx);
        assert_eq!(StatusClass::of(503), StatusClass::S5xx);
        assert_eq!(StatusClass::of(99), StatusClass::Error);
    }
}
