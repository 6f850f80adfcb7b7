//! Days and months: every scope's spend is kept per hour, and a day or month counter only
//! where a limit needs one. Reports sum hours; a limited counter is seeded from its hours,
//! so a limit added mid-window counts the whole window, and no charge is counted twice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use triage_core::config::{FailMode, Window};
use triage_ledger::window::Span;
use triage_ledger::{Ledger, RedisLedger};
use triage_proto::pb;
use triage_testkit::RedisServer;

const DAY: i64 = 24 * 60 * MINUTE;

async fn charge(l: &RedisLedger, id: &str, amount: i64, s: &[pb::Scope]) {
    let r = l.reserve(reserve(id, amount, s.to_vec())).await.unwrap();
    assert!(r.granted, "{id}: {r:?}");
    assert_eq!(l.commit(commit(id, amount)).await.unwrap().charged_micros, amount);
}

async fn keys(c: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    redis::cmd("KEYS").arg(pattern).query_async(c).await.unwrap()
}

/// (id, spent, requests) of every row of `kind` in `window`.
async fn rows(l: &RedisLedger, kind: &str, window: &str) -> Vec<(String, i64, u64)> {
    let r = l.spend(pb::SpendRequest { kind: kind.into(), id: String::new(), window: window.into() }).await.unwrap();
    r.rows.into_iter().map(|r| (r.scope.unwrap().id, r.spent_micros, r.requests)).collect()
}

#[tokio::test]
async fn days_and_months_without_limits_are_summed_from_hours() {
    let redis = RedisServer::start().unwrap();
    let mut c = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let (l, clock, _) = ledger_at(redis.url(), &config(vec![], FailMode::Closed), "sum");
    // 2025-03-13 (same month, day before), then 09:30 and 10:00 on 2025-03-14.
    clock.set(T0 - DAY);
    charge(&l, "a0", 1_000, &scopes("acme", "u1", "fast", "c0")).await;
    clock.set(T0);
    charge(&l, "a1", 100, &scopes("acme", "u1", "fast", "c1")).await;
    charge(&l, "b1", 50, &scopes("beta", "u9", "mid", "c2")).await;
    clock.set(T0_NEXT_HOUR + MINUTE);
    charge(&l, "a2", 200, &scopes("acme", "u2", "fast", "c1")).await;

    assert!(keys(&mut c, "*:c:*:day:*").await.is_empty(), "no day counter without a day limit");
    assert!(keys(&mut c, "*:c:*:month:*").await.is_empty());
    assert!(keys(&mut c, "*:attr:model:day:*").await.is_empty(), "model attribution is per hour");

    assert_eq!(rows(&l, "tenant", "hour").await, vec![("acme".into(), 200, 1)]);
    assert_eq!(rows(&l, "tenant", "day").await, vec![("acme".into(), 300, 2), ("beta".into(), 50, 1)]);
    assert_eq!(rows(&l, "tenant", "month").await, vec![("acme".into(), 1_300, 3), ("beta".into(), 50, 1)]);
    assert_eq!(rows(&l, "user", "day").await.len(), 3, "acme:u1, acme:u2, beta:u9");
    assert_eq!(rows(&l, "global", "month").await, vec![(String::new(), 1_350, 4)]);
    let r = row(&l, "user", "acme:u1", "month").await;
    assert_eq!((r.spent_micros, r.requests), (1_100, 2));
    let r = row(&l, "tenant", "nobody", "day").await;
    assert_eq!((r.spent_micros, r.requests), (0, 0));
    // Every kind and window at once, as `triage ledger spend` asks.
    let all = l.spend(pb::SpendRequest::default()).await.unwrap();
    let global_month = all.rows.iter().find(|r| r.scope.as_ref().unwrap().kind == "global" && r.window == "month");
    assert_eq!(global_month.unwrap().spent_micros, 1_350);

    // Commits name the answering model (`fast` in every one here).
    let day = l.model_spend(Window::Day).await.unwrap();
    assert_eq!((day["fast"].spent.0, day["fast"].requests, day.len()), (350, 3, 1));
    let month = l.model_spend(Window::Month).await.unwrap();
    assert_eq!((month["fast"].spent.0, month["fast"].requests), (1_350, 4));
    assert_eq!(l.model_spend(Window::Hour).await.unwrap()["fast"].spent.0, 200);

    // An hour counter lives until its month is over (and then its retention): the month's
    // report still needs it.
    let first = Span::at(Window::Hour, T0 - DAY).unwrap();
    let key = l.keys().counter("tenant", "acme", &first);
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut c).await.unwrap();
    let want = first.expire_at_unix_ms() - (T0 - DAY);
    assert!(ttl > want - MINUTE && ttl <= want && want > 18 * DAY, "{key}: ttl {ttl}, want {want}");
}

