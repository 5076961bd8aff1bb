//! [`GithubArgs`]: the GitHub settings as clap flags with environment fallbacks, for every binary that talks
//! to GitHub (the pr service now; the orchestrator flattens the same struct later). The variable names are
//! the contract (docs/github.md):
//!
//! | flag | variable | default |
//! |---|---|---|
//! | `--github-app-id` | `GITHUB_APP_ID` | — |
//! | `--github-private-key-file` | `GITHUB_PRIVATE_KEY_FILE` | — (a PEM file) |
//! | `--github-token` | `GITHUB_TOKEN` | — (never printed) |
//! | `--github-api-url` | `SRE_GITHUB_API_URL` | `https://api.github.com` |
//! | `--github-git-url` | `SRE_GITHUB_GIT_URL` | `https://github.com` |
//! | `--github-bot-login` | `SRE_GITHUB_BOT_LOGIN` | `sre-agent[bot]` |
//! | `--github-bot-email` | `SRE_GITHUB_BOT_EMAIL` | `<login>@users.noreply.<git host>` |
//!
//! App credentials win over a token when both are set (an Actions job always has a `GITHUB_TOKEN`). A
//! variable set to the empty string counts as unset (Compose and `.env` files often leave them empty).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::config::{AppCredentials, Auth, GITHUB_API, GITHUB_GIT, GithubConfig, SecretToken};
use crate::error::GithubError;

/// A token given on the command line or in `GITHUB_TOKEN`: redacted in `Debug`; empty means none.
#[derive(Clone)]
pub struct TokenArg(Option<SecretToken>);

impl fmt::Debug for TokenArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenArg(<redacted>)")
    }
}

impl FromStr for TokenArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self(None));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace".to_owned());
        }
        Ok(Self(Some(SecretToken::new(s))))
    }
}

impl TokenArg {
    /// The token, `None` when it was given empty.
    pub fn secret(&self) -> Option<&SecretToken> {
        self.0.as_ref()
    }
}

/// `None` for an absent or empty (after trimming) value.
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Where the mesh reads failures from and sends pull requests to (`SRE_PR_BACKEND`, read by the pr service
/// and the orchestrator alike, so the two never disagree).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The repository under the repos dir is the remote; PR records in its git dir (the embedded default).
    Local,
    /// GitHub: jobs, logs and history through the REST API, branches pushed with the App's installation
    /// token, pull requests through the REST API.
    Github,
}

/// Who the agent's commits and pull requests are by: the App's bot account (`<slug>[bot]`), or the account
/// of a plain token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotIdentity {
    /// The login as GitHub shows it (`sre-agent[bot]`): the commit author name and the author of its PRs.
    pub login: String,
    /// The commit author and committer email.
    pub email: String,
}

/// GitHub settings of a binary (flatten into its clap `Parser`).
#[derive(Clone, Debug, clap::Args)]
pub struct GithubArgs {
    /// GitHub App id (with --github-private-key-file)
    #[arg(long = "github-app-id", env = "GITHUB_APP_ID", value_name = "GITHUB_APP_ID")]
    pub app_id: Option<String>,
    /// The GitHub App's private key, a PEM file (with --github-app-id)
    #[arg(long = "github-private-key-file", env = "GITHUB_PRIVATE_KEY_FILE", value_name = "GITHUB_PRIVATE_KEY_FILE")]
    pub private_key_file: Option<String>,
    /// A plain token (Actions GITHUB_TOKEN or a fine-grained PAT) instead of an App; ignored when the App is set
    #[arg(long = "github-token", env = "GITHUB_TOKEN", value_name = "GITHUB_TOKEN", hide_env_values = true)]
    pub token: Option<TokenArg>,
    /// REST API root (GHES: https://HOST/api/v3)
    #[arg(long = "github-api-url", env = "SRE_GITHUB_API_URL", value_name = "SRE_GITHUB_API_URL", default_value = GITHUB_API)]
    pub api_url: String,
    /// Git root of clone and push URLs (GHES: https://HOST)
    #[arg(long = "github-git-url", env = "SRE_GITHUB_GIT_URL", value_name = "SRE_GITHUB_GIT_URL", default_value = GITHUB_GIT)]
    pub git_url: String,
    /// The App's bot login (<app slug>[bot]), or the token's account: author of the agent's commits and PRs
    #[arg(
        long = "github-bot-login",
        env = "SRE_GITHUB_BOT_LOGIN",
        value_name = "SRE_GITHUB_BOT_LOGIN",
        default_value = "sre-agent[bot]"
    )]
    pub bot_login: String,
    /// The commit email of the bot [default: <login>@users.noreply.<git host>; GitHub links commits to the bot
    /// account with <bot user id>+<login>@users.noreply.github.com]
    #[arg(long = "github-bot-email", env = "SRE_GITHUB_BOT_EMAIL", value_name = "SRE_GITHUB_BOT_EMAIL")]
    pub bot_email: Option<String>,
}

