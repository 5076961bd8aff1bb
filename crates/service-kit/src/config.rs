//! Reading configuration from the environment with clear errors.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub value: String,
    pub reason: String,
}

/// The variable's value, trimmed, when set and non-empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A socket address from `name`, or `default`.
pub fn addr(name: &str, default: &str) -> Result<SocketAddr, ConfigError> {
    let value = var(name).unwrap_or_else(|| default.to_owned());
    value.parse().map_err(|e: std::net::AddrParseError| ConfigError {
        var: name.to_owned(),
        value: value.clone(),
        reason: format!("not a socket address (host:port): {e}"),
    })
}

/// A positive integer from `name`, or `default`.
pub fn u64_or(name: &str, default: u64) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e: std::num::ParseIntError| ConfigError {
            var: name.to_owned(),
            value: v.clone(),
            reason: format!("not a non-negative integer: {e}"),
        }),
    }
}

/// `SRE_DATA_DIR`, default `./data`.
pub fn data_dir() -> PathBuf {
    var("SRE_DATA_DIR").map_or_else(|| PathBuf::from("data"), PathBuf::from)
}

/// `SRE_REPOS_DIR`, default `$SRE_DATA_DIR/repos`.
pub fn repos_dir() -> PathBuf {
    var("SRE_REPOS_DIR").map_or_else(|| data_dir().join("repos"), PathBuf::from)
}
