//! Pure parsers for the scanners' JSON reports, and the blocking rule.
//!
//! Only the fields named here are read. The secret itself (gitleaks `Secret`/`Match`, trivy `Match` and
//! `Code`) is never copied into a [`Finding`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use sre_proto::{Finding, Severity};

/// `Finding.scanner` and the `scanner` metric label of each tool.
pub const GITLEAKS: &str = "gitleaks";
pub const TRIVY: &str = "trivy";
/// syft's run and findings are reported as "sbom" (the seed's label set is gitleaks, trivy, sbom).
pub const SBOM: &str = "sbom";

/// Longest `Finding.title` kept, in bytes.
const MAX_TITLE_BYTES: usize = 200;

/// A report that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("unparsable {tool} JSON: {source}")]
pub struct ParseError {
    pub tool: &'static str,
    #[source]
    pub source: serde_json::Error,
}

/// The proto severity of a scanner's severity string (case-insensitive); anything else is UNKNOWN.
pub fn severity(s: &str) -> Severity {
    match s.trim().to_ascii_uppercase().as_str() {
        "LOW" => Severity::Low,
        "MEDIUM" => Severity::Medium,
        "HIGH" => Severity::High,
        "CRITICAL" => Severity::Critical,
        _ => Severity::Unknown,
    }
}

/// The scanner label of a finding's `scanner` field (the three constants above).
pub fn scanner_of(name: &str) -> sre_domain::Scanner {
    match name {
        GITLEAKS => sre_domain::Scanner::Gitleaks,
        TRIVY => sre_domain::Scanner::Trivy,
        _ => sre_domain::Scanner::Sbom,
    }
}

/// A finding as a parser read it, with what identifies it when no line of a file does: the package name of a
/// vulnerability or license finding, empty otherwise. (The service fingerprints it with the content of its
/// line, see `fingerprint.rs`.)
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub finding: Finding,
    pub anchor: String,
}

impl Found {
    fn at_line(finding: Finding) -> Self {
        Self { finding, anchor: String::new() }
    }
}

/// True when a finding, **if the patch introduces it**, stops the PR: any secret (every gitleaks finding,
/// every trivy secret), a HIGH/CRITICAL trivy finding (misconfiguration, vulnerability), or a license trivy
/// classifies as forbidden (CRITICAL: AGPL, SSPL, ...) in the SBOM. Other introduced findings make the PR
/// need review; pre-existing findings never block (the service decides which is which).
pub fn is_blocking(f: &Finding) -> bool {
    let severe = matches!(f.severity(), Severity::High | Severity::Critical);
    match f.scanner.as_str() {
        GITLEAKS => true,
        TRIVY => f.rule_id.starts_with("secret:") || severe,
        // Restricted (GPL: HIGH), reciprocal (MPL: MEDIUM) and unknown licenses are for a reviewer to judge.
        SBOM => f.severity() == Severity::Critical,
        _ => severe,
    }
}

/// `path` relative to `root` when it lies under it; otherwise unchanged.
pub fn relative_path(root: &Path, path: &str) -> String {
    Path::new(path).strip_prefix(root).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| path.to_owned())
}

