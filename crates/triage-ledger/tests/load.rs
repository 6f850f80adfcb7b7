//! Exactness under load: 2,000 concurrent reserve -> commit/release cycles through two
//! ledger instances ("two gateways") sharing one redis-server, against tight limits.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use triage_core::config::{FailMode, Window};
use triage_ledger::{Ledger, LedgerOptions, ManualClock, RedisLedger};
use triage_proto::pb;
use triage_testkit::RedisServer;

const REQUESTS: u64 = 2_000;
const TENANT_DAY_LIMIT: i64 = 2_000_000;
const USER_HOUR_LIMIT: i64 = 120_000;

fn splitmix(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[derive(Default)]
struct Expected {
    by_scope: Mutex<HashMap<(String, String), i64>>,
    by_model: Mutex<HashMap<String, i64>>,
    total: AtomicI64,
    commits: AtomicU64,
    refused: AtomicU64,
    released: AtomicU64,
}

async fn gateway(ledger: RedisLedger, other: RedisLedger, i: u64, exp: Arc<Expected>) {
    let mut rng = splitmix(i);
    let user = format!("u{}", rng() % 20);
    let model = format!("m{}", rng() % 3);
    let conv = format!("c{}", rng() % 50);
    let amount = 1 + (rng() % 5_000) as i64;
    let id = format!("req-{i}");
    let mut req = reserve(&id, amount, scopes("acme", &user, &model, &conv));
    req.model = model.clone();
    let r = ledger.reserve(req).await.unwrap();
    if !r.granted {
        assert!(!r.refusal.is_empty() && r.resets_at_unix_ms > T0, "{r:?}");
        exp.refused.fetch_add(1, Ordering::SeqCst);
        return;
    }
    tokio::task::yield_now().await;
    // A quarter of the commits land on the other gateway (it finds the reservation by id).
    let settle = if i % 4 == 3 { &other } else { &ledger };
    if rng().is_multiple_of(10) {
        assert!(settle.release(release(&id)).await.unwrap().released);
        exp.released.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let actual = (rng() % (amount as u64 + 1)) as i64;
    let c = settle
        .commit(pb::CommitRequest {
            request_id: id,
            actual_micros: actual,
            conversation_id: conv.clone(),
            model: model.clone(),
            revenue_micros: None,
        })
        .await
        .unwrap();
    assert_eq!((c.charged_micros, c.already_committed), (actual, false));
    exp.total.fetch_add(actual, Ordering::SeqCst);
    exp.commits.fetch_add(1, Ordering::SeqCst);
    let mut by_scope = exp.by_scope.lock().unwrap();
    for (kind, sid) in
        [("user", format!("acme:{user}")), ("model", model.clone()), ("conversation", format!("acme:{conv}"))]
    {
        *by_scope.entry((kind.to_string(), sid)).or_default() += actual;
    }
    *exp.by_model.lock().unwrap().entry(model).or_default() += actual;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_2000_concurrent_requests_are_exact() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(
        vec![
            limit("tenant", Some("acme"), Window::Day, TENANT_DAY_LIMIT),
            limit("user", None, Window::Hour, USER_HOUR_LIMIT),
        ],
        FailMode::Closed,
    );
    let clock = Arc::new(ManualClock::new(T0));
    // Generous timeout: 2,000 requests in flight on two shared cores queue for a while,
    // and this test is about exactness, not latency.
    let opts = LedgerOptions { clock: clock.clone(), op_timeout: Duration::from_secs(60), ..Default::default() };
    // One gateway brings its own connection manager, the other connects from the URL.
    let client = redis::Client::open(redis.url()).unwrap();
    let conn = redis::aio::ConnectionManager::new(client).await.unwrap();
    let a = RedisLedger::with_options(conn, &cfg, "load", opts.clone()).unwrap();
    let b = RedisLedger::with_options(redis.url(), &cfg, "load", opts).unwrap();
    let exp = Arc::new(Expected::default());

    let started = Instant::now();
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (l, o) = if i % 2 == 0 { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
            tokio::spawn(gateway(l, o, i, exp.clone()))
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();

    let total = exp.total.load(Ordering::SeqCst);
    let commits = exp.commits.load(Ordering::SeqCst);
    let refused = exp.refused.load(Ordering::SeqCst);
    let released = exp.released.load(Ordering::SeqCst);
    eprintln!(
        "{REQUESTS} requests in {elapsed:?}: {commits} committed, {released} released, {refused} refused; \
         charged total {total} micros ({})",
        triage_core::Micros(total)
    );
    assert_eq!(commits + released + refused, REQUESTS);
    assert!(refused > 0, "the limits must bind for this test to mean anything");

    let rows = a.spend(pb::SpendRequest::default()).await.unwrap().rows;
    let mut seen = HashMap::new();
    for r in &rows {
        let s = r.scope.clone().unwrap();
        assert_eq!(r.reserved_micros, 0, "nothing left reserved: {r:?}");
        if r.limit_micros > 0 {
            assert!(r.spent_micros + r.reserved_micros <= r.limit_micros, "over its limit: {r:?}");
        }
        if r.window == "day" {
            seen.insert((s.kind.clone(), s.id.clone()), r.spent_micros);
        }
        if s.kind == "global" || s.kind == "tenant" {
            assert_eq!((r.spent_micros, r.requests), (total, commits), "{r:?}");
        }
    }
    let expected = exp.by_scope.lock().unwrap().clone();
    for (k, v) in &expected {
        if k.0 == "conversation" {
            // Unlimited conversations are kept whole-life, in their scope hashes.
            let life = a.conversation_spend(&k.1).await.unwrap().map(|c| c.cost.spent.0);
            seen.insert(k.clone(), life.unwrap_or(0));
        }
        assert_eq!(seen.get(k), Some(v), "{k:?}");
    }
    for kind in ["user", "model", "conversation"] {
        let sum: i64 = seen.iter().filter(|((k, _), _)| k == kind).map(|(_, v)| v).sum();
        assert_eq!(sum, total, "{kind} spend adds up to the total");
    }
    let models = a.model_spend(Window::Day).await.unwrap();
    let by_model = exp.by_model.lock().unwrap().clone();
    for (m, v) in by_model {
        assert_eq!(models[&m].spent.0, v);
    }
    // Nothing is left for the reaper; the copies kept by the gateway that did not settle
    // (cross-instance commits) are pruned with it.
    let later = T0 + 2 * 300_000 + 1;
    assert_eq!(a.reap_at(later).await.unwrap() + b.reap_at(later).await.unwrap(), 0);
    assert_eq!(a.local_stats().inflight + b.local_stats().inflight, 0);
    assert_eq!(totals(&a, "global", "", "day").await, (total, 0));
}
