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
    /// Opt out of failing closed: a scanner that is missing, crashes, times out or prints unreadable output
    /// makes the patch need review instead of blocking it (logged at WARN at start and on every run)
    #[arg(long, env = "SRE_SCANNERS_OPTIONAL", value_name = "SRE_SCANNERS_OPTIONAL", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub scanners_optional: bool,
    /// Baseline scans (head_sha alone, one per scanner) kept in memory so a retry or a second run on the same
    /// commit does not scan it again; 0 turns the cache off
    #[arg(long, env = "SRE_SCAN_CACHE_ENTRIES", value_name = "SRE_SCAN_CACHE_ENTRIES", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub scan_cache_entries: u32,
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

    #[test]
    fn scanners_are_required_unless_opted_out() {
        let parse = |args: &[&str]| Config::try_parse_from([&["sre-scanner"], args].concat());
        assert!(!parse(&[]).unwrap().scanners_optional);
        assert!(parse(&["--scanners-optional"]).unwrap().scanners_optional);
        assert!(parse(&["--scanners-optional", "1"]).is_err(), "a flag: no value on the command line");
        assert_eq!(parse(&[]).unwrap().scan_cache_entries, 256);
        assert!(parse(&["--scan-cache-entries", "0"]).is_ok());
        assert!(parse(&["--scan-cache-entries", "-1"]).is_err());
    }
}
