//! The pipeline job queue: a Redis Stream with a consumer group, reached through a bb8 pool.
//!
//! Each entry carries the run's IDs and the producer's W3C context (`traceparent`, `tracestate`), so the
//! consumer's span continues the producer's trace. Delivery is at-least-once: a consumer acks only after the
//! run is recorded, and entries left pending by a dead consumer are taken over with `XAUTOCLAIM`. A live
//! consumer renews its hold on its in-flight entry ([`Queue::heartbeat`]), so the reclaim timeout can be
//! short (seconds, not the longest run); a restarted consumer reads its own pending entries first
//! ([`Reader::read_pending`]).
//!
//! A job scheduled for later (a retry with backoff) waits in a sorted set beside the stream, scored by its
//! due time; [`Queue::promote_due`] moves due jobs into the stream atomically (a Lua script), so no worker
//! sleeps on a retry and several orchestrators never move one job twice.
//!
//! The pool is built lazily: the gateway and the orchestrator start (and report not ready) while Redis is
//! down, and recover by themselves when it returns.

pub mod limits;

use std::collections::HashMap;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use redis::AsyncCommands;
use redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use sre_domain::RunIds;

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
    #[error("encoding a job: {0}")]
    Encode(String),
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

/// What a job asks the orchestrator to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Run the fix pipeline of the run `run_id`.
    #[default]
    Run,
    /// Resolve the stored event `delivery_id` (a workflow_run or check_suite) into the runs of its jobs.
    Event,
}

impl JobKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Event => "event",
        }
    }
}

/// One pipeline job.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    #[serde(default)]
    pub kind: JobKind,
    pub run_id: String,
    pub run_key: String,
    pub delivery_id: String,
    pub failure_id: String,
    pub correlation_id: String,
    /// W3C fields (`traceparent`, `tracestate`, `baggage`) of the producer's span.
    #[serde(default)]
    pub trace_context: HashMap<String, String>,
    /// Set on a job re-enqueued for a run whose worker died: it may take over a run marked running.
    #[serde(default)]
    pub takeover: bool,
}

const TRACE_FIELDS: [&str; 3] = ["traceparent", "tracestate", "baggage"];

impl Job {
    fn to_fields(&self) -> Vec<(&str, &str)> {
        let mut fields = vec![
            ("kind", self.kind.as_str()),
            ("run_id", self.run_id.as_str()),
            ("run_key", self.run_key.as_str()),
            ("delivery_id", self.delivery_id.as_str()),
            ("failure_id", self.failure_id.as_str()),
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
            kind: if get("kind") == "event" { JobKind::Event } else { JobKind::Run },
            run_id: get("run_id"),
            run_key: get("run_key"),
            delivery_id: get("delivery_id"),
            failure_id: get("failure_id"),
            correlation_id: get("correlation_id"),
            trace_context,
            takeover: get("takeover") == "1",
        }
    }

    /// The business IDs of the job's run.
    pub fn ids(&self) -> RunIds<'_> {
        RunIds {
            delivery_id: &self.delivery_id,
            run_key: &self.run_key,
            failure_id: &self.failure_id,
            run_id: &self.run_id,
            correlation_id: &self.correlation_id,
        }
    }
}

/// How [`Queue::publish`] hands a job over.
#[derive(Clone, Copy, Debug, Default)]
pub struct Publish<'a> {
    /// The job may take over a run marked running (its worker died).
    pub takeover: bool,
    /// Due this long from now (a retry's backoff); `None` is at once.
    pub delay: Option<Duration>,
    /// The `traceparent` of the delivery's original trace, linked from the producer span (the outbox sweep
    /// starts a new trace; a retry may continue another one).
    pub link: Option<&'a str>,
    /// What the job is for; a run by default.
    pub kind: JobKind,
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

