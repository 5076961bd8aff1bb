//! Finding the CI step that failed in the workflow files at head_sha, and turning it into a command the
//! sandbox can run, or the reason it cannot. Pure: the caller reads the files (from git objects, never from
//! a worktree code has run in).
//!
//! The job: by workflow name (`name:`, or the file path when it has none), then by the job name CI showed —
//! a job's `name:` or its id; a matrix job shown as `name (v1, v2)`; a `name:` template with `${{ matrix.X }}`
//! parts — or, with no job name, the only job, or the job holding a step whose `run:` is the failing command.
//! The step: by name (or GitHub's `Run <first line>` for an unnamed step), else by its `run:` text, else the
//! job's last `run:` step. The command: the step's `run:` with the `shell`, `working-directory` and `env`
//! that apply (step, then job `defaults`/`env`, then workflow). Refused (a verdict, not an error): a step
//! that is an action (`uses:`), a job that calls a reusable workflow, needs `services:` or a `container:`, or
//! runs on Windows/macOS, a shell other than bash/sh/python, `${{ secrets.* }}` (or `github.token`) anywhere
//! the step would see it, and any `${{ }}` expression other than `matrix.X` (when its value is unambiguous),
//! `env.X` (a plain value defined above it), `github.sha`, `github.workspace`, `runner.os`, `runner.temp`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use serde_norway::Value;

/// Where workflow files live (direct children only, as GitHub reads them).
pub const WORKFLOW_DIR: &str = ".github/workflows/";
/// Larger workflow files are not read.
pub const MAX_WORKFLOW_BYTES: usize = 1024 * 1024;
/// Stands for `${{ github.workspace }}` until the run knows where the worktree is mounted.
pub const WORKSPACE: &str = "\u{1}github.workspace\u{1}";
/// Longest job name a template is matched against.
const MAX_NAME: usize = 512;

/// True for a workflow file path (`.github/workflows/*.yml` or `*.yaml`).
pub fn is_workflow_path(path: &str) -> bool {
    path.strip_prefix(WORKFLOW_DIR)
        .is_some_and(|name| !name.contains('/') && (name.ends_with(".yml") || name.ends_with(".yaml")))
}

/// One workflow file at head_sha.
#[derive(Clone, Debug)]
pub struct WorkflowFile {
    pub path: String,
    pub text: String,
}

/// What is known about the failure.
#[derive(Clone, Copy, Debug, Default)]
pub struct Facts<'a> {
    pub workflow_name: &'a str,
    pub job_name: &'a str,
    pub failing_step: &'a str,
    pub step_command: &'a str,
    pub head_sha: &'a str,
}

/// How the step was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    Name,
    Command,
    LastRunStep,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Command => "command",
            Self::LastRunStep => "last_run_step",
        }
    }
}

/// The step found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub workflow: String,
    pub job_id: String,
    pub job_name: String,
    pub step_name: String,
    /// 1-based.
    pub step_index: usize,
    pub matched_by: MatchedBy,
}

/// The shells a `run:` step may use here, with GitHub's command templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    /// No `shell:` anywhere: `bash -e {0}`.
    DefaultBash,
    /// `shell: bash`: `bash --noprofile --norc -eo pipefail {0}`.
    Bash,
    /// `shell: sh`: `sh -e {0}`.
    Sh,
    /// `shell: python`: `python {0}` (run with python3).
    Python,
}

impl Shell {
    pub fn template(self) -> &'static str {
        match self {
            Self::DefaultBash => "bash -e {0}",
            Self::Bash => "bash --noprofile --norc -eo pipefail {0}",
            Self::Sh => "sh -e {0}",
            Self::Python => "python {0}",
        }
    }

    /// The argv that runs `script` the way the template does (as `-c` text rather than a script file, so
    /// nothing is written into the worktree).
    pub fn argv(self, script: &str) -> Vec<OsString> {
        let words: &[&str] = match self {
            Self::DefaultBash => &["bash", "-e", "-c"],
            Self::Bash => &["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"],
            Self::Sh => &["sh", "-e", "-c"],
            Self::Python => &["python3", "-c"],
        };
        words.iter().map(OsString::from).chain([OsString::from(script)]).collect()
    }
}

/// A step turned into a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepCommand {
    pub found: Found,
    /// The `run:` text with expressions resolved ([`WORKSPACE`] still to be replaced).
    pub script: String,
    pub shell: Shell,
    /// Relative to the repository root, "" for the root ([`WORKSPACE`] already stripped).
    pub working_directory: String,
    pub env: Vec<(String, String)>,
    /// The step's or job's `timeout-minutes`, if any.
    pub timeout: Option<Duration>,
}

