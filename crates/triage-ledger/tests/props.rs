//! Property tests: window and reset math, limit arithmetic, key lists, and the ledger
//! against an in-memory model on a real redis-server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use chrono::{DateTime, Datelike, Timelike, Utc};
use common::*;
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use triage_core::config::{FailMode, Window};
use triage_ledger::keys::{decode_key_list, encode_key_list};
use triage_ledger::limits::{MAX_MICROS, fits, remaining_fraction};
use triage_ledger::window::{DAY_MS, HOUR_MS, MAX_UNIX_MS, Span};
use triage_ledger::{Error, LedgerOptions, ManualClock, RedisLedger};
use triage_proto::pb;
use triage_testkit::RedisServer;

proptest! {
    #[test]
    fn windows_contain_now_and_tile_the_calendar(now in 0i64..=MAX_UNIX_MS - 40 * DAY_MS, w in prop::sample::select(Window::ALL.to_vec())) {
        let s = Span::at(w, now).unwrap();
        prop_assert!(s.start_unix_ms <= now && now < s.end_unix_ms);
        // Contiguous: the next window starts where this one resets, and has a greater id.
        let next = Span::at(w, s.end_unix_ms).unwrap();
        prop_assert_eq!(next.start_unix_ms, s.end_unix_ms);
        prop_assert!(next.id > s.id);
        prop_assert_eq!(&Span::at(w, s.start_unix_ms).unwrap(), &s);
        prop_assert_eq!(&Span::at(w, s.end_unix_ms - 1).unwrap(), &s);
        prop_assert!(s.expire_at_unix_ms() > s.end_unix_ms);
        let start = DateTime::<Utc>::from_timestamp_millis(s.start_unix_ms).unwrap();
        prop_assert_eq!((start.minute(), start.second(), start.nanosecond()), (0, 0, 0));
        match w {
            Window::Hour => prop_assert_eq!(s.end_unix_ms - s.start_unix_ms, HOUR_MS),
            Window::Day => {
                prop_assert_eq!(s.end_unix_ms - s.start_unix_ms, DAY_MS);
                prop_assert_eq!(start.hour(), 0);
            }
            Window::Month => {
                prop_assert_eq!((start.day(), start.hour()), (1, 0));
                let days = (s.end_unix_ms - s.start_unix_ms) / DAY_MS;
                prop_assert!((28..=31).contains(&days), "{} days", days);
                prop_assert_eq!((s.end_unix_ms - s.start_unix_ms) % DAY_MS, 0);
            }
        }
        let t = DateTime::<Utc>::from_timestamp_millis(now).unwrap();
        let expect = match w {
            Window::Hour => t.format("%Y-%m-%dT%H").to_string(),
            Window::Day => t.format("%Y-%m-%d").to_string(),
            Window::Month => t.format("%Y-%m").to_string(),
        };
        prop_assert_eq!(s.id, expect);
    }

    #[test]
    fn limit_arithmetic_is_exact(used in 0i64..=MAX_MICROS, amount in 0i64..=MAX_MICROS, limit in 0i64..=MAX_MICROS) {
        prop_assert_eq!(fits(used, amount, limit), i128::from(used) + i128::from(amount) <= i128::from(limit));
        let f = remaining_fraction(limit, used);
        prop_assert!((0.0..=1.0).contains(&f));
        if limit > 0 && used < limit { prop_assert!(f > 0.0); }
        if used >= limit { prop_assert_eq!(f, 0.0); }
        prop_assert!(remaining_fraction(limit, used.saturating_add(amount)) <= f);
    }

    #[test]
    fn key_lists_round_trip(keys in prop::collection::vec(".*", 0..20)) {
        prop_assert_eq!(decode_key_list(&encode_key_list(&keys)).unwrap(), keys);
    }
}

#[test]
fn out_of_range_times_are_rejected() {
    assert!(Span::at(Window::Day, -1).is_err());
    assert!(Span::at(Window::Month, MAX_UNIX_MS + 1).is_err());
    assert_eq!(Span::at(Window::Month, MAX_UNIX_MS).unwrap().id, "9999-12");
}

// ---- the ledger against a model ---------------------------------------------------------

const TTL_MS: i64 = 10 * MINUTE;
const HUGE: i64 = MAX_MICROS / 2;
const HOUR_LIMIT: i64 = HUGE + 5_000; // tenant, hour: one huge amount fits, two do not
const DAY_LIMIT: i64 = MAX_MICROS; // global, day

#[derive(Debug, Clone)]
enum Op {
    Reserve(u8, i64),
    Commit(u8, i64),
    Release(u8),
    Advance(i64),
    Reap,
}