/// What a [`Queue::heartbeat`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Still this consumer's; its idle time starts again.
    Renewed,
    /// No longer pending: acknowledged.
    Done,
    /// Pending with another consumer, which reclaimed it: this one must give the job up.
    Lost,
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

    /// The key that marks this Redis as holding the queue's data.
    pub fn marker_key(&self) -> String {
        format!("{}:marker", self.stream)
    }

    /// Sets the marker key if it is missing; true when it was missing: this Redis lost the queue's data
    /// (restarted without persistence, `FLUSHALL`) or never held it (a first start). Of several callers
    /// racing on a Redis that lost its data exactly one gets true (`SET NX`).
    pub async fn mark_data(&self) -> QueueResult<bool> {
        let mut conn = self.pool.get().await?;
        let set: Option<String> =
            redis::cmd("SET").arg(self.marker_key()).arg(now_ms()).arg("NX").query_async(&mut *conn).await?;
        Ok(set.is_some())
    }

    /// The limits shared through this queue's Redis.
    pub fn limits(&self) -> limits::Limits {
        limits::Limits::new(self.clone())
    }

    /// The sorted set of jobs scheduled for later.
    pub fn delayed_key(&self) -> String {
        format!("{}:delayed", self.stream)
    }

    /// Publishes the job of a run inside an `enqueue_pipeline` producer span; the job carries that span's
    /// W3C context, so the consumer's span continues the trace. With a delay the job waits in the delayed set
    /// until [`Self::promote_due`] moves it. Every job the mesh enqueues goes through here. Returns the entry
    /// ID (`delayed` for a scheduled job).
    pub async fn publish(&self, run: RunIds<'_>, opts: Publish<'_>) -> QueueResult<String> {
        use tracing::Instrument;
        let delay_ms = opts.delay.map(|d| d.as_millis() as u64);
        let span = tracing::info_span!(
            "enqueue_pipeline",
            otel.kind = "producer",
            otel.status_code = tracing::field::Empty,
            messaging.system = "redis",
            messaging.operation.type = "publish",
            messaging.destination.name = self.stream.as_str(),
            messaging.message.id = tracing::field::Empty,
            messaging.redis.delay_ms = delay_ms,
            messaging.redis.takeover = opts.takeover,
            messaging.redis.job_kind = opts.kind.as_str(),
            delivery_id = run.delivery_id,
            run_key = run.run_key,
            failure_id = run.failure_id,
            run_id = run.run_id,
            correlation_id = run.correlation_id,
        );
        if let Some(link) = opts.link {
            sre_telemetry::propagation::add_link(&span, link);
        }
        let job = Job {
            kind: opts.kind,
            run_id: run.run_id.to_owned(),
            run_key: run.run_key.to_owned(),
            delivery_id: run.delivery_id.to_owned(),
            failure_id: run.failure_id.to_owned(),
            correlation_id: run.correlation_id.to_owned(),
            trace_context: sre_telemetry::propagation::inject_map(&span),
            takeover: opts.takeover,
        };
        let result = match opts.delay {
            None => self.enqueue(&job).instrument(span.clone()).await,
            Some(delay) => self.schedule(&job, delay).instrument(span.clone()).await.map(|()| "delayed".to_owned()),
        };
        match &result {
            Ok(id) => span.record("messaging.message.id", id.as_str()),
            Err(_) => span.record("otel.status_code", "ERROR"),
        };
        result
    }

    /// Publishes several jobs at once in ONE round trip (a pipelined `XADD` per job), each inside its own
    /// `enqueue_pipeline` producer span, a child of the span given with it (the delivery's ingest span). For
    /// jobs due now; all succeed or all fail. Returns the entry IDs in order.
    pub async fn publish_batch(&self, jobs: &[(RunIds<'_>, JobKind, &tracing::Span)]) -> QueueResult<Vec<String>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let spans: Vec<tracing::Span> = jobs
            .iter()
            .map(|(run, kind, parent)| {
                tracing::info_span!(
                    parent: *parent,
                    "enqueue_pipeline",
                    otel.kind = "producer",
                    otel.status_code = tracing::field::Empty,
                    messaging.system = "redis",
                    messaging.operation.type = "publish",
                    messaging.destination.name = self.stream.as_str(),
                    messaging.message.id = tracing::field::Empty,
                    messaging.batch.message_count = jobs.len(),
                    messaging.redis.takeover = false,
                    messaging.redis.job_kind = kind.as_str(),
                    delivery_id = run.delivery_id,
                    run_key = run.run_key,
                    failure_id = run.failure_id,
                    run_id = run.run_id,
                    correlation_id = run.correlation_id,
                )
            })
            .collect();
        let entries: Vec<Job> = jobs
            .iter()
            .zip(&spans)
            .map(|((run, kind, _), span)| Job {
                kind: *kind,
                run_id: run.run_id.to_owned(),
                run_key: run.run_key.to_owned(),
                delivery_id: run.delivery_id.to_owned(),
                failure_id: run.failure_id.to_owned(),
                correlation_id: run.correlation_id.to_owned(),
                trace_context: sre_telemetry::propagation::inject_map(span),
                takeover: false,
            })
            .collect();
        let mut pipe = redis::pipe();
        for job in &entries {
            pipe.xadd_maxlen(&self.stream, redis::streams::StreamMaxlen::Approx(MAX_STREAM_LEN), "*", &job.to_fields());
        }
        let result: QueueResult<Vec<String>> = async {
            let mut conn = self.pool.get().await?;
            Ok(pipe.query_async(&mut *conn).await?)
        }
        .await;
        match &result {
            Ok(ids) => {
                for (span, id) in spans.iter().zip(ids) {
                    span.record("messaging.message.id", id.as_str());
                }
            }
            Err(_) => {
                for span in &spans {
                    span.record("otel.status_code", "ERROR");
                }
            }
        }
        result
    }

    /// Appends a job to the stream; returns its entry ID. The mesh uses [`Self::publish`], which traces it.
    pub async fn enqueue(&self, job: &Job) -> QueueResult<String> {
        let mut conn = self.pool.get().await?;
        let id: String = conn
            .xadd_maxlen(&self.stream, redis::streams::StreamMaxlen::Approx(MAX_STREAM_LEN), "*", &job.to_fields())
            .await?;
        Ok(id)
    }

    async fn schedule(&self, job: &Job, delay: Duration) -> QueueResult<()> {
        let due = now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        let member = serde_json::to_string(job).map_err(|e| QueueError::Encode(e.to_string()))?;
        let mut conn = self.pool.get().await?;
        let _: i64 = conn.zadd(self.delayed_key(), member, due).await?;
        Ok(())
    }

    /// Moves up to `max` jobs whose time has come from the delayed set into the stream, atomically: each job
    /// moves once, however many orchestrators call this. Returns how many moved.
    pub async fn promote_due(&self, max: usize) -> QueueResult<usize> {
        // Fields in the order `enqueue` writes them; an entry that does not decode is dropped (it was
        // written by a different version and cannot be run).
        const SCRIPT: &str = r"
            local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
            local moved = 0
            for _, member in ipairs(due) do
              if redis.call('ZREM', KEYS[1], member) == 1 then
                local ok, job = pcall(cjson.decode, member)
                if ok and type(job) == 'table' then
                  local args = {KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'kind', tostring(job.kind or 'run')}
                  for _, k in ipairs({'run_id', 'run_key', 'delivery_id', 'failure_id', 'correlation_id'}) do
                    table.insert(args, k); table.insert(args, tostring(job[k] or ''))
                  end
                  if type(job.trace_context) == 'table' then
                    for _, k in ipairs({'traceparent', 'tracestate', 'baggage'}) do
                      if type(job.trace_context[k]) == 'string' then
                        table.insert(args, k); table.insert(args, job.trace_context[k])
                      end
                    end
                  end
                  if job.takeover == true then table.insert(args, 'takeover'); table.insert(args, '1') end
                  redis.call('XADD', unpack(args))
                  moved = moved + 1
                end
              end
            end
            return moved
        ";
        let mut conn = self.pool.get().await?;
        let moved: usize = redis::Script::new(SCRIPT)
            .key(self.delayed_key())
            .key(&self.stream)
            .arg(now_ms())
            .arg(max)
            .arg(MAX_STREAM_LEN)
            .invoke_async(&mut *conn)
            .await?;
        Ok(moved)
    }

    /// Jobs waiting in the delayed set.
    pub async fn delayed_len(&self) -> QueueResult<u64> {
        let mut conn = self.pool.get().await?;
        Ok(conn.zcard(self.delayed_key()).await?)
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

    /// Renews `consumer`'s hold on its in-flight entry `id`: resets the entry's idle time (`XCLAIM ... JUSTID`,
    /// which does not count a delivery), so [`Self::reclaim`] never takes a job from a live worker, however
    /// slow its run. Checked and renewed in one script, so a renewal never takes the entry back from a
    /// consumer that reclaimed it meanwhile.
    pub async fn heartbeat(&self, consumer: &str, id: &str) -> QueueResult<Hold> {
        const SCRIPT: &str = r"
            local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
            if #p == 0 then return 0 end
            if p[1][2] ~= ARGV[2] then return -1 end
            redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
            return 1
        ";
        let mut conn = self.pool.get().await?;
        let answer: i64 = redis::Script::new(SCRIPT)
            .key(&self.stream)
            .arg(&self.group)
            .arg(consumer)
            .arg(id)
            .invoke_async(&mut *conn)
            .await?;
        Ok(match answer {
            1 => Hold::Renewed,
            0 => Hold::Done,
            _ => Hold::Lost,
        })
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
        self.read_from(">", count).await
    }

    /// Up to `count` jobs this consumer was handed and never acknowledged (`XREADGROUP ... 0`): what a
    /// process that stopped without acking left, read at once by its successor under the same consumer name
    /// instead of waiting for the reclaim timeout. Marked `reclaimed` (their runs may be marked running).
    /// Entries trimmed from the stream meanwhile come back without fields and are acknowledged here.
    pub async fn read_pending(&mut self, count: usize) -> QueueResult<Vec<Delivery>> {
        let entries = self.read_from("0", count).await?;
        let mut jobs = Vec::new();
        for mut delivery in entries {
            if delivery.job.run_id.is_empty() && delivery.job.delivery_id.is_empty() {
                self.queue.ack(&delivery.id).await?;
                continue;
            }
            delivery.reclaimed = true;
            jobs.push(delivery);
        }
        Ok(jobs)
    }

    async fn read_from(&mut self, from: &str, count: usize) -> QueueResult<Vec<Delivery>> {
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
        let reply: Result<Option<StreamReadReply>, _> = conn.xread_options(&[&self.queue.stream], &[from], &opts).await;
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

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
