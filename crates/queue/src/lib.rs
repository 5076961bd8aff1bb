//! The pipeline job queue: a Redis Stream with a consumer group, reached through a bb8 pool.
//!
//! Each entry carries the run's IDs and the producer's W3C context (`traceparent`, `tracestate`), so the
//! consumer's span continues the producer's trace. Delivery is at-least-once: a consumer acks only after the
//! run is recorded, and entries left pending by a dead consumer are taken over with `XAUTOCLAIM`.
//!
//! The pool is built lazily: the gateway and the orchestrator start (and report not ready) while Redis is
//! down, and recover by themselves when it returns.

use std::collections::HashMap;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use redis::AsyncCommands;
use redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};

/// Default stream and consumer group.
pub const DEFAULT_STREAM: &str = "sre:pipeline:jobs";
pub const DEFAULT_GROUP: &str = "orchestrator";
/// Entries kept in the stream (approximate trim at each append): acknowledged entries are not deleted by
/// `XACK`, so without a cap the stream grows for ever. Far above any backlog the alerts tolerate.
pub const MAX_STREAM_LEN: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis pool: {0}")]
    Pool(String),
    #[error("invalid REDIS_URL: {0}")]
    Url(String),
}

impl From<bb8::RunError<redis::RedisError>> for QueueError {
    fn from(e: bb8::RunError<redis::RedisError>) -> Self {
        match e {
            bb8::RunError::User(e) => Self::Redis(e),
            bb8::RunError::TimedOut => Self::Pool("timed out waiting for a Redis connection".into()),
        }
    }
}

pub type QueueResult<T> = Result<T, QueueError>;

/// One pipeline job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Job {
    pub run_id: String,
    pub run_key: String,
    pub delivery_id: String,
    pub correlation_id: String,
    /// W3C fields (`traceparent`, `tracestate`, `baggage`) of the producer's span.
    pub trace_context: HashMap<String, String>,
    /// Set on a job re-enqueued for a run whose worker died: it may take over a run marked running.
    pub takeover: bool,
}

const TRACE_FIELDS: [&str; 3] = ["traceparent", "tracestate", "baggage"];

impl Job {
    fn to_fields(&self) -> Vec<(&str, &str)> {
        let mut fields = vec![
            ("run_id", self.run_id.as_str()),
            ("run_key", self.run_key.as_str()),
            ("delivery_id", self.delivery_id.as_str()),
            ("correlation_id", self.correlation_id.as_str()),
        ];
        for key in TRACE_FIELDS {
            if let Some(v) = self.trace_context.get(key) {
                fields.push((key, v.as_str()));
            }
        }
        if self.takeover {
            fields.push(("takeover", "1"));
        }
        fields
    }

    fn from_entry(entry: &StreamId) -> Self {
        let get = |k: &str| entry.get::<String>(k).unwrap_or_default();
        let trace_context =
            TRACE_FIELDS.iter().filter_map(|k| entry.get::<String>(k).map(|v| ((*k).to_owned(), v))).collect();
        Self {
            run_id: get("run_id"),
            run_key: get("run_key"),
            delivery_id: get("delivery_id"),
            correlation_id: get("correlation_id"),
            trace_context,
            takeover: get("takeover") == "1",
        }
    }
}

/// The IDs of the run a job is published for.
#[derive(Clone, Copy, Debug)]
pub struct RunRef<'a> {
    pub run_id: &'a str,
    pub run_key: &'a str,
    pub delivery_id: &'a str,
    pub correlation_id: &'a str,
}

/// A job handed to this consumer; ack it with [`Queue::ack`] once its run is recorded.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Stream entry ID.
    pub id: String,
    pub job: Job,
    /// True when this delivery was taken over from a consumer that stopped without acking.
    pub reclaimed: bool,
}

/// Backlog figures for `sre_agent_queue_depth`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    /// Entries in the stream not yet delivered to the group (Redis 7 `lag`).
    pub lag: u64,
    /// Delivered but not acknowledged.
    pub pending: u64,
}

#[derive(Clone)]
pub struct Queue {
    pool: bb8::Pool<RedisConnectionManager>,
    /// For the blocking readers' own connections (see [`Reader`]).
    client: redis::Client,
    stream: String,
    group: String,
}

impl Queue {
    /// A lazy pool: nothing connects until first use, so a Redis outage at start is not fatal.
    pub fn new(url: &str, stream: &str, group: &str) -> QueueResult<Self> {
        let manager = RedisConnectionManager::new(url).map_err(|e| QueueError::Url(e.to_string()))?;
        let client = redis::Client::open(url).map_err(|e| QueueError::Url(e.to_string()))?;
        let pool =
            bb8::Pool::builder().max_size(16).connection_timeout(Duration::from_secs(2)).build_unchecked(manager);
        Ok(Self { pool, client, stream: stream.to_owned(), group: group.to_owned() })
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// `PING`, for readiness.
    pub async fn ping(&self) -> QueueResult<()> {
        let mut conn = self.pool.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut *conn).await?;
        Ok(())
    }

