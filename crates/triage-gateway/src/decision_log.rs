//! Every Route writes one decision record: to a per-request key (for Explain), to a
//! capped Redis stream (for tools that follow decisions as they happen) and, when
//! `telemetry.decision_log_files` is set, to rotating JSONL files (see [`files`]).

pub mod files;

use crate::{Error, Result};
use redis::aio::ConnectionManager;
use triage_core::Config;
use triage_proto::pb;

const RECORD_TTL_SECS: u64 = 7 * 24 * 3600;
const STREAM_MAXLEN: u64 = 100_000;

/// Writes and reads decision records.
#[derive(Clone)]
pub struct DecisionLog {
    redis: ConnectionManager,
    prefix: String,
    files: Option<files::FileSink>,
}

impl DecisionLog {
    /// A log under `prefix` in `redis`.
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self { redis, prefix: prefix.to_string(), files: None }
    }

    /// Also appends every record to the JSONL files of `telemetry.decision_log_files`, when
    /// set (a relative `dir` is resolved like every config path).
    pub fn with_files(mut self, config: &Config) -> Self {
        if let Some(f) = &config.telemetry.decision_log_files {
            self.files = Some(files::FileSink::start(f, config.resolve_path(&f.dir)));
        }
        self
    }

    fn key(&self, request_id: &str) -> String {
        format!("{}:decision:{request_id}", self.prefix)
    }

    /// Name of the capped stream of all decisions.
    pub fn stream_key(&self) -> String {
        format!("{}:decisions", self.prefix)
    }

    /// Stores a record; a failure is logged, never fails the request that was answered.
    pub async fn write(&self, rec: &pb::DecisionRecord) {
        let json = match serde_json::to_string(rec) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(request_id = %rec.request_id, error = %e, "decision record not serialisable");
                return;
            }
        };
        if let Some(files) = &self.files {
            files.push(json.clone());
        }
        let mut redis = self.redis.clone();
        let res: redis::RedisResult<()> = redis::pipe()
            .cmd("SET")
            .arg(self.key(&rec.request_id))
            .arg(&json)
            .arg("EX")
            .arg(RECORD_TTL_SECS)
            .ignore()
            .cmd("XADD")
            .arg(self.stream_key())
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAXLEN)
            .arg("*")
            .arg("record")
            .arg(&json)
            .ignore()
            .query_async(&mut redis)
            .await;
        if let Err(e) = res {
            tracing::error!(request_id = %rec.request_id, error = %e, "decision record not stored");
        }
    }

    /// The record of `request_id` if it belongs to `tenant`.
    pub async fn get(&self, tenant: &str, request_id: &str) -> Result<pb::DecisionRecord> {
        let mut redis = self.redis.clone();
        let json: Option<String> = redis::cmd("GET").arg(self.key(request_id)).query_async(&mut redis).await?;
        let rec: pb::DecisionRecord = match json {
            Some(j) => serde_json::from_str(&j).map_err(|e| Error::Store(format!("decision record corrupt: {e}")))?,
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
        let json = serde_json::to_string(&rec).map_err(|e| Error::Store(e.to_string()))?;
        if let Some(files) = &self.files {
            files.push(json.clone());
        }
        let mut redis = self.redis.clone();
        let _: () =
            redis::cmd("SET").arg(self.key(&rec.request_id)).arg(json).arg("KEEPTTL").query_async(&mut redis).await?;
        Ok(Some(rec.model))
    }
}
