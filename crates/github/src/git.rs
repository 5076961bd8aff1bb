//! Git CLI credentials that never put a token in a URL, an argument or `.git/config`.
//!
//! The token travels as `Authorization: Basic base64(x-access-token:TOKEN)` (GitHub's documented form for
//! installation tokens; any user name works for personal tokens) in `http.<git base>/.extraHeader`, set
//! through git's `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` environment (git ≥ 2.31): it is
//! visible to the child process only, scoped to the git host (a submodule elsewhere does not get it), and
//! `git remote -v` shows a clean URL. A `GIT_ASKPASS` helper would need a script file on disk; the header
//! needs nothing.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use reqwest::Url;

use crate::config::SecretToken;
use crate::types::RepoRef;

/// Credentials for one git host, good until `expires_at` (installation tokens live an hour).
#[derive(Clone)]
pub struct GitCredentials {
    git_base: Url,
    header: SecretToken,
    expires_at: Option<SystemTime>,
}

impl fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitCredentials")
            .field("git_base", &self.git_base.as_str())
            .field("header", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl GitCredentials {
    pub(crate) fn new(git_base: &Url, token: &SecretToken, expires_at: Option<SystemTime>) -> Self {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{}", token.expose_secret()));
        Self {
            git_base: git_base.clone(),
            header: SecretToken::new(format!("Authorization: Basic {basic}")),
            expires_at,
        }
    }

    /// `{git base}/{owner}/{name}.git`, with no credentials in it.
    pub fn remote_url(&self, repo: &RepoRef) -> String {
        format!("{}/{}/{}.git", self.git_base.as_str().trim_end_matches('/'), repo.owner(), repo.name())
    }

    /// The git config key the header is set under: `http.{git base}/.extraHeader`.
    pub fn config_key(&self) -> String {
        format!("http.{}/.extraHeader", self.git_base.as_str().trim_end_matches('/'))
    }

    /// The `Authorization: Basic …` header line (a secret).
    pub fn extra_header(&self) -> &SecretToken {
        &self.header
    }

    /// When the token stops working (installation sessions); `None` for a plain token.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The environment to give a git child process: the header as a one-entry `GIT_CONFIG_*` list, and no
    /// terminal prompt. Replaces any `GIT_CONFIG_COUNT` list the parent had.
    pub fn git_env(&self) -> [(&'static str, String); 4] {
        [
            ("GIT_CONFIG_COUNT", "1".to_owned()),
            ("GIT_CONFIG_KEY_0", self.config_key()),
            ("GIT_CONFIG_VALUE_0", self.header.expose_secret().to_owned()),
            ("GIT_TERMINAL_PROMPT", "0".to_owned()),
        ]
    }

    /// Sets [`GitCredentials::git_env`] on a tokio command.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        cmd.envs(self.git_env());
    }

    /// Sets [`GitCredentials::git_env`] on a std command.
    pub fn apply_std(&self, cmd: &mut std::process::Command) {
        cmd.envs(self.git_env());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_urls() {
        let base = Url::parse("https://github.com").unwrap();
        let creds = GitCredentials::new(&base, &SecretToken::new("ghs_abc"), None);
        let repo = RepoRef::parse("octo/app").unwrap();
        assert_eq!(creds.remote_url(&repo), "https://github.com/octo/app.git");
        assert_eq!(creds.config_key(), "http.https://github.com/.extraHeader");
        // base64("x-access-token:ghs_abc")
        assert_eq!(creds.extra_header().expose_secret(), "Authorization: Basic eC1hY2Nlc3MtdG9rZW46Z2hzX2FiYw==");
        assert!(!format!("{creds:?}").contains("eC1hY2Nlc3M"));
        assert!(!creds.remote_url(&repo).contains("ghs_"));
    }
}
