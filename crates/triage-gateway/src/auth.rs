//! Bearer API keys mapped to tenants, and per-tenant rate limits, shared by gRPC and HTTP.
//!
//! Keys are stored as sha256 digests only; a presented key is hashed and compared against
//! every stored digest in constant time, so neither timing nor errors say how close a guess
//! was. The tenant always comes from the key, never from the request.

use crate::grpc::Tenant;
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use triage_core::Config;
use triage_core::config::{ApiKeyConfig, RateLimit};

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing, unknown or revoked key. Deliberately says nothing more.
    #[error("invalid or missing API key")]
    Unauthenticated,
    /// The tenant is over one of its rates.
    #[error("rate limit exceeded: {what} per minute; retry after {}s", retry_after.as_secs())]
    RateLimited {
        /// `requests` or `tokens`.
        what: &'static str,
        /// When one more request would be admitted.
        retry_after: Duration,
    },
    /// The keys file could not be read or is malformed.
    #[error("auth.keys_file {path}: {reason}")]
    KeysFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

struct StoredKey {
    digest: [u8; 32],
    tenant: String,
    revoked: bool,
}

/// Key store and rate limiter of one gateway process.
pub struct Auth {
    /// Current keys: inline ones plus the keys file, swapped whole on reload.
    keys: RwLock<Arc<Vec<StoredKey>>>,
    inline: Vec<ApiKeyConfig>,
    keys_file: Option<PathBuf>,
    /// Fixed at startup: a keys file that later empties refuses everyone rather than
    /// switching authentication off.
    enabled: bool,
    default_tenant: String,
    limiter: RateLimiter,
}

fn stored(entries: Vec<ApiKeyConfig>, origin: &Path) -> Result<Vec<StoredKey>, AuthError> {
    let mut keys = Vec::with_capacity(entries.len());
    for (i, k) in entries.into_iter().enumerate() {
        let digest = parse_digest(&k.sha256).ok_or_else(|| AuthError::KeysFile {
            path: origin.to_path_buf(),
            reason: format!("[{i}].sha256: must be 64 hex characters (sha256 of the key)"),
        })?;
        if let Some(why) = triage_core::config::tenant_name_problem(&k.tenant) {
            return Err(AuthError::KeysFile { path: origin.to_path_buf(), reason: format!("[{i}].tenant: {why}") });
        }
        keys.push(StoredKey { digest, tenant: k.tenant, revoked: k.revoked });
    }
    Ok(keys)
}

impl Auth {
    /// Keys from `auth.keys` and `auth.keys_file`; limits from `auth.rate_limits`.
    pub fn from_config(config: &Config) -> Result<Arc<Auth>, AuthError> {
        let keys_file = config.auth.keys_file.as_ref().map(|f| config.resolve_path(f));
        let limits = &config.auth.rate_limits;
        let auth = Auth {
            keys: RwLock::new(Arc::new(Vec::new())),
            inline: config.auth.keys.clone(),
            enabled: !config.auth.keys.is_empty() || keys_file.is_some(),
            keys_file,
            default_tenant: config.server.default_tenant.clone(),
            limiter: RateLimiter::new(limits.default, limits.tenants.clone().into_iter().collect()),
        };
        auth.reload()?;
        Ok(Arc::new(auth))
    }

    /// Re-reads the keys file (a rotated Secret, a revoked key); on error the keys in use stay.
    pub fn reload(&self) -> Result<(), AuthError> {
        let mut entries = self.inline.clone();
        if let Some(file) = &self.keys_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| AuthError::KeysFile { path: file.clone(), reason: e.to_string() })?;
            let from_file: Vec<ApiKeyConfig> = serde_yaml::from_str(&text)
                .map_err(|e| AuthError::KeysFile { path: file.clone(), reason: e.to_string() })?;
            entries.extend(from_file);
        }
        let keys = stored(entries, self.keys_file.as_deref().unwrap_or(Path::new("auth.keys")))?;
        *self.keys.write() = Arc::new(keys);
        Ok(())
    }

    /// Reloads the keys file every `interval` until `stop`.
    pub fn spawn_reload(self: &Arc<Self>, interval: Duration, stop: tokio_util::sync::CancellationToken) {
        if self.keys_file.is_none() {
            return;
        }
        let auth = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                if let Err(e) = auth.reload() {
                    tracing::warn!(error = %e, "keeping the API keys in use");
                }
            }
        });
    }

    /// True when keys are configured; otherwise every caller is the default tenant.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The tenant of an `authorization` header value (`Bearer KEY`).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<String, AuthError> {
        if !self.enabled() {
            return Ok(self.default_tenant.clone());
        }
        let key = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(AuthError::Unauthenticated)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Every stored key is compared, with no early exit, so timing does not depend on
        // which (if any) entry matches.
        let keys = self.keys.read().clone();
        let mut found: Option<&StoredKey> = None;
        for k in keys.iter() {
            if bool::from(k.digest.ct_eq(&digest)) {
                found = Some(k);
            }
        }
        match found {
            Some(k) if !k.revoked => Ok(k.tenant.clone()),
            _ => Err(AuthError::Unauthenticated),
        }
    }

    /// The per-tenant rate limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// A tonic interceptor authenticating `triage.v1.Router` calls.
    pub fn grpc_interceptor(self: &Arc<Self>) -> GrpcAuth {
        GrpcAuth(self.clone())
    }
}