impl StepCommand {
    /// The script and environment for a run whose worktree the command sees at `workspace`.
    pub fn for_workspace(&self, workspace: &str) -> (String, Vec<(String, String)>) {
        let env = self.env.iter().map(|(k, v)| (k.clone(), v.replace(WORKSPACE, workspace))).collect();
        (self.script.replace(WORKSPACE, workspace), env)
    }
}

/// What the workflows say about the failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Run(StepCommand),
    /// The step exists but cannot run in the sandbox.
    Refused {
        found: Option<Found>,
        reason: String,
    },
    /// No step to re-run: no workflow, no such job or step.
    NotFound(String),
}

fn refused(found: Option<Found>, reason: impl Into<String>) -> Resolution {
    Resolution::Refused { found, reason: reason.into() }
}

struct Workflow<'a> {
    path: &'a str,
    doc: Value,
}

impl Workflow<'_> {
    /// The name CI shows: `name:`, or the file path.
    fn display(&self) -> String {
        self.doc.get("name").and_then(Value::as_str).map_or_else(|| self.path.to_owned(), str::to_owned)
    }

    fn jobs(&self) -> Vec<(String, &Value)> {
        let Some(jobs) = self.doc.get("jobs").and_then(Value::as_mapping) else { return Vec::new() };
        jobs.iter().filter_map(|(k, v)| Some((scalar(k)?, v))).collect()
    }
}

/// A scalar's text (`true`, `3.11`, `x`); `None` for null, sequences and mappings.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

/// What a job name told about the matrix combination that ran.
#[derive(Clone, Debug, Default)]
enum Hint {
    #[default]
    None,
    /// `name (v1, v2)`: the values, in no reliable key order.
    Displayed(Vec<String>),
    /// A `name:` template matched: `matrix.X` → value.
    Captured(BTreeMap<String, String>),
}

/// The matrix of a job and the combination chosen.
#[derive(Debug, Default)]
struct Matrix {
    /// The matrix's own keys and their values.
    values: BTreeMap<String, Vec<String>>,
    /// `include:` entries (key → value).
    includes: Vec<BTreeMap<String, String>>,
    chosen: BTreeMap<String, String>,
    computed: bool,
}

impl Matrix {
    fn of(job: &Value, hint: &Hint) -> Self {
        let mut m = Matrix::default();
        match job.get("strategy").and_then(|s| s.get("matrix")) {
            Some(Value::Mapping(map)) => {
                for (k, v) in map {
                    let Some(key) = scalar(k) else { continue };
                    match (key.as_str(), v) {
                        ("exclude", _) => {}
                        ("include", Value::Sequence(items)) => {
                            for item in items {
                                let entry = item
                                    .as_mapping()
                                    .into_iter()
                                    .flatten()
                                    .filter_map(|(ik, iv)| Some((scalar(ik)?, scalar(iv)?)))
                                    .collect();
                                m.includes.push(entry);
                            }
                        }
                        (_, Value::Sequence(items)) => {
                            let vals = m.values.entry(key.clone()).or_default();
                            for v in items.iter().filter_map(scalar) {
                                if !vals.contains(&v) {
                                    vals.push(v);
                                }
                            }
                        }
                        _ => m.computed = true,
                    }
                }
            }
            Some(_) => m.computed = true,
            None => {}
        }
        match hint {
            Hint::None => {}
            Hint::Captured(c) => m.chosen = c.clone(),
            Hint::Displayed(shown) => {
                let mut candidates: BTreeMap<String, Vec<String>> = m.values.clone();
                for inc in &m.includes {
                    for (k, v) in inc {
                        let vals = candidates.entry(k.clone()).or_default();
                        if !vals.contains(v) {
                            vals.push(v.clone());
                        }
                    }
                }
                for (key, vals) in candidates {
                    let mut hits: Vec<&String> = shown.iter().filter(|s| vals.contains(s)).collect();
                    hits.dedup();
                    if let [one] = hits.as_slice() {
                        m.chosen.insert(key, (*one).clone());
                    }
                }
            }
        }
        m
    }

    /// The value of the matrix's own key `key` in the chosen combination, if known.
    fn base(&self, key: &str) -> Option<&str> {
        if let Some(v) = self.chosen.get(key) {
            return Some(v);
        }
        match self.values.get(key).map(Vec::as_slice) {
            Some([one]) => Some(one),
            _ => None,
        }
    }

