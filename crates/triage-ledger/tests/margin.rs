//! Revenue and margin per conversation against a real redis-server: the latest revenue sent
//! with Commit, stored atomically with the charge, minus the conversation's whole cost.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use triage_core::config::FailMode;
use triage_ledger::window::DAY_MS;
use triage_ledger::{Ledger, LedgerOptions, ManualClock, RedisLedger};
use triage_proto::pb;
use triage_testkit::RedisServer;

/// (revenue, margin) of every row of a conversation scope: its whole life (no limit on it,
/// so no window rows).
async fn margins(l: &RedisLedger, id: &str) -> Vec<(Option<i64>, Option<i64>)> {
    let r = l.spend(pb::SpendRequest { kind: "conversation".into(), id: id.into(), window: String::new() });
    r.await.unwrap().rows.iter().map(|r| (r.revenue_micros, r.margin_micros)).collect()
}

/// Conversation ids are the callers': two tenants may both call theirs `c1`. Each keeps
/// its own whole-life cost, requests and last model (one hash per conversation scope,
/// written by the commit that charges it).
#[tokio::test]
async fn one_conversation_id_in_two_tenants_is_two_conversations() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(vec![], FailMode::Closed);
    let (l, _, _) = ledger_at(redis.url(), &cfg, "t");
    assert!(l.reserve(reserve("a1", 1_000, scopes("acme", "u1", "fast", "c1"))).await.unwrap().granted);
    assert_eq!(l.commit(commit("a1", 100)).await.unwrap().charged_micros, 100);
    assert!(l.reserve(reserve("a2", 1_000, scopes("acme", "u1", "fast", "c1"))).await.unwrap().granted);
    assert_eq!(l.commit(commit("a2", 20)).await.unwrap().charged_micros, 20);
    assert!(l.reserve(reserve("b1", 1_000, scopes("globex", "u1", "fast", "c1"))).await.unwrap().granted);
    let other = pb::CommitRequest { model: "slow".into(), ..commit_with_revenue("b1", 7, 50) };
    assert_eq!(l.commit(other).await.unwrap().charged_micros, 7);

    let acme = l.conversation_spend("acme:c1").await.unwrap().unwrap();
    assert_eq!((acme.cost.spent.0, acme.cost.requests, acme.last_model.as_str()), (120, 2, "fast"));
    let globex = l.conversation_spend("globex:c1").await.unwrap().unwrap();
    assert_eq!((globex.cost.spent.0, globex.cost.requests, globex.last_model.as_str()), (7, 1, "slow"));
    assert_eq!(margins(&l, "globex:c1").await, vec![(Some(50), Some(43)); 1]);
    assert_eq!(margins(&l, "acme:c1").await, vec![(None, None); 1]);
    assert!(l.conversation_spend("c1").await.unwrap().is_none(), "the bare id names no conversation");
}

