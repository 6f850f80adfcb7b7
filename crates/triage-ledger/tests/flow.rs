//! Reserve -> commit -> release against a real redis-server: happy path, idempotency,
//! refusals, rolling windows, the reaper, alerts and reports.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use std::time::Duration;
use triage_core::config::{FailMode, Window};
use triage_ledger::{Error, Ledger, RedisLedger};
use triage_proto::pb;
use triage_testkit::RedisServer;

#[tokio::test]
async fn reserve_commit_release_happy_path() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(vec![limit("tenant", None, Window::Day, 1_000_000)], FailMode::Closed);
    let (l, _, _) = ledger_at(redis.url(), &cfg, "t");
    let s = scopes("acme", "u1", "fast", "c1");

    let r = l.reserve(reserve("r1", 300_000, s.clone())).await.unwrap();
    assert!(r.granted && !r.existing && !r.unaccounted, "{r:?}");
    assert_eq!(totals(&l, "tenant", "acme", "day").await, (0, 300_000));
    let lim = l.limits(pb::LimitsRequest { scopes: s.clone() }).await.unwrap();
    assert_eq!(lim.limits.len(), 1, "only the tenant/day limit is configured: {lim:?}");
    assert_eq!(lim.limits[0].used_micros, 300_000);
    assert!((lim.limits[0].remaining_fraction - 0.7).abs() < 1e-12);
    assert_eq!(lim.limits[0].resets_at_unix_ms, T0_NEXT_DAY);

    let c = l.commit(commit("r1", 120_000)).await.unwrap();
    assert_eq!((c.charged_micros, c.already_committed), (120_000, false));
    for (kind, id) in [("global", ""), ("tenant", "acme"), ("user", "acme:u1"), ("model", "fast")] {
        for w in ["hour", "day", "month"] {
            let row = row(&l, kind, id, w).await;
            assert_eq!((row.spent_micros, row.reserved_micros, row.requests), (120_000, 0, 1), "{kind}:{id}/{w}");
        }
    }
    // A conversation without a limit is kept whole-life (its scope hash), not per window.
    let life = row(&l, "conversation", "acme:c1", "conversation").await;
    assert_eq!((life.window.as_str(), life.spent_micros, life.requests), ("conversation", 120_000, 1));
    let all_of_c1 = l.spend(pb::SpendRequest { kind: "conversation".into(), id: "acme:c1".into(), window: "".into() });
    assert_eq!(all_of_c1.await.unwrap().rows, vec![life]);
    let day_of_c1 =
        l.spend(pb::SpendRequest { kind: "conversation".into(), id: "acme:c1".into(), window: "day".into() });
    assert!(day_of_c1.await.unwrap().rows.is_empty());
    let life_of_all =
        l.spend(pb::SpendRequest { kind: String::new(), id: String::new(), window: "conversation".into() });
    assert!(life_of_all.await.unwrap_err().to_string().contains("one conversation"));

    // Only limited counters hold a reservation: it exists to keep calls under a limit.
    let r2 = l.reserve(reserve("r2", 200_000, s.clone())).await.unwrap();
    assert!(r2.granted);
    assert_eq!(totals(&l, "tenant", "acme", "day").await, (120_000, 200_000));
    assert_eq!(totals(&l, "global", "", "day").await, (120_000, 0));
    assert!(l.release(release("r2")).await.unwrap().released);
    assert_eq!(totals(&l, "tenant", "acme", "day").await, (120_000, 0));

    // Reports: per scope listing, per model, per conversation, budget map.
    let all =
        l.spend(pb::SpendRequest { kind: "tenant".into(), id: String::new(), window: "day".into() }).await.unwrap();
    assert_eq!(all.rows.len(), 1);
    assert_eq!(all.rows[0].limit_micros, 1_000_000);
    assert_eq!(all.rows[0].window_start_unix_ms, T0_NEXT_DAY - 86_400_000);
    let every = l.spend(pb::SpendRequest::default()).await.unwrap();
    assert_eq!(every.rows.len(), 4 * 3, "4 scopes x 3 windows (the conversation has no counters): {every:?}");
    let models = l.model_spend(Window::Month).await.unwrap();
    assert_eq!(models["fast"].spent.0, 120_000);
    assert_eq!(models["fast"].requests, 1);
    let conv = l.conversation_spend("acme:c1").await.unwrap().unwrap();
    assert_eq!((conv.cost.spent.0, conv.cost.requests, conv.last_model.as_str()), (120_000, 1, "fast"));
    assert!(l.conversation_spend("acme:nope").await.unwrap().is_none());
    let budget = l.budget_remaining(&s).await.unwrap();
    assert_eq!(budget.len(), 1);
    assert!((budget["tenant:acme/day"] - 0.88).abs() < 1e-12, "{budget:?}");
}

