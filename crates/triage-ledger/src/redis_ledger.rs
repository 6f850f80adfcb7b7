//! [`RedisLedger`]: the ledger over Redis. Construction, connection handling and the
//! outage classification; the operations live in `ops.rs` and `reports.rs`.

use crate::alerts::Alerting;
use crate::clock::{AlertHook, Clock, NoAlertHook, SystemClock};
use crate::keys::KeyLayout;
use crate::limits::LimitTable;
use crate::local::{Local, LocalStats};
use crate::signals::SignalCache;
use crate::{Error, Ledger, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, RedisError, ScriptInvocation};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;
use triage_core::config::{FailMode, LedgerConfig, RedisConfig};
use triage_proto::pb;

/// Where the ledger's Redis is.
pub enum RedisTarget {
    /// An established connection (shared with other services of the process).
    Manager(ConnectionManager),
    /// A URL, connected on first use, so a ledger can start (and fail open) while Redis is
    /// still down.
    Url(String),
}

impl From<ConnectionManager> for RedisTarget {
    fn from(c: ConnectionManager) -> Self {
        RedisTarget::Manager(c)
    }
}

impl From<String> for RedisTarget {
    fn from(url: String) -> Self {
        RedisTarget::Url(url)
    }
}

impl From<&str> for RedisTarget {
    fn from(url: &str) -> Self {
        RedisTarget::Url(url.to_string())
    }
}

/// Knobs that are not deployment configuration.
#[derive(Clone)]
pub struct LedgerOptions {
    /// Time source for windows and deadlines.
    pub clock: Arc<dyn Clock>,
    /// Receives budget alerts (the ledger logs them regardless).
    pub alert_hook: Arc<dyn AlertHook>,
    /// Bound on each Redis round trip. Default 250 ms: under the gateway's 300 ms ledger
    /// deadline, so a hung Redis turns into fail-open/closed here rather than a gateway
    /// timeout.
    pub op_timeout: Duration,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self { clock: Arc::new(SystemClock), alert_hook: Arc::new(NoAlertHook), op_timeout: Duration::from_millis(250) }
    }
}

/// Cost accounting in Redis: reserve -> commit / release as atomic Lua scripts, hard limits
/// per scope and UTC window, exact under concurrency from any number of instances.
/// Cheap to clone (shared state).
#[derive(Clone)]
pub struct RedisLedger {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    conn: Conn,
    pub keys: KeyLayout,
    pub limits: LimitTable,
    pub fail_mode: FailMode,
    pub ttl_ms: i64,
    /// `ledger.reseed_interval`, ms (see `ops.rs` seeds).
    pub reseed_ms: i64,
    /// `ledger.conversation_retention`, ms: the sliding TTL of a conversation's scope hash.
    pub conversation_retention_ms: i64,
    pub alert_fraction: f64,
    pub alerting: Alerting,
    pub opts: LedgerOptions,
    pub local: Local,
    /// Recent readings of limited counters, for the budget signal.
    pub signals: SignalCache,
    /// Whether the last Redis call answered: deferred commits are replayed only then.
    redis_up: AtomicBool,
    /// A probe of a down Redis is in flight.
    probing: AtomicBool,
    /// When the last probe started (wall clock, not the injectable ledger clock).
    last_probe_ms: AtomicI64,
}

enum Conn {
    Ready(ConnectionManager),
    Lazy { client: redis::Client, manager: OnceCell<ConnectionManager> },
}

/// Why a Redis call failed: `Down` is an outage (fail mode applies), `Broken` is anything
/// else (a script or data error), which never fails open.
#[derive(Debug)]
pub(crate) enum StoreFail {
    Down(String),
    Broken(String),
}

impl From<StoreFail> for Error {
    fn from(f: StoreFail) -> Self {
        match f {
            StoreFail::Down(m) => Error::Store(m),
            StoreFail::Broken(m) => Error::Store(m),
        }
    }
}

