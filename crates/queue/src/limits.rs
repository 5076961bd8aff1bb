//! Limits shared by every orchestrator through Redis, so N orchestrators enforce one set: runs at once per
//! repository and per installation owner (leases that expire if a worker dies), pull requests per repository
//! per hour (reservations released when a run makes none), and a cooldown per run key after a failed
//! attempt. Keys hold hashes of repository names and run keys, never the names themselves.

use std::time::Duration;

use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use crate::{Queue, QueueResult};

/// A short, stable, non-reversible key part.
fn digest(s: &str) -> String {
    let hash = Sha256::digest(s.as_bytes());
    hash.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The answer of an acquisition: granted, or when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    Granted,
    /// Full: the earliest time (ms since the epoch) a place may free up.
    Full {
        retry_at_ms: i64,
    },
}

/// Shared limits over the queue's Redis.
#[derive(Clone)]
pub struct Limits {
    queue: Queue,
    prefix: String,
}

// Leases: a sorted set of holders scored by their expiry. Expired holders are dropped first; a holder that is
// already in refreshes its lease; a new one enters when there is room. Returns 1, or the earliest expiry.
const ACQUIRE_LEASE: &str = r"
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
    if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
      redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
      return 1
    end
    if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
      redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
      redis.call('PEXPIRE', KEYS[1], ARGV[5])
      return 1
    end
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return -tonumber(first[2])
";

// A sliding window: entries scored by when they were taken; entries older than the window are dropped.
const ACQUIRE_WINDOW: &str = r"
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[4])
    if redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 1 end
    if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
      redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
      redis.call('PEXPIRE', KEYS[1], ARGV[4])
      return 1
    end
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return -(tonumber(first[2]) + tonumber(ARGV[4]))
";

fn grant(answer: i64) -> Grant {
    if answer == 1 { Grant::Granted } else { Grant::Full { retry_at_ms: -answer } }
}

impl Limits {
    pub fn new(queue: Queue) -> Self {
        let prefix = format!("{}:limits", queue.stream());
        Self { queue, prefix }
    }

    fn key(&self, kind: &str, of: &str) -> String {
        format!("{}:{kind}:{}", self.prefix, digest(of))
    }

    /// A place among at most `max` concurrent holders of `scope` (e.g. a repository), held by `holder` (a run)
    /// for `lease` (renewed by acquiring again). A holder that dies loses it when the lease runs out.
    pub async fn acquire_lease(
        &self,
        kind: &str,
        scope: &str,
        holder: &str,
        max: u32,
        lease: Duration,
    ) -> QueueResult<Grant> {
        let now = now_ms();
        let lease_ms = lease.as_millis() as i64;
        let mut conn = self.queue.pool.get().await?;
        let answer: i64 = redis::Script::new(ACQUIRE_LEASE)
            .key(self.key(kind, scope))
            .arg(now)
            .arg(now + lease_ms)
            .arg(holder)
            .arg(max)
            .arg(lease_ms)
            .invoke_async(&mut *conn)
            .await?;
        Ok(grant(answer))
    }

    pub async fn release_lease(&self, kind: &str, scope: &str, holder: &str) -> QueueResult<()> {
        let mut conn = self.queue.pool.get().await?;
        let _: i64 = conn.zrem(self.key(kind, scope), holder).await?;
        Ok(())
    }

    /// A reservation among at most `max` per sliding `window` for `scope`, by `holder` (idempotent per
    /// holder). Release it when the holder did not use it.
    pub async fn reserve(
        &self,
        kind: &str,
        scope: &str,
        holder: &str,
        max: u32,
        window: Duration,
    ) -> QueueResult<Grant> {
        let mut conn = self.queue.pool.get().await?;
        let answer: i64 = redis::Script::new(ACQUIRE_WINDOW)
            .key(self.key(kind, scope))
            .arg(now_ms())
            .arg(holder)
            .arg(max)
            .arg(window.as_millis() as i64)
            .invoke_async(&mut *conn)
            .await?;
        Ok(grant(answer))
    }

    pub async fn release_reservation(&self, kind: &str, scope: &str, holder: &str) -> QueueResult<()> {
        self.release_lease(kind, scope, holder).await
    }

    /// Starts a cooldown of `key` (a run key after a failed attempt) for `duration`.
    pub async fn start_cooldown(&self, key: &str, duration: Duration) -> QueueResult<()> {
        let mut conn = self.queue.pool.get().await?;
        let until = now_ms() + duration.as_millis() as i64;
        let _: () = conn.pset_ex(self.key("cooldown", key), until, duration.as_millis() as u64).await?;
        Ok(())
    }

    /// When `key`'s cooldown ends (ms since the epoch), if it is cooling down.
    pub async fn cooldown_until(&self, key: &str) -> QueueResult<Option<i64>> {
        let mut conn = self.queue.pool.get().await?;
        let until: Option<i64> = conn.get(self.key("cooldown", key)).await?;
        Ok(until.filter(|u| *u > now_ms()))
    }
}