#[tokio::test]
async fn idempotent_by_request_id_across_instances() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(vec![limit("tenant", None, Window::Day, 1_000_000)], FailMode::Closed);
    let (a, _, _) = ledger_at(redis.url(), &cfg, "t");
    let (b, _, _) = ledger_at(redis.url(), &cfg, "t");
    let s = scopes("acme", "u1", "fast", "c1");

    assert!(a.reserve(reserve("r1", 500, s.clone())).await.unwrap().granted);
    let again = b.reserve(reserve("r1", 500, s.clone())).await.unwrap();
    assert!(again.granted && again.existing, "{again:?}");
    assert_eq!(totals(&a, "tenant", "acme", "day").await, (0, 500));

    // Committed by the other instance (it reads the record's counters), then retried.
    let c = b.commit(commit("r1", 400)).await.unwrap();
    assert_eq!((c.charged_micros, c.already_committed), (400, false));
    let c2 = a.commit(commit("r1", 400)).await.unwrap();
    assert_eq!((c2.charged_micros, c2.already_committed), (0, true));
    let c3 = b.commit(commit("r1", 999)).await.unwrap();
    assert_eq!((c3.charged_micros, c3.already_committed), (0, true));
    assert_eq!(totals(&a, "tenant", "acme", "day").await, (400, 0));
    assert_eq!(row(&a, "global", "", "day").await.requests, 1);
    // A finished id is not reserved again.
    let r = a.reserve(reserve("r1", 500, s.clone())).await.unwrap();
    assert!(r.existing && r.granted);
    assert!(!a.release(release("r1")).await.unwrap().released, "committed reservations are not released");

    // Commit after release charges nothing; release is idempotent.
    assert!(a.reserve(reserve("r2", 700, s.clone())).await.unwrap().granted);
    assert!(a.release(release("r2")).await.unwrap().released);
    assert!(!b.release(release("r2")).await.unwrap().released);
    let c = b.commit(commit("r2", 300)).await.unwrap();
    assert_eq!((c.charged_micros, c.already_committed), (0, false));
    let r = a.reserve(reserve("r2", 700, s.clone())).await.unwrap();
    assert!(r.existing && !r.granted, "a released id stays released: {r:?}");
    assert!(r.refusal.contains("already released"), "{}", r.refusal);
    assert_eq!(totals(&a, "tenant", "acme", "day").await, (400, 0));

    let e = a.commit(commit("never-reserved", 1)).await.unwrap_err();
    assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
    assert!(matches!(a.reserve(reserve("", 1, s.clone())).await, Err(Error::InvalidRequest(_))));
    assert!(matches!(a.reserve(reserve("neg", -1, s.clone())).await, Err(Error::InvalidRequest(_))));
    assert!(matches!(a.reserve(reserve("k", 1, vec![scope("Bad:Kind", "x")])).await, Err(Error::InvalidRequest(_))));
}