fn parse_digest(hex_str: &str) -> Option<[u8; 32]> {
    hex::decode(hex_str.trim()).ok()?.try_into().ok()
}

/// Sets the `Tenant` extension from the `authorization` metadata and applies the request
/// rate; tokens are settled by the HTTP endpoint, which knows the request's size.
#[derive(Clone)]
pub struct GrpcAuth(Arc<Auth>);

impl tonic::service::Interceptor for GrpcAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let header = req.metadata().get("authorization").and_then(|v| v.to_str().ok());
        let tenant =
            self.0.authenticate(header).map_err(|_| tonic::Status::unauthenticated("invalid or missing API key"))?;
        if let Err(e) = self.0.limiter.admit(&tenant, 0) {
            let mut status = tonic::Status::resource_exhausted(e.to_string());
            if let AuthError::RateLimited { retry_after, .. } = e
                && let Ok(v) = retry_after.as_secs().max(1).to_string().parse()
            {
                status.metadata_mut().insert("retry-after", v);
            }
            return Err(status);
        }
        req.extensions_mut().insert(Tenant(tenant));
        Ok(req)
    }
}

/// A token bucket refilled continuously at `capacity` per minute.
struct Bucket {
    level: f64,
    capacity: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_minute: u32, now: Instant) -> Option<Bucket> {
        (per_minute > 0).then(|| Bucket { level: f64::from(per_minute), capacity: f64::from(per_minute), last: now })
    }

    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + secs * self.capacity / 60.0).min(self.capacity);
        self.last = now;
    }

    /// Time until `need` (clamped to the capacity, so a large request is admitted from a
    /// full bucket instead of never) is available; zero when it is now.
    fn wait_for(&self, need: f64) -> Duration {
        let need = need.min(self.capacity);
        if self.level >= need {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((need - self.level) * 60.0 / self.capacity)
    }
}

struct TenantBuckets {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

/// In-process per-tenant request and token rates (each gateway replica limits on its own).
pub struct RateLimiter {
    default: RateLimit,
    per_tenant: HashMap<String, RateLimit>,
    buckets: Mutex<HashMap<String, TenantBuckets>>,
}

impl RateLimiter {
    /// Limits `default` for every tenant except those in `per_tenant`.
    pub fn new(default: RateLimit, per_tenant: HashMap<String, RateLimit>) -> RateLimiter {
        RateLimiter { default, per_tenant, buckets: Mutex::new(HashMap::new()) }
    }

    /// Admits one request expected to use `tokens`, or says when to retry. Nothing is taken
    /// from either bucket unless both have room.
    pub fn admit(&self, tenant: &str, tokens: u64) -> Result<(), AuthError> {
        let limit = self.per_tenant.get(tenant).copied().unwrap_or(self.default);
        if limit == RateLimit::default() {
            return Ok(());
        }
        let now = Instant::now();
        let mut all = self.buckets.lock();
        let b = all.entry(tenant.to_string()).or_insert_with(|| TenantBuckets {
            requests: Bucket::new(limit.requests_per_minute, now),
            tokens: Bucket::new(limit.tokens_per_minute, now),
        });
        if let Some(r) = &mut b.requests {
            r.refill(now);
            let wait = r.wait_for(1.0);
            if !wait.is_zero() {
                return Err(AuthError::RateLimited { what: "requests", retry_after: ceil_secs(wait) });
            }
        }
        let need = (tokens as f64).max(1.0);
        if let Some(t) = &mut b.tokens {
            t.refill(now);
            let wait = t.wait_for(need);
            if !wait.is_zero() {
                return Err(AuthError::RateLimited { what: "tokens", retry_after: ceil_secs(wait) });
            }
        }
        if let Some(r) = &mut b.requests {
            r.level -= 1.0;
        }
        if let Some(t) = &mut b.tokens {
            t.level -= tokens as f64;
        }
        Ok(())
    }

