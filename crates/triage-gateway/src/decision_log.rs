//! Every Route writes one decision record: to a per-request key (for Explain), to a
//! capped Redis stream (for tools that follow decisions as they happen), both sized by
//! `telemetry.decision_records`, and, when `telemetry.decision_log_files` is set, to rotating
//! JSONL files (see [`files`]).
//!
//! The per-request key holds the record as protobuf (about half its JSON: it is the largest
//! thing Triage keeps per Route, for `telemetry.decision_records.ttl`); the stream and the
//! files carry JSON, for tools. Keys written as JSON before 2026-12-06 are still read.
//!
//! Records are written by one background writer per process, many to a Redis round trip,
//! so a Route does not wait for its record: under load one pipeline carries every record
//! that arrived while the previous one was in flight. The queue is bounded (a Route waits
//! for room rather than a record being dropped), reads of a record first wait for the
//! queue to drain, and shutdown flushes it.

pub mod files;

use crate::{Error, Result};
use prost::Message;
use redis::aio::ConnectionManager;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};
use triage_core::Config;
use triage_core::config::DecisionRecordsConfig;
use triage_proto::pb;
/// Records waiting for the writer before a Route waits for room.
const QUEUE: usize = 8_192;
/// Records per Redis pipeline at most.
const BATCH: usize = 256;

enum Job {
    Record(Box<pb::DecisionRecord>),
    /// Answered once every record queued before it is stored (or failed).
    Flush(oneshot::Sender<()>),
}

/// Writes and reads decision records.
#[derive(Clone)]
pub struct DecisionLog {
    redis: ConnectionManager,
    prefix: String,
    files: Option<files::FileSink>,
    /// `telemetry.decision_records`: how long records stay, how many the stream keeps.
    retention: DecisionRecordsConfig,
    /// Started on first use, so a log can be built outside a runtime.
    writer: Arc<OnceLock<mpsc::Sender<Job>>>,
}

impl DecisionLog {
    /// A log under `prefix` in `redis`.
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_string(),
            files: None,
            retention: DecisionRecordsConfig::default(),
            writer: Arc::new(OnceLock::new()),
        }
    }

    /// Keeps records as `config.telemetry.decision_records` says (before the first write).
    pub fn with_retention(mut self, config: &Config) -> Self {
        self.retention = config.telemetry.decision_records.clone();
        self
    }

    /// Also appends every record to the JSONL files of `telemetry.decision_log_files`, when
    /// set (a relative `dir` is resolved like every config path).
    pub fn with_files(mut self, config: &Config) -> Self {
        if let Some(f) = &config.telemetry.decision_log_files {
            self.files = Some(files::FileSink::start(f, config.resolve_path(&f.dir)));
        }
        self
    }

    fn key(&self, tenant: &str, request_id: &str) -> String {
        key(&self.prefix, tenant, request_id)
    }

    /// Name of the capped stream of all decisions.
    pub fn stream_key(&self) -> String {
        stream_key(&self.prefix)
    }

    fn writer(&self) -> &mpsc::Sender<Job> {
        self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let sink = Sink {
                redis: self.redis.clone(),
                prefix: self.prefix.clone(),
                files: self.files.clone(),
                retention: self.retention.clone(),
            };
            tokio::spawn(sink.run(rx));
            tx
        })
    }

    /// Queues a record; a failure to store it is logged, never fails the request that was
    /// answered.
    pub async fn write(&self, rec: pb::DecisionRecord) {
        if self.writer().send(Job::Record(Box::new(rec))).await.is_err() {
            tracing::error!("decision log writer gone; record not stored");
        }
    }

    /// Waits until every record queued so far is stored (or its failure logged).
    pub async fn flush(&self) {
        let Some(tx) = self.writer.get() else { return };
        let (done, wait) = oneshot::channel();
        if tx.send(Job::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// The record of `request_id` if it belongs to `tenant`.
    pub async fn get(&self, tenant: &str, request_id: &str) -> Result<pb::DecisionRecord> {
        self.flush().await;
        let mut redis = self.redis.clone();
        let mut stored: Option<Vec<u8>> =
            redis::cmd("GET").arg(self.key(tenant, request_id)).query_async(&mut redis).await?;
        if stored.is_none() {
            // Written before records were keyed per tenant (2026-12-06): kept for their TTL.
            let legacy = format!("{}:decision:{request_id}", self.prefix);
            stored = redis::cmd("GET").arg(legacy).query_async(&mut redis).await?;
        }
        let rec = match stored {
            Some(bytes) => decode(&bytes)?,
            None => return Err(Error::NotFound(format!("no decision record for request `{request_id}`"))),
        };
        // Another tenant's record looks exactly like a missing one.
        if rec.tenant != tenant {
            return Err(Error::NotFound(format!("no decision record for request `{request_id}`")));
        }
        Ok(rec)
    }

    /// Attaches feedback to a stored record; returns the model that answered, or `None`
    /// when the request is unknown to this tenant. The JSONL files get the whole record
    /// again with its feedback: readers keep the last line of a request id.
    pub async fn add_feedback(&self, tenant: &str, fb: pb::FeedbackRequest) -> Result<Option<String>> {
        let mut rec = match self.get(tenant, &fb.request_id).await {
            Ok(r) => r,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        rec.feedback = Some(fb);
        if let Some(files) = &self.files {
            files.push(serde_json::to_string(&rec).map_err(|e| Error::Store(e.to_string()))?);
        }
        let mut redis = self.redis.clone();
        let _: () = redis::cmd("SET")
            .arg(self.key(tenant, &rec.request_id))
            .arg(rec.encode_to_vec())
            .arg("KEEPTTL")
            .query_async(&mut redis)
            .await?;
        Ok(Some(rec.model))
    }
}

/// A stored record: protobuf, or JSON (an object, so its first byte is `{`) when written
/// before 2026-12-06. A protobuf record starts with field 1 (the request id, always set).
fn decode(bytes: &[u8]) -> Result<pb::DecisionRecord> {
    let corrupt = |e: String| Error::Store(format!("decision record corrupt: {e}"));
    match bytes.first() {
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string())),
        _ => pb::DecisionRecord::decode(bytes).map_err(|e| corrupt(e.to_string())),
    }
}

