//! The baseline cache: what each scanner found at head_sha alone, kept in memory so a retry or a second run
//! on the same commit does not scan it again.
//!
//! Keyed by repository, commit, scanner, the scanner's arguments (the trivy scanner list) and the identity
//! and version of every tool it runs (resolved path, size, modification time, version line: a tool upgraded
//! or replaced in place is a new key). An entry holds only fingerprint counts (keyed hashes, see
//! `fingerprint.rs`), never a path, a line or a secret. Bounded by a number of entries, least recently used
//! out first; 0 turns it off. Concurrent calls on the same key share one scan (the second waits for the
//! first); a scan that failed is not kept, so the next call scans again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sre_proto::ScannerRun;

use crate::fingerprint::Counts;
use crate::tools::ToolId;

/// Baselines with more findings than this are used for the call but not kept.
pub const MAX_CACHED_FINDINGS: u32 = 50_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct BaselineKey {
    pub repo: String,
    pub sha: String,
    pub scanner: &'static str,
    /// The scanner's own arguments that change what it finds.
    pub args: String,
    /// Each tool the scanner runs, with its version line.
    pub tools: Vec<(ToolId, String)>,
}

/// One scanner's findings at head_sha.
#[derive(Debug)]
pub struct Baseline {
    pub counts: Counts,
    pub findings: u32,
    /// The run that filled it (reported again, as cached, on a hit).
    pub run: ScannerRun,
}

pub type Cell = Arc<tokio::sync::OnceCell<Arc<Baseline>>>;

pub struct BaselineCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<BaselineKey, (Cell, u64)>,
    tick: u64,
}

impl BaselineCache {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::default() }
    }

    /// The cell of `key`: filled when a scan of that key was kept, empty otherwise (fill it with
    /// `get_or_try_init`). With the cache off, a fresh cell that nobody else sees.
    pub fn cell(&self, key: &BaselineKey) -> Cell {
        if self.capacity == 0 {
            return Cell::default();
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((cell, used)) = inner.entries.get_mut(key) {
            *used = tick;
            return cell.clone();
        }
        while inner.entries.len() >= self.capacity {
            let Some(oldest) = inner.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone()) else {
                break;
            };
            inner.entries.remove(&oldest);
        }
        let cell = Cell::default();
        inner.entries.insert(key.clone(), (cell.clone(), tick));
        cell
    }

    /// Drops `key` (a baseline too large to keep).
    pub fn forget(&self, key: &BaselineKey) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sha: &str) -> BaselineKey {
        BaselineKey { repo: "a/b".into(), sha: sha.into(), scanner: "gitleaks", args: String::new(), tools: vec![] }
    }

    fn baseline() -> Arc<Baseline> {
        Arc::new(Baseline { counts: Counts::new(), findings: 0, run: ScannerRun::default() })
    }

    #[tokio::test]
    async fn keeps_filled_cells_and_evicts_the_least_recently_used() {
        let cache = BaselineCache::new(2);
        cache.cell(&key("1")).set(baseline()).unwrap();
        cache.cell(&key("2")).set(baseline()).unwrap();
        assert!(cache.cell(&key("1")).initialized(), "1 is now the most recently used");
        assert!(!cache.cell(&key("3")).initialized());
        assert_eq!(cache.len(), 2);
        assert!(cache.cell(&key("1")).initialized());
        assert!(!cache.cell(&key("2")).initialized(), "2 was evicted");
        let mut other = key("1");
        other.args = "secret".into();
        assert!(!cache.cell(&other).initialized(), "other arguments, other key");
        cache.forget(&key("1"));
        assert!(!cache.cell(&key("1")).initialized());
    }

    #[tokio::test]
    async fn a_failed_fill_is_not_kept_and_off_means_off() {
        let cache = BaselineCache::new(4);
        let cell = cache.cell(&key("1"));
        let err = cell.get_or_try_init(|| async { Err::<Arc<Baseline>, _>("tool crashed") }).await;
        assert!(err.is_err());
        assert!(!cache.cell(&key("1")).initialized());
        let off = BaselineCache::new(0);
        off.cell(&key("1")).set(baseline()).unwrap();
        assert!(!off.cell(&key("1")).initialized());
        assert!(off.is_empty());
    }
}
