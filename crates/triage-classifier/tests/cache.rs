//! The Redis cache against a real redis-server: hit, miss, version change, TTL, outage.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use triage_classifier::{CacheStats, CachedClassifier, Classifier, HeuristicClassifier, Result};
use triage_proto::pb;
use triage_testkit::RedisServer;

/// Counts calls to the wrapped classifier.
struct Counting {
    inner: HeuristicClassifier,
    calls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Classifier for Counting {
    async fn classify(&self, req: pb::ClassifyRequest) -> Result<pb::ClassifyResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.classify(req).await
    }
}

fn counting() -> std::result::Result<(Counting, Arc<AtomicUsize>), Box<dyn std::error::Error>> {
    let calls = Arc::new(AtomicUsize::new(0));
    Ok((Counting { inner: HeuristicClassifier::new()?, calls: calls.clone() }, calls))
}

fn req(q: &str, history: &[(&str, pb::Role)]) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        query: q.into(),
        history: history
            .iter()
            .map(|(c, r)| pb::Message { role: *r as i32, content: (*c).into(), ..Default::default() })
            .collect(),
    }
}

#[tokio::test]
async fn hit_miss_and_history_fingerprint() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let redis = RedisServer::start()?;
    let (inner, calls) = counting()?;
    let c = CachedClassifier::new(inner, &redis.url(), "heuristic-v1", 4, Duration::from_secs(60))?;

    let first = c.classify(req("Where is my order?", &[])).await?;
    assert!(!first.cache_hit);
    // Same query after normalisation (case, spaces): a hit, and the inner is not called.
    let second = c.classify(req("  where IS my   order? ", &[])).await?;
    assert!(second.cache_hit);
    assert_eq!(first.classification, second.classification);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Same query, different history: a different key.
    let h = [("do you have it in red?", pb::Role::User)];
    assert!(!c.classify(req("where is my order?", &h)).await?.cache_hit);
    assert!(c.classify(req("where is my order?", &h)).await?.cache_hit);
    // Turns beyond the last 4 do not change the key.
    let long = [
        ("old turn", pb::Role::User),
        ("a", pb::Role::Assistant),
        ("b", pb::Role::User),
        ("c", pb::Role::Assistant),
        ("d", pb::Role::User),
    ];
    let long2 = [
        ("other old turn", pb::Role::User),
        ("a", pb::Role::Assistant),
        ("b", pb::Role::User),
        ("c", pb::Role::Assistant),
        ("d", pb::Role::User),
    ];
    assert!(!c.classify(req("ok", &long)).await?.cache_hit);
    assert!(c.classify(req("ok", &long2)).await?.cache_hit);

    assert_eq!(c.stats(), CacheStats { hits: 3, misses: 3, errors: 0 });
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    Ok(())
}

#[tokio::test]
async fn a_version_change_never_serves_old_labels() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let redis = RedisServer::start()?;
    let (inner, _) = counting()?;
    let v1 = CachedClassifier::new(inner, &redis.url(), "minilm-l6-v2+heads-aaaa", 4, Duration::from_secs(60))?;
    v1.classify(req("where is my order?", &[])).await?;
    assert!(v1.classify(req("where is my order?", &[])).await?.cache_hit);

    let (inner, calls) = counting()?;
    let v2 = CachedClassifier::new(inner, &redis.url(), "minilm-l6-v2+heads-bbbb", 4, Duration::from_secs(60))?;
    let r = v2.classify(req("where is my order?", &[])).await?;
    assert!(!r.cache_hit, "new version must not read the old version's entry");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_ne!(v1.key(&req("x", &[])), v2.key(&req("x", &[])));
    Ok(())
}

#[tokio::test]
async fn entries_expire_after_the_ttl() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let redis = RedisServer::start()?;
    let (inner, _) = counting()?;
    let c = CachedClassifier::new(inner, &redis.url(), "v", 4, Duration::from_millis(300))?;
    c.classify(req("what time do you open?", &[])).await?;
    assert!(c.classify(req("what time do you open?", &[])).await?.cache_hit);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(!c.classify(req("what time do you open?", &[])).await?.cache_hit);
    Ok(())
}

#[tokio::test]
async fn redis_outage_never_fails_classification() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut redis = RedisServer::start()?;
    let (inner, calls) = counting()?;
    let c = CachedClassifier::new(inner, &redis.url(), "v", 4, Duration::from_secs(60))?
        .with_op_timeout(Duration::from_millis(100));
    c.classify(req("hola", &[])).await?;
    redis.stop();
    for _ in 0..3 {
        let r = c.classify(req("hola", &[])).await?;
        assert!(!r.cache_hit);
        assert!(r.classification.is_some());
    }
    assert!(c.stats().errors >= 1, "{:?}", c.stats());
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    // Never connected at all: still classifies.
    let (inner, _) = counting()?;
    let dead = CachedClassifier::new(inner, "redis://127.0.0.1:1", "v", 4, Duration::from_secs(60))?;
    assert!(dead.classify(req("hola", &[])).await?.classification.is_some());
    Ok(())
}