    /// Settles an admitted request to what it really used: the unused part of the estimate
    /// goes back, an overrun is owed (the bucket may go negative).
    pub fn settle(&self, tenant: &str, estimated: u64, actual: u64) {
        if let Some(TenantBuckets { tokens: Some(t), .. }) = self.buckets.lock().get_mut(tenant) {
            t.level = (t.level + estimated as f64 - actual as f64).min(t.capacity);
        }
    }
}

fn ceil_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(keys: &[(&str, &str, bool)], limit: RateLimit) -> Arc<Auth> {
        let mut cfg = Config::embedded_default().unwrap();
        cfg.auth.keys = keys
            .iter()
            .map(|(k, t, r)| ApiKeyConfig {
                sha256: hex::encode(Sha256::digest(k.as_bytes())),
                tenant: t.to_string(),
                revoked: *r,
            })
            .collect();
        cfg.auth.rate_limits.default = limit;
        Auth::from_config(&cfg).unwrap()
    }

    #[test]
    fn key_maps_to_its_tenant_and_nothing_else_passes() {
        let a = auth(
            &[("k-acme", "acme", false), ("k-old", "acme", true), ("k-beta", "beta", false)],
            RateLimit::default(),
        );
        assert_eq!(a.authenticate(Some("Bearer k-acme")).unwrap(), "acme");
        assert_eq!(a.authenticate(Some("Bearer k-beta")).unwrap(), "beta");
        for bad in [
            None,
            Some(""),
            Some("Bearer "),
            Some("k-acme"),
            Some("Bearer k-old"),
            Some("Bearer k-acmE"),
            Some("Basic k-acme"),
        ] {
            let e = a.authenticate(bad).unwrap_err();
            assert_eq!(e.to_string(), "invalid or missing API key", "{bad:?}");
        }
    }

    #[test]
    fn keys_file_reload_revokes_and_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.yaml");
        let entry = |revoked: bool| {
            format!("- {{sha256: {}, tenant: acme, revoked: {revoked}}}\n", hex::encode(Sha256::digest(b"k1")))
        };
        std::fs::write(&file, entry(false)).unwrap();
        let mut cfg = Config::embedded_default().unwrap();
        cfg.auth.keys_file = Some(file.clone());
        let a = Auth::from_config(&cfg).unwrap();
        assert_eq!(a.authenticate(Some("Bearer k1")).unwrap(), "acme");
        std::fs::write(&file, entry(true)).unwrap();
        a.reload().unwrap();
        a.authenticate(Some("Bearer k1")).unwrap_err();
        // A broken file keeps the keys in use; an empty one refuses everyone.
        std::fs::write(&file, "{not: a list").unwrap();
        a.reload().unwrap_err();
        a.authenticate(Some("Bearer k1")).unwrap_err();
        let colon = format!("- {{sha256: {}, tenant: 'a:b'}}\n", hex::encode(Sha256::digest(b"k1")));
        std::fs::write(&file, colon).unwrap();
        assert!(a.reload().unwrap_err().to_string().contains("[0].tenant"));
        std::fs::write(&file, "[]").unwrap();
        a.reload().unwrap();
        assert!(a.enabled());
        a.authenticate(Some("Bearer anything")).unwrap_err();
    }

    #[test]
    fn disabled_without_keys() {
        let a = auth(&[], RateLimit::default());
        assert!(!a.enabled());
        assert_eq!(a.authenticate(Some("Bearer anything")).unwrap(), "default");
    }

    #[test]
    fn request_and_token_buckets_refuse_with_retry_after() {
        let l = RateLimiter::new(RateLimit { requests_per_minute: 2, tokens_per_minute: 100 }, HashMap::new());
        l.admit("t", 10).unwrap();
        l.admit("t", 10).unwrap();
        match l.admit("t", 10) {
            Err(AuthError::RateLimited { what: "requests", retry_after }) => assert!(retry_after.as_secs() >= 1),
            other => panic!("{other:?}"),
        }
        // Another tenant has its own buckets.
        l.admit("u", 90).unwrap();
        match l.admit("u", 50) {
            Err(AuthError::RateLimited { what: "tokens", .. }) => {}
            other => panic!("{other:?}"),
        }
        let l = RateLimiter::new(RateLimit { requests_per_minute: 0, tokens_per_minute: 100 }, HashMap::new());
        l.admit("u", 100).unwrap();
        l.admit("u", 50).unwrap_err();
        // The unused part of an estimate comes back.
        l.settle("u", 100, 20);
        l.admit("u", 50).unwrap();
    }
}