fn title(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MAX_TITLE_BYTES {
        return s.to_owned();
    }
    let mut end = MAX_TITLE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

// ---------------------------------------------------------------------------------------------------------
// gitleaks: `gitleaks dir --report-format json --redact`, an array of leaks.

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GitleaksLeak {
    #[serde(rename = "RuleID", default)]
    rule_id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    start_line: u32,
    #[serde(default)]
    file: String,
}

/// Findings of a gitleaks JSON report; every leak is HIGH. `root` is the scanned directory.
pub fn gitleaks(json: &[u8], root: &Path) -> Result<Vec<Found>, ParseError> {
    let leaks: Option<Vec<GitleaksLeak>> =
        serde_json::from_slice(json).map_err(|source| ParseError { tool: GITLEAKS, source })?;
    Ok(leaks
        .unwrap_or_default()
        .into_iter()
        .map(|l| {
            Found::at_line(Finding {
                scanner: GITLEAKS.to_owned(),
                severity: Severity::High.into(),
                title: title(if l.description.is_empty() { "secret detected" } else { &l.description }),
                rule_id: l.rule_id,
                path: relative_path(root, &l.file),
                line: l.start_line,
                introduced: false,
            })
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------------------
// trivy: `trivy fs --format json`, Results[] with Secrets, Misconfigurations and Vulnerabilities.

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyReport {
    #[serde(default)]
    results: Option<Vec<TrivyResult>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyResult {
    #[serde(default)]
    target: String,
    #[serde(default)]
    secrets: Option<Vec<TrivySecret>>,
    #[serde(default)]
    misconfigurations: Option<Vec<TrivyMisconfig>>,
    #[serde(default)]
    vulnerabilities: Option<Vec<TrivyVuln>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivySecret {
    #[serde(rename = "RuleID", default)]
    rule_id: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    start_line: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyMisconfig {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    cause_metadata: Option<TrivyCause>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyCause {
    #[serde(default)]
    start_line: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyVuln {
    #[serde(rename = "VulnerabilityID", default)]
    vulnerability_id: String,
    #[serde(default)]
    pkg_name: String,
    #[serde(default)]
    installed_version: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    title: String,
}

/// Findings of a trivy JSON report. Rule IDs are prefixed by kind (`secret:`, `misconfig:`, `vuln:`) so the
/// blocking rule can tell secrets apart; passed misconfiguration checks are skipped.
/// Findings of a trivy JSON report. Rule IDs are prefixed by kind (`secret:`, `misconfig:`, `vuln:`) so the
/// blocking rule can tell secrets apart; passed misconfiguration checks are skipped. A vulnerability is
/// anchored on its package name (not its version: a bump that keeps the CVE does not introduce it).
pub fn trivy(json: &[u8]) -> Result<Vec<Found>, ParseError> {
    let report: TrivyReport = serde_json::from_slice(json).map_err(|source| ParseError { tool: TRIVY, source })?;
    let mut out = Vec::new();
    let finding = |sev: &str, rule_id: String, path: &str, line: u32, t: &str| Finding {
        scanner: TRIVY.to_owned(),
        severity: severity(sev).into(),
        rule_id,
        path: path.to_owned(),
        line,
        title: title(t),
        introduced: false,
    };
    for r in report.results.unwrap_or_default() {
        for s in r.secrets.unwrap_or_default() {
            let f = finding(&s.severity, format!("secret:{}", s.rule_id), &r.target, s.start_line, &s.title);
            out.push(Found::at_line(f));
        }
        for m in r.misconfigurations.unwrap_or_default() {
            if m.status.eq_ignore_ascii_case("PASS") {
                continue;
            }
            let line = m.cause_metadata.map_or(0, |c| c.start_line);
            out.push(Found::at_line(finding(&m.severity, format!("misconfig:{}", m.id), &r.target, line, &m.title)));
        }
        for v in r.vulnerabilities.unwrap_or_default() {
            let t = format!("{} {}: {}", v.pkg_name, v.installed_version, v.title);
            let f = finding(&v.severity, format!("vuln:{}", v.vulnerability_id), &r.target, 0, &t);
            out.push(Found { finding: f, anchor: v.pkg_name });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------
// syft: `syft scan dir:PATH -o cyclonedx-json`, then `trivy sbom --scanners license` over that SBOM.

#[derive(Deserialize)]
struct CycloneDx {
    #[serde(default)]
    components: Option<Vec<CycloneDxComponent>>,
}

#[derive(Deserialize)]
struct CycloneDxComponent {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    properties: Option<Vec<CycloneDxProperty>>,
}

#[derive(Deserialize)]
struct CycloneDxProperty {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

/// What the service keeps of syft's SBOM.
#[derive(Debug, Default, PartialEq)]
pub struct Sbom {
    /// Packages (file components, if any, are not packages).
    pub components: u32,
    /// Package name → (version, the file syft found it in, relative to the scanned root), the first of each
    /// name: where a license finding of trivy (which names only the package) points.
    pub packages: BTreeMap<String, (String, String)>,
}

/// The packages of a CycloneDX SBOM written by syft.
pub fn sbom(json: &[u8]) -> Result<Sbom, ParseError> {
    let bom: CycloneDx = serde_json::from_slice(json).map_err(|source| ParseError { tool: SBOM, source })?;
    let mut out = Sbom::default();
    for c in bom.components.unwrap_or_default().into_iter().filter(|c| c.kind != "file") {
        out.components = out.components.saturating_add(1);
        let location = c
            .properties
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.name == "syft:location:0:path")
            .map(|p| p.value.trim_start_matches('/').to_owned())
            .unwrap_or_default();
        out.packages.entry(c.name).or_insert((c.version, location));
    }
    Ok(out)
}

/// Number of packages in a CycloneDX SBOM.
pub fn sbom_components(json: &[u8]) -> Result<u32, ParseError> {
    sbom(json).map(|s| s.components)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyLicenseReport {
    #[serde(default)]
    results: Option<Vec<TrivyLicenseResult>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyLicenseResult {
    #[serde(default)]
    licenses: Option<Vec<TrivyLicense>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyLicense {
    #[serde(default)]
    severity: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    pkg_name: String,
    #[serde(default)]
    file_path: String,
    #[serde(default)]
    name: String,
}

/// License categories of trivy that are not a problem: no finding.
const HARMLESS_LICENSE_CATEGORIES: &[&str] = &["notice", "permissive", "unencumbered"];

/// License findings (`scanner="sbom"`) of `trivy sbom --scanners license` over syft's SBOM: every package
/// whose license trivy classifies as forbidden (CRITICAL), restricted (HIGH), reciprocal (MEDIUM) or does not
/// know (UNKNOWN); notice, permissive and unencumbered licenses are not findings, nor is a package whose SBOM
/// entry names no license (syft knows licenses offline only from what is on disk: lock files, installed
/// packages). Rule `license:<SPDX id>`, path the file the package was found in, anchored on the package name.
pub fn sbom_licenses(json: &[u8], sbom: &Sbom) -> Result<Vec<Found>, ParseError> {
    let report: TrivyLicenseReport =
        serde_json::from_slice(json).map_err(|source| ParseError { tool: SBOM, source })?;
    let mut out = Vec::new();
    for l in report.results.unwrap_or_default().into_iter().flat_map(|r| r.licenses.unwrap_or_default()) {
        let category = l.category.trim().to_ascii_lowercase();
        if HARMLESS_LICENSE_CATEGORIES.contains(&category.as_str()) {
            continue;
        }
        let (version, location) = sbom.packages.get(&l.pkg_name).cloned().unwrap_or_default();
        let path = if l.file_path.is_empty() { location } else { l.file_path.trim_start_matches('/').to_owned() };
        let package = if version.is_empty() { l.pkg_name.clone() } else { format!("{} {version}", l.pkg_name) };
        let category = if category.is_empty() { "unknown".to_owned() } else { category };
        let finding = Finding {
            scanner: SBOM.to_owned(),
            severity: severity(&l.severity).into(),
            rule_id: format!("license:{}", l.name),
            path,
            line: 0,
            title: title(&format!("{package}: license {} ({category})", l.name)),
            introduced: false,
        };
        out.push(Found { finding, anchor: l.pkg_name });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn scanner_names_are_the_domain_spellings() {
        for (name, scanner) in [
            (GITLEAKS, sre_domain::Scanner::Gitleaks),
            (TRIVY, sre_domain::Scanner::Trivy),
            (SBOM, sre_domain::Scanner::Sbom),
        ] {
            assert_eq!(scanner.as_str(), name);
            assert_eq!(super::scanner_of(name), scanner);
        }
    }

    use super::*;

    const ROOT: &str = "/tmp/sre-wt-fixture/wt";

    #[test]
    fn parses_a_real_gitleaks_report() {
        let json = include_bytes!("../testdata/gitleaks-aws.json");
        let findings = gitleaks(json, Path::new(ROOT)).unwrap();
        assert_eq!(findings.len(), 1);
        let f = &findings[0].finding;
        assert_eq!(findings[0].anchor, "");
        assert!(!f.introduced);
        assert_eq!(f.scanner, "gitleaks");
        assert_eq!(f.severity(), Severity::High);
        assert_eq!(f.rule_id, "aws-access-token");
        assert_eq!(f.path, "sub/config.py");
        assert_eq!(f.line, 3);
        assert!(f.title.starts_with("Identified a pattern that may indicate AWS credentials"));
        assert!(!f.title.contains("REDACTED"));
        assert!(is_blocking(f));
    }

    #[test]
    fn parses_an_empty_gitleaks_report() {
        assert!(gitleaks(b"[]", Path::new(ROOT)).unwrap().is_empty());
        assert!(gitleaks(b"null", Path::new(ROOT)).unwrap().is_empty());
        assert!(gitleaks(b"{not json", Path::new(ROOT)).is_err());
    }

    #[test]
    fn parses_a_real_trivy_report() {
        let json = include_bytes!("../testdata/trivy-secret-misconfig.json");
        let findings: Vec<Finding> = trivy(json).unwrap().into_iter().map(|f| f.finding).collect();
        let ids: Vec<(&str, Severity, &str, u32)> =
            findings.iter().map(|f| (f.rule_id.as_str(), f.severity(), f.path.as_str(), f.line)).collect();
        assert_eq!(
            ids,
            vec![
                ("misconfig:DS-0001", Severity::Medium, "Dockerfile", 1),
                ("misconfig:DS-0002", Severity::High, "Dockerfile", 3),
                ("misconfig:DS-0017", Severity::High, "Dockerfile", 2),
                ("misconfig:DS-0026", Severity::Low, "Dockerfile", 0),
                ("secret:aws-access-key-id", Severity::Critical, "sub/config.py", 3),
            ]
        );
        assert!(findings.iter().all(|f| f.scanner == "trivy" && !f.title.contains('*')));
        assert_eq!(findings[4].title, "AWS Access Key ID");
        assert!(!is_blocking(&findings[0]));
        assert!(is_blocking(&findings[1]));
        assert!(!is_blocking(&findings[3]));
    }

    #[test]
    fn a_low_trivy_secret_still_blocks() {
        let json = br#"{"Results":[{"Target":"a.txt","Class":"secret","Secrets":[
            {"RuleID":"x","Category":"c","Severity":"LOW","Title":"Some token","StartLine":7,"EndLine":7,
             "Match":"tok = ****"}]}]}"#;
        let f = trivy(json).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].finding.severity(), f[0].finding.line), (Severity::Low, 7));
        assert!(is_blocking(&f[0].finding));
    }

    #[test]
    fn parses_trivy_vulnerabilities_and_empty_reports() {
        // Shape of `trivy fs --scanners vuln` (Results[].Vulnerabilities[]); the vulnerability DB cannot be
        // downloaded on the build machines, so this sample follows trivy's documented JSON.
        let json = br#"{"SchemaVersion":2,"ArtifactName":"/w","ArtifactType":"filesystem","Results":[
            {"Target":"requirements.txt","Class":"lang-pkgs","Type":"pip","Vulnerabilities":[
              {"VulnerabilityID":"CVE-2018-18074","PkgName":"requests","InstalledVersion":"2.19.0",
               "FixedVersion":"2.20.0","Severity":"HIGH","Title":"python-requests: Redirect leaks auth"},
              {"VulnerabilityID":"CVE-2023-32681","PkgName":"requests","InstalledVersion":"2.19.0",
               "Severity":"MEDIUM","Title":"python-requests: Unintended leak of Proxy-Authorization"},
              {"VulnerabilityID":"CVE-0000-0001","PkgName":"x","InstalledVersion":"1","Severity":"weird"}]},
            {"Target":"Dockerfile","Class":"config","Misconfigurations":[
              {"ID":"DS-0005","Title":"ok","Severity":"LOW","Status":"PASS"}]}]}"#;
        let found = trivy(json).unwrap();
        assert_eq!(found[0].anchor, "requests", "a vulnerability is anchored on its package, not its version");
        let f: Vec<Finding> = found.into_iter().map(|f| f.finding).collect();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].rule_id, "vuln:CVE-2018-18074");
        assert_eq!(f[0].title, "requests 2.19.0: python-requests: Redirect leaks auth");
        assert_eq!(f[0].path, "requirements.txt");
        assert!(is_blocking(&f[0]));
        assert_eq!(f[1].severity(), Severity::Medium);
        assert_eq!(f[2].severity(), Severity::Unknown);
        let clean = br#"{"SchemaVersion":2,"ArtifactName":"/w","ArtifactType":"filesystem"}"#;
        assert!(trivy(clean).unwrap().is_empty());
        assert!(trivy(b"").is_err());
    }

    #[test]
    fn reads_license_findings_of_a_real_trivy_sbom_report() {
        // syft 1.18.1 over a package-lock.json listing AGPL, MPL, MIT, BSD, Unlicense, an unknown license and
        // the project's own GPL-3.0, then trivy 0.76.0 `sbom --scanners license` (offline) over that SBOM.
        let bom = sbom(include_bytes!("../testdata/syft-cyclonedx-licenses.json")).unwrap();
        assert_eq!(bom.components, 9);
        assert_eq!(bom.packages["evil"], ("1.0.0".to_owned(), "package-lock.json".to_owned()));
        assert_eq!(bom.packages["requests"].1, "requirements.txt");
        let found = sbom_licenses(include_bytes!("../testdata/trivy-sbom-license.json"), &bom).unwrap();
        let got: Vec<(&str, Severity, &str, &str, bool)> = found
            .iter()
            .map(|f| {
                let x = &f.finding;
                (x.rule_id.as_str(), x.severity(), x.path.as_str(), f.anchor.as_str(), is_blocking(x))
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("license:AGPL-3.0-only", Severity::Critical, "package-lock.json", "evil", true),
                ("license:MPL-2.0", Severity::Medium, "package-lock.json", "mpl", false),
                ("license:Foo-Proprietary-1", Severity::Unknown, "package-lock.json", "weird", false),
                ("license:GPL-3.0-only", Severity::High, "package-lock.json", "x", false),
            ]
        );
        assert_eq!(found[0].finding.title, "evil 1.0.0: license AGPL-3.0-only (forbidden)");
        assert!(found.iter().all(|f| f.finding.scanner == "sbom" && f.finding.line == 0));
        assert!(sbom_licenses(br#"{"SchemaVersion":2,"ArtifactType":"cyclonedx"}"#, &bom).unwrap().is_empty());
        assert!(sbom_licenses(b"Scan SBOM for vulnerabilities", &bom).is_err());
    }

    #[test]
    fn counts_sbom_components() {
        assert_eq!(sbom_components(include_bytes!("../testdata/syft-cyclonedx.json")).unwrap(), 2);
        let empty = br#"{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{"component":{"type":"file"}}}"#;
        assert_eq!(sbom_components(empty).unwrap(), 0);
        let files = br#"{"components":[{"type":"library"},{"type":"file"},{"type":"application"}]}"#;
        assert_eq!(sbom_components(files).unwrap(), 2);
        assert!(sbom_components(b"[1,2]").is_err());
    }

    #[test]
    fn maps_severities() {
        assert_eq!(severity("critical"), Severity::Critical);
        assert_eq!(severity("LOW"), Severity::Low);
        assert_eq!(severity(""), Severity::Unknown);
        for s in [Severity::Unspecified, Severity::Low, Severity::Medium, Severity::High, Severity::Critical] {
            assert!(["LOW", "MEDIUM", "HIGH", "CRITICAL", "UNKNOWN"].contains(&sre_domain::Severity::from(s).as_str()));
        }
    }

    #[test]
    fn keeps_titles_short_on_char_boundaries() {
        let long = "é".repeat(300);
        let t = title(&long);
        assert!(t.len() <= MAX_TITLE_BYTES + 3);
        assert!(t.ends_with("..."));
        assert_eq!(relative_path(Path::new("/a/wt"), "/a/wt/x/y.py"), "x/y.py");
        assert_eq!(relative_path(Path::new("/a/wt"), "/elsewhere/y.py"), "/elsewhere/y.py");
    }
}
