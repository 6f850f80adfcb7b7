//! Request ids make Route idempotent: the first call claims the id, later calls with the
//! same id get the stored answer and are neither generated nor charged again.

use crate::lock::ConversationLock;
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

/// What entering a Route found.
pub(crate) enum Entry {
    /// This call owns the request id and holds the conversation lock.
    Owned(ConversationLock),
    /// The id was answered before; here is the answer (no lock is held).
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

    fn claim_cmd(key: &str, lease: Duration) -> redis::Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(PENDING).arg("NX").arg("PX").arg(lease.as_millis() as u64);
        cmd
    }

    /// Claims `request_id` and takes the conversation lock `lock_key`: one round trip when
    /// neither is contended; otherwise waits (up to `lease` each) for the call holding the
    /// id to answer, or for the conversation's previous turn to finish.
    pub(crate) async fn enter(
        &self,
        tenant: &str,
        request_id: &str,
        lock_key: String,
        lease: Duration,
    ) -> Result<Entry> {
        let key = self.key(tenant, request_id);
        let (token, lock_cmd) = ConversationLock::attempt(&lock_key, lease);
        let mut redis = self.redis.clone();
        let (claimed, locked): (Option<String>, Option<String>) = redis::pipe()
            .add_command(Self::claim_cmd(&key, lease))
            .add_command(lock_cmd)
            .query_async(&mut redis)
            .await?;
        match (claimed.is_some(), locked.is_some()) {
            (true, true) => Ok(Entry::Owned(ConversationLock::held(self.redis.clone(), lock_key, token))),
            (true, false) => self.lock_or_abandon(tenant, request_id, lock_key, lease).await,
            (false, locked) => {
                // A repeat (or a concurrent duplicate) of this id: it must not hold the lock
                // while it waits for the other call's answer.
                if locked {
                    ConversationLock::held(self.redis.clone(), lock_key.clone(), token).release().await;
                }
                if let Claim::Replay(resp) = self.claim(tenant, request_id, lease, lease).await? {
                    return Ok(Entry::Replay(resp));
                }
                self.lock_or_abandon(tenant, request_id, lock_key, lease).await
            }
        }
    }

    async fn lock_or_abandon(
        &self,
        tenant: &str,
        request_id: &str,
        lock_key: String,
        lease: Duration,
    ) -> Result<Entry> {
        match ConversationLock::acquire(self.redis.clone(), lock_key, lease, lease).await {
            Ok(lock) => Ok(Entry::Owned(lock)),
            Err(e) => {
                self.abandon(tenant, request_id).await;
                Err(e)
            }
        }
    }

    /// Claims `request_id`, or waits (up to `wait`) for the call that holds it to finish.
    pub(crate) async fn claim(&self, tenant: &str, request_id: &str, lease: Duration, wait: Duration) -> Result<Claim> {
        let key = self.key(tenant, request_id);
        let mut redis = self.redis.clone();
        let start = Instant::now();
        loop {
            let set: Option<String> = Self::claim_cmd(&key, lease).query_async(&mut redis).await?;
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

    /// Stores the answer for later repeats (send it with the lock's release).
    pub(crate) fn complete_cmd(&self, tenant: &str, request_id: &str, resp: &pb::RouteResponse) -> redis::Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(tenant, request_id)).arg(resp.encode_to_vec()).arg("EX").arg(ANSWER_TTL_SECS);
        cmd
    }

    /// Frees the id after a failure, so the caller may retry it (send it with the lock's
    /// release).
    pub(crate) fn abandon_cmd(&self, tenant: &str, request_id: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(tenant, request_id));
        cmd
    }

    /// [`Idempotency::abandon_cmd`] on its own.
    pub(crate) async fn abandon(&self, tenant: &str, request_id: &str) {
        let mut redis = self.redis.clone();
        let res: redis::RedisResult<()> = self.abandon_cmd(tenant, request_id).query_async(&mut redis).await;
        if let Err(e) = res {
            tracing::warn!(request_id, error = %e, "could not free the request id; it expires with its lease");
        }
    }
}
