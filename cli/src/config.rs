//! The command line: verbs and flags, with environment fallbacks (docs/conventions.md: the `value_name` of a
//! flag that has one is its variable's name).

use std::fmt;
use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use sre_domain::{ArtifactKind, Label};

/// sre-agent: turn CI failures into fix PRs, from the command line (no GitHub needed).
#[derive(Debug, clap::Parser)]
#[command(
    name = "sre-agent",
    version,
    propagate_version = true,
    after_help = "Exit codes: 0 success, 1 the run ended fail, blocked or skipped, 2 usage or connection errors."
)]
pub struct Cli {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
pub enum Verb {
    /// Explain a failed CI job from its log, offline: the failing step, its command, category, language, tool,
    /// a one-line summary, file references and the lines that say why
    Diagnose(DiagnoseArgs),
    /// Submit a CI failure of a local repository to the gateway (no GitHub) and follow its run to the outcome
    Run(RunArgs),
    /// List recent runs, or show one run with its stages and artifacts
    Runs(RunsArgs),
}

#[derive(Debug, clap::Args)]
pub struct DiagnoseArgs {
    /// The job's log: a GitHub Actions log (as downloaded or copied) or any plain build output; - reads stdin
    #[arg(value_name = "LOG_FILE")]
    pub log: PathBuf,
    /// Print one JSON object (context and diagnosis) instead of the readable report
    #[arg(long)]
    pub json: bool,
    /// A checkout directory the log's absolute paths are made relative to (repeatable; the CI runners' own
    /// checkout paths are always recognised)
    #[arg(long, value_name = "DIR")]
    pub workspace_root: Vec<String>,
}

/// The gateway `scripts/up.sh` starts.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8000";

/// Where the gateway is and how to authenticate to it.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// The gateway's base URL (an empty value stands for the default)
    #[arg(long, env = "SRE_GATEWAY_URL", value_name = "SRE_GATEWAY_URL", default_value = DEFAULT_GATEWAY)]
    pub gateway: String,
    /// Bearer token sent to the runs API (the gateway's SRE_API_TOKEN, once it requires one)
    #[arg(long, env = "SRE_API_TOKEN", value_name = "SRE_API_TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
}

/// Where the gateway's repositories live (the same flags and variables as the services').
#[derive(Debug, clap::Args)]
pub struct ReposArgs {
    /// The mesh's data directory
    #[arg(long, env = "SRE_DATA_DIR", value_name = "SRE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The gateway's repositories: owner/name lives in <repos-dir>/owner/name [default: <data-dir>/repos]
    #[arg(long, env = "SRE_REPOS_DIR", value_name = "SRE_REPOS_DIR")]
    pub repos_dir: Option<PathBuf>,
}

impl ReposArgs {
    pub fn repos_dir(&self) -> PathBuf {
        self.repos_dir.clone().unwrap_or_else(|| self.data_dir.join("repos"))
    }
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["log", "command"])))]
pub struct RunArgs {
    /// The repository: owner/name, or its path under the repos dir
    #[arg(long, value_name = "PATH")]
    pub repo: String,
    /// The commit CI ran on: a SHA, or any revision `git rev-parse` resolves in the repository (HEAD, a branch)
    #[arg(long, value_name = "SHA")]
    pub sha: String,
    /// The failed job's log (GitHub Actions or plain); - reads stdin
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Instead of --log: run CMD with `bash -e` in a throwaway worktree of the repository at SHA, on this
    /// machine, and submit its output as a GitHub Actions job log. Refused when CMD passes
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    /// Seconds CMD may run before it is killed (with its children) [default: 600]
    #[arg(long, value_name = "SECS")]
    pub command_timeout: Option<u64>,
    /// The job's name as CI shows it (the run key is <repo>@<sha>/<job>) [default: the gateway's, "local"]
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// The workflow's name as CI shows it (validation looks the job up in the repository's workflows)
    #[arg(long, value_name = "NAME")]
    pub workflow: Option<String>,
    /// The branch CI ran on [default: SHA's branch when SHA names one]
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Submit, print the run's ID and return without following it
    #[arg(long)]
    pub no_follow: bool,
    /// Seconds to follow the run before giving up (the run itself goes on)
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    #[command(flatten)]
    pub repos: ReposArgs,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Show this run (its ID, or a prefix of it as the list prints it)
    #[arg(value_name = "RUN_ID")]
    pub run_id: Option<String>,
    /// Print the gateway's JSON instead of the table or report
    #[arg(long)]
    pub json: bool,
    /// How many runs to list, newest first
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub limit: u16,
    /// Print the body of one of the run's artifacts
    #[arg(
        long,
        value_name = "KIND",
        requires = "run_id",
        conflicts_with = "json",
        value_parser = PossibleValuesParser::new(ArtifactKind::ALL.iter().map(|k| k.as_str())),
    )]
    pub artifact: Option<String>,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// An API token. Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The value, for the Authorization header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    /// An empty value (`SRE_API_TOKEN=`) stands for no token.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::str::FromStr for Token {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if !s.chars().all(|c| c.is_ascii_graphic()) {
            Err("must be printable ASCII without spaces".to_owned())
        } else {
            Ok(Self(s.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_needs_exactly_one_log_source() {
        let base = ["sre-agent", "run", "--repo", "a/b", "--sha", "HEAD"];
        let err = Cli::try_parse_from(base).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument, "{err}");
        let both = [&base[..], &["--log", "x", "--command", "make"]].concat();
        let err = Cli::try_parse_from(both).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict, "{err}");
        let ok = Cli::try_parse_from([&base[..], &["--log", "x"]].concat()).unwrap();
        let Verb::Run(run) = ok.verb else { panic!("not run") };
        assert_eq!((run.timeout, run.log.as_deref()), (600, Some(std::path::Path::new("x"))));
    }

    #[test]
    fn artifact_kinds_are_the_domain_spellings() {
        let ok = Cli::try_parse_from(["sre-agent", "runs", "abc", "--artifact", "scan_report"]).unwrap();
        let Verb::Runs(runs) = ok.verb else { panic!("not runs") };
        assert_eq!(runs.artifact.as_deref(), Some("scan_report"));
        let err = Cli::try_parse_from(["sre-agent", "runs", "abc", "--artifact", "patch"]).unwrap_err().to_string();
        assert!(err.contains("pull_request"), "the error lists the kinds: {err}");
        assert!(Cli::try_parse_from(["sre-agent", "runs", "--artifact", "diff"]).is_err(), "needs a run");
        assert!(Cli::try_parse_from(["sre-agent", "runs", "--limit", "0"]).is_err());
    }

    #[test]
    fn tokens_never_print() {
        let cli = Cli::try_parse_from(["sre-agent", "runs", "--token", "s3cret-tok"]).unwrap();
        assert!(!format!("{cli:?}").contains("s3cret"));
        let Verb::Runs(runs) = Cli::try_parse_from(["sre-agent", "runs", "--token", " "]).unwrap().verb else {
            panic!("not runs")
        };
        assert!(runs.gateway.token.unwrap().is_empty(), "an empty SRE_API_TOKEN is no token");
        assert!(Cli::try_parse_from(["sre-agent", "runs", "--token", "a b"]).is_err());
    }
}
