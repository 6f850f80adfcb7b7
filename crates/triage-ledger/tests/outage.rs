//! Redis outages: fail-closed refuses, fail-open counts locally and reconciles after
//! recovery. RedisServer::restart comes back empty (no persistence), like a Redis that lost
//! its data: the ledger rebuilds what it knows from its own copies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use std::time::{Duration, Instant};
use triage_core::config::{FailMode, Window};
use triage_ledger::{Error, Ledger, LedgerOptions, LocalStats, RedisLedger};
use triage_proto::pb;
use triage_testkit::RedisServer;

/// Calls `spend` until Redis answers and the deferred commits are written.
async fn wait_reconciled(l: &RedisLedger) {
    let start = Instant::now();
    loop {
        let ok = l.spend(pb::SpendRequest { kind: "global".into(), ..Default::default() }).await.is_ok();
        if ok && l.local_stats().pending_commits == 0 {
            eprintln!("reconciled {:?} after restart", start.elapsed());
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "not reconciled: {:?}", l.local_stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn fail_closed_refuses_while_down_and_keeps_commits() {
    let mut redis = RedisServer::start().unwrap();
    let cfg = config(vec![limit("tenant", None, Window::Day, 1_000_000)], FailMode::Closed);
    let (l, _, _) = ledger_at(redis.url(), &cfg, "t");
    let s = scopes("acme", "u1", "fast", "c1");
    assert!(l.reserve(reserve("before", 1_000, s.clone())).await.unwrap().granted);

    redis.stop();
    let started = Instant::now();
    let e = l.reserve(reserve("during", 1_000, s.clone())).await.unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3), "bounded by the op timeout: {:?}", started.elapsed());
    assert_eq!(tonic::Status::from(e).code(), tonic::Code::Unavailable);
    // The call reserved before the outage finished: its commit errors (UNAVAILABLE) but is
    // kept for reconciliation.
    assert!(matches!(l.commit(commit("before", 600)).await, Err(Error::Store(_))));
    assert_eq!(l.local_stats().pending_commits, 1);
    assert_eq!(l.local_stats().unaccounted_spend.0, 600);
    assert!(l.limits(pb::LimitsRequest { scopes: s.clone() }).await.is_err());

    redis.restart().unwrap();
    wait_reconciled(&l).await;
    // Redis came back empty: the commit was rebuilt from this instance's copy of the
    // reservation's counters.
    let g = row(&l, "global", "", "day").await;
    assert_eq!((g.spent_micros, g.reserved_micros, g.requests), (600, 0, 1));
    assert_eq!(totals(&l, "conversation", "acme:c1", "conversation").await, (600, 0));
    // A retry of the same commit is recognised.
    assert!(l.commit(commit("before", 600)).await.unwrap().already_committed);
    assert!(l.reserve(reserve("after", 1_000, s.clone())).await.unwrap().granted);
    assert_eq!(l.local_stats(), LocalStats { inflight: 1, ..Default::default() });
}

#[tokio::test]
async fn fail_open_counts_unaccounted_spend_and_reconciles_exactly() {
    let mut redis = RedisServer::start().unwrap();
    let cfg = config(vec![limit("tenant", None, Window::Day, 1_000_000)], FailMode::Open);
    let opts = LedgerOptions { op_timeout: Duration::from_millis(250), ..LedgerOptions::default() };
    let l = RedisLedger::with_options(redis.url(), &cfg, "t", opts).unwrap();
    let s = scopes("acme", "u1", "fast", "c1");
    assert!(l.reserve(reserve("warm", 1, s.clone())).await.unwrap().granted);
    assert!(l.release(release("warm")).await.unwrap().released);

    redis.stop();
    let mut charged = 0;
    for i in 0..10 {
        let t = Instant::now();
        let r = l.reserve(reserve(&format!("r{i}"), 10_000, s.clone())).await.unwrap();
        // Bounded by the op timeout, and after the first failure the breaker answers at once.
        assert!(t.elapsed() < Duration::from_millis(400), "reserve while down took {:?}", t.elapsed());
        assert!(r.granted && r.unaccounted, "{r:?}");
    }
    assert_eq!(l.local_stats().unaccounted_reserved.0, 100_000);
    for i in 0..8 {
        let c = l.commit(commit(&format!("r{i}"), 1_000 + i)).await.unwrap();
        assert_eq!(c.charged_micros, 1_000 + i);
        charged += 1_000 + i;
    }
    // Retried commit while still down: deduplicated on replay.
    l.commit(commit("r0", 1_000)).await.unwrap();
    assert!(l.release(release("r8")).await.unwrap().released);
    let stats = l.local_stats();
    assert_eq!(stats.pending_commits, 9);
    assert_eq!(stats.unaccounted_spend.0, charged + 1_000);
    assert_eq!(stats.unaccounted_reserved.0, 10_000, "r9 still open");

    redis.restart().unwrap();
    wait_reconciled(&l).await;
    let g = row(&l, "global", "", "day").await;
    assert_eq!((g.spent_micros, g.reserved_micros, g.requests), (charged, 0, 8));
    assert_eq!(totals(&l, "tenant", "acme", "hour").await, (charged, 0));
    assert_eq!(l.model_spend(Window::Day).await.unwrap()["fast"].spent.0, charged);
    assert_eq!(l.conversation_spend("acme:c1").await.unwrap().unwrap().cost.spent.0, charged);
    // The open unaccounted reservation still commits exactly once after recovery.
    assert_eq!(l.commit(commit("r9", 5)).await.unwrap().charged_micros, 5);
    assert!(l.commit(commit("r9", 5)).await.unwrap().already_committed);
    assert_eq!(totals(&l, "global", "", "day").await, (charged + 5, 0));
    assert_eq!(l.local_stats(), LocalStats::default());
}

#[tokio::test]
async fn fail_open_starts_without_redis() {
    let mut redis = RedisServer::start().unwrap();
    let url = redis.url();
    redis.stop();
    let (l, _, _) = ledger_at(url, &config(vec![], FailMode::Open), "t");
    let r = l.reserve(reserve("r", 70, scopes("acme", "u1", "fast", "c1"))).await.unwrap();
    assert!(r.granted && r.unaccounted);
    assert_eq!(l.commit(commit("r", 50)).await.unwrap().charged_micros, 50);
    redis.restart().unwrap();
    wait_reconciled(&l).await;
    assert_eq!(totals(&l, "global", "", "day").await, (50, 0));
}