impl GithubArgs {
    /// The client configuration: `None` when neither an App nor a token is configured; an error naming the
    /// variable when the App is half configured, the key unreadable or a URL invalid.
    pub fn config(&self) -> Result<Option<GithubConfig>, GithubError> {
        let app_id = match given(self.app_id.as_deref()) {
            Some(id) => Some(
                id.parse::<u64>()
                    .map_err(|_| GithubError::Config(format!("GITHUB_APP_ID {id:?} is not a number (the App's id)")))?,
            ),
            None => None,
        };
        let key_file = given(self.private_key_file.as_deref()).map(PathBuf::from);
        let auth = match (app_id, key_file) {
            (Some(app_id), Some(path)) => Auth::App(AppCredentials::from_pem_file(app_id, &path).map_err(|e| {
                GithubError::Config(format!(
                    "GITHUB_PRIVATE_KEY_FILE: {}",
                    e.to_string().trim_start_matches("invalid GitHub configuration: ")
                ))
            })?),
            (Some(_), None) => {
                return Err(GithubError::Config(
                    "GITHUB_APP_ID is set but GITHUB_PRIVATE_KEY_FILE is not: an App needs both".to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err(GithubError::Config(
                    "GITHUB_PRIVATE_KEY_FILE is set but GITHUB_APP_ID is not: an App needs both".to_owned(),
                ));
            }
            (None, None) => match self.token.as_ref().and_then(TokenArg::secret) {
                Some(token) => Auth::Token(token.clone()),
                None => return Ok(None),
            },
        };
        let api_url = given(Some(&self.api_url)).unwrap_or(GITHUB_API);
        let git_url = given(Some(&self.git_url)).unwrap_or(GITHUB_GIT);
        let config = GithubConfig::github_com(auth).with_base_urls(api_url, git_url).map_err(|e| {
            let which = if e.to_string().contains("api_base") { "SRE_GITHUB_API_URL" } else { "SRE_GITHUB_GIT_URL" };
            GithubError::Config(format!("{which}: {e}"))
        })?;
        Ok(Some(config))
    }

    /// The identity of the agent's commits: `--github-bot-login` and `--github-bot-email` (or its default).
    pub fn bot_identity(&self) -> Result<BotIdentity, GithubError> {
        let login = given(Some(&self.bot_login)).unwrap_or("sre-agent[bot]");
        let login_ok = !login.is_empty()
            && login.len() <= 64
            && login.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '[' | ']'));
        if !login_ok {
            return Err(GithubError::Config(format!(
                "SRE_GITHUB_BOT_LOGIN {login:?} is not a GitHub login (letters, digits, -, and [bot])"
            )));
        }
        let email = match given(self.bot_email.as_deref()) {
            Some(email) => email.to_owned(),
            None => {
                let host = reqwest::Url::parse(given(Some(&self.git_url)).unwrap_or(GITHUB_GIT))
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_else(|| "github.com".to_owned());
                format!("{login}@users.noreply.{host}")
            }
        };
        let email_ok = email.len() <= 254
            && email.split_once('@').is_some_and(|(user, host)| !user.is_empty() && !host.is_empty())
            && !email.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ','));
        if !email_ok {
            return Err(GithubError::Config(format!("SRE_GITHUB_BOT_EMAIL {email:?} is not an email address")));
        }
        Ok(BotIdentity { login: login.to_owned(), email })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        github: GithubArgs,
    }

    fn parse(args: &[&str]) -> Result<Probe, clap::Error> {
        Probe::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
    }

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";

    #[test]
    fn nothing_configured_is_none() {
        let p = parse(&[]).unwrap();
        assert!(p.github.config().unwrap().is_none());
        assert_eq!(p.github.api_url, "https://api.github.com");
        assert_eq!(p.github.git_url, "https://github.com");
        let id = p.github.bot_identity().unwrap();
        assert_eq!(
            id,
            BotIdentity { login: "sre-agent[bot]".into(), email: "sre-agent[bot]@users.noreply.github.com".into() }
        );
    }

    #[test]
    fn half_an_app_names_the_missing_variable() {
        let err = parse(&["--github-app-id", "7"]).unwrap().github.config().unwrap_err().to_string();
        assert!(err.contains("GITHUB_PRIVATE_KEY_FILE") && err.contains("GITHUB_APP_ID"), "{err}");
        let err =
            parse(&["--github-private-key-file", "/nonexistent.pem"]).unwrap().github.config().unwrap_err().to_string();
        assert!(err.contains("GITHUB_APP_ID"), "{err}");
        let err = parse(&["--github-app-id", "7", "--github-private-key-file", "/nonexistent.pem"])
            .unwrap()
            .github
            .config()
            .unwrap_err()
            .to_string();
        assert!(err.contains("GITHUB_PRIVATE_KEY_FILE") && err.contains("/nonexistent.pem"), "{err}");
        let err = parse(&["--github-app-id", "seven"]).unwrap().github.config().unwrap_err().to_string();
        assert!(err.contains("GITHUB_APP_ID") && err.contains("seven"), "{err}");
    }

    #[test]
    fn a_token_is_never_printed() {
        let p =
            parse(&["--github-token", "ghp_verysecret", "--github-api-url", "https://ghe.example.com/api/v3"]).unwrap();
        assert!(!format!("{p:?}").contains("verysecret"));
        let config = p.github.config().unwrap().unwrap();
        assert!(matches!(config.auth, Auth::Token(ref t) if t.expose_secret() == "ghp_verysecret"));
        assert_eq!(config.api_base.as_str(), "https://ghe.example.com/api/v3");
        assert!(!format!("{config:?}").contains("verysecret"));
        assert!(parse(&["--github-token", "two words"]).is_err());
        let err = parse(&["--github-token", "t", "--github-git-url", "ftp://x"]).unwrap().github.config().unwrap_err();
        assert!(err.to_string().contains("SRE_GITHUB_GIT_URL"), "{err}");
    }

    #[test]
    fn an_app_wins_over_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("app.pem");
        std::fs::write(&key, sre_github_fake::AppKey::shared().private_pem.as_bytes()).unwrap();
        let p =
            parse(&["--github-app-id", "7", "--github-private-key-file", key.to_str().unwrap(), "--github-token", "t"])
                .unwrap();
        let config = p.github.config().unwrap().unwrap();
        assert!(matches!(&config.auth, Auth::App(app) if app.app_id() == 7), "{:?}", config.auth);
        // A file that is no RSA key: the error names the variable and never the key.
        std::fs::write(&key, PEM).unwrap();
        let err = p.github.config().unwrap_err().to_string();
        assert!(err.contains("GITHUB_PRIVATE_KEY_FILE") && !err.contains("MIIE"), "{err}");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let p = parse(&[
            "--github-app-id",
            "",
            "--github-private-key-file",
            " ",
            "--github-token",
            "",
            "--github-api-url",
            "",
            "--github-bot-login",
            "",
            "--github-bot-email",
            "",
        ])
        .unwrap();
        assert!(p.github.config().unwrap().is_none());
        let p = parse(&["--github-app-id", "", "--github-token", "ghp_x", "--github-git-url", ""]).unwrap();
        let config = p.github.config().unwrap().unwrap();
        assert!(matches!(config.auth, Auth::Token(_)));
        assert_eq!(
            (config.api_base.as_str(), config.git_base.as_str()),
            ("https://api.github.com/", "https://github.com/")
        );
        assert_eq!(p.github.bot_identity().unwrap().login, "sre-agent[bot]");
    }

    #[test]
    fn bot_identity_is_checked() {
        let p = parse(&["--github-bot-login", "acme-sre[bot]", "--github-git-url", "https://ghe.example.com"]).unwrap();
        assert_eq!(p.github.bot_identity().unwrap().email, "acme-sre[bot]@users.noreply.ghe.example.com");
        let p = parse(&["--github-bot-email", "41898282+acme[bot]@users.noreply.github.com"]).unwrap();
        assert_eq!(p.github.bot_identity().unwrap().email, "41898282+acme[bot]@users.noreply.github.com");
        for bad in
            [&["--github-bot-login", "a b"][..], &["--github-bot-email", "x>y@z"], &["--github-bot-email", "nope"]]
        {
            let err = parse(bad).unwrap().github.bot_identity().unwrap_err().to_string();
            assert!(err.contains("SRE_GITHUB_BOT_"), "{err}");
        }
    }
}
