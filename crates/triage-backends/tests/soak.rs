//! Soak, bounded in count and time: provider A fails 30 % of its calls, provider B hangs,
//! a declared fallback C is healthy. No generate may fail; B's breaker must open, then
//! close again once B heals; p99 latency must stay within the configured deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use futures::StreamExt;
use std::time::{Duration, Instant};
use triage_backends::Backends;
use triage_proto::pb;
use triage_testkit::{FakeAnthropic, FakeOpenAi, Fault, Reply};

const CONCURRENCY: usize = 16;
const PHASE1: usize = 400;
const PHASE2: usize = 200;
/// `server.deadlines.generate` below: the budget of one whole generate, failover included.
const DEADLINE: Duration = Duration::from_secs(1);
const THINK: Duration = Duration::from_millis(100);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn run(be: &triage_backends::LocalBackends, from: usize, n: usize) -> (Vec<Duration>, Vec<String>, usize) {
    let results: Vec<_> = futures::stream::iter(from..from + n)
        .map(|i| async move {
            // A third each: A then C; B then C; B then A then C (B's chain crosses A's).
            let r = match i % 3 {
                0 => req("a", &["c"]),
                1 => req("b", &["c"]),
                _ => req("b", &["a", "c"]),
            };
            // Think time between a worker's calls spreads the soak over seconds, so breakers
            // go through several open / probe cycles.
            tokio::time::sleep(THINK).await;
            let t = Instant::now();
            let res = if i % 5 == 0 {
                // Some streams too: failover happens before the first token.
                let s = be.generate_stream(r).await;
                match s {
                    Ok(s) => {
                        let c = collect(s).await;
                        c.done.ok_or_else(|| format!("stream error: {:?}", c.error))
                    }
                    Err(e) => Err(e.to_string()),
                }
            } else {
                be.generate(r).await.map_err(|e| e.to_string())
            };
            (t.elapsed(), res)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut lat = Vec::new();
    let mut models = Vec::new();
    let mut failed = 0;
    for (d, r) in results {
        lat.push(d);
        match r {
            Ok(resp) => models.push(resp.model),
            Err(e) => {
                failed += 1;
                eprintln!("FAILED: {e}");
            }
        }
    }
    (lat, models, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_flaky_and_hanging_providers_with_a_healthy_fallback() {
    let started = Instant::now();
    let a = FakeOpenAi::start().await.unwrap();
    let b = FakeAnthropic::start().await.unwrap();
    let c = FakeOpenAi::start().await.unwrap();
    a.set_reply(Reply { text: "from a".into(), ..Default::default() });
    b.set_reply(Reply { text: "from b".into(), ..Default::default() });
    c.set_reply(Reply { text: "from c".into(), ..Default::default() });
    a.set_failure_ratio(Some((0.3, Fault::status(500))));
    b.set_mode(Some(Fault::Hang));
    let key = key_file("sk-ant-soak");
    let be = backends(
        &[
            openai("a", &a.base_url(), "a", None).fallbacks(&["c"]),
            anthropic("b", &b.base_url(), "b", key.path())
                .fallbacks(&["a", "c"])
                .extra("timeout: 150ms\nttft_timeout: 150ms"),
            openai("c", &c.base_url(), "c", None),
        ],
        &Knobs {
            timeout: "500ms",
            ttft: "500ms",
            max_retries: 1,
            base_delay: "5ms",
            max_delay: "50ms",
            budget_ratio: 0.2,
            budget_min_per_sec: 5,
            threshold: 5,
            cooldown: "400ms",
            generate_deadline: "1s",
        },
    )
    .await;

    // Phase 1: A flaky, B hanging.
    let (mut lat, models1, failed1) = run(&be, 0, PHASE1).await;
    let phase1 = started.elapsed();
    let stats1 = be.stats();
    assert!(stats1["b"].breaker_opens >= 1, "B's breaker opened: {:?}", stats1["b"]);
    assert_eq!(models1.iter().filter(|m| *m == "b").count(), 0, "a hanging B never answered");
    let b_calls_phase1 = b.requests();

    // B heals; after the cooldown the half-open probe succeeds and B serves again.
    b.clear_faults();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (lat2, models2, failed2) = run(&be, PHASE1, PHASE2).await;
    lat.extend(lat2);

    let mut sorted = lat.clone();
    sorted.sort();
    let (p50, p99, max) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99), *sorted.last().unwrap());
    let count = |ms: &[String], m: &str| ms.iter().filter(|x| *x == m).count();
    let stats = be.stats();
    println!(
        "soak: {} generates in {:.2?} (phase 1 {:.2?}), failed {}; latency p50 {:.2?} p99 {:.2?} max {:.2?} (deadline {:?})",
        lat.len(),
        started.elapsed(),
        phase1,
        failed1 + failed2,
        p50,
        p99,
        max,
        DEADLINE
    );
    println!(
        "soak: phase 1 answered by a {} / c {}; phase 2 by a {} / b {} / c {}",
        count(&models1, "a"),
        count(&models1, "c"),
        count(&models2, "a"),
        count(&models2, "b"),
        count(&models2, "c")
    );
    println!(
        "soak: provider calls a {} b {} (phase 1 {}) c {}; breaker b opened {}x, rejected {}; breaker a opened {}x; a retries {} denied {}",
        a.requests(),
        b.requests(),
        b_calls_phase1,
        c.requests(),
        stats["b"].breaker_opens,
        stats["b"].breaker_rejections,
        stats["a"].breaker_opens,
        stats["a"].retries,
        stats["a"].retries_denied
    );

    assert_eq!(failed1 + failed2, 0, "zero failed generates while a declared fallback is healthy");
    assert_eq!(be.breaker_states()["b"], pb::BreakerState::Closed, "B's breaker recovered");
    assert!(count(&models2, "b") > 0, "B serves again after healing");
    assert!(p99 <= DEADLINE, "p99 {p99:?} within the {DEADLINE:?} deadline");
    // Breaker and budget keep the hanging provider from eating the traffic.
    assert!(b_calls_phase1 < PHASE1 / 4, "B was called {b_calls_phase1} times while hanging");
    assert!(started.elapsed() < Duration::from_secs(30));
    let list = be.list_models().await.unwrap();
    assert!(list.models.iter().all(|m| m.breaker != pb::BreakerState::Unspecified as i32));
}
