//! Advisory file locks across processes (`flock(2)`): several services and orchestrators share one repository
//! cache and one PR record, each in its own process. A lock is held while its [`FileLock`] lives; dropping it
//! (closing the file) releases it, and so does the death of the process, so a crash never leaves a lock
//! behind. Locks of separate opens of one file exclude each other within a process too, so concurrent tasks
//! of one process are serialized the same way.
//!
//! Waiting polls a non-blocking `flock` with a short backoff on the async runtime (no blocked threads), and
//! gives up after the caller's timeout.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders at once (users of a cached repository).
    Shared,
    /// One holder, no shared ones (cloning, evicting, rewriting a record).
    Exclusive,
}

/// What taking a lock can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {}s waiting for the lock {path}", waited.as_secs())]
    Timeout { path: String, waited: Duration },
}

/// A held lock on one lock file.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
    mode: LockMode,
}

fn flock(file: &File, op: libc::c_int) -> std::io::Result<bool> {
    // SAFETY: flock on a file descriptor this `File` owns; no memory is shared with the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == std::io::ErrorKind::WouldBlock { Ok(false) } else { Err(err) }
}

fn op(mode: LockMode) -> libc::c_int {
    match mode {
        LockMode::Shared => libc::LOCK_SH,
        LockMode::Exclusive => libc::LOCK_EX,
    }
}

fn open(path: &Path) -> Result<File, LockError> {
    let io = |source| LockError::Io { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(io)
}

/// The waits between polls of a lock: 5 ms doubling to 100 ms, until the caller's timeout.
struct Backoff {
    started: Instant,
    timeout: Duration,
    delay: Duration,
}

impl Backoff {
    fn new(timeout: Duration) -> Self {
        Self { started: Instant::now(), timeout, delay: Duration::from_millis(5) }
    }

    /// How long to wait before the next try, or the timeout error once the time is up.
    fn next(&mut self, path: &Path) -> Result<Duration, LockError> {
        if self.started.elapsed() >= self.timeout {
            return Err(LockError::Timeout { path: path.display().to_string(), waited: self.started.elapsed() });
        }
        let delay = self.delay;
        self.delay = (delay * 2).min(Duration::from_millis(100));
        Ok(delay)
    }
}

impl FileLock {
    /// Takes the lock if nobody holds it in a conflicting mode; `None` when someone does.
    pub fn try_acquire(path: &Path, mode: LockMode) -> Result<Option<Self>, LockError> {
        let file = open(path)?;
        let got = flock(&file, op(mode) | libc::LOCK_NB)
            .map_err(|source| LockError::Io { path: path.display().to_string(), source })?;
        Ok(got.then(|| Self { file, path: path.to_owned(), mode }))
    }

    /// Waits for the lock, up to `timeout`.
    pub async fn acquire(path: &Path, mode: LockMode, timeout: Duration) -> Result<Self, LockError> {
        let mut backoff = Backoff::new(timeout);
        loop {
            if let Some(lock) = Self::try_acquire(path, mode)? {
                return Ok(lock);
            }
            tokio::time::sleep(backoff.next(path)?).await;
        }
    }

    /// [`FileLock::acquire`] for code that cannot await (a `Drop`): sleeps the thread between polls.
    pub fn acquire_blocking(path: &Path, mode: LockMode, timeout: Duration) -> Result<Self, LockError> {
        let mut backoff = Backoff::new(timeout);
        loop {
            if let Some(lock) = Self::try_acquire(path, mode)? {
                return Ok(lock);
            }
            std::thread::sleep(backoff.next(path)?);
        }
    }

    /// Turns an exclusive lock into a shared one. Not atomic (flock(2) drops the old lock first): a caller
    /// that must not lose what it protects checks it again afterwards.
    pub fn downgrade(&mut self) -> Result<(), LockError> {
        if self.mode == LockMode::Shared {
            return Ok(());
        }
        // A blocking LOCK_SH on our own descriptor: only an exclusive holder could make it wait, and any
        // exclusive taker polls with LOCK_NB, so this returns at once.
        flock(&self.file, libc::LOCK_SH)
            .map_err(|source| LockError::Io { path: self.path.display().to_string(), source })?;
        self.mode = LockMode::Shared;
        Ok(())
    }

    pub fn mode(&self) -> LockMode {
        self.mode
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shared_and_exclusive_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/a.lock");
        let s1 = FileLock::try_acquire(&path, LockMode::Shared).unwrap().expect("first shared");
        let s2 = FileLock::try_acquire(&path, LockMode::Shared).unwrap().expect("second shared");
        assert!(FileLock::try_acquire(&path, LockMode::Exclusive).unwrap().is_none());
        drop(s1);
        assert!(FileLock::try_acquire(&path, LockMode::Exclusive).unwrap().is_none());
        drop(s2);
        let mut ex = FileLock::try_acquire(&path, LockMode::Exclusive).unwrap().expect("exclusive when free");
        assert!(FileLock::try_acquire(&path, LockMode::Shared).unwrap().is_none());
        let err = FileLock::acquire(&path, LockMode::Shared, Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(err, LockError::Timeout { .. }), "{err}");
        ex.downgrade().unwrap();
        assert_eq!(ex.mode(), LockMode::Shared);
        assert!(FileLock::try_acquire(&path, LockMode::Shared).unwrap().is_some());
        assert!(FileLock::try_acquire(&path, LockMode::Exclusive).unwrap().is_none());
        drop(ex);
        let waiter = tokio::spawn({
            let path = path.clone();
            async move { FileLock::acquire(&path, LockMode::Exclusive, Duration::from_secs(5)).await.map(|_| ()) }
        });
        waiter.await.unwrap().unwrap();
    }

    #[test]
    fn a_lock_in_another_process_is_seen() {
        // flock(1) from util-linux holds the lock in a child process while we try.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let ready = dir.path().join("ready");
        // -o: the command does not inherit the locked descriptor, so killing flock releases the lock.
        let mut child = std::process::Command::new("flock")
            .arg("-o")
            .arg(&path)
            .args(["sh", "-c", &format!("touch {}; sleep 2", ready.display())])
            .spawn()
            .expect("flock(1) (util-linux) runs");
        let started = Instant::now();
        while !ready.exists() {
            assert!(started.elapsed() < Duration::from_secs(5), "flock child never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(FileLock::try_acquire(&path, LockMode::Shared).unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(FileLock::try_acquire(&path, LockMode::Exclusive).unwrap().is_some());
    }
}
