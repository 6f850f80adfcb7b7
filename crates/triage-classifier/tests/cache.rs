//! The Redis cache against a real redis-server: hit, miss, version change, TTL, outage; and
//! the in-process layer in front of it: no Redis call on a hit, bounded, expiring with Redis.

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

    assert_eq!(c.stats(), CacheStats { local_hits: 0, hits: 3, misses: 3, errors: 0 });
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

/// Calls of one Redis command so far (`INFO commandstats`), e.g. `get`.
async fn redis_calls(url: &str, command: &str) -> std::result::Result<u64, Box<dyn std::error::Error>> {
    let mut conn = redis::Client::open(url)?.get_multiplexed_async_connection().await?;
    Ok(triage_testkit::command_stats(&mut conn).await?.get(command).map_or(0, |s| s.calls))
}

#[tokio::test]
async fn a_local_hit_makes_no_redis_call() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut redis = RedisServer::start()?;
    let url = redis.url();
    let (inner, calls) = counting()?;
    let c = CachedClassifier::new(inner, &url, "v", 4, Duration::from_secs(60))?.with_local_entries(100);

    let first = c.classify(req("Where is my order?", &[])).await?;
    assert!(!first.cache_hit);
    let (gets, sets) = (redis_calls(&url, "get").await?, redis_calls(&url, "set").await?);
    assert_eq!((gets, sets), (1, 1));
    for _ in 0..3 {
        let again = c.classify(req("  where IS my   order? ", &[])).await?;
        assert!(again.cache_hit, "a local hit is a cache hit");
        assert_eq!(again.classification, first.classification);
    }
    assert_eq!(redis_calls(&url, "get").await?, gets, "local hits must not read Redis");
    assert_eq!(redis_calls(&url, "set").await?, sets);
    assert_eq!(c.stats(), CacheStats { local_hits: 3, hits: 0, misses: 1, errors: 0 });
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // With Redis gone, a local hit is still a hit, and nothing even tries to connect.
    redis.stop();
    assert!(c.classify(req("where is my order?", &[])).await?.cache_hit);
    assert_eq!(c.stats().errors, 0, "{:?}", c.stats());
    Ok(())
}

#[tokio::test]
async fn a_redis_hit_fills_the_local_layer() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let redis = RedisServer::start()?;
    let url = redis.url();
    // Another instance (another gateway) classified it first.
    let (inner, _) = counting()?;
    let other = CachedClassifier::new(inner, &url, "v", 4, Duration::from_secs(60))?;
    other.classify(req("can I pay by card?", &[])).await?;

    let (inner, calls) = counting()?;
    let c = CachedClassifier::new(inner, &url, "v", 4, Duration::from_secs(60))?.with_local_entries(100);
    assert!(c.classify(req("can I pay by card?", &[])).await?.cache_hit);
    let gets = redis_calls(&url, "get").await?;
    assert!(c.classify(req("can I pay by card?", &[])).await?.cache_hit);
    assert_eq!(redis_calls(&url, "get").await?, gets);
    assert_eq!(c.stats(), CacheStats { local_hits: 1, hits: 1, misses: 0, errors: 0 });
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    Ok(())
}

#[tokio::test]
async fn a_version_change_misses_the_local_layer_too() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let redis = RedisServer::start()?;
    let (inner, _) = counting()?;
    let v1 =
        CachedClassifier::new(inner, &redis.url(), "heads-aaaa", 4, Duration::from_secs(60))?.with_local_entries(100);
    v1.classify(req("where is my order?", &[])).await?;
    assert!(v1.classify(req("where is my order?", &[])).await?.cache_hit);
    assert_eq!(v1.stats().local_hits, 1);

    let (inner, calls) = counting()?;
    let v2 =
        CachedClassifier::new(inner, &redis.url(), "heads-bbbb", 4, Duration::from_secs(60))?.with_local_entries(100);
    assert!(!v2.classify(req("where is my order?", &[])).await?.cache_hit);
    assert_eq!(v2.stats(), CacheStats { local_hits: 0, hits: 0, misses: 1, errors: 0 });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn the_local_layer_holds_at_most_its_capacity() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut redis = RedisServer::start()?;
    let (inner, calls) = counting()?;
    let c = CachedClassifier::new(inner, &redis.url(), "v", 4, Duration::from_secs(60))?.with_local_entries(3);
    for i in 0..50 {
        c.classify(req(&format!("question number {i}"), &[])).await?;
        assert!(c.local_len() <= 3);
    }
    assert_eq!(c.local_len(), 3);
    // Least recently used goes first: touch 47, add 50, and 48 is the one evicted.
    assert!(c.classify(req("question number 47", &[])).await?.cache_hit);
    c.classify(req("question number 50", &[])).await?;
    assert_eq!(c.local_len(), 3);
    // Without Redis only the local layer can answer.
    redis.stop();
    let before = calls.load(Ordering::SeqCst);
    for (i, cached) in [(47, true), (49, true), (50, true), (48, false), (0, false)] {
        let r = c.classify(req(&format!("question number {i}"), &[])).await?;
        assert_eq!(r.cache_hit, cached, "question {i}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), before + 2);
    Ok(())
}

#[tokio::test]
async fn local_entries_expire_with_the_ttl() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let redis = RedisServer::start()?;
    let (inner, calls) = counting()?;
    let c = CachedClassifier::new(inner, &redis.url(), "v", 4, Duration::from_millis(300))?.with_local_entries(100);
    c.classify(req("what time do you open?", &[])).await?;
    assert!(c.classify(req("what time do you open?", &[])).await?.cache_hit);
    assert_eq!(c.stats().local_hits, 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(!c.classify(req("what time do you open?", &[])).await?.cache_hit);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    Ok(())
}

#[tokio::test]
async fn a_local_entry_from_redis_expires_when_the_redis_entry_does()
-> std::result::Result<(), Box<dyn std::error::Error>> {
    let redis = RedisServer::start()?;
    // Written by an instance with a short TTL...
    let (inner, _) = counting()?;
    let writer = CachedClassifier::new(inner, &redis.url(), "v", 4, Duration::from_millis(1000))?;
    writer.classify(req("do you ship to Chile?", &[])).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...read by one whose own TTL is long: the local copy still lives only ~700 ms more.
    let (inner, calls) = counting()?;
    let c = CachedClassifier::new(inner, &redis.url(), "v", 4, Duration::from_secs(3600))?.with_local_entries(100);
    assert!(c.classify(req("do you ship to Chile?", &[])).await?.cache_hit);
    assert!(c.classify(req("do you ship to Chile?", &[])).await?.cache_hit);
    assert_eq!(c.stats().local_hits, 1);
    tokio::time::sleep(Duration::from_millis(850)).await;
    assert!(!c.classify(req("do you ship to Chile?", &[])).await?.cache_hit);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn zero_local_entries_is_redis_only() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let redis = RedisServer::start()?;
    let url = redis.url();
    let (inner, _) = counting()?;
    let c = CachedClassifier::new(inner, &url, "v", 4, Duration::from_secs(60))?.with_local_entries(0);
    c.classify(req("hola", &[])).await?;
    assert!(c.classify(req("hola", &[])).await?.cache_hit);
    assert_eq!(c.stats(), CacheStats { local_hits: 0, hits: 1, misses: 1, errors: 0 });
    assert_eq!((redis_calls(&url, "get").await?, redis_calls(&url, "pttl").await?), (2, 0));
    assert_eq!(c.local_len(), 0);
    Ok(())
}
