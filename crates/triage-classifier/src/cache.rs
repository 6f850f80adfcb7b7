//! A Redis cache in front of any [`Classifier`], optionally fronted by a bounded in-process
//! LRU (`with_local_entries`, `classifier.cache.local_entries`).
//!
//! Key: `<prefix>:cls:<version>:<sha256(normalised query, history fingerprint)>`, where the
//! fingerprint covers exactly the turns the classifier reads. The classifier version is in
//! the key, so new heads or a new model never see old labels. The cache is an optimisation
//! only: a slow, down or confused Redis is counted and bypassed, never an error.
//!
//! The in-process layer is keyed by the same sha256 (the version is fixed per instance) and
//! is read first: a hit there makes no Redis call at all. A Redis hit fills it, expiring
//! when the Redis entry does (its PTTL, read in the same round trip as the GET); a fresh
//! classification fills both, the local entry expiring one TTL after the SET was sent, so a
//! local entry never outlives its Redis entry.

use crate::{Classifier, Result, lang};
use lru::LruCache;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use triage_proto::pb;

/// Default of `classifier.cache.local_entries`: labels kept in process (a few hundred bytes
/// each).
pub const DEFAULT_LOCAL_ENTRIES: usize = 10_000;

/// Counters of a [`CachedClassifier`]. Every classification counts once: in `local_hits`,
/// `hits`, `misses` or `errors` (the last two are answered by the inner classifier).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answers served from the in-process layer, with no Redis call.
    pub local_hits: u64,
    /// Answers served from Redis.
    pub hits: u64,
    /// Lookups that found nothing in either layer (the inner classifier answered).
    pub misses: u64,
    /// Redis failures or timeouts (the inner classifier answered).
    pub errors: u64,
}

/// What is stored per key.
#[derive(Serialize, Deserialize)]
struct Entry {
    complexity: i32,
    category: i32,
    requires_context: bool,
    confidence: f32,
    language: String,
    model_version: String,
}

/// An in-process entry: the labels and when they stop being served.
struct Local {
    classification: pb::Classification,
    expires: Instant,
}

/// Wraps a classifier with a Redis cache.
pub struct CachedClassifier<C> {
    inner: C,
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    last_connect: Mutex<Option<Instant>>,
    version: String,
    prefix: String,
    history_turns: usize,
    ttl: Duration,
    op_timeout: Duration,
    /// In-process labels by request digest; `None` when off.
    local: Option<Mutex<LruCache<[u8; 32], Local>>>,
    local_hits: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
}

/// A failed connect is not retried sooner than this, so an outage costs one timeout per
/// second, not one per request.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

