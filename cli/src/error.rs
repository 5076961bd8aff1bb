//! Why a verb could not do its work: a message for stderr and exit code 2. (How a run ended is not an error:
//! the verbs return exit code 1 for that themselves.)

use std::fmt;

/// A usage, input or connection error, reported as `sre-agent: <message>` with exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

pub type CliResult<T> = Result<T, CliError>;
