//! A Redis cache in front of any [`Classifier`].
//!
//! Key: `<prefix>:cls:<version>:<sha256(normalised query, history fingerprint)>`, where the
//! fingerprint covers exactly the turns the classifier reads. The classifier version is in
//! the key, so new heads or a new model never see old labels. The cache is an optimisation
//! only: a slow, down or confused Redis is counted and bypassed, never an error.

use crate::{Classifier, Result, lang};
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use triage_proto::pb;

/// Counters of a [`CachedClassifier`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answers served from Redis.
    pub hits: u64,
    /// Lookups that found nothing (the inner classifier answered).
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
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
}

/// A failed connect is not retried sooner than this, so an outage costs one timeout per
/// second, not one per request.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

impl<C: Classifier> CachedClassifier<C> {
    /// Caches `inner`, whose labels are named `version` and depend on its last
    /// `history_turns` turns, in Redis at `redis_url` for `ttl`. Connects lazily.
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

    /// Hit, miss and error counts so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
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
        cache_key(&self.prefix, &self.version, &req.query, &req.history, self.history_turns)
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

    async fn get(&self, conn: &mut ConnectionManager, key: &str) -> std::result::Result<Option<Entry>, String> {
        let cmd = redis::cmd("GET").arg(key).to_owned();
        let fut = cmd.query_async::<Option<String>>(conn);
        match tokio::time::timeout(self.op_timeout, fut).await {
            Ok(Ok(Some(s))) => serde_json::from_str(&s).map(Some).map_err(|e| format!("bad entry: {e}")),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
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
    let mut h = Sha256::new();
    h.update(lang::normalize(query).as_bytes());
    h.update([0x1f]);
    h.update(history_fingerprint(history, turns));
    format!("{prefix}:cls:{version}:{}", hex::encode(h.finalize()))
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
        let key = self.key(&req);
        let mut conn = self.connection().await;
        if conn.is_none() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = conn.as_mut() {
            match self.get(c, &key).await {
                Ok(Some(e)) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    let classification = pb::Classification {
                        complexity: e.complexity,
                        category: e.category,
                        requires_context: e.requires_context,
                        confidence: e.confidence,
                        language: e.language,
                        model_version: e.model_version,
                    };
                    return Ok(pb::ClassifyResponse {
                        classification: Some(classification),
                        cache_hit: true,
                        latency_us: start.elapsed().as_micros() as u64,
                    });
                }
                Ok(_) => {
                    self.misses.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.error("get", &e),
            }
        }
        let mut res = self.inner.classify(req).await?;
        if let (Some(c), Some(cls)) = (conn.as_mut(), res.classification.as_ref())
            && let Err(e) = self.set(c, &key, cls).await
        {
            self.error("set", &e);
        }
        res.latency_us = start.elapsed().as_micros() as u64;
        Ok(res)
    }
}