impl<C: Classifier> CachedClassifier<C> {
    /// Caches `inner`, whose labels are named `version` and depend on its last
    /// `history_turns` turns, in Redis at `redis_url` for `ttl`. Connects lazily. No
    /// in-process layer until [`with_local_entries`](Self::with_local_entries).
    pub fn new(
        inner: C,
        redis_url: &str,
        version: impl Into<String>,
        history_turns: usize,
        ttl: Duration,
    ) -> Result<Self> {
        let client = redis::Client::open(redis_url).map_err(|e| crate::Error::Cache(format!("redis url: {e}")))?;
        Ok(Self {
            inner,
            client,
            conn: Mutex::new(None),
            last_connect: Mutex::new(None),
            version: version.into(),
            prefix: "triage".into(),
            history_turns,
            ttl,
            op_timeout: Duration::from_millis(100),
            local: None,
            local_hits: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// Key prefix (default `triage`, as `redis.key_prefix` in config).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Longest a Redis call may take before it is abandoned (default 100 ms).
    pub fn with_op_timeout(mut self, t: Duration) -> Self {
        self.op_timeout = t;
        self
    }

    /// Keeps up to `entries` labels in process, least recently used evicted first, in
    /// front of Redis; 0 turns the layer off.
    pub fn with_local_entries(mut self, entries: usize) -> Self {
        self.local = NonZeroUsize::new(entries).map(|n| Mutex::new(LruCache::new(n)));
        self
    }

    /// Entries in the in-process layer now, expired ones not yet evicted included.
    pub fn local_len(&self) -> usize {
        self.local.as_ref().map_or(0, |l| l.lock().len())
    }

    /// Hit, miss and error counts so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            local_hits: self.local_hits.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    /// The wrapped classifier.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// The Redis key of a request.
    pub fn key(&self, req: &pb::ClassifyRequest) -> String {
        self.redis_key(&request_digest(&req.query, &req.history, self.history_turns))
    }

    fn redis_key(&self, digest: &[u8; 32]) -> String {
        key_of(&self.prefix, &self.version, digest)
    }

    /// The unexpired in-process labels of `digest`; an expired entry is dropped.
    fn local_get(&self, digest: &[u8; 32]) -> Option<pb::Classification> {
        let mut local = self.local.as_ref()?.lock();
        match local.get(digest) {
            Some(e) if e.expires > Instant::now() => Some(e.classification.clone()),
            Some(_) => {
                local.pop(digest);
                None
            }
            None => None,
        }
    }

    fn local_put(&self, digest: [u8; 32], classification: &pb::Classification, expires: Instant) {
        if let Some(local) = &self.local
            && expires > Instant::now()
        {
            local.lock().put(digest, Local { classification: classification.clone(), expires });
        }
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        if let Some(c) = self.conn.lock().clone() {
            return Some(c);
        }
        {
            let mut last = self.last_connect.lock();
            if last.is_some_and(|t| t.elapsed() < RECONNECT_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(self.op_timeout)
            .set_response_timeout(self.op_timeout)
            .set_number_of_retries(1);
        let attempt = self.client.get_connection_manager_with_config(cfg);
        match tokio::time::timeout(self.op_timeout * 2, attempt).await {
            Ok(Ok(c)) => {
                *self.conn.lock() = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "classification cache unavailable");
                None
            }
            Err(_) => {
                tracing::warn!("classification cache: connect timed out");
                None
            }
        }
    }

    /// The entry under `key` and, when the in-process layer is on, its remaining time to
    /// live (`PTTL` in the same round trip; `None` when the key has no expiry).
    async fn get(
        &self,
        conn: &mut ConnectionManager,
        key: &str,
    ) -> std::result::Result<Option<(Entry, Option<Duration>)>, String> {
        let fut = async {
            if self.local.is_none() {
                let value = redis::cmd("GET").arg(key).query_async::<Option<String>>(conn).await?;
                return Ok((value, -1));
            }
            redis::pipe().cmd("GET").arg(key).cmd("PTTL").arg(key).query_async::<(Option<String>, i64)>(conn).await
        };
        let (value, pttl) = match tokio::time::timeout(self.op_timeout, fut).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("timed out".into()),
        };
        let Some(s) = value else { return Ok(None) };
        let entry: Entry = serde_json::from_str(&s).map_err(|e| format!("bad entry: {e}"))?;
        // -1: no expiry; -2 (gone since the GET) and 0 leave nothing to keep locally.
        let left = if pttl == -1 { None } else { Some(Duration::from_millis(pttl.max(0) as u64)) };
        Ok(Some((entry, left)))
    }

    async fn set(
        &self,
        conn: &mut ConnectionManager,
        key: &str,
        c: &pb::Classification,
    ) -> std::result::Result<(), String> {
        let entry = Entry {
            complexity: c.complexity,
            category: c.category,
            requires_context: c.requires_context,
            confidence: c.confidence,
            language: c.language.clone(),
            model_version: c.model_version.clone(),
        };
        let value = serde_json::to_string(&entry).map_err(|e| e.to_string())?;
        let ttl = self.ttl.as_millis().max(1) as u64;
        let cmd = redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ttl).to_owned();
        match tokio::time::timeout(self.op_timeout, cmd.query_async::<()>(conn)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    fn error(&self, what: &str, e: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(error = %e, "classification cache {what} failed");
    }
}

/// The cache key of a query in its conversation (see the module docs).
pub fn cache_key(prefix: &str, version: &str, query: &str, history: &[pb::Message], turns: usize) -> String {
    key_of(prefix, version, &request_digest(query, history, turns))
}

fn key_of(prefix: &str, version: &str, digest: &[u8; 32]) -> String {
    format!("{prefix}:cls:{version}:{}", hex::encode(digest))
}

/// sha256 over the normalised query and the history fingerprint: the version-free part of
/// the key.
fn request_digest(query: &str, history: &[pb::Message], turns: usize) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(lang::normalize(query).as_bytes());
    h.update([0x1f]);
    h.update(history_fingerprint(history, turns));
    h.finalize().into()
}

/// sha256 over the last `turns` user/assistant turns (role and normalised content), the
/// same turns the classifiers read.
pub fn history_fingerprint(history: &[pb::Message], turns: usize) -> [u8; 32] {
    let mut h = Sha256::new();
    let used: Vec<&pb::Message> = history
        .iter()
        .rev()
        .filter(|m| m.role != pb::Role::System as i32 && !m.content.trim().is_empty())
        .take(turns)
        .collect();
    for m in used.iter().rev() {
        h.update(m.role.to_le_bytes());
        h.update(lang::normalize(&m.content).as_bytes());
        h.update([0x1e]);
    }
    h.finalize().into()
}

#[async_trait::async_trait]
impl<C: Classifier> Classifier for CachedClassifier<C> {
    async fn classify(&self, req: pb::ClassifyRequest) -> Result<pb::ClassifyResponse> {
        let start = Instant::now();
        let digest = request_digest(&req.query, &req.history, self.history_turns);
        let hit = |classification: pb::Classification| pb::ClassifyResponse {
            classification: Some(classification),
            cache_hit: true,
            latency_us: start.elapsed().as_micros() as u64,
        };
        if let Some(c) = self.local_get(&digest) {
            self.local_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit(c));
        }
        let key = self.redis_key(&digest);
        let mut conn = self.connection().await;
        if conn.is_none() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = conn.as_mut() {
            // Taken before the request: the Redis entry lives at least `left` from here.
            let sent = Instant::now();
            match self.get(c, &key).await {
                Ok(Some((e, left))) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    let classification = pb::Classification {
                        complexity: e.complexity,
                        category: e.category,
                        requires_context: e.requires_context,
                        confidence: e.confidence,
                        language: e.language,
                        model_version: e.model_version,
                    };
                    self.local_put(digest, &classification, sent + left.unwrap_or(self.ttl).min(self.ttl));
                    return Ok(hit(classification));
                }
                Ok(_) => {
                    self.misses.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.error("get", &e),
            }
        }
        let mut res = self.inner.classify(req).await?;
        if let Some(cls) = res.classification.as_ref() {
            // Before the SET is sent, so the local entry expires no later than Redis's.
            self.local_put(digest, cls, Instant::now() + self.ttl);
            if let Some(c) = conn.as_mut()
                && let Err(e) = self.set(c, &key, cls).await
            {
                self.error("set", &e);
            }
        }
        res.latency_us = start.elapsed().as_micros() as u64;
        Ok(res)
    }
}
