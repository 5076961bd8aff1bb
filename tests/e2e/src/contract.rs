//! The observability contract of docs/observability.md, parsed: the metrics table (family, type, labels and
//! their allowed values, owning processes, what the first scrape shows) and the spans table (name, owning
//! processes, kind, attributes), and the checks of a scrape and of spans against them.

use std::collections::{BTreeMap, BTreeSet};

use sre_otlp_sink::SpanRecord;

/// The seven processes of the mesh, for rows that say `every`.
pub const PROCESSES: [&str; 7] = ["gateway", "orchestrator", "planner", "policy", "scanner", "validator", "pr"];

/// Attributes every span carries that tracing-opentelemetry adds itself (source location, thread, target).
const INTRINSIC: [&str; 6] =
    ["code.file.path", "code.line.number", "code.module.name", "target", "thread.id", "thread.name"];

/// The allowed values of one label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Values {
    Set(BTreeSet<String>),
    /// A three-digit HTTP status.
    HttpStatus,
}

impl Values {
    pub fn allows(&self, v: &str) -> bool {
        match self {
            Self::Set(set) => set.contains(v),
            Self::HttpStatus => v.len() == 3 && v.parse::<u16>().is_ok_and(|n| (100..600).contains(&n)),
        }
    }

    /// The most series this label can make (HTTP statuses: the few dozen a server answers).
    pub fn bound(&self) -> usize {
        match self {
            Self::Set(set) => set.len(),
            Self::HttpStatus => 64,
        }
    }
}

#[derive(Clone, Debug)]
pub struct MetricRow {
    /// As exposed in the Prometheus text format (`_total` for counters; the base name for histograms).
    pub name: String,
    pub kind: String,
    pub labels: Vec<(String, Values)>,
    pub processes: BTreeSet<String>,
    pub first_scrape: FirstScrape,
}

/// What a fresh process exposes of a family before any traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstScrape {
    /// Every combination of the listed values, at 0, across the owning processes.
    AllSeries,
    /// Every route template the process serves, with the method and status of its normal answer, at 0.
    Routes,
    /// Nothing: the family appears with its first observation (it must after traffic).
    OnFirstUse,
}

impl MetricRow {
    /// The most series the family can have (histograms: per label set, buckets count once).
    pub fn budget(&self) -> usize {
        self.labels.iter().map(|(_, v)| v.bound()).product::<usize>().max(1)
    }
}

#[derive(Clone, Debug)]
pub struct SpanRow {
    /// A span name, or a pattern: `sre.v1.<Service>/<Method>`, `<METHOD> <GitHub route>`.
    pub name: String,
    pub processes: BTreeSet<String>,
    /// Made with the GitHub backend only (process cell "... (GitHub backend)"): checked by the GitHub tests.
    pub github: bool,
    pub kind: String,
    pub required: BTreeSet<String>,
    pub optional: BTreeSet<String>,
}

impl SpanRow {
    pub fn matches(&self, name: &str) -> bool {
        if self.name == "sre.v1.<Service>/<Method>" {
            let Some((service, method)) = name.split_once('/') else { return false };
            return service.starts_with("sre.v1.") && !method.is_empty() && !method.contains('/');
        }
        if self.name == "<METHOD> <GitHub route>" {
            let Some((method, route)) = name.split_once(' ') else { return false };
            return matches!(method, "GET" | "POST" | "PATCH" | "PUT" | "DELETE")
                && (route.starts_with('/') || route == "job-log-download");
        }
        self.name == name
    }
}

/// Both tables of the contract.
#[derive(Clone, Debug)]
pub struct Contract {
    pub metrics: Vec<MetricRow>,
    pub spans: Vec<SpanRow>,
}

fn cells(line: &str) -> Vec<String> {
    line.trim().trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect()
}