#[tokio::test]
async fn margin_is_latest_revenue_minus_whole_conversation_cost() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(vec![], FailMode::Closed);
    let (a, clock, _) = ledger_at(redis.url(), &cfg, "m");
    let (b, bclock, _) = ledger_at(redis.url(), &cfg, "m");
    let s = || scopes("acme", "u1", "fast", "c1");

    // No revenue yet: nothing to report.
    assert!(a.reserve(reserve("r0", 1_000, s())).await.unwrap().granted);
    assert_eq!(a.commit(commit("r0", 100)).await.unwrap().charged_micros, 100);
    assert_eq!(margins(&a, "acme:c1").await, vec![(None, None); 1]);

    assert!(a.reserve(reserve("r1", 1_000, s())).await.unwrap().granted);
    assert_eq!(a.commit(commit_with_revenue("r1", 300, 2_000)).await.unwrap().charged_micros, 300);
    assert_eq!(margins(&a, "acme:c1").await, vec![(Some(2_000), Some(1_600)); 1]);

    // A retried commit charges nothing and changes nothing, revenue included.
    assert!(b.commit(commit_with_revenue("r1", 300, 9_999)).await.unwrap().already_committed);
    // Committed by the other instance (from the record), without revenue: the revenue stays.
    assert!(a.reserve(reserve("r2", 1_000, s())).await.unwrap().granted);
    assert_eq!(b.commit(commit("r2", 250)).await.unwrap().charged_micros, 250);
    assert_eq!(margins(&a, "acme:c1").await, vec![(Some(2_000), Some(1_350)); 1]);

    // Next day: the margin counts the whole conversation, not the window; it may go negative.
    clock.set(T0 + DAY_MS);
    bclock.set(T0 + DAY_MS);
    assert!(a.reserve(reserve("r3", 5_000, s())).await.unwrap().granted);
    assert_eq!(a.commit(commit_with_revenue("r3", 2_000, 1_500)).await.unwrap().charged_micros, 2_000);
    let rows =
        a.spend(pb::SpendRequest { kind: "conversation".into(), id: "acme:c1".into(), window: "conversation".into() });
    let life = rows.await.unwrap().rows.remove(0);
    assert_eq!((life.spent_micros, life.revenue_micros, life.margin_micros), (2_650, Some(1_500), Some(-1_150)));

    // Revenue out of range is ignored; the commit itself goes through.
    assert!(a.reserve(reserve("r4", 1_000, s())).await.unwrap().granted);
    assert_eq!(a.commit(commit_with_revenue("r4", 50, -5)).await.unwrap().charged_micros, 50);
    assert_eq!(margins(&a, "acme:c1").await, vec![(Some(1_500), Some(-1_200)); 1]);

    // Other kinds and other conversations carry no revenue.
    let every = a.spend(pb::SpendRequest::default()).await.unwrap();
    for r in &every.rows {
        let sc = r.scope.clone().unwrap();
        let expect = sc.kind == "conversation" && sc.id == "acme:c1";
        assert_eq!(r.revenue_micros.is_some(), expect, "{r:?}");
        assert_eq!(r.margin_micros.is_some(), expect, "{r:?}");
    }
    assert!(a.reserve(reserve("o1", 10, scopes("beta", "u1", "fast", "c1"))).await.unwrap().granted);
    assert_eq!(a.commit(commit_with_revenue("o1", 10, 7)).await.unwrap().charged_micros, 10);
    assert_eq!(margins(&a, "beta:c1").await, vec![(Some(7), Some(-3)); 1]);
    assert_eq!(margins(&a, "acme:c1").await, vec![(Some(1_500), Some(-1_200)); 1], "tenants stay apart");
}

#[tokio::test]
async fn fail_open_direct_commits_keep_the_margin() {
    let mut redis = RedisServer::start().unwrap();
    let cfg = config(vec![], FailMode::Open);
    let clock = Arc::new(ManualClock::new(T0));
    let opts = LedgerOptions { clock, op_timeout: Duration::from_millis(300), ..Default::default() };
    let l = RedisLedger::with_options(redis.url(), &cfg, "fo", opts).unwrap();
    let s = scopes("acme", "u1", "fast", "c9");
    redis.stop();
    assert!(l.reserve(reserve("x", 1_000, s.clone())).await.unwrap().unaccounted);
    assert_eq!(l.commit(commit_with_revenue("x", 400, 1_000)).await.unwrap().charged_micros, 400);
    redis.restart().unwrap();
    let start = std::time::Instant::now();
    loop {
        let ok = l.spend(pb::SpendRequest { kind: "global".into(), ..Default::default() }).await.is_ok();
        if ok && l.local_stats().pending_commits == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "not reconciled: {:?}", l.local_stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(margins(&l, "acme:c9").await, vec![(Some(1_000), Some(600)); 1]);
}

// ---- margin == revenue - sum(costs), random sequences ------------------------------------

#[derive(Debug, Clone)]
enum Step {
    /// Reserve and commit `actual`, sending `revenue` when given.
    Commit(i64, Option<i64>),
    /// Retry the previous commit with another revenue (already committed: no effect).
    Retry(i64),
    /// Move the clock (windows roll; the margin does not).
    Advance(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0i64..50_000, prop::option::of(0i64..100_000)).prop_map(|(a, r)| Step::Commit(a, r)),
        1 => (0i64..100_000).prop_map(Step::Retry),
        1 => (1i64..48).prop_map(|h| Step::Advance(h * 3_600_000)),
    ]
}

fn redis_url() -> String {
    static REDIS: OnceLock<RedisServer> = OnceLock::new();
    REDIS.get_or_init(|| RedisServer::start().unwrap()).url()
}