    fn value(&self, key: &str) -> Result<String, String> {
        if let Some(v) = self.chosen.get(key) {
            return Ok(v.clone());
        }
        if let Some(vals) = self.values.get(key) {
            return match vals.as_slice() {
                [one] => Ok(one.clone()),
                many => Err(format!("`matrix.{key}` is ambiguous (one of {})", many.join(", "))),
            };
        }
        if self.computed {
            return Err(format!("`matrix.{key}` comes from a computed matrix"));
        }
        // A key only `include:` adds: the entries that apply to the chosen combination decide.
        let with_key: Vec<&BTreeMap<String, String>> = self.includes.iter().filter(|i| i.contains_key(key)).collect();
        if with_key.is_empty() {
            return Err(format!("`matrix.{key}` is not defined"));
        }
        let mut undecided = false;
        let mut hits: Vec<&str> = Vec::new();
        for inc in with_key {
            let mut applies = true;
            for (k, v) in inc.iter().filter(|(k, _)| self.values.contains_key(*k)) {
                match self.base(k) {
                    Some(chosen) if chosen == v => {}
                    Some(_) => applies = false,
                    None => undecided = true,
                }
            }
            if applies && !hits.contains(&inc[key].as_str()) {
                hits.push(&inc[key]);
            }
        }
        match (hits.as_slice(), undecided) {
            ([one], false) => Ok((*one).to_owned()),
            // No entry applies to this combination: GitHub gives the empty string.
            ([], false) => Ok(String::new()),
            _ => Err(format!("`matrix.{key}` is ambiguous for this job")),
        }
    }
}