fn table<'a>(doc: &'a str, name: &str) -> impl Iterator<Item = Vec<String>> + 'a {
    let begin = format!("<!-- contract:{name}:begin -->");
    let end = format!("<!-- contract:{name}:end -->");
    let start = doc.find(&begin).unwrap_or_else(|| panic!("docs/observability.md has no {begin}")) + begin.len();
    let stop = doc[start..].find(&end).unwrap_or_else(|| panic!("docs/observability.md has no {end}")) + start;
    doc[start..stop].lines().filter(|l| l.starts_with('|')).skip(2).map(cells)
}

fn processes(cell: &str) -> BTreeSet<String> {
    if cell == "every" {
        return PROCESSES.iter().map(|p| (*p).to_owned()).collect();
    }
    cell.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect()
}

fn labels(cell: &str) -> Vec<(String, Values)> {
    if cell == "-" {
        return Vec::new();
    }
    cell.split("; ")
        .map(|spec| {
            let (name, values) = spec.split_once(" ∈ ").unwrap_or_else(|| panic!("bad label spec {spec:?}"));
            let values = values.trim();
            let values = if values == "<http-status>" {
                Values::HttpStatus
            } else {
                let inner = values.strip_prefix('{').and_then(|v| v.strip_suffix('}'));
                let inner = inner.unwrap_or_else(|| panic!("label {name}: values must be {{a, b}} or <http-status>"));
                Values::Set(inner.split(", ").map(str::to_owned).collect())
            };
            (name.trim().to_owned(), values)
        })
        .collect()
}

impl Contract {
    /// Parses docs/observability.md of this workspace (embedded at build time: a rebuild follows the doc).
    pub fn load() -> Self {
        Self::parse(include_str!("../../../docs/observability.md"))
    }

    pub fn parse(doc: &str) -> Self {
        let metrics = table(doc, "metrics")
            .map(|c| {
                assert_eq!(c.len(), 5, "metrics row needs 5 cells: {c:?}");
                MetricRow {
                    name: c[0].trim_matches('`').to_owned(),
                    kind: c[1].clone(),
                    labels: labels(&c[2]),
                    processes: processes(&c[3]),
                    first_scrape: match c[4].as_str() {
                        "all series" => FirstScrape::AllSeries,
                        "routes" => FirstScrape::Routes,
                        "on first use" => FirstScrape::OnFirstUse,
                        other => panic!("{}: first scrape {other:?} is not all series, routes or on first use", c[0]),
                    },
                }
            })
            .collect();
        let spans = table(doc, "spans")
            .map(|c| {
                assert_eq!(c.len(), 4, "spans row needs 4 cells: {c:?}");
                let (mut required, mut optional) = (BTreeSet::new(), BTreeSet::new());
                for a in c[3].split(", ") {
                    match a.strip_suffix('?') {
                        Some(a) => optional.insert(a.to_owned()),
                        None => required.insert(a.to_owned()),
                    };
                }
                let (cell, github) = match c[1].strip_suffix(" (GitHub backend)") {
                    Some(cell) => (cell, true),
                    None => (c[1].as_str(), false),
                };
                SpanRow {
                    name: c[0].trim_matches('`').to_owned(),
                    processes: processes(cell),
                    github,
                    kind: c[2].clone(),
                    required,
                    optional,
                }
            })
            .collect();
        Self { metrics, spans }
    }

    pub fn metric(&self, family: &str) -> Option<&MetricRow> {
        self.metrics.iter().find(|m| m.name == family)
    }