#[tokio::test]
async fn refusal_names_scope_window_limit_and_reset_and_leaves_nothing_behind() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(
        vec![
            limit("tenant", None, Window::Day, 100),
            limit("tenant", Some("acme"), Window::Day, 1_000),
            limit("user", None, Window::Hour, 500),
        ],
        FailMode::Closed,
    );
    let (l, _, _) = ledger_at(redis.url(), &cfg, "t");

    assert!(l.reserve(reserve("a", 400, scopes("acme", "u1", "fast", "c1"))).await.unwrap().granted);
    let r = l.reserve(reserve("b", 200, scopes("acme", "u1", "fast", "c2"))).await.unwrap();
    assert!(!r.granted);
    assert_eq!(r.resets_at_unix_ms, T0_NEXT_HOUR);
    assert_eq!(
        r.refusal,
        "user:acme:u1 hour spend limit $0.000500 reached: $0.000400 used + $0.000200 requested exceeds it; \
         resets at 2025-03-14T10:00:00Z"
    );
    // No partial reservation: the limited scopes checked before the user (tenant) and the user
    // hold only the first reservation; unlimited ones (model) hold none at all.
    assert_eq!(totals(&l, "tenant", "acme", "day").await, (0, 400));
    assert_eq!(totals(&l, "user", "acme:u1", "hour").await, (0, 400));
    assert_eq!(totals(&l, "model", "fast", "hour").await, (0, 0));
    let c2 = l.spend(pb::SpendRequest { kind: "conversation".into(), id: "acme:c2".into(), window: String::new() });
    assert_eq!(c2.await.unwrap().rows.iter().map(|r| r.reserved_micros + r.spent_micros).sum::<i64>(), 0);
    // The refused id is not recorded: retrying it (the gateway re-reserves for a free model) works.
    assert!(l.reserve(reserve("b", 0, scopes("acme", "u1", "local", "c2"))).await.unwrap().granted);

    // The specific tenant limit overrides the kind-wide one; reaching it exactly is allowed.
    assert!(l.reserve(reserve("c", 500, scopes("acme", "u2", "fast", "c3"))).await.unwrap().granted);
    assert!(l.reserve(reserve("d", 100, scopes("acme", "u3", "fast", "c3"))).await.unwrap().granted);
    let r = l.reserve(reserve("e", 1, scopes("acme", "u4", "fast", "c3"))).await.unwrap();
    assert!(!r.granted);
    assert!(r.refusal.starts_with("tenant:acme day spend limit $0.001000 reached"), "{}", r.refusal);
    assert_eq!(r.resets_at_unix_ms, T0_NEXT_DAY);
    let r = l.reserve(reserve("f", 101, scopes("beta", "u1", "fast", "c1"))).await.unwrap();
    assert!(r.refusal.starts_with("tenant:beta day spend limit $0.000100"), "{}", r.refusal);
    assert_eq!(totals(&l, "tenant", "acme", "day").await, (0, 1_000));

    // A provider may count more tokens than the reservation estimated: the commit charges what
    // was used, and the scope ends past its limit. A free model must still be admitted there
    // (the gateway's last resort); anything that costs is refused.
    assert_eq!(l.commit(commit("c", 700)).await.unwrap().charged_micros, 700);
    assert_eq!(totals(&l, "tenant", "acme", "day").await, (700, 500));
    assert_eq!(l.commit(commit("d", 450)).await.unwrap().charged_micros, 450);
    assert_eq!(totals(&l, "tenant", "acme", "day").await, (1_150, 400));
    let free = l.reserve(reserve("g", 0, scopes("acme", "u5", "local", "c4"))).await.unwrap();
    assert!(free.granted, "a zero reservation over an overrun limit: {free:?}");
    let r = l.reserve(reserve("h", 1, scopes("acme", "u5", "fast", "c4"))).await.unwrap();
    assert!(!r.granted && r.refusal.contains("$0.001550 used + $0.000001 requested"), "{r:?}");
}

#[tokio::test]
async fn windows_roll_on_the_utc_calendar() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(
        vec![limit("tenant", None, Window::Hour, 1_000), limit("tenant", None, Window::Day, 1_500)],
        FailMode::Closed,
    );
    let (l, clock, _) = ledger_at(redis.url(), &cfg, "t");
    let s = || scopes("acme", "u1", "fast", "c1");

    clock.set(T0_NEXT_HOUR - 1_000);
    assert!(l.reserve(reserve("a", 1_000, s())).await.unwrap().granted);
    let r = l.reserve(reserve("b", 1, s())).await.unwrap();
    assert_eq!((r.granted, r.resets_at_unix_ms), (false, T0_NEXT_HOUR));

    // Next hour: the hour limit is fresh, the day still counts "a" (committed across the
    // boundary, into the windows it was reserved in).
    clock.set(T0_NEXT_HOUR);
    assert_eq!(l.commit(commit("a", 900)).await.unwrap().charged_micros, 900);
    assert_eq!(totals(&l, "tenant", "acme", "hour").await, (0, 0));
    assert_eq!(
        l.spend_at(pb::SpendRequest { kind: "tenant".into(), id: "acme".into(), window: "hour".into() }, T0)
            .await
            .unwrap()
            .rows[0]
            .spent_micros,
        900
    );
    let r = l.reserve(reserve("b", 601, s())).await.unwrap();
    assert!(!r.granted && r.refusal.starts_with("tenant:acme day"), "{r:?}");
    assert_eq!(r.resets_at_unix_ms, T0_NEXT_DAY);
    assert!(l.reserve(reserve("b", 600, s())).await.unwrap().granted);

    // Next day everything but the month is fresh.
    clock.set(T0_NEXT_DAY);
    assert!(l.reserve(reserve("c", 1_000, s())).await.unwrap().granted);
    assert_eq!(totals(&l, "tenant", "acme", "day").await, (0, 1_000));
    assert_eq!(totals(&l, "tenant", "acme", "month").await, (900, 0));
    // Month boundary: 2025-03-31T23:59 -> 2025-04-01.
    clock.set(1_743_465_540_000);
    assert_eq!(totals(&l, "tenant", "acme", "month").await, (900, 0));
    clock.set(1_743_465_600_000);
    assert_eq!(totals(&l, "tenant", "acme", "month").await, (0, 0));
    let m = row(&l, "tenant", "acme", "month").await;
    assert_eq!(m.window_start_unix_ms, 1_743_465_600_000);
}

