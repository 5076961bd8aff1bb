//! Reading a job log from a file or stdin: whole, up to a size that is still a log.

use std::io::Read;
use std::path::Path;

use crate::error::{CliError, CliResult};

/// Largest log read. Real job logs are a few MB, the longest tens of MB; past this it is not a log.
pub const MAX_LOG_FILE_BYTES: u64 = 200 * 1024 * 1024;

/// The log at `path` (`-`: stdin), refusing what cannot be a job log.
pub fn read(path: &Path) -> CliResult<Vec<u8>> {
    let shown = if path == Path::new("-") { "stdin".to_owned() } else { path.display().to_string() };
    let too_large = |size: u64| {
        CliError::new(format!(
            "{shown}: {} MB is too large for a job log (at most {} MB are read); pass the failing job's log only",
            size / (1024 * 1024),
            MAX_LOG_FILE_BYTES / (1024 * 1024)
        ))
    };
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        let read = std::io::stdin()
            .lock()
            .take(MAX_LOG_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::new(format!("stdin: {e}")))?;
        if read as u64 > MAX_LOG_FILE_BYTES {
            return Err(too_large(read as u64));
        }
    } else {
        let mut file = std::fs::File::open(path).map_err(|e| CliError::new(format!("{shown}: {e}")))?;
        let meta = file.metadata().map_err(|e| CliError::new(format!("{shown}: {e}")))?;
        if meta.is_dir() {
            return Err(CliError::new(format!("{shown} is a directory, not a log file")));
        }
        if meta.len() > MAX_LOG_FILE_BYTES {
            return Err(too_large(meta.len()));
        }
        // The length can change under us (a log still being written): never read past the bound.
        file.by_ref()
            .take(MAX_LOG_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::new(format!("{shown}: {e}")))?;
        if bytes.len() as u64 > MAX_LOG_FILE_BYTES {
            return Err(too_large(bytes.len() as u64));
        }
    }
    check_content(&shown, &bytes)?;
    Ok(bytes)
}

/// Refuses empty input and archives (GitHub serves a run's logs as a zip of one file per job).
fn check_content(shown: &str, bytes: &[u8]) -> CliResult<()> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CliError::new(format!("{shown} is empty: there is no log to read")));
    }
    let archive = if bytes.starts_with(b"PK\x03\x04") {
        Some("a zip archive")
    } else if bytes.starts_with(b"\x1f\x8b") {
        Some("gzip-compressed")
    } else {
        None
    };
    if let Some(what) = archive {
        return Err(CliError::new(format!(
            "{shown} is {what}, not a log: extract the failed job's log (a .txt file) from it first"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let err = |p: &Path| read(p).unwrap_err().0;
        assert!(err(&write("empty.log", b" \n\n")).contains("is empty"));
        assert!(err(&write("logs.zip", b"PK\x03\x04rest")).contains("a zip archive"));
        assert!(err(&write("log.gz", b"\x1f\x8b\x08")).contains("gzip"));
        assert!(err(dir.path()).contains("is a directory"));
        let missing = err(&dir.path().join("nope.log"));
        assert!(missing.contains("nope.log") && missing.contains("No such file"), "{missing}");
        // Sparse: the size check comes before any read.
        let huge = dir.path().join("huge.log");
        std::fs::File::create(&huge).unwrap().set_len(MAX_LOG_FILE_BYTES + 1).unwrap();
        assert!(err(&huge).contains("too large"), "{}", err(&huge));
        let ok = write("ok.log", b"error: boom\n");
        assert_eq!(read(&ok).unwrap(), b"error: boom\n");
    }
}
