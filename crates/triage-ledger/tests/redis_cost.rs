//! Redis work per reserve+commit pair, read from `INFO commandstats`: counters are set up
//! (TTL, report indexes) once rather than per request, and again when Redis lost them;
//! budget signals (Limits) are served from a short-lived cache.
//! `cargo test -p triage-ledger --test redis_cost -- --ignored --nocapture` prints the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::Duration;
use triage_core::config::{FailMode, LedgerConfig, Window};
use triage_ledger::window::{Span, Window as W};
use triage_ledger::{Ledger, LedgerOptions, ManualClock, RedisLedger};
use triage_proto::pb;
use triage_testkit::{CommandStat, RedisServer, command_stats};

fn route_scopes(i: usize) -> Vec<pb::Scope> {
    vec![
        scope("global", ""),
        scope("tenant", &format!("t{}", i % 4)),
        scope("model", &format!("m{}", i % 3)),
        scope("conversation", &format!("t{}:conv{i}", i % 4)),
    ]
}

async fn pair(l: &RedisLedger, i: usize) {
    let id = format!("r{i}");
    let r = l.reserve(reserve(&id, 2_000, route_scopes(i))).await.unwrap();
    assert!(r.granted, "{r:?}");
    let c = pb::CommitRequest {
        request_id: id,
        actual_micros: 1_234,
        conversation_id: format!("conv{i}"),
        model: format!("m{}", i % 3),
        revenue_micros: Some(10_000),
    };
    l.commit(c).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: prints Redis work per reserve+commit"]
async fn redis_work_per_reserve_commit() {
    measure("reserve+commit", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: prints Redis work per Route (limits + reserve + commit)"]
async fn redis_work_per_route() {
    measure("limits+reserve+commit, signal cache off", Some(Duration::ZERO)).await;
    measure("limits+reserve+commit, signal cache 250ms", Some(Duration::from_millis(250))).await;
}

/// Runs 5,000 reserve+commit pairs (each on a new conversation; scopes global, tenant, model,
/// conversation, with global/day and tenant/hour limited: 4 counters, none for the
/// conversation), each preceded by a `limits` call when `signal_max_age` is set, 16 at a
/// time, and prints Redis's work per pair.
async fn measure(label: &str, signal_max_age: Option<Duration>) {
    const PAIRS: usize = 5_000;
    const CONCURRENCY: usize = 16;
    let redis = RedisServer::start().unwrap();
    let mut cfg = config(
        vec![limit("global", None, Window::Day, 50_000_000_000), limit("tenant", None, Window::Hour, 5_000_000_000)],
        FailMode::Closed,
    );
    cfg.signal_max_age = signal_max_age.unwrap_or_default();
    let opts = LedgerOptions {
        clock: std::sync::Arc::new(ManualClock::new(T0)),
        op_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let l = RedisLedger::with_options(redis.url(), &cfg, "cost", opts).unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let with_limits = signal_max_age.is_some();
    let route = async |l: &RedisLedger, i: usize| {
        if with_limits {
            let lim = l.limits(pb::LimitsRequest { scopes: route_scopes(i) }).await.unwrap();
            assert_eq!(lim.limits.len(), 2);
        }
        pair(l, i).await;
    };
    // Warm up (scripts loaded, global/tenant/model counters exist), then measure.
    for i in 0..100 {
        route(&l, PAIRS + i).await;
    }
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
    let cpu_before = redis_cpu_secs(&mut conn).await;
    let started = std::time::Instant::now();
    let tasks = (0..CONCURRENCY).map(|w| {
        let l = l.clone();
        async move {
            for i in (w..PAIRS).step_by(CONCURRENCY) {
                route(&l, i).await;
            }
        }
    });
    futures::future::join_all(tasks).await;
    let elapsed = started.elapsed();
    let cpu = redis_cpu_secs(&mut conn).await - cpu_before;
    let stats = command_stats(&mut conn).await.unwrap();
    let n = PAIRS as f64;
    let (mut calls, mut usec) = (0u64, 0u64);
    eprintln!("== {label}");
    for (name, CommandStat { calls: c, usec: u }) in &stats {
        if name == "info" || name == "config|resetstat" {
            continue;
        }
        calls += c;
        usec += u;
        eprintln!("{name:>16}: {:7.2} calls/pair {:7.2} usec/pair", *c as f64 / n, *u as f64 / n);
    }
    let eval_usec: u64 = stats.iter().filter(|(k, _)| k.starts_with("eval")).map(|(_, s)| s.usec).sum();
    eprintln!(
        "{PAIRS} pairs in {elapsed:?}: {:.1} commands/pair, {:.1} usec/pair summed over all cmdstats, \
         {:.1} usec/pair in eval/evalsha (script time, inner commands included)",
        calls as f64 / n,
        usec as f64 / n,
        eval_usec as f64 / n
    );
    eprintln!("redis-server CPU time (user + sys, not wall): {:.1} usec/pair", cpu * 1e6 / n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: prints Redis memory per new conversation's reserve+commit"]
async fn redis_memory_per_new_conversation() {
    const PAIRS: usize = 20_000;
    let limits =
        || vec![limit("global", None, Window::Day, 50_000_000_000), limit("tenant", None, Window::Hour, 5_000_000_000)];
    // The same pairs with and without a conversation hour counter (a limit on conversations
    // gives every conversation one, as every conversation had before 2026-12-06).
    for (label, extra) in [
        ("whole-life hash only (no limit on conversations)", None),
        (
            "plus an hour counter and index entry per conversation",
            Some(limit("conversation", None, Window::Hour, 5_000_000_000)),
        ),
    ] {
        let redis = RedisServer::start().unwrap();
        let cfg = config(limits().into_iter().chain(extra).collect(), FailMode::Closed);
        let (l, _, _) = ledger_at(redis.url(), &cfg, "mem");
        let mut conn = conn(&redis).await;
        for i in 0..100 {
            pair(&l, PAIRS + i).await;
        }
        let used = |info: String| {
            info.lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap()
        };
        let before = used(redis::cmd("INFO").arg("memory").query_async(&mut conn).await.unwrap());
        for i in 0..PAIRS {
            pair(&l, i).await;
        }
        let after = used(redis::cmd("INFO").arg("memory").query_async(&mut conn).await.unwrap());
        eprintln!("{label}: {:.0} bytes of Redis per new conversation", (after - before) as f64 / PAIRS as f64);
        let usage = async |conn: &mut redis::aio::MultiplexedConnection, key: String| -> i64 {
            redis::cmd("MEMORY").arg("USAGE").arg(key).query_async(conn).await.unwrap()
        };
        let (hash, record) =
            (usage(&mut conn, l.keys().margin("t1:conv1")).await, usage(&mut conn, l.keys().record("r1")).await);
        eprintln!(
            "  of which the conversation's hash {hash} bytes (kept `ledger.conversation_retention`), the record {record} (2 days)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: prints what seeding a month limit from its hours costs"]
async fn seeding_cost_of_a_month_limit() {
    // 2025-03-31T23:30Z: the month's last hour, so a seed reads all 744 of its hours.
    const END_OF_MARCH: i64 = 1_743_463_800_000;
    const USERS: usize = 100;
    let redis = RedisServer::start().unwrap();
    let cfg = config(vec![limit("user", None, Window::Month, 1_000_000_000_000)], FailMode::Closed);
    let opts = LedgerOptions {
        clock: std::sync::Arc::new(ManualClock::new(END_OF_MARCH)),
        op_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let l = RedisLedger::with_options(redis.url(), &cfg, "seed", opts).unwrap();
    let mut c = conn(&redis).await;
    let month = Span::at(W::Month, END_OF_MARCH).unwrap();
    // Users "old*" spent in every hour of the month before the limit existed; "new*" never.
    let mut pipe = redis::pipe();
    for h in month.hours_through(END_OF_MARCH).unwrap() {
        for u in 0..USERS {
            pipe.hset_multiple(l.keys().counter("user", &format!("old{u}"), &h), &[("spent", 1), ("requests", 1)])
                .ignore();
        }
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    let mut run = async |label: &str, prefix: &str, round: usize| {
        reset_stats(&mut c).await;
        let started = std::time::Instant::now();
        for u in 0..USERS {
            let r =
                l.reserve(reserve(&format!("{prefix}{u}-{round}"), 1, vec![scope("user", &format!("{prefix}{u}"))]));
            assert!(r.await.unwrap().granted);
        }
        let elapsed = started.elapsed() / USERS as u32;
        let stats = command_stats(&mut c).await.unwrap();
        let eval: u64 = stats.iter().filter(|(k, _)| k.starts_with("eval")).map(|(_, s)| s.usec).sum();
        eprintln!("{label:>44}: {:7.1} us in the script, {elapsed:?} per reserve", eval as f64 / USERS as f64);
    };
    run("first reserve, no hours (a new scope)", "new", 0).await;
    run("first reserve, 744 hours to sum", "old", 0).await;
    run("later reserves (seeded within 10 min)", "old", 1).await;
    let r = row(&l, "user", "old0", "month").await;
    assert_eq!((r.spent_micros, r.reserved_micros), (744, 2), "seeded from every hour, once");
}

/// used_cpu_user + used_cpu_sys of the redis-server process, seconds.
async fn redis_cpu_secs(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await.unwrap();
    info.lines()
        .filter_map(|l| l.strip_prefix("used_cpu_user:").or_else(|| l.strip_prefix("used_cpu_sys:")))
        .map(|v| v.trim().parse::<f64>().unwrap())
        .sum()
}

async fn conn(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn reset_stats(c: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(c).await.unwrap();
}

/// Calls of `cmd` since the last reset.
fn calls(stats: &BTreeMap<String, CommandStat>, cmd: &str) -> u64 {
    stats.get(cmd).map_or(0, |s| s.calls)
}

async fn pttl(c: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(c).await.unwrap()
}

async fn del(c: &mut redis::aio::MultiplexedConnection, key: &str) {
    let _: () = redis::cmd("DEL").arg(key).query_async(c).await.unwrap();
}

/// Checks the TTL (the window's end + retention, as seen from T0) and index entry of the
/// counter of `kind:id` in the window instance of `window` at T0.
async fn assert_set_up(c: &mut redis::aio::MultiplexedConnection, l: &RedisLedger, kind: &str, id: &str, window: W) {
    let span = Span::at(window, T0).unwrap();
    let want = span.expire_at_unix_ms() - T0;
    let key = l.keys().counter(kind, id, &span);
    let ttl = pttl(c, &key).await;
    assert!(ttl > want - 60_000 && ttl <= want, "{key}: ttl {ttl}, want about {want}");
    let ids_key = l.keys().ids(kind, &span);
    let ttl = pttl(c, &ids_key).await;
    assert!(ttl > want - 60_000 && ttl <= want, "{ids_key}: ttl {ttl}, want about {want}");
    let member: bool = redis::cmd("SISMEMBER").arg(&ids_key).arg(id).query_async(c).await.unwrap();
    assert!(member, "{id} in {ids_key}");
    let kind_known: bool = redis::cmd("SISMEMBER").arg(l.keys().kinds()).arg(kind).query_async(c).await.unwrap();
    assert!(kind_known, "{kind} in the kinds set");
}

/// The scopes with counters (a conversation without a limit has none: its scope hash).
const KINDS: [(&str, &str); 4] = [("global", ""), ("tenant", "acme"), ("user", "acme:u1"), ("model", "fast")];

/// A private Redis, a connection to it and a ledger with one limit (per tenant and day): what
/// the counter tests below start from. `cfg` builds more ledgers on the same Redis.
async fn with_a_tenant_day_limit() -> (RedisServer, redis::aio::MultiplexedConnection, LedgerConfig, RedisLedger) {
    let redis = RedisServer::start().unwrap();
    let c = conn(&redis).await;
    let cfg = config(vec![limit("tenant", None, Window::Day, 1_000_000)], FailMode::Closed);
    let (l, _, _) = ledger_at(redis.url(), &cfg, "w");
    (redis, c, cfg, l)
}

#[tokio::test]
async fn a_new_conversation_costs_no_counter_and_no_set_up() {
    let (_redis, mut c, _, l) = with_a_tenant_day_limit().await;
    assert!(l.reserve(reserve("r1", 200, scopes("acme", "u1", "fast", "c1"))).await.unwrap().granted);
    l.commit(commit("r1", 100)).await.unwrap();
    reset_stats(&mut c).await;
    assert!(l.reserve(reserve("r1b", 200, scopes("acme", "u1", "fast", "c1"))).await.unwrap().granted);
    l.commit(commit("r1b", 100)).await.unwrap();
    let warm = command_stats(&mut c).await.unwrap();

    // Most Routes start a conversation: it costs what a warm conversation's turn does.
    reset_stats(&mut c).await;
    assert!(l.reserve(reserve("r2", 200, scopes("acme", "u1", "fast", "c2"))).await.unwrap().granted);
    l.commit(commit("r2", 100)).await.unwrap();
    let new = command_stats(&mut c).await.unwrap();
    let total = |s: &BTreeMap<String, CommandStat>| {
        s.iter().filter(|(k, _)| *k != "info" && !k.starts_with("config")).map(|(_, v)| v.calls).sum::<u64>()
    };
    eprintln!("reserve+commit, new conversation {} commands, its next turn {}", total(&new), total(&warm));
    assert_eq!(total(&new), total(&warm), "new {new:?}\nwarm {warm:?}");
    assert_eq!(calls(&new, "sadd"), 0, "{new:?}");
    // The one PTTL is reserve's, on the limited tenant day counter: every reservation on it
    // had been settled, so its `reserved` went from 0 and reserve asks whether it is new.
    assert_eq!(calls(&new, "pttl"), 1, "{new:?}");
    // No counter, no report index: the conversation's cost is in its scope hash.
    let hour = Span::at(W::Hour, T0).unwrap();
    let counter: bool =
        redis::cmd("EXISTS").arg(l.keys().counter("conversation", "acme:c2", &hour)).query_async(&mut c).await.unwrap();
    let indexed: bool =
        redis::cmd("EXISTS").arg(l.keys().ids("conversation", &hour)).query_async(&mut c).await.unwrap();
    assert!(!counter && !indexed);
    let life = l.conversation_spend("acme:c2").await.unwrap().unwrap();
    assert_eq!((life.cost.spent.0, life.cost.requests), (100, 1));
}

#[tokio::test]
async fn counters_are_set_up_once_and_again_when_redis_lost_them() {
    let (redis, mut c, cfg, l) = with_a_tenant_day_limit().await;
    let s = scopes("acme", "u1", "fast", "c1");

    assert!(l.reserve(reserve("r1", 200, s.clone())).await.unwrap().granted);
    l.commit(commit("r1", 100)).await.unwrap();
    // Every scope's hour; a day or month only where a limit is (the rest sum their hours).
    for (kind, id) in KINDS {
        assert_set_up(&mut c, &l, kind, id, W::Hour).await;
        for w in [W::Day, W::Month] {
            let key = l.keys().counter(kind, id, &Span::at(w, T0).unwrap());
            let exists: bool = redis::cmd("EXISTS").arg(&key).query_async(&mut c).await.unwrap();
            assert_eq!(exists, kind == "tenant" && w == W::Day, "{key}");
        }
    }
    assert_set_up(&mut c, &l, "tenant", "acme", W::Day).await;

    // Warm counters: no TTL or index writes at all, beyond the record and the conversation's
    // sliding hash (one PEXPIRE each).
    reset_stats(&mut c).await;
    assert!(l.reserve(reserve("r2", 200, s.clone())).await.unwrap().granted);
    l.commit(commit("r2", 100)).await.unwrap();
    let stats = command_stats(&mut c).await.unwrap();
    assert_eq!(calls(&stats, "sadd"), 0, "{stats:?}");
    assert_eq!(calls(&stats, "pexpire"), 2, "{stats:?}");
    assert_eq!(calls(&stats, "evalsha"), 2, "one script call each: {stats:?}");
    let commands: u64 =
        stats.iter().filter(|(k, _)| *k != "info" && !k.starts_with("config")).map(|(_, v)| v.calls).sum();
    // Five scopes, one limit: 162 commands before counter setup moved out of the hot path,
    // 89 before only limited counters held the reservation, 55 before days and months were
    // kept only where limited (15 counters), 33 before the conversation's cost was kept in
    // one hash instead of two, 31 before an unlimited conversation lost its counters (6
    // counters), 30 now (5, and the DEL that writes the settled record anew, small).
    eprintln!("warm reserve+commit over 5 counters: {commands} commands");
    assert!(commands <= 30, "{commands} commands: {stats:?}");
    // The settled record keeps what answers a retry, as a small listpack (not the
    // hashtable its counter keys made it): it lives two days on every Route.
    let record = l.keys().record("r2");
    let encoding: String = redis::cmd("OBJECT").arg("ENCODING").arg(&record).query_async(&mut c).await.unwrap();
    let bytes: i64 = redis::cmd("MEMORY").arg("USAGE").arg(&record).query_async(&mut c).await.unwrap();
    assert!(encoding == "listpack" && bytes < 200, "{encoding}, {bytes} bytes");
    let (other, _, _) = ledger_at(redis.url(), &cfg, "w");
    assert!(other.commit(commit("r2", 100)).await.unwrap().already_committed, "a retry elsewhere");
    assert!(!other.release(release("r2")).await.unwrap().released);
    assert_eq!(row(&l, "tenant", "acme", "day").await.requests, 2);

    // Redis lost a counter, its index and the kinds set: the next reservation sets them up.
    let day = Span::at(W::Day, T0).unwrap();
    del(&mut c, &l.keys().counter("tenant", "acme", &day)).await;
    del(&mut c, &l.keys().ids("tenant", &day)).await;
    del(&mut c, &l.keys().kinds()).await;
    assert!(l.reserve(reserve("r3", 200, s.clone())).await.unwrap().granted);
    assert_set_up(&mut c, &l, "tenant", "acme", W::Day).await;
    l.commit(commit("r3", 100)).await.unwrap();
    // The report sums the hours, which kept every charge; the counter itself holds only r3
    // until an instance next sets it from its hours (a new one does at once).
    let r = row(&l, "tenant", "acme", "day").await;
    assert_eq!((r.spent_micros, r.reserved_micros, r.requests), (300, 0, 3));
    let day_key = l.keys().counter("tenant", "acme", &day);
    let spent: i64 = redis::cmd("HGET").arg(&day_key).arg("spent").query_async(&mut c).await.unwrap();
    assert_eq!(spent, 100);
    let (fresh, _, _) = ledger_at(redis.url(), &cfg, "w");
    assert!(fresh.reserve(reserve("r3b", 200, s.clone())).await.unwrap().granted);
    assert!(fresh.release(release("r3b")).await.unwrap().released);
    let spent: i64 = redis::cmd("HGET").arg(&day_key).arg("spent").query_async(&mut c).await.unwrap();
    assert_eq!(spent, 300);

    // Lost between reserve and commit (own commit, commit from another instance) or release:
    // whoever recreates the counter gives it its TTL.
    let hour = Span::at(W::Hour, T0).unwrap();
    let (other, _, _) = ledger_at(redis.url(), &cfg, "w");
    for (n, (kind, id, window)) in
        [("user", "acme:u1", &hour), ("model", "fast", &hour), ("tenant", "acme", &day)].into_iter().enumerate()
    {
        let rid = format!("lost{n}");
        assert!(l.reserve(reserve(&rid, 200, s.clone())).await.unwrap().granted);
        let key = l.keys().counter(kind, id, window);
        del(&mut c, &key).await;
        match n {
            0 => assert_eq!(l.commit(commit(&rid, 100)).await.unwrap().charged_micros, 100),
            1 => assert_eq!(other.commit(commit(&rid, 100)).await.unwrap().charged_micros, 100),
            _ => assert!(l.release(release(&rid)).await.unwrap().released),
        }
        let ttl = pttl(&mut c, &key).await;
        let want = window.expire_at_unix_ms() - T0;
        assert!(ttl > want - 60_000 && ttl <= want, "{key}: ttl {ttl}, want about {want}");
    }
}

#[tokio::test]
async fn counter_setup_survives_zero_amounts_and_new_windows() {
    let redis = RedisServer::start().unwrap();
    let mut c = conn(&redis).await;
    let limits = W::ALL.iter().map(|w| limit("tenant", None, *w, 1_000_000)).collect();
    let cfg = config(limits, FailMode::Closed);
    let (l, clock, _) = ledger_at(redis.url(), &cfg, "z");
    let s = scopes("acme", "u1", "fast", "c1");
    // A zero reservation creates the limited counters too (HSETNX), and sets them up; a zero
    // commit creates and sets up the rest.
    assert!(l.reserve(reserve("z1", 0, s.clone())).await.unwrap().granted);
    for w in W::ALL {
        assert_set_up(&mut c, &l, "tenant", "acme", w).await;
    }
    l.commit(commit("z1", 0)).await.unwrap();
    for (kind, id) in KINDS {
        for w in W::ALL.into_iter().filter(|w| kind == "tenant" || *w == W::Hour) {
            assert_set_up(&mut c, &l, kind, id, w).await;
        }
    }
    // Next hour: a new hour counter, set up; the day's stays as it was.
    clock.set(T0_NEXT_HOUR);
    assert!(l.reserve(reserve("z2", 10, s.clone())).await.unwrap().granted);
    let next = Span::at(W::Hour, T0_NEXT_HOUR).unwrap();
    let key = l.keys().counter("tenant", "acme", &next);
    let want = next.expire_at_unix_ms() - T0_NEXT_HOUR;
    let ttl = pttl(&mut c, &key).await;
    assert!(ttl > want - 60_000 && ttl <= want, "{key}: ttl {ttl}, want about {want}");
    let ids: Vec<String> = redis::cmd("SMEMBERS").arg(l.keys().ids("tenant", &next)).query_async(&mut c).await.unwrap();
    assert_eq!(ids, vec!["acme".to_string()]);
}

#[tokio::test]
async fn budget_signals_are_served_from_memory_within_the_max_age() {
    let redis = RedisServer::start().unwrap();
    let mut c = conn(&redis).await;
    let mut cfg = config(
        vec![limit("tenant", None, Window::Day, 1_000_000), limit("global", None, Window::Day, 10_000_000)],
        FailMode::Closed,
    );
    cfg.signal_max_age = Duration::from_secs(1);
    let (l, _, _) = ledger_at(redis.url(), &cfg, "sig");
    let (other, _, _) = ledger_at(redis.url(), &cfg, "sig");
    let s = scopes("acme", "u1", "fast", "c1");
    let used = |r: &pb::LimitsResponse| -> Vec<(String, i64)> {
        r.limits.iter().map(|x| (x.scope.clone().unwrap().kind, x.used_micros)).collect()
    };
    // Reads made by one `limits` call (its two counters in one pipeline: two HMGETs).
    let mut reads = async |l: &RedisLedger| {
        reset_stats(&mut c).await;
        let r = l.limits(pb::LimitsRequest { scopes: s.clone() }).await.unwrap();
        (calls(&command_stats(&mut c).await.unwrap(), "hmget"), used(&r))
    };
    let g = |global: i64, tenant: i64| vec![("global".to_string(), global), ("tenant".to_string(), tenant)];

    assert_eq!(reads(&l).await, (2, g(0, 0)), "first call reads Redis");
    assert_eq!(reads(&l).await, (0, g(0, 0)), "second call within the max age: no Redis call");

    // This instance's own reserve and commit refresh the readings.
    assert!(l.reserve(reserve("r1", 300_000, s.clone())).await.unwrap().granted);
    assert_eq!(reads(&l).await, (0, g(300_000, 300_000)));
    l.commit(commit("r1", 120_000)).await.unwrap();
    assert_eq!(reads(&l).await, (0, g(120_000, 120_000)));
    // A release drops them: read again.
    assert!(l.reserve(reserve("r2", 5_000, s.clone())).await.unwrap().granted);
    assert!(l.release(release("r2")).await.unwrap().released);
    assert_eq!(reads(&l).await, (2, g(120_000, 120_000)));

    // Another instance's spend shows once the reading is older than the max age.
    assert!(other.reserve(reserve("o1", 50_000, s.clone())).await.unwrap().granted);
    assert_eq!(reads(&l).await, (0, g(120_000, 120_000)), "still the cached reading");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(reads(&l).await, (2, g(170_000, 170_000)), "older than the max age: read again");
    assert_eq!(reads(&l).await, (0, g(170_000, 170_000)));

    // Hard limits never use the cache: the other instance fills the tenant's day...
    assert!(other.reserve(reserve("o2", 830_000, s.clone())).await.unwrap().granted);
    assert_eq!(reads(&l).await, (0, g(170_000, 170_000)));
    // ...and this instance's reservation is refused at once, refreshing the signal.
    let r = l.reserve(reserve("r3", 1, s.clone())).await.unwrap();
    assert!(!r.granted && r.refusal.starts_with("tenant:acme day"), "{r:?}");
    assert_eq!(reads(&l).await, (0, g(170_000, 1_000_000)));

    // Max age 0: every call reads Redis.
    cfg.signal_max_age = Duration::ZERO;
    let (uncached, _, _) = ledger_at(redis.url(), &cfg, "sig");
    assert_eq!(reads(&uncached).await, (2, g(1_000_000, 1_000_000)));
    assert_eq!(reads(&uncached).await, (2, g(1_000_000, 1_000_000)));
}

/// Records written before only limited counters held reservations have no `held` field:
/// every counter holds them, and commit, release and the reaper still free every counter.
#[tokio::test]
async fn a_record_from_before_held_counters_frees_every_counter() {
    let redis = RedisServer::start().unwrap();
    let mut c = conn(&redis).await;
    let cfg = config(vec![limit("tenant", None, Window::Day, 1_000_000)], FailMode::Closed);
    let (l, _, _) = ledger_at(redis.url(), &cfg, "old");
    let s = scopes("acme", "u1", "fast", "c1");
    let day = Span::at(W::Day, T0).unwrap();
    let hour = Span::at(W::Hour, T0).unwrap();
    // What the old reserve script left behind: `reserved` on every counter, no `held`. The
    // record names every hour and the tenant's day (the only limited counter).
    let as_before = |mut c: redis::aio::MultiplexedConnection, rid: &str, amount: i64| {
        let mut pipe = redis::pipe();
        pipe.hdel(l.keys().record(rid), "held").ignore();
        for (kind, id) in KINDS {
            pipe.hincr(l.keys().counter(kind, id, &hour), "reserved", amount).ignore();
        }
        async move {
            let _: () = pipe.query_async(&mut c).await.unwrap();
        }
    };

    assert!(l.reserve(reserve("old-1", 300, s.clone())).await.unwrap().granted);
    as_before(c.clone(), "old-1", 300).await;
    assert!(l.release(release("old-1")).await.unwrap().released);
    let held = KINDS.iter().map(|(kind, id)| l.keys().counter(kind, id, &hour));
    for key in held.chain([l.keys().counter("tenant", "acme", &day)]) {
        let reserved: Option<i64> = redis::cmd("HGET").arg(&key).arg("reserved").query_async(&mut c).await.unwrap();
        assert_eq!(reserved, Some(0), "{key} after release");
    }

    assert!(l.reserve(reserve("old-2", 300, s.clone())).await.unwrap().granted);
    as_before(c.clone(), "old-2", 300).await;
    assert_eq!(l.commit(commit("old-2", 100)).await.unwrap().charged_micros, 100);
    for (kind, id) in KINDS {
        for w in ["hour", "day"] {
            let r = row(&l, kind, id, w).await;
            assert_eq!((r.spent_micros, r.reserved_micros), (100, 0), "{kind} {w} after commit");
        }
    }
}