    /// The family a sample belongs to.
    pub fn family_of(&self, sample: &str) -> Option<&MetricRow> {
        self.metric(sample).or_else(|| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| sample.strip_suffix(s))
                .find_map(|base| self.metric(base).filter(|m| m.kind == "histogram"))
        })
    }

    /// What is wrong with the mesh's expositions (process → Prometheus text): a family a process exposes
    /// but the contract does not give it, a family a process owns but lacks (at the first scrape only those
    /// shown from the start), a sample with other labels or a value outside the set, and at the first scrape
    /// an `all series` combination that no owning process exposes.
    pub fn check_mesh(&self, scrapes: &BTreeMap<&str, String>, first_scrape: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen: BTreeMap<&str, BTreeSet<BTreeMap<String, String>>> = BTreeMap::new();
        for (process, text) in scrapes {
            let process = *process;
            let mut families = BTreeSet::new();
            for line in text.lines() {
                let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
                let name = rest.split_whitespace().next().unwrap_or_default();
                families.insert(name.to_owned());
                match self.metric(name) {
                    None => problems.push(format!("{process}: family {name} is not in the contract")),
                    Some(row) if !row.processes.contains(process) => {
                        problems.push(format!(
                            "{process}: exposes {name}, which the contract gives to {:?}",
                            row.processes
                        ));
                    }
                    Some(_) => {}
                }
            }
            for row in self.metrics.iter().filter(|r| r.processes.contains(process)) {
                let expected_now = !first_scrape || row.first_scrape != FirstScrape::OnFirstUse;
                if expected_now && !families.contains(&row.name) {
                    problems.push(format!("{process}: lacks {} ({})", row.name, row.kind));
                }
            }
            for (sample, labels) in sre_telemetry::testing::parse_exposition(text).keys() {
                let Some(row) = self.family_of(sample) else { continue };
                let mut labels = labels.clone();
                if sample.ends_with("_bucket") && labels.remove("le").is_none() {
                    problems.push(format!("{process}: {sample} without le"));
                }
                let names: BTreeSet<&str> = labels.keys().map(String::as_str).collect();
                let want: BTreeSet<&str> = row.labels.iter().map(|(n, _)| n.as_str()).collect();
                if names != want {
                    problems.push(format!("{process}: {sample} has labels {names:?}, the contract says {want:?}"));
                    continue;
                }
                for (name, values) in &row.labels {
                    let v = &labels[name];
                    if !values.allows(v) {
                        problems.push(format!("{process}: {sample}{{{name}=\"{v}\"}} is outside the contract's set"));
                    }
                }
                seen.entry(row.name.as_str()).or_default().insert(labels);
            }
        }
        if first_scrape {
            for row in self.metrics.iter().filter(|r| r.first_scrape == FirstScrape::AllSeries) {
                let have = seen.get(row.name.as_str()).cloned().unwrap_or_default();
                let missing: Vec<_> = combinations(&row.labels).into_iter().filter(|c| !have.contains(c)).collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "{}: {} series missing at start, e.g. {:?}",
                        row.name,
                        missing.len(),
                        missing[0]
                    ));
                }
            }
        }
        problems
    }

    /// What is wrong with spans: a name or kind the contract does not list, a required attribute missing,
    /// an attribute the row does not list.
    pub fn check_spans(&self, spans: &[&SpanRecord]) -> Vec<String> {
        let mut problems = Vec::new();
        for s in spans {
            let Some(row) = self.spans.iter().find(|r| r.matches(&s.name) && r.kind == s.kind) else {
                problems.push(format!("span {} ({}) is not in the contract", s.name, s.kind));
                continue;
            };
            for a in &row.required {
                if !s.attributes.contains_key(a) {
                    problems.push(format!("span {} ({}) lacks {a}", s.name, s.kind));
                }
            }
            for a in s.attributes.keys() {
                if !row.required.contains(a) && !row.optional.contains(a) && !INTRINSIC.contains(&a.as_str()) {
                    problems
                        .push(format!("span {} ({}) carries {a}, which the contract does not list", s.name, s.kind));
                }
            }
        }
        problems
    }
}

/// Every label set of a row whose labels are all closed sets.
fn combinations(labels: &[(String, Values)]) -> BTreeSet<BTreeMap<String, String>> {
    let mut out = BTreeSet::from([BTreeMap::new()]);
    for (name, values) in labels {
        let Values::Set(values) = values else { return BTreeSet::new() };
        out = out
            .into_iter()
            .flat_map(|base| {
                values.iter().map(move |v| {
                    let mut m = base.clone();
                    m.insert(name.clone(), v.clone());
                    m
                })
            })
            .collect();
    }
    out
}
