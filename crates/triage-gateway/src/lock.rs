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
/// so a crashed gateway cannot wedge a conversation). Dropped unreleased (the Route's future
/// was dropped: the client cancelled or went away), it is released from a task of its own,
/// with the command set by [`ConversationLock::on_drop`], instead of wedging the
/// conversation's next turn until the lease ends.
pub(crate) struct ConversationLock {
    held: Option<Held>,
    on_drop: Option<redis::Cmd>,
}

struct Held {
    redis: ConnectionManager,
    key: String,
    token: String,
}

impl ConversationLock {
    /// A fresh token and the `SET NX PX` that takes the lock with it, for callers that send
    /// it in a pipeline with other work; [`ConversationLock::held`] makes the lock once the
    /// reply says it was taken.
    pub(crate) fn attempt(key: &str, lease: Duration) -> (String, redis::Cmd) {
        let token = uuid::Uuid::new_v4().to_string();
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(&token).arg("NX").arg("PX").arg(lease.as_millis() as u64);
        (token, cmd)
    }

    /// The lock `attempt` took.
    pub(crate) fn held(redis: ConnectionManager, key: String, token: String) -> Self {
        ConversationLock { held: Some(Held { redis, key, token }), on_drop: None }
    }

    /// Sends `cmd` with the release when the lock is dropped unreleased.
    pub(crate) fn on_drop(mut self, cmd: redis::Cmd) -> Self {
        self.on_drop = Some(cmd);
        self
    }

    /// Takes the lock, retrying with backoff until `wait` has passed.
    pub(crate) async fn acquire(
        mut redis: ConnectionManager,
        key: String,
        lease: Duration,
        wait: Duration,
    ) -> Result<ConversationLock> {
        let start = Instant::now();
        let mut backoff = Duration::from_millis(5);
        loop {
            let (token, cmd) = Self::attempt(&key, lease);
            let got: Option<String> = cmd.query_async(&mut redis).await?;
            if got.is_some() {
                return Ok(Self::held(redis, key, token));
            }
            if start.elapsed() >= wait {
                return Err(Error::Deadline("conversation lock"));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    /// Releases the lock if it is still ours (it may have expired and been taken).
    pub(crate) async fn release(self) {
        self.release_with(None).await
    }

    /// Releases the lock and runs `then` in the same round trip (`then` first, so whatever
    /// it records is in place before the next turn can take the lock). A failure is logged:
    /// the lock expires on its own.
    pub(crate) async fn release_with(mut self, then: Option<redis::Cmd>) {
        if let Some(held) = self.held.take() {
            held.release(then).await;
        }
    }
}

impl Held {
    async fn release(mut self, then: Option<redis::Cmd>) {
        let mut pipe = redis::pipe();
        if let Some(cmd) = then {
            pipe.add_command(cmd).ignore();
        }
        // EVAL rather than EVALSHA: nothing to load first, and Redis caches the compiled script.
        pipe.cmd("EVAL").arg(RELEASE).arg(1).arg(&self.key).arg(&self.token).ignore();
        let res: redis::RedisResult<()> = pipe.query_async(&mut self.redis).await;
        if let Err(e) = res {
            tracing::warn!(key = %self.key, error = %e, "conversation lock release failed; it will expire");
        }
    }
}

impl Drop for ConversationLock {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        // No runtime (the process is going down): the lock expires with its lease.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        tracing::info!(key = %held.key, "route dropped before it finished: conversation lock released");
        runtime.spawn(held.release(self.on_drop.take()));
    }
}