fn op() -> impl Strategy<Value = Op> {
    let amount = prop_oneof![4 => 0i64..3_000, 1 => (HUGE - 10)..=HUGE];
    prop_oneof![
        4 => (0u8..8, amount.clone()).prop_map(|(i, a)| Op::Reserve(i, a)),
        3 => (0u8..8, amount).prop_map(|(i, a)| Op::Commit(i, a)),
        1 => (0u8..8).prop_map(Op::Release),
        1 => (0i64..90).prop_map(|m| Op::Advance(m * MINUTE)),
        1 => Just(Op::Reap),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Reserved,
    Committed,
    Released,
    Expired,
}

/// A request in the model: state, amount, windows it was reserved in, deadline.
type ModelReq = (St, i64, Vec<(Window, String)>, i64);

#[derive(Default)]
struct Model {
    /// (window, window id) -> (spent, reserved) of the one tenant (= global) scope, reserved as
    /// a counter holding every reservation would show it (what the limit checks use). Only
    /// limited counters hold reservations: of the tenant's, the hour one.
    counters: HashMap<(Window, String), (i64, i64)>,
    reqs: HashMap<u8, ModelReq>,
}

impl Model {
    fn used(&self, k: &(Window, String)) -> i64 {
        self.counters.get(k).map_or(0, |(s, r)| s + r)
    }
    fn add(&mut self, spans: &[(Window, String)], spent: i64, reserved: i64) {
        for k in spans {
            let c = self.counters.entry(k.clone()).or_default();
            c.0 += spent;
            c.1 += reserved;
        }
    }
}

fn redis_url() -> String {
    static REDIS: OnceLock<RedisServer> = OnceLock::new();
    REDIS.get_or_init(|| RedisServer::start().unwrap()).url()
}

fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    static CASE: AtomicU64 = AtomicU64::new(0);
    let prefix = format!("prop{}", CASE.fetch_add(1, Ordering::SeqCst));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let mut cfg = config(
            vec![limit("tenant", None, Window::Hour, HOUR_LIMIT), limit("global", None, Window::Day, DAY_LIMIT)],
            FailMode::Closed,
        );
        cfg.reservation_ttl = Duration::from_millis(TTL_MS as u64);
        let clock = Arc::new(ManualClock::new(T0));
        let opts = LedgerOptions { clock: clock.clone(), op_timeout: Duration::from_secs(5), ..Default::default() };
        let l = RedisLedger::with_options(redis_url(), &cfg, &prefix, opts).unwrap();
        let mut m = Model::default();
        let mut now = T0;
        let sc = || vec![scope("tenant", "t")];
        for op in ops {
            match op {
                Op::Reserve(i, amount) => {
                    let got = l.reserve_at(reserve(&format!("r{i}"), amount, sc()), now).await.unwrap();
                    let spans: Vec<_> = Span::all_at(now).unwrap().into_iter().map(|s| (s.window, s.id)).collect();
                    if let Some((st, ..)) = m.reqs.get(&i) {
                        prop_assert!(got.existing);
                        prop_assert_eq!(got.granted, matches!(st, St::Reserved | St::Committed));
                        continue;
                    }
                    let fits_hour = m.used(&spans[0]) + amount <= HOUR_LIMIT;
                    let fits_day = m.used(&spans[1]) + amount <= DAY_LIMIT;
                    prop_assert_eq!(got.granted, fits_hour && fits_day, "{:?}", got);
                    if got.granted {
                        m.add(&spans, 0, amount);
                        m.reqs.insert(i, (St::Reserved, amount, spans, now + TTL_MS));
                    }
                }
                Op::Commit(i, actual) => {
                    let got = l.commit_at(commit(&format!("r{i}"), actual), now).await;
                    let Some((st, amount, spans, _)) = m.reqs.get(&i).cloned() else {
                        prop_assert!(matches!(got, Err(Error::InvalidRequest(_))));
                        continue;
                    };
                    let got = got.unwrap();
                    match st {
                        St::Reserved | St::Expired => {
                            prop_assert_eq!((got.charged_micros, got.already_committed), (actual, false));
                            let freed = if st == St::Reserved { amount } else { 0 };
                            m.add(&spans, actual, -freed);
                            m.reqs.get_mut(&i).unwrap().0 = St::Committed;
                        }
                        St::Committed => {
                            prop_assert!(got.already_committed && got.charged_micros == 0)
                        }
                        St::Released => {
                            prop_assert!(!got.already_committed && got.charged_micros == 0)
                        }
                    }
                }
                Op::Release(i) => {
                    let got = l.release_at(release(&format!("r{i}")), now).await.unwrap();
                    let reserved = matches!(m.reqs.get(&i), Some((St::Reserved, ..)));
                    prop_assert_eq!(got.released, reserved);
                    if let Some((st @ St::Reserved, amount, spans, _)) = m.reqs.get(&i).cloned() {
                        let _ = st;
                        m.add(&spans, 0, -amount);
                        m.reqs.get_mut(&i).unwrap().0 = St::Released;
                    }
                }
                Op::Advance(ms) => {
                    now += ms;
                    clock.set(now);
                }
                Op::Reap => {
                    let n = l.reap_at(now).await.unwrap();
                    let due: Vec<u8> =
                        m.reqs.iter().filter(|(_, r)| r.0 == St::Reserved && r.3 <= now).map(|(i, _)| *i).collect();
                    prop_assert_eq!(n, due.len());
                    for i in due {
                        let (_, amount, spans, _) = m.reqs[&i].clone();
                        m.add(&spans, 0, -amount);
                        m.reqs.get_mut(&i).unwrap().0 = St::Expired;
                    }
                }
            }
            // Every window instance seen so far matches the model exactly.
            for ((w, id), (spent, reserved)) in &m.counters {
                let at = Span::all_at(now).unwrap();
                if at.iter().any(|s| s.window == *w && &s.id == id) {
                    let r = l
                        .spend_at(
                            pb::SpendRequest { kind: "tenant".into(), id: "t".into(), window: w.as_str().into() },
                            now,
                        )
                        .await
                        .unwrap();
                    let held = if *w == Window::Hour { *reserved } else { 0 };
                    prop_assert_eq!(
                        (r.rows[0].spent_micros, r.rows[0].reserved_micros),
                        (*spent, held),
                        "{:?} {}",
                        w,
                        id
                    );
                }
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn ledger_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run_case(ops)?;
    }
}
