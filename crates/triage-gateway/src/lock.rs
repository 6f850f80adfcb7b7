//! A per-conversation lock in Redis, so two turns of one conversation are answered one after
//! the other (each sees the other's reply and pin) even across gateway replicas.

use crate::{Error, Result};
use redis::aio::ConnectionManager;
use std::time::{Duration, Instant};

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// A held lock; release it with [`ConversationLock::release`] (it also expires on its own,
/// so a crashed gateway cannot wedge a conversation).
pub(crate) struct ConversationLock {
    redis: ConnectionManager,
    key: String,
    token: String,
}

impl ConversationLock {
    /// Waits for the lock up to `wait`, holding it at most `lease`.
    pub(crate) async fn acquire(
        mut redis: ConnectionManager,
        key: String,
        lease: Duration,
        wait: Duration,
    ) -> Result<ConversationLock> {
        let token = uuid::Uuid::new_v4().to_string();
        let start = Instant::now();
        let mut backoff = Duration::from_millis(5);
        loop {
            let got: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(lease.as_millis() as u64)
                .query_async(&mut redis)
                .await?;
            if got.is_some() {
                return Ok(ConversationLock { redis, key, token });
            }
            if start.elapsed() >= wait {
                return Err(Error::Deadline("conversation lock"));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    /// Releases the lock if this holder still owns it.
    pub(crate) async fn release(mut self) {
        let res: redis::RedisResult<i64> =
            redis::Script::new(RELEASE).key(&self.key).arg(&self.token).invoke_async(&mut self.redis).await;
        if let Err(e) = res {
            tracing::warn!(key = %self.key, error = %e, "conversation lock release failed; it will expire");
        }
    }
}