fn run_case(steps: Vec<Step>) -> Result<(), TestCaseError> {
    static CASE: AtomicU64 = AtomicU64::new(0);
    let prefix = format!("mprop{}", CASE.fetch_add(1, Ordering::SeqCst));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let clock = Arc::new(ManualClock::new(T0));
        let opts = LedgerOptions { clock: clock.clone(), op_timeout: Duration::from_secs(5), ..Default::default() };
        let l = RedisLedger::with_options(redis_url(), &config(vec![], FailMode::Closed), &prefix, opts).unwrap();
        let (mut revenue, mut cost, mut last) = (None::<i64>, 0i64, None::<String>);
        for (i, st) in steps.into_iter().enumerate() {
            match st {
                Step::Commit(actual, rev) => {
                    let id = format!("r{i}");
                    prop_assert!(l.reserve(reserve(&id, actual, scopes("t", "u", "fast", "c"))).await.unwrap().granted);
                    let req = pb::CommitRequest { revenue_micros: rev, ..commit(&id, actual) };
                    prop_assert_eq!(l.commit(req).await.unwrap().charged_micros, actual);
                    cost += actual;
                    revenue = rev.or(revenue);
                    last = Some(id);
                }
                Step::Retry(rev) => {
                    if let Some(id) = &last {
                        let c = l.commit(commit_with_revenue(id, 1, rev)).await.unwrap();
                        prop_assert!(c.already_committed);
                    }
                }
                Step::Advance(ms) => clock.advance(ms),
            }
            let want = revenue.map(|r| (Some(r), Some(r - cost)));
            for got in margins(&l, "t:c").await {
                prop_assert_eq!(got, want.unwrap_or((None, None)));
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn margin_is_revenue_minus_sum_of_costs(steps in prop::collection::vec(step(), 1..25)) {
        run_case(steps)?;
    }
}

/// A conversation under a per-window limit also has its windows' counters (they hold the
/// limit's reservations): hour, day and month rows beside its whole life.
#[tokio::test]
async fn a_limited_conversation_has_window_rows_beside_its_whole_life() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(vec![limit("conversation", None, triage_ledger::window::Window::Day, 1_000)], FailMode::Closed);
    let (l, clock, _) = ledger_at(redis.url(), &cfg, "lim");
    let s = || scopes("acme", "u1", "fast", "c1");
    assert!(l.reserve(reserve("r1", 600, s())).await.unwrap().granted);
    assert_eq!(l.commit(commit_with_revenue("r1", 600, 1_000)).await.unwrap().charged_micros, 600);
    let refused = l.reserve(reserve("r2", 600, s())).await.unwrap();
    assert!(!refused.granted && refused.refusal.starts_with("conversation:acme:c1 day"), "{refused:?}");
    clock.set(T0 + DAY_MS);
    assert!(l.reserve(reserve("r3", 600, s())).await.unwrap().granted, "a new day");
    assert_eq!(l.commit(commit("r3", 500)).await.unwrap().charged_micros, 500);

    let rows = l.spend(pb::SpendRequest { kind: "conversation".into(), id: "acme:c1".into(), window: String::new() });
    let rows: Vec<_> = rows
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|r| (r.window, r.spent_micros, r.limit_micros, r.revenue_micros, r.margin_micros))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("hour".into(), 500, 0, Some(1_000), Some(-100)),
            ("day".into(), 500, 1_000, Some(1_000), Some(-100)),
            ("month".into(), 1_100, 0, Some(1_000), Some(-100)),
            ("conversation".into(), 1_100, 0, Some(1_000), Some(-100)),
        ]
    );
    // Listed with the other limited conversations.
    let listed = l.spend(pb::SpendRequest { kind: "conversation".into(), id: String::new(), window: "day".into() });
    assert_eq!(listed.await.unwrap().rows.len(), 1);
}

/// A reservation recorded before conversations were named apart (no `convs` field) names
/// its conversation by its counter: a commit by another instance still adds the cost to the
/// conversation's hash.
#[tokio::test]
async fn a_record_from_before_names_its_conversations_by_their_counters() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(vec![limit("conversation", None, triage_ledger::window::Window::Hour, 10_000)], FailMode::Closed);
    let (a, _, _) = ledger_at(redis.url(), &cfg, "pre");
    let (b, _, _) = ledger_at(redis.url(), &cfg, "pre");
    assert!(a.reserve(reserve("r1", 1_000, scopes("acme", "u1", "fast", "c1"))).await.unwrap().granted);
    let mut c = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("HDEL").arg(a.keys().record("r1")).arg("convs").query_async(&mut c).await.unwrap();
    assert_eq!(b.commit(commit("r1", 400)).await.unwrap().charged_micros, 400);
    let life = a.conversation_spend("acme:c1").await.unwrap().expect("charged to the conversation");
    assert_eq!((life.cost.spent.0, life.cost.requests), (400, 1));
}