#[tokio::test]
async fn a_limit_added_mid_window_counts_the_whole_window() {
    let redis = RedisServer::start().unwrap();
    let s = scopes("acme", "u1", "fast", "c1");
    let (before, clock, _) = ledger_at(redis.url(), &config(vec![], FailMode::Closed), "mid");
    clock.set(T0 - DAY);
    charge(&before, "p0", 1_000, &s).await;
    clock.set(T0);
    charge(&before, "p1", 300, &s).await;
    clock.set(T0_NEXT_HOUR);
    charge(&before, "p2", 200, &s).await;

    // The limits arrive (a new gateway, or a restart with new configuration) at 10:01.
    let limits = vec![limit("tenant", None, Window::Day, 1_000), limit("tenant", None, Window::Month, 1_950)];
    let (l, clock, _) = ledger_at(redis.url(), &config(limits, FailMode::Closed), "mid");
    clock.set(T0_NEXT_HOUR + MINUTE);
    let r = l.reserve(reserve("n1", 600, s.clone())).await.unwrap();
    assert!(!r.granted, "the day already spent 500: {r:?}");
    assert!(r.refusal.contains("day"), "{}", r.refusal);
    let lim = l.limits(pb::LimitsRequest { scopes: s.clone() }).await.unwrap();
    let used: Vec<(String, i64)> = lim.limits.iter().map(|x| (x.window.clone(), x.used_micros)).collect();
    assert_eq!(used, vec![("day".into(), 500), ("month".into(), 1_500)]);

    assert!(l.reserve(reserve("n2", 400, s.clone())).await.unwrap().granted, "500 + 400 fits both");
    let r = l.reserve(reserve("n3", 60, s.clone())).await.unwrap();
    assert!(!r.granted && r.refusal.contains("month"), "the month is at 1,900 of 1,950: {r:?}");
    l.commit(commit("n2", 400)).await.unwrap();
    let r = row(&l, "tenant", "acme", "day").await;
    assert_eq!((r.spent_micros, r.reserved_micros, r.requests, r.limit_micros), (900, 0, 3, 1_000));
    assert_eq!(row(&l, "tenant", "acme", "month").await.spent_micros, 1_900);
}