impl StoreFail {
    fn from_redis(e: &RedisError) -> Self {
        let down = e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || matches!(
                e.kind(),
                ErrorKind::BusyLoadingError | ErrorKind::TryAgain | ErrorKind::ClusterDown | ErrorKind::MasterDown
            );
        if down { StoreFail::Down(e.to_string()) } else { StoreFail::Broken(e.to_string()) }
    }
}

/// While Redis is down, one call probes it this long after the previous probe ended; the
/// others fail at once instead of each waiting out a reconnect (seconds, with backoff).
/// The connection manager keeps reconnecting in the background between probes.
const PROBE_INTERVAL_MS: i64 = 1_000;

/// Ends a probe however it ends: clears the flag and stamps the time.
struct ProbeGuard<'a> {
    probing: &'a AtomicBool,
    last_probe_ms: &'a AtomicI64,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        self.last_probe_ms.store(triage_core::now_unix_ms(), Ordering::SeqCst);
        self.probing.store(false, Ordering::SeqCst);
    }
}

impl RedisLedger {
    /// A ledger over `target` with the given limits and fail mode; keys under
    /// `{<key_prefix>:ledger}`. Makes no network call.
    pub fn new(target: impl Into<RedisTarget>, config: &LedgerConfig, key_prefix: &str) -> Result<Self> {
        Self::with_options(target, config, key_prefix, LedgerOptions::default())
    }

    /// A ledger from the service configuration; `redis.url` must be set (the embedded
    /// private Redis is started by the binary, which then passes its URL).
    pub fn from_config(redis: &RedisConfig, ledger: &LedgerConfig) -> Result<Self> {
        let url = redis.url.as_deref().ok_or_else(|| Error::Config("redis.url is not set".into()))?;
        Self::new(url, ledger, &redis.key_prefix)
    }

    /// [`RedisLedger::new`] with an injected clock, alert hook or timeout.
    pub fn with_options(
        target: impl Into<RedisTarget>,
        config: &LedgerConfig,
        key_prefix: &str,
        opts: LedgerOptions,
    ) -> Result<Self> {
        let conn = match target.into() {
            RedisTarget::Manager(m) => Conn::Ready(m),
            RedisTarget::Url(url) => Conn::Lazy {
                client: redis::Client::open(url.as_str()).map_err(|e| Error::Config(format!("redis url: {e}")))?,
                manager: OnceCell::new(),
            },
        };
        let ttl_ms = i64::try_from(config.reservation_ttl.as_millis()).unwrap_or(i64::MAX);
        if ttl_ms <= 0 {
            return Err(Error::Config("ledger.reservation_ttl must be at least 1 ms".into()));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                keys: KeyLayout::new(key_prefix)?,
                limits: LimitTable::new(&config.limits)?,
                fail_mode: config.fail_mode,
                ttl_ms,
                reseed_ms: i64::try_from(config.reseed_interval.as_millis()).unwrap_or(i64::MAX),
                conversation_retention_ms: i64::try_from(config.conversation_retention.as_millis())
                    .unwrap_or(i64::MAX)
                    .max(1),
                alert_fraction: config.alert_remaining_fraction,
                alerting: Alerting::new(&config.alerts)?,
                opts,
                local: Local::default(),
                signals: SignalCache::new(config.signal_max_age),
                redis_up: AtomicBool::new(true),
                probing: AtomicBool::new(false),
                last_probe_ms: AtomicI64::new(0),
            }),
        })
    }

    /// The key layout (reports, tests, operators' tooling).
    pub fn keys(&self) -> &KeyLayout {
        &self.inner.keys
    }

    /// What this instance holds outside Redis (fail-open spend, deferred commits).
    pub fn local_stats(&self) -> LocalStats {
        self.inner.local.stats()
    }

    /// The ledger's clock.
    pub fn now_unix_ms(&self) -> i64 {
        self.inner.opts.clock.now_unix_ms()
    }
}

