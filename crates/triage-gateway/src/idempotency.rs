//! Request ids make Route idempotent: the first call claims the id, later calls with the
//! same id get the stored answer and are neither generated nor charged again.

use crate::{Error, Result};
use prost::Message;
use redis::aio::ConnectionManager;
use std::time::{Duration, Instant};
use triage_proto::pb;

const PENDING: &[u8] = b"\x00pending";
const ANSWER_TTL_SECS: u64 = 24 * 3600;

/// What claiming a request id found.
pub(crate) enum Claim {
    /// This call owns the id and must answer it.
    Owned,
    /// The id was answered before; here is the answer.
    Replay(Box<pb::RouteResponse>),
}

pub(crate) struct Idempotency {
    redis: ConnectionManager,
    prefix: String,
}

impl Idempotency {
    pub(crate) fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self { redis, prefix: prefix.to_string() }
    }

    fn key(&self, tenant: &str, request_id: &str) -> String {
        format!("{}:req:{tenant}:{request_id}", self.prefix)
    }

    /// Claims `request_id`, or waits (up to `wait`) for the call that holds it to finish.
    pub(crate) async fn claim(&self, tenant: &str, request_id: &str, lease: Duration, wait: Duration) -> Result<Claim> {
        let key = self.key(tenant, request_id);
        let mut redis = self.redis.clone();
        let start = Instant::now();
        loop {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(PENDING)
                .arg("NX")
                .arg("PX")
                .arg(lease.as_millis() as u64)
                .query_async(&mut redis)
                .await?;
            if set.is_some() {
                return Ok(Claim::Owned);
            }
            let stored: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut redis).await?;
            match stored {
                Some(bytes) if bytes != PENDING => {
                    let mut resp = pb::RouteResponse::decode(bytes.as_slice())
                        .map_err(|e| Error::Store(format!("stored answer of `{request_id}` is corrupt: {e}")))?;
                    resp.replayed = true;
                    return Ok(Claim::Replay(Box::new(resp)));
                }
                // Pending: another call is answering it; its answer will appear.
                Some(_) => {}
                // Expired or abandoned between SET and GET: try to claim again.
                None => continue,
            }
            if start.elapsed() >= wait {
                return Err(Error::InProgress(request_id.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stores the answer for later repeats.
    pub(crate) async fn complete(&self, tenant: &str, request_id: &str, resp: &pb::RouteResponse) {
        let mut redis = self.redis.clone();
        let res: redis::RedisResult<()> = redis::cmd("SET")
            .arg(self.key(tenant, request_id))
            .arg(resp.encode_to_vec())
            .arg("EX")
            .arg(ANSWER_TTL_SECS)
            .query_async(&mut redis)
            .await;
        if let Err(e) = res {
            tracing::warn!(request_id, error = %e, "could not store the answer for idempotent repeats");
        }
    }

    /// Frees the id after a failure, so the caller may retry it.
    pub(crate) async fn abandon(&self, tenant: &str, request_id: &str) {
        let mut redis = self.redis.clone();
        let res: redis::RedisResult<()> =
            redis::cmd("DEL").arg(self.key(tenant, request_id)).query_async(&mut redis).await;
        if let Err(e) = res {
            tracing::warn!(request_id, error = %e, "could not free the request id; it expires with its lease");
        }
    }
}