#[tokio::test]
async fn gateways_that_disagree_on_a_limit_converge_without_counting_twice() {
    let redis = RedisServer::start().unwrap();
    let s = scopes("acme", "u1", "fast", "c1");
    let limited = config(vec![limit("tenant", None, Window::Day, 1_000)], FailMode::Closed);
    let (a, clock_a, _) = ledger_at(redis.url(), &limited, "skew");
    let (u, _, _) = ledger_at(redis.url(), &config(vec![], FailMode::Closed), "skew");
    charge(&a, "a1", 300, &s).await;
    // A gateway still on a configuration without the limit charges the hour only.
    charge(&u, "u1", 200, &s).await;
    // Reports see it at once: the day is the larger of its counter and its hours.
    assert_eq!(row(&a, "tenant", "acme", "day").await.spent_micros, 500);

    // `a` set the counter from its hours a moment ago, so it lags by u1 (300 + 600 fits)...
    assert!(a.reserve(reserve("a2", 600, s.clone())).await.unwrap().granted);
    assert!(a.release(release("a2")).await.unwrap().released);
    // ...until it next seeds it, at most `ledger.reseed_interval` (10 minutes) later.
    let reseed = i64::try_from(limited.reseed_interval.as_millis()).unwrap();
    clock_a.set(T0 + reseed + MINUTE);
    let r = a.reserve(reserve("a3", 600, s.clone())).await.unwrap();
    assert!(!r.granted, "500 + 600 is over 1,000: {r:?}");

    // A fresh gateway seeds too: the sum of the hours already holds a1's charge, so setting
    // (not adding) counts it once.
    let (b, clock_b, _) = ledger_at(redis.url(), &limited, "skew");
    clock_b.set(T0 + reseed + MINUTE);
    charge(&b, "b1", 500, &s).await;
    let r = row(&b, "tenant", "acme", "day").await;
    assert_eq!((r.spent_micros, r.requests), (1_000, 3));
    let r = b.reserve(reserve("b2", 1, s.clone())).await.unwrap();
    assert!(!r.granted, "exactly at the limit: {r:?}");
    let lim = b.limits(pb::LimitsRequest { scopes: s.clone() }).await.unwrap();
    assert_eq!(lim.limits[0].used_micros, 1_000);
}

#[tokio::test]
async fn a_day_counter_from_before_hours_were_kept_keeps_its_spend() {
    let redis = RedisServer::start().unwrap();
    let mut c = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let cfg = config(vec![limit("tenant", None, Window::Day, 10_000)], FailMode::Closed);
    let (l, _, _) = ledger_at(redis.url(), &cfg, "old");
    // What the earlier layout left: whole day counters (limited or not), in the day's index,
    // whose early hour counters expired on the old two-day retention.
    let day = Span::at(Window::Day, T0).unwrap();
    let mut pipe = redis::pipe();
    for (kind, id, spent) in [("tenant", "acme", 5_000), ("user", "acme:u1", 4_000)] {
        pipe.hset_multiple(l.keys().counter(kind, id, &day), &[("spent", spent), ("requests", 7)]).ignore();
        pipe.sadd(l.keys().ids(kind, &day), id).ignore();
        pipe.sadd(l.keys().kinds(), kind).ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();

    let s = scopes("acme", "u1", "fast", "c1");
    let r = l.reserve(reserve("r1", 6_000, s.clone())).await.unwrap();
    assert!(!r.granted, "5,000 spent before the upgrade still counts: {r:?}");
    charge(&l, "r2", 1_000, &s).await;
    let r = row(&l, "tenant", "acme", "day").await;
    assert_eq!((r.spent_micros, r.requests), (6_000, 8));
    assert_eq!(rows(&l, "user", "day").await, vec![("acme:u1".into(), 4_000, 7)], "no hour beats the old counter yet");
}

#[tokio::test]
async fn a_month_listing_over_more_hours_than_one_round_trip_reads_sums_them_all() {
    let redis = RedisServer::start().unwrap();
    let mut c = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let (l, _, _) = ledger_at(redis.url(), &config(vec![], FailMode::Closed), "big");
    // 40 tenants charged 1 micro in each of the 322 hours of March before T0's: 12,880 hour
    // counters to read, more than one round trip carries.
    let month = Span::at(Window::Month, T0).unwrap();
    let hours = month.hours_through(T0).unwrap();
    assert_eq!(hours.len(), 322);
    let mut pipe = redis::pipe();
    pipe.sadd(l.keys().kinds(), "tenant").ignore();
    for h in &hours {
        for t in 0..40 {
            let id = format!("t{t:02}");
            pipe.hset_multiple(l.keys().counter("tenant", &id, h), &[("spent", 1), ("requests", 1)]).ignore();
            pipe.sadd(l.keys().ids("tenant", h), &id).ignore();
        }
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    let listed = rows(&l, "tenant", "month").await;
    assert_eq!(listed.len(), 40);
    assert!(listed.iter().all(|(_, spent, requests)| *spent == 322 && *requests == 322), "{listed:?}");
    assert_eq!(rows(&l, "tenant", "day").await[0], ("t00".into(), 10, 10), "00:00 through 09:00");
}