impl Inner {
    async fn connection(&self) -> std::result::Result<ConnectionManager, StoreFail> {
        match &self.conn {
            Conn::Ready(m) => Ok(m.clone()),
            Conn::Lazy { client, manager } => {
                if let Some(m) = manager.get() {
                    return Ok(m.clone());
                }
                let cfg = ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_max_delay(200)
                    .set_connection_timeout(self.opts.op_timeout);
                let made = manager.get_or_try_init(|| ConnectionManager::new_with_config(client.clone(), cfg)).await;
                made.cloned().map_err(|e| StoreFail::from_redis(&e))
            }
        }
    }

    /// True when the last Redis call answered.
    pub fn redis_up(&self) -> bool {
        self.redis_up.load(Ordering::SeqCst)
    }

    /// Runs one Redis call within the op timeout, through a small circuit breaker: while
    /// Redis is down only one probe runs per interval, every other call fails at once (and
    /// the fail mode decides). The first call that succeeds closes it again.
    async fn guarded<T>(
        &self,
        call: impl std::future::Future<Output = std::result::Result<T, StoreFail>>,
    ) -> std::result::Result<T, StoreFail> {
        let _probe = if self.redis_up() {
            None
        } else {
            let now = triage_core::now_unix_ms();
            let due = now.saturating_sub(self.last_probe_ms.load(Ordering::SeqCst)) >= PROBE_INTERVAL_MS;
            if !due || self.probing.swap(true, Ordering::SeqCst) {
                return Err(StoreFail::Down("redis unreachable (circuit open, probing)".into()));
            }
            Some(ProbeGuard { probing: &self.probing, last_probe_ms: &self.last_probe_ms })
        };
        let r = match tokio::time::timeout(self.opts.op_timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(StoreFail::Down(format!("redis did not answer within {:?}", self.opts.op_timeout))),
        };
        self.redis_up.store(!matches!(r, Err(StoreFail::Down(_))), Ordering::SeqCst);
        r
    }

    /// Runs a script (EVALSHA, loading it on NOSCRIPT) within the op timeout.
    pub async fn eval<T: FromRedisValue>(&self, inv: &ScriptInvocation<'_>) -> std::result::Result<T, StoreFail> {
        let run = async {
            let mut c = self.connection().await?;
            inv.invoke_async(&mut c).await.map_err(|e| StoreFail::from_redis(&e))
        };
        self.guarded(run).await
    }

    /// Runs a pipeline (plain reads) within the op timeout.
    pub async fn query<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> std::result::Result<T, StoreFail> {
        let run = async {
            let mut c = self.connection().await?;
            pipe.query_async(&mut c).await.map_err(|e| StoreFail::from_redis(&e))
        };
        self.guarded(run).await
    }
}

#[async_trait::async_trait]
impl Ledger for RedisLedger {
    async fn reserve(&self, req: pb::ReserveRequest) -> Result<pb::ReserveResponse> {
        let now = self.now_unix_ms();
        let out = self.reserve_at(req, now).await;
        self.after_call(out.is_ok()).await;
        out
    }

    async fn commit(&self, req: pb::CommitRequest) -> Result<pb::CommitResponse> {
        let now = self.now_unix_ms();
        let out = self.commit_at(req, now).await;
        self.after_call(out.is_ok()).await;
        out
    }

    async fn release(&self, req: pb::ReleaseRequest) -> Result<pb::ReleaseResponse> {
        let now = self.now_unix_ms();
        let out = self.release_at(req, now).await;
        self.after_call(out.is_ok()).await;
        out
    }

    async fn spend(&self, req: pb::SpendRequest) -> Result<pb::SpendResponse> {
        let now = self.now_unix_ms();
        let out = self.spend_at(req, now).await;
        self.after_call(out.is_ok()).await;
        out
    }

    async fn limits(&self, req: pb::LimitsRequest) -> Result<pb::LimitsResponse> {
        let now = self.now_unix_ms();
        let out = self.limits_at(&req.scopes, now).await;
        self.after_call(out.is_ok()).await;
        out
    }
}