/// Per tenant: request ids are the callers', and two tenants may use the same one.
fn key(prefix: &str, tenant: &str, request_id: &str) -> String {
    format!("{prefix}:decision:{tenant}:{request_id}")
}

fn stream_key(prefix: &str) -> String {
    format!("{prefix}:decisions")
}

/// The background writer's end.
struct Sink {
    redis: ConnectionManager,
    prefix: String,
    files: Option<files::FileSink>,
    retention: DecisionRecordsConfig,
}

impl Sink {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut jobs, BATCH).await > 0 {
            let mut waiters = Vec::new();
            let mut pipe = redis::pipe();
            let mut records = 0usize;
            for job in jobs.drain(..) {
                match job {
                    Job::Record(rec) => {
                        self.add(&mut pipe, &rec);
                        records += 1;
                    }
                    Job::Flush(done) => waiters.push(done),
                }
            }
            if records > 0 {
                let res: redis::RedisResult<()> = pipe.query_async(&mut self.redis).await;
                if let Err(e) = res {
                    tracing::error!(records, error = %e, "decision records not stored");
                }
            }
            for done in waiters {
                let _ = done.send(());
            }
        }
    }

    /// Adds one record's key and stream entry to `pipe`, and its line to the files.
    fn add(&self, pipe: &mut redis::Pipeline, rec: &pb::DecisionRecord) {
        // Validated to 1m..366d, so whole milliseconds fit.
        let ttl_ms = self.retention.ttl.as_millis() as u64;
        let key = key(&self.prefix, &rec.tenant, &rec.request_id);
        pipe.cmd("SET").arg(key).arg(rec.encode_to_vec()).arg("PX").arg(ttl_ms).ignore();
        let stream_max_len = self.retention.stream_max_len;
        if stream_max_len == 0 && self.files.is_none() {
            return;
        }
        let json = match serde_json::to_string(rec) {
            Ok(j) => j,
            Err(e) => {
                // Kept for Explain; the stream and the files (JSON) lack it.
                tracing::error!(request_id = %rec.request_id, error = %e, "decision record not serialisable as JSON");
                return;
            }
        };
        if stream_max_len > 0 {
            pipe.cmd("XADD")
                .arg(stream_key(&self.prefix))
                .arg("MAXLEN")
                .arg("~")
                .arg(stream_max_len)
                .arg("*")
                .arg("record")
                .arg(&json)
                .ignore();
        }
        if let Some(files) = &self.files {
            files.push(json);
        }
    }
}
