//! The scanner's configuration (docs/conventions.md), parsed once.

use sre_service_kit::config::{Command, DataArgs, ServeArgs};

/// Trivy scanners a caller may select.
pub const TRIVY_SCANNERS: &[&str] = &["vuln", "misconfig", "secret", "license"];

/// sre-scanner: gitleaks, trivy and syft over the patched tree.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "sre-scanner", version)]
pub struct Config {
    /// Seconds each tool may run; past it the tool's process group is killed
    #[arg(long, env = "SRE_SCAN_TIMEOUT_SECONDS", value_name = "SRE_SCAN_TIMEOUT_SECONDS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub scan_timeout_seconds: u64,
    /// Comma list of trivy scanners (vuln needs trivy's database, downloaded beforehand)
    #[arg(long, env = "SRE_TRIVY_SCANNERS", value_name = "SRE_TRIVY_SCANNERS", default_value = "secret,misconfig",
          value_parser = trivy_scanners)]
    pub trivy_scanners: String,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

fn trivy_scanners(value: &str) -> Result<String, String> {
    let bad: Vec<&str> = value.split(',').map(str::trim).filter(|s| !TRIVY_SCANNERS.contains(s)).collect();
    if bad.is_empty() {
        Ok(value.to_owned())
    } else {
        Err(format!("unknown trivy scanner(s) {bad:?}; use a comma list of {TRIVY_SCANNERS:?}"))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn validates_trivy_scanners() {
        assert!(trivy_scanners("secret,misconfig").is_ok());
        assert!(trivy_scanners("vuln").is_ok());
        let err = Config::try_parse_from(["sre-scanner", "--trivy-scanners", "secret,bogus"]).unwrap_err().to_string();
        assert!(err.contains("bogus") && err.contains("SRE_TRIVY_SCANNERS"), "{err}");
    }
}