/// What expressions may refer to.
struct Ctx<'a> {
    matrix: &'a Matrix,
    env: &'a BTreeMap<String, String>,
    sha: &'a str,
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `text` with every `${{ }}` expression resolved, or why one cannot be.
fn resolve(text: &str, ctx: &Ctx<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after.find("}}").ok_or_else(|| "an unterminated `${{` expression".to_owned())?;
        let expr = after[..end].trim();
        out.push_str(&eval(expr, ctx)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn eval(expr: &str, ctx: &Ctx<'_>) -> Result<String, String> {
    let lower = expr.to_ascii_lowercase();
    if lower.contains("secrets.") || lower.contains("secrets[") || lower.contains("github.token") {
        return Err(format!("it needs secrets (`${{{{ {expr} }}}}`)"));
    }
    if let Some(key) = expr.strip_prefix("matrix.").filter(|k| is_ident(k)) {
        return ctx.matrix.value(key);
    }
    if let Some(key) = expr.strip_prefix("env.").filter(|k| is_ident(k)) {
        return ctx.env.get(key).cloned().ok_or_else(|| format!("`env.{key}` is not a plain value defined here"));
    }
    match expr {
        "github.sha" => Ok(ctx.sha.to_owned()),
        "github.workspace" => Ok(WORKSPACE.to_owned()),
        "runner.os" => Ok("Linux".to_owned()),
        "runner.temp" => Ok("/tmp".to_owned()),
        _ => Err(format!("the expression `${{{{ {expr} }}}}` cannot be resolved outside GitHub Actions")),
    }
}

enum Seg<'a> {
    Lit(&'a str),
    Expr(&'a str),
}

fn segments(template: &str) -> Option<Vec<Seg<'_>>> {
    let mut segs = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            segs.push(Seg::Lit(&rest[..start]));
        }
        let after = &rest[start + 3..];
        let end = after.find("}}")?;
        segs.push(Seg::Expr(after[..end].trim()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        segs.push(Seg::Lit(rest));
    }
    Some(segs)
}

/// Whether `segs[at..]` matches `s[pos..]`, pushing each expression's capture as a byte range. `dead` marks the
/// (segment, position) pairs already known not to match: without it, a `name:` of many adjacent expressions
/// (`${{ a }}${{ b }}...x`, from a workflow file anyone opening a pull request controls) backtracks
/// exponentially; with it every pair is tried once.
fn match_from<'a>(
    segs: &[Seg<'a>],
    at: usize,
    s: &str,
    pos: usize,
    caps: &mut Vec<(&'a str, usize, usize)>,
    dead: &mut [bool],
) -> bool {
    let key = at * (s.len() + 1) + pos;
    if dead[key] {
        return false;
    }
    let hit = match segs.get(at) {
        None => pos == s.len(),
        Some(Seg::Lit(l)) => s[pos..].starts_with(l) && match_from(segs, at + 1, s, pos + l.len(), caps, dead),
        Some(Seg::Expr(e)) => (pos..=s.len()).filter(|i| s.is_char_boundary(*i)).any(|end| {
            caps.push((e, pos, end));
            let hit = match_from(segs, at + 1, s, end, caps, dead);
            if !hit {
                caps.pop();
            }
            hit
        }),
    };
    if !hit {
        dead[key] = true;
    }
    hit
}

/// The `matrix.X` values a job name template gives for `actual`, if it matches.
fn template_match(template: &str, actual: &str) -> Option<BTreeMap<String, String>> {
    if actual.len() > MAX_NAME || template.len() > MAX_NAME {
        return None;
    }
    let segs = segments(template)?;
    let mut caps = Vec::new();
    let mut dead = vec![false; (segs.len() + 1) * (actual.len() + 1)];
    if !match_from(&segs, 0, actual, 0, &mut caps, &mut dead) {
        return None;
    }
    Some(
        caps.into_iter()
            .filter_map(|(e, from, to)| Some((e.strip_prefix("matrix.")?.to_owned(), actual[from..to].to_owned())))
            .collect(),
    )
}

/// Whether the job `id` (shown as `display`) is the one CI called `job_name`, and what that says about its
/// matrix.
fn match_job(id: &str, display: &str, job_name: &str) -> Option<Hint> {
    if display == job_name || id == job_name {
        return Some(Hint::None);
    }
    if let Some(values) =
        job_name.strip_prefix(display).and_then(|r| r.strip_prefix(" (")).and_then(|r| r.strip_suffix(')'))
    {
        return Some(Hint::Displayed(values.split(", ").map(str::to_owned).collect()));
    }
    if display.contains("${{") {
        return template_match(display, job_name).map(Hint::Captured);
    }
    None
}

/// The name CI shows for a step.
fn step_display(step: &Value) -> String {
    if let Some(name) = step.get("name").and_then(scalar) {
        return name;
    }
    if let Some(run) = step.get("run").and_then(Value::as_str) {
        return format!("Run {}", run.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or(""));
    }
    if let Some(uses) = step.get("uses").and_then(Value::as_str) {
        return format!("Run {uses}");
    }
    String::new()
}

/// A command compared without line-ending and trailing-space differences.
fn normalized(s: &str) -> String {
    s.replace("\r\n", "\n").lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim().to_owned()
}

/// The step CI reported in `job`: its index and how it was found.
fn find_step(job: &Value, facts: &Facts<'_>) -> Result<(usize, MatchedBy), String> {
    let steps: &[Value] = job.get("steps").and_then(Value::as_sequence).map_or(&[], Vec::as_slice);
    if steps.is_empty() {
        return Err("the job has no steps".to_owned());
    }
    if !facts.failing_step.is_empty() {
        let want = facts.failing_step.trim();
        if let Some(i) = steps.iter().position(|s| step_display(s) == want) {
            return Ok((i, MatchedBy::Name));
        }
    }
    if !facts.step_command.trim().is_empty() {
        let want = normalized(facts.step_command);
        if let Some(i) =
            steps.iter().position(|s| s.get("run").and_then(Value::as_str).is_some_and(|r| normalized(r) == want))
        {
            return Ok((i, MatchedBy::Command));
        }
    }
    if !facts.failing_step.is_empty() || !facts.step_command.trim().is_empty() {
        return Err(if facts.failing_step.is_empty() {
            "no step runs the failing command".to_owned()
        } else {
            format!("no step is named {:?}", facts.failing_step)
        });
    }
    // The last `run:` step; in a job of actions only, the last step (which will be refused as an action).
    let last = steps.iter().rposition(|s| s.get("run").is_some()).unwrap_or(steps.len() - 1);
    Ok((last, MatchedBy::LastRunStep))
}

/// The `env:` mapping of `v` added to `env`, resolved against what is defined so far.
fn add_env(v: &Value, env: &mut BTreeMap<String, String>, matrix: &Matrix, sha: &str, at: &str) -> Result<(), String> {
    let Some(map) = v.get("env") else { return Ok(()) };
    if let Some(text) = map.as_str() {
        return Err(format!("the {at} env is an expression ({text})"));
    }
    let Some(map) = map.as_mapping() else { return Err(format!("the {at} env is not a mapping")) };
    let mut added = Vec::new();
    for (k, val) in map {
        let key = scalar(k).filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let Some(key) = key.filter(|k| !k.starts_with(|c: char| c.is_ascii_digit())) else {
            return Err(format!("the {at} env has a key that is not a variable name"));
        };
        let Some(raw) = (match val {
            Value::Null => Some(String::new()),
            other => scalar(other),
        }) else {
            return Err(format!("{at} env {key} is not a plain value"));
        };
        let ctx = Ctx { matrix, env, sha };
        let value = resolve(&raw, &ctx).map_err(|why| format!("{at} env {key}: {why}"))?;
        added.push((key, value));
    }
    env.extend(added);
    Ok(())
}

/// The first of `levels` (innermost first) that sets `defaults.run.<key>` or `<key>`.
fn setting<'a>(step: &'a Value, job: &'a Value, wf: &'a Value, key: &str) -> Option<&'a Value> {
    step.get(key)
        .or_else(|| job.get("defaults").and_then(|d| d.get("run")).and_then(|r| r.get(key)))
        .or_else(|| wf.get("defaults").and_then(|d| d.get("run")).and_then(|r| r.get(key)))
}

fn minutes(v: Option<&Value>) -> Option<Duration> {
    let m = v?.as_f64().filter(|m| m.is_finite() && *m > 0.0)?;
    Some(Duration::from_secs_f64((m * 60.0).min(86_400.0)))
}

/// A working directory as a clean relative path inside the repository.
fn relative_dir(dir: &str) -> Result<String, String> {
    let dir = dir.strip_prefix(WORKSPACE).map_or(dir, |rest| rest.trim_start_matches('/'));
    if dir.starts_with('/') || dir.contains(WORKSPACE) {
        return Err(format!("working-directory {dir:?} is outside the repository"));
    }
    let mut parts = Vec::new();
    for part in dir.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("working-directory {dir:?} leaves the repository")),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The job CI reported, with what its name said about the matrix.
struct Picked<'w, 'v> {
    wf: &'w Workflow<'w>,
    id: String,
    job: &'v Value,
    display: String,
    hint: Hint,
}

fn pick_job<'w>(workflows: &'w [Workflow<'w>], facts: &Facts<'_>) -> Result<Picked<'w, 'w>, String> {
    let named: Vec<&Workflow<'_>> = workflows.iter().filter(|w| w.display() == facts.workflow_name).collect();
    let scope: Vec<&Workflow<'_>> =
        if facts.workflow_name.is_empty() || named.is_empty() { workflows.iter().collect() } else { named };
    let all: Vec<(&Workflow<'_>, String, &Value)> =
        scope.iter().flat_map(|w| w.jobs().into_iter().map(move |(id, job)| (*w, id, job))).collect();
    let display = |id: &str, job: &Value| job.get("name").and_then(scalar).unwrap_or_else(|| id.to_owned());
    let pick = |(wf, id, job): (&'w Workflow<'w>, String, &'w Value), hint| {
        let display = display(&id, job);
        Picked { wf, id, job, display, hint }
    };

    if !facts.job_name.is_empty() {
        let mut hits = Vec::new();
        for (wf, id, job) in &all {
            let shown = display(id, job);
            let hint = match_job(id, &shown, facts.job_name).or_else(|| {
                // A job of a called workflow shows as "caller / callee".
                facts.job_name.rsplit_once(" / ").and_then(|(_, callee)| match_job(id, &shown, callee))
            });
            if let Some(hint) = hint {
                hits.push(((*wf, id.clone(), *job), hint));
            }
        }
        return match hits.len() {
            1 => {
                let (job, hint) = hits.remove(0);
                Ok(pick(job, hint))
            }
            0 if !facts.step_command.trim().is_empty() => by_command(all, facts).map(|j| pick(j, Hint::None)),
            0 => Err(format!("no job named {:?}", facts.job_name)),
            n => Err(format!(
                "{n} jobs match {:?}: {}",
                facts.job_name,
                hits.iter().map(|((w, id, _), _)| format!("{}:{id}", w.path)).collect::<Vec<_>>().join(", ")
            )),
        };
    }
    if !facts.step_command.trim().is_empty() {
        return by_command(all, facts).map(|j| pick(j, Hint::None));
    }
    match all.len() {
        1 => Ok(pick(all.into_iter().next().unwrap_or_else(|| unreachable!()), Hint::None)),
        n => Err(format!("the failure names no job and the workflows have {n} jobs")),
    }
}

fn by_command<'w>(
    all: Vec<(&'w Workflow<'w>, String, &'w Value)>,
    facts: &Facts<'_>,
) -> Result<(&'w Workflow<'w>, String, &'w Value), String> {
    let want = normalized(facts.step_command);
    let mut hits: Vec<_> = all
        .into_iter()
        .filter(|(_, _, job)| {
            job.get("steps").and_then(Value::as_sequence).is_some_and(|steps| {
                steps.iter().any(|s| s.get("run").and_then(Value::as_str).is_some_and(|r| normalized(r) == want))
            })
        })
        .collect();
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => Err("no job runs the failing command".to_owned()),
        n => Err(format!("{n} jobs run the failing command")),
    }
}

/// Finds the failing step in `files` and makes it a command, or says why not.
pub fn resolve_step(files: &[WorkflowFile], facts: &Facts<'_>) -> Resolution {
    if files.is_empty() {
        return Resolution::NotFound(format!("the commit has no workflow files ({WORKFLOW_DIR}*.yml)"));
    }
    let mut workflows = Vec::new();
    let mut broken = Vec::new();
    for f in files {
        match serde_norway::from_str::<Value>(&f.text) {
            Ok(mut doc) => {
                if doc.apply_merge().is_ok() && doc.get("jobs").is_some() {
                    workflows.push(Workflow { path: &f.path, doc });
                } else {
                    broken.push(format!("{}: no jobs", f.path));
                }
            }
            Err(e) => broken.push(format!("{}: {e}", f.path)),
        }
    }
    let picked = match pick_job(&workflows, facts) {
        Ok(p) => p,
        Err(why) => {
            let read = workflows.iter().map(|w| w.path).collect::<Vec<_>>().join(", ");
            let broken = if broken.is_empty() { String::new() } else { format!("; unreadable: {}", broken.join("; ")) };
            return Resolution::NotFound(format!("{why} (workflows read: {read}{broken})"));
        }
    };
    let Picked { wf, id, job, display, hint } = picked;
    let workflow = wf.doc.clone();
    let mut found = Found {
        workflow: wf.path.to_owned(),
        job_id: id.clone(),
        job_name: display,
        step_name: String::new(),
        step_index: 0,
        matched_by: MatchedBy::Name,
    };

    if let Some(uses) = job.get("uses").and_then(Value::as_str) {
        return refused(Some(found), format!("the job calls the reusable workflow {uses}"));
    }
    if let Some(services) = job.get("services") {
        let names: Vec<String> = services.as_mapping().into_iter().flatten().filter_map(|(k, _)| scalar(k)).collect();
        return refused(Some(found), format!("the job needs service containers ({})", names.join(", ")));
    }
    if job.get("container").is_some() {
        return refused(Some(found), "the job runs in a container image");
    }
    let matrix = Matrix::of(job, &hint);
    let no_env = BTreeMap::new();
    let base = Ctx { matrix: &matrix, env: &no_env, sha: facts.head_sha };
    let runs_on: Vec<String> = match job.get("runs-on") {
        Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    };
    for label in &runs_on {
        let label = match resolve(label, &base) {
            Ok(l) => l,
            Err(why) => return refused(Some(found), format!("runs-on: {why}")),
        };
        let l = label.to_ascii_lowercase();
        if l.contains("windows") || l.contains("macos") {
            return refused(Some(found), format!("the job runs on {label}; the sandbox is Linux"));
        }
    }

    let (index, matched_by) = match find_step(job, facts) {
        Ok(s) => s,
        Err(why) => return Resolution::NotFound(format!("{why} in job {id} of {}", wf.path)),
    };
    let step = &job["steps"][index];
    found.step_name = step_display(step);
    found.step_index = index + 1;
    found.matched_by = matched_by;
    if let Some(uses) = step.get("uses").and_then(Value::as_str) {
        return refused(Some(found), format!("the step is an action (uses: {uses}), not a `run:` command"));
    }
    let Some(run) = step.get("run").and_then(Value::as_str) else {
        return Resolution::NotFound(format!("step {} of job {id} has no `run:` text", index + 1));
    };

    let mut env = BTreeMap::new();
    for (level, at) in [(&workflow, "workflow"), (job, "job"), (step, "step")] {
        if let Err(why) = add_env(level, &mut env, &matrix, facts.head_sha, at) {
            return refused(Some(found), why);
        }
    }
    let ctx = Ctx { matrix: &matrix, env: &env, sha: facts.head_sha };
    let shell = match setting(step, job, &workflow, "shell").map(|v| scalar(v).unwrap_or_default()) {
        None => Shell::DefaultBash,
        Some(s) => match resolve(&s, &ctx).as_deref().map(str::trim) {
            Ok("bash") => Shell::Bash,
            Ok("sh") => Shell::Sh,
            Ok("python") => Shell::Python,
            Ok(other) => return refused(Some(found), format!("shell {other:?} is not supported (bash, sh, python)")),
            Err(why) => return refused(Some(found), format!("shell: {why}")),
        },
    };
    let working_directory = match setting(step, job, &workflow, "working-directory").and_then(scalar) {
        None => String::new(),
        Some(dir) => match resolve(&dir, &ctx).and_then(|d| relative_dir(&d)) {
            Ok(d) => d,
            Err(why) => return refused(Some(found), why),
        },
    };
    let script = match resolve(run, &ctx) {
        Ok(s) => s,
        Err(why) => return refused(Some(found), why),
    };
    if shell == Shell::Python && script.contains(WORKSPACE) {
        return refused(Some(found), "`${{ github.workspace }}` in a python step");
    }
    let timeout = match (minutes(step.get("timeout-minutes")), minutes(job.get("timeout-minutes"))) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Resolution::Run(StepCommand { found, script, shell, working_directory, env: env.into_iter().collect(), timeout })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> Vec<WorkflowFile> {
        vec![WorkflowFile { path: ".github/workflows/ci.yml".into(), text: text.into() }]
    }

    fn facts<'a>(job: &'a str, step: &'a str) -> Facts<'a> {
        Facts { workflow_name: "CI", job_name: job, failing_step: step, step_command: "", head_sha: "abc123" }
    }

    fn run(text: &str, f: Facts<'_>) -> StepCommand {
        match resolve_step(&files(text), &f) {
            Resolution::Run(c) => c,
            other => panic!("not runnable: {other:?}"),
        }
    }

    fn refusal(text: &str, f: Facts<'_>) -> String {
        match resolve_step(&files(text), &f) {
            Resolution::Refused { reason, .. } => reason,
            other => panic!("not refused: {other:?}"),
        }
    }

    const CI: &str = r#"
name: CI
on: [push, pull_request]
env:
  GLOBAL: "1"
defaults:
  run:
    shell: bash
jobs:
  lint:
    runs-on: ubuntu-latest
    env:
      LEVEL: strict
      COUNT: 3
    steps:
      - uses: actions/checkout@v4
      - name: Install
        run: pip install ruff
      - name: Lint
        working-directory: ./src/
        env:
          MODE: ${{ env.LEVEL }}
        run: |
          ruff check .
          echo done
      - run: make test
        shell: sh
  test:
    name: Tests on ${{ matrix.os }} / py${{ matrix.python }}
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-latest, windows-latest]
        python: ["3.11", "3.12"]
    steps:
      - run: pytest -q --py ${{ matrix.python }}
  build:
    strategy:
      matrix:
        go: ["1.19", "1.22"]
        include:
          - go: "1.19"
            tags: netgo
    runs-on: ubuntu-latest
    timeout-minutes: 10
    steps:
      - run: go build -tags "${{ matrix.tags }}" ./...
        timeout-minutes: 2
      - run: echo "go ${{ matrix.go }}" && go vet ./...
"#;

    #[test]
    fn finds_a_named_step_with_its_dir_env_and_shell() {
        let c = run(CI, facts("lint", "Lint"));
        assert_eq!(c.found.job_id, "lint");
        assert_eq!((c.found.step_name.as_str(), c.found.step_index, c.found.matched_by), ("Lint", 3, MatchedBy::Name));
        assert_eq!(c.script, "ruff check .\necho done\n");
        assert_eq!(c.shell, Shell::Bash);
        assert_eq!(c.working_directory, "src");
        let env: BTreeMap<_, _> = c.env.iter().cloned().collect();
        assert_eq!(env["GLOBAL"], "1");
        assert_eq!(env["COUNT"], "3");
        assert_eq!(env["MODE"], "strict", "env.X resolves from the levels above");
        assert_eq!(
            Shell::Bash.argv("x")[..5],
            ["bash", "--noprofile", "--norc", "-eo", "pipefail"].map(OsString::from)
        );
    }

    #[test]
    fn finds_steps_by_run_name_by_command_and_last_run_step() {
        let c = run(CI, facts("lint", "Run make test"));
        assert_eq!((c.found.step_index, c.shell, c.script.as_str()), (4, Shell::Sh, "make test"));
        let by_cmd = Facts { step_command: "ruff check .\r\necho done  \n", ..facts("lint", "") };
        assert_eq!(run(CI, by_cmd).found.matched_by, MatchedBy::Command);
        let last = run(CI, facts("lint", ""));
        assert_eq!((last.found.step_index, last.found.matched_by), (4, MatchedBy::LastRunStep));
        // Only the command known: the job is the one that runs it.
        let only_cmd = Facts { step_command: "pip install ruff", ..facts("", "") };
        assert_eq!(run(CI, only_cmd).found.job_id, "lint");
        assert!(
            matches!(resolve_step(&files(CI), &facts("lint", "Nope")), Resolution::NotFound(r) if r.contains("no step is named \"Nope\""))
        );
    }

    #[test]
    fn matrix_jobs_resolve_from_the_name_ci_showed() {
        let c = run(CI, facts("Tests on ubuntu-latest / py3.12", ""));
        assert_eq!(c.script, "pytest -q --py 3.12");
        assert_eq!(c.found.job_name, "Tests on ${{ matrix.os }} / py${{ matrix.python }}");
        let why = refusal(CI, facts("Tests on windows-latest / py3.11", ""));
        assert!(why.contains("the sandbox is Linux"), "{why}");
        // `build (1.19)`: GitHub's default matrix name; `include` adds tags for 1.19 only.
        let c = run(
            CI,
            Facts { failing_step: "Run go build -tags \"${{ matrix.tags }}\" ./...", ..facts("build (1.19)", "") },
        );
        assert_eq!(c.script, "go build -tags \"netgo\" ./...");
        assert_eq!(c.timeout, Some(Duration::from_secs(120)));
        let c = run(
            CI,
            Facts { failing_step: "Run go build -tags \"${{ matrix.tags }}\" ./...", ..facts("build (1.22)", "") },
        );
        assert_eq!(c.script, "go build -tags \"\" ./...", "the include applies to 1.19 only");
        // Without the combination the value is ambiguous: refused, not guessed.
        let why = refusal(CI, facts("build", ""));
        assert!(why.contains("`matrix.go` is ambiguous (one of 1.19, 1.22)"), "{why}");
    }

    #[test]
    fn refuses_what_the_sandbox_cannot_run() {
        let wf = |steps: &str, extra: &str| {
            format!("name: CI\njobs:\n  j:\n    runs-on: ubuntu-latest\n{extra}    steps:\n{steps}")
        };
        let f = facts("j", "");
        let cases = [
            (
                wf("      - run: curl -H \"$T\" x\n        env:\n          T: ${{ secrets.TOKEN }}\n", ""),
                "needs secrets",
            ),
            (wf("      - run: echo ${{ github.token }}\n", ""), "needs secrets"),
            (wf("      - run: make\n", "    env:\n      K: ${{ secrets.K }}\n"), "needs secrets"),
            (wf("      - run: echo ${{ github.event.pull_request.title }}\n", ""), "cannot be resolved"),
            (wf("      - run: echo ${{ matrix.nope }}\n", ""), "`matrix.nope` is not defined"),
            (
                wf("      - uses: golangci/golangci-lint-action@v6\n", ""),
                "is an action (uses: golangci/golangci-lint-action@v6)",
            ),
            (wf("      - run: pwsh -c x\n        shell: pwsh\n", ""), "shell \"pwsh\" is not supported"),
            (
                wf("      - run: psql\n", "    services:\n      postgres:\n        image: postgres\n"),
                "service containers (postgres)",
            ),
            (wf("      - run: make\n", "    container: rust:1\n"), "container image"),
            (wf("      - run: make\n        working-directory: ../up\n", ""), "leaves the repository"),
            (wf("      - run: make\n        working-directory: /etc\n", ""), "outside the repository"),
            (wf("      - run: make\n        env:\n          L: [1, 2]\n", ""), "not a plain value"),
        ];
        for (text, want) in cases {
            let why = refusal(&text, f);
            assert!(why.contains(want), "{want:?} not in {why:?} for\n{text}");
        }
        let called = "name: CI\njobs:\n  j:\n    uses: ./.github/workflows/x.yml\n";
        assert!(refusal(called, f).contains("reusable workflow"));
    }

    #[test]
    fn resolves_the_github_values_it_knows() {
        let text = "name: CI\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.sha }} ${{ runner.os }} ${{github.workspace}}/x\n        working-directory: ${{ github.workspace }}/sub\n";
        let c = run(text, facts("j", ""));
        assert_eq!(c.working_directory, "sub");
        assert_eq!(c.for_workspace("/work/repo").0, "echo abc123 Linux /work/repo/x");
    }

    #[test]
    fn says_why_there_is_no_step() {
        assert!(
            matches!(resolve_step(&[], &facts("j", "")), Resolution::NotFound(r) if r.contains("no workflow files"))
        );
        let nf = |f: Facts<'_>| match resolve_step(&files(CI), &f) {
            Resolution::NotFound(r) => r,
            other => panic!("{other:?}"),
        };
        assert!(nf(facts("deploy", "")).starts_with("no job named \"deploy\""));
        assert!(nf(facts("", "")).contains("names no job and the workflows have 3 jobs"));
        let broken = vec![WorkflowFile { path: ".github/workflows/x.yml".into(), text: "jobs: [".into() }];
        assert!(
            matches!(resolve_step(&broken, &facts("j", "")), Resolution::NotFound(r) if r.contains("unreadable: .github/workflows/x.yml"))
        );
        // The only job of the named workflow, when CI named no job (a workflow_run event).
        let one = "name: lint\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make test\n";
        let f = Facts { workflow_name: "lint", ..Facts::default() };
        assert!(matches!(resolve_step(&files(one), &f), Resolution::Run(c) if c.script == "make test"));
    }

    #[test]
    fn matches_workflow_paths_and_name_templates() {
        assert!(is_workflow_path(".github/workflows/ci.yml") && is_workflow_path(".github/workflows/a.yaml"));
        assert!(!is_workflow_path(".github/workflows/sub/ci.yml") && !is_workflow_path(".github/ci.yml"));
        assert!(!is_workflow_path(".github/workflows/README.md"));
        let caps = template_match("test (${{ matrix.py }}, ${{ matrix.os }})", "test (3.11, ubuntu)").unwrap();
        assert_eq!((caps["py"].as_str(), caps["os"].as_str()), ("3.11", "ubuntu"));
        assert!(template_match("lint-${{ matrix.x }}", "test-1").is_none());
        assert_eq!(template_match("${{ matrix.a }}-${{ matrix.b }}", "x-y-z").unwrap()["b"], "y-z");
        assert_eq!(relative_dir("./a//b/").unwrap(), "a/b");
    }

    /// Adjacent expressions before a literal that never comes: every split of the name was tried once per
    /// combination of the others (exponential: this one did not finish), now once per position.
    #[test]
    fn name_templates_do_not_backtrack_exponentially() {
        let template = format!("{}x", "${{ matrix.a }}".repeat(30));
        let name = "a".repeat(MAX_NAME - 12);
        assert!(template_match(&template, &name).is_none());
        let text = format!("name: CI\njobs:\n  t:\n    name: \"{template}\"\n    steps:\n      - run: make\n");
        assert!(matches!(resolve_step(&files(&text), &facts(&name, "")), Resolution::NotFound(_)));
    }
}