#[tokio::test]
async fn reaper_frees_expired_reservations_exactly() {
    let redis = RedisServer::start().unwrap();
    let mut cfg = config(vec![limit("tenant", None, Window::Day, 10_000)], FailMode::Closed);
    cfg.reservation_ttl = Duration::from_secs(60);
    let (crashed, clock, _) = ledger_at(redis.url(), &cfg, "t");
    let (survivor, sclock, _) = ledger_at(redis.url(), &cfg, "t");
    let s = scopes("acme", "u1", "fast", "c1");

    for i in 0..5 {
        assert!(crashed.reserve(reserve(&format!("lost{i}"), 2_000, s.clone())).await.unwrap().granted);
    }
    assert!(!survivor.reserve(reserve("x", 1, s.clone())).await.unwrap().granted, "the limit is full");
    assert_eq!(survivor.reap_at(T0 + 59_999).await.unwrap(), 0, "not due yet");
    sclock.set(T0 + 60_000);
    assert_eq!(survivor.reap_expired().await.unwrap(), 5);
    assert_eq!(survivor.reap_expired().await.unwrap(), 0, "reaping is idempotent");
    assert_eq!(totals(&survivor, "tenant", "acme", "day").await, (0, 0));
    assert!(survivor.reserve(reserve("x", 10_000, s.clone())).await.unwrap().granted);

    // The "crashed" gateway was only slow: its late commit is still charged, once; a late
    // release changes nothing.
    clock.set(T0 + 61_000);
    assert_eq!(crashed.commit(commit("lost0", 1_500)).await.unwrap().charged_micros, 1_500);
    assert!(crashed.commit(commit("lost0", 1_500)).await.unwrap().already_committed);
    assert!(!crashed.release(release("lost1")).await.unwrap().released);
    assert_eq!(totals(&survivor, "tenant", "acme", "day").await, (1_500, 10_000));

    // Reaper racing commits: whichever wins, nothing is freed twice or charged twice.
    for i in 0..40 {
        let id = format!("race{i}");
        assert!(survivor.reserve_at(reserve(&id, 100, vec![scope("tenant", "race")]), T0).await.unwrap().granted);
    }
    let commits = async {
        for i in 0..40 {
            let c = survivor.commit_at(commit(&format!("race{i}"), 70), T0 + 60_000).await.unwrap();
            assert_eq!(c.charged_micros, 70);
        }
    };
    let reaps = async {
        let mut n = 0;
        for _ in 0..40 {
            n += survivor.reap_at(T0 + 60_000).await.unwrap();
        }
        n
    };
    let (_, reaped) = tokio::join!(commits, reaps);
    let r = row(&survivor, "tenant", "race", "day").await;
    assert_eq!((r.spent_micros, r.reserved_micros, r.requests), (40 * 70, 0, 40), "reaped {reaped}");
}

#[tokio::test]
async fn background_reaper_runs_until_the_ledger_is_dropped() {
    let redis = RedisServer::start().unwrap();
    let mut cfg = config(vec![limit("global", None, Window::Day, 1_000_000)], FailMode::Closed);
    cfg.reservation_ttl = Duration::from_millis(100);
    let l = RedisLedger::new(redis.url(), &cfg, "bg").unwrap();
    let task = l.spawn_reaper(Duration::from_millis(50));
    assert!(l.reserve(reserve("r", 42, scopes("acme", "u1", "fast", "c1"))).await.unwrap().granted);
    assert_eq!(totals(&l, "global", "", "day").await, (0, 42));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(totals(&l, "global", "", "day").await, (0, 0));
    drop(l);
    tokio::time::timeout(Duration::from_secs(2), task).await.unwrap().unwrap();
}

#[tokio::test]
async fn alerts_fire_once_per_scope_and_window() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(
        vec![limit("tenant", None, Window::Day, 1_000), limit("global", None, Window::Month, 1_000_000)],
        FailMode::Closed,
    );
    let (l, clock, alerts) = ledger_at(redis.url(), &cfg, "t");
    let s = || scopes("acme", "u1", "fast", "c1");

    assert!(l.reserve(reserve("a", 800, s())).await.unwrap().granted); // 20 % left: not below
    assert!(alerts.0.lock().unwrap().is_empty());
    assert!(l.reserve(reserve("b", 50, s())).await.unwrap().granted); // 15 % left
    assert!(l.reserve(reserve("c", 50, s())).await.unwrap().granted);
    assert!(!l.reserve(reserve("d", 500, s())).await.unwrap().granted);
    {
        let a = alerts.0.lock().unwrap();
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!((a[0].scope.kind.as_str(), a[0].scope.id.as_str(), a[0].window), ("tenant", "acme", Window::Day));
        assert_eq!((a[0].limit.0, a[0].used.0, a[0].resets_at_unix_ms), (1_000, 850, T0_NEXT_DAY));
    }
    clock.set(T0_NEXT_DAY);
    assert!(l.reserve(reserve("e", 900, s())).await.unwrap().granted);
    assert_eq!(alerts.0.lock().unwrap().len(), 2, "a new window alerts again");
}