    /// Creates the stream and the consumer group if missing.
    pub async fn ensure_group(&self) -> QueueResult<()> {
        let mut conn = self.pool.get().await?;
        let created: Result<(), redis::RedisError> = conn.xgroup_create_mkstream(&self.stream, &self.group, "0").await;
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Publishes the job of a run inside an `enqueue_pipeline` producer span; the job carries that span's
    /// W3C context, so the consumer's span continues the trace. Returns the entry ID.
    pub async fn publish(&self, run: RunRef<'_>, takeover: bool) -> QueueResult<String> {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "enqueue_pipeline",
            otel.kind = "producer",
            otel.status_code = tracing::field::Empty,
            messaging.system = "redis",
            messaging.operation.type = "publish",
            messaging.destination.name = self.stream.as_str(),
            messaging.message.id = tracing::field::Empty,
            delivery_id = run.delivery_id,
            run_key = run.run_key,
            run_id = run.run_id,
            correlation_id = run.correlation_id,
        );
        let job = Job {
            run_id: run.run_id.to_owned(),
            run_key: run.run_key.to_owned(),
            delivery_id: run.delivery_id.to_owned(),
            correlation_id: run.correlation_id.to_owned(),
            trace_context: sre_telemetry::propagation::inject_map(&span),
            takeover,
        };
        let result = self.enqueue(&job).instrument(span.clone()).await;
        match &result {
            Ok(id) => span.record("messaging.message.id", id.as_str()),
            Err(_) => span.record("otel.status_code", "ERROR"),
        };
        result
    }

    /// Appends a job; returns its entry ID.
    pub async fn enqueue(&self, job: &Job) -> QueueResult<String> {
        let mut conn = self.pool.get().await?;
        let id: String = conn
            .xadd_maxlen(&self.stream, redis::streams::StreamMaxlen::Approx(MAX_STREAM_LEN), "*", &job.to_fields())
            .await?;
        Ok(id)
    }

    /// A blocking reader for `consumer`, waiting up to `block` per read.
    pub fn reader(&self, consumer: &str, block: Duration) -> Reader {
        Reader { queue: self.clone(), consumer: consumer.to_owned(), block, conn: None }
    }

    /// Takes over jobs another consumer left unacknowledged for longer than `min_idle`.
    pub async fn reclaim(&self, consumer: &str, min_idle: Duration, count: usize) -> QueueResult<Vec<Delivery>> {
        let mut conn = self.pool.get().await?;
        let reply: StreamAutoClaimReply = conn
            .xautoclaim_options(
                &self.stream,
                &self.group,
                consumer,
                min_idle.as_millis() as u64,
                "0-0",
                StreamAutoClaimOptions::default().count(count),
            )
            .await?;
        Ok(reply
            .claimed
            .into_iter()
            .map(|entry| Delivery { job: Job::from_entry(&entry), id: entry.id, reclaimed: true })
            .collect())
    }

    pub async fn ack(&self, id: &str) -> QueueResult<()> {
        let mut conn = self.pool.get().await?;
        let _: u64 = conn.xack(&self.stream, &self.group, &[id]).await?;
        Ok(())
    }

    /// The group's lag and pending count.
    pub async fn depth(&self) -> QueueResult<Depth> {
        let mut conn = self.pool.get().await?;
        let info: redis::streams::StreamInfoGroupsReply = conn.xinfo_groups(&self.stream).await?;
        let group = info.groups.into_iter().find(|g| g.name == self.group);
        Ok(group.map_or_else(Depth::default, |g| Depth {
            lag: g.lag.unwrap_or_default() as u64,
            pending: g.pending as u64,
        }))
    }
}

/// Reads new jobs for one consumer with `XREADGROUP ... BLOCK`.
///
/// A blocking read holds its connection for the whole wait, and pooled connections time a command out
/// after 500 ms, so each reader keeps a connection of its own whose response timeout exceeds the block time
/// (reconnected after any error).
pub struct Reader {
    queue: Queue,
    consumer: String,
    block: Duration,
    conn: Option<redis::aio::MultiplexedConnection>,
}

impl Reader {
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Up to `count` new jobs, waiting up to the block time for the first; empty when none came.
    pub async fn read(&mut self, count: usize) -> QueueResult<Vec<Delivery>> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(self.block + Duration::from_secs(5)));
                let conn = self.queue.client.get_multiplexed_async_connection_with_config(&config).await?;
                self.conn.insert(conn)
            }
        };
        let opts = StreamReadOptions::default()
            .group(&self.queue.group, &self.consumer)
            .count(count)
            .block(self.block.as_millis() as usize);
        let reply: Result<Option<StreamReadReply>, _> = conn.xread_options(&[&self.queue.stream], &[">"], &opts).await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(err) => {
                self.conn = None;
                return Err(err.into());
            }
        };
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|entry| Delivery { job: Job::from_entry(&entry), id: entry.id, reclaimed: false })
            .collect())
    }
}
