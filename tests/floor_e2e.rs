//! The latency floor `scripts/bench.sh --floor K` measures (`triage-floor`): what it does per
//! request must be exactly what the comparison claims, K Redis round trips and one upstream
//! call, on both endpoints, and it must stop on SIGTERM like the gateway.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use redis::AsyncCommands;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use triage_testkit::{FakeOpenAi, Fault, RedisServer, free_port};

async fn trips(redis: &mut redis::aio::MultiplexedConnection) -> i64 {
    redis.get::<_, Option<i64>>("floor:trips").await.unwrap().unwrap_or(0)
}

/// A serving `triage-floor` making `trips` round trips per request, logging into `dir`; its
/// gRPC URL and HTTP port.
async fn start_floor(redis: &RedisServer, fake: &FakeOpenAi, trips: u32, dir: &Path) -> (Process, String, u16) {
    let (grpc_port, http_port) = (free_port(), free_port());
    let log = dir.join("floor.log");
    let child = Command::new(env!("CARGO_BIN_EXE_triage-floor"))
        .args(["--grpc-listen", &format!("127.0.0.1:{grpc_port}")])
        .args(["--http-listen", &format!("127.0.0.1:{http_port}")])
        .args(["--redis", &redis.url(), "--upstream", &fake.base_url(), "--redis-trips", &trips.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut floor = Process { child, log };
    let grpc = format!("http://127.0.0.1:{grpc_port}");
    wait_serving(&grpc, "triage.v1.Router", &mut floor).await;
    (floor, grpc, http_port)
}

#[tokio::test]
async fn the_floor_makes_k_round_trips_and_one_upstream_call_per_request() {
    let redis_server = redis();
    let fake = FakeOpenAi::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut floor, grpc, http_port) = start_floor(&redis_server, &fake, 3, dir.path()).await;
    let mut conn = redis::Client::open(redis_server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();

    let mut router = router(&grpc).await;
    for n in 1..=2 {
        let resp = router.route(turn("Where is my order?")).await.unwrap().into_inner();
        assert_eq!(resp.reply, "Your order shipped yesterday.");
        assert_eq!(trips(&mut conn).await, 3 * n);
        assert_eq!(fake.requests(), usize::try_from(n).unwrap());
    }
    let sent = fake.last_request().expect("the upstream saw the call");
    assert!(sent.body.to_string().contains("Where is my order?"), "{:?}", sent.body);

    let reply: serde_json::Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http_port}/v1/chat/completions"))
        .json(&serde_json::json!({"model": "triage/auto", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], "Your order shipped yesterday.");
    assert_eq!(trips(&mut conn).await, 9);
    assert_eq!(fake.requests(), 3);

    floor.terminate();
    let status = floor.wait_exit(Duration::from_secs(10)).expect("triage-floor stops on SIGTERM");
    assert!(status.success(), "{status}: {}", floor.log_text());
}

/// `triage-load` (the gRPC side of `scripts/bench.sh`) keeps two histograms: successes in
/// `latency_ms`, and every call in `latency_all_ms`, a failure counted until it failed, so a
/// server that times out cannot look fast by answering nothing.
#[tokio::test]
async fn triage_load_counts_failed_calls_in_the_every_call_percentiles_only() {
    let redis_server = redis();
    let fake = FakeOpenAi::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut floor, grpc, _) = start_floor(&redis_server, &fake, 1, dir.path()).await;
    // Off the test's runtime thread: the fake upstream is served from it.
    let load = |timeout: &'static str| {
        let grpc = grpc.clone();
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_triage-load"))
                .args(["--addr", &grpc, "--rate", "0", "--concurrency", "2", "--duration", "1", "--timeout", timeout])
                .stderr(Stdio::null())
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        })
    };

    // Every call hangs upstream and ends at the client's 200 ms timeout.
    fake.set_mode(Some(Fault::Hang));
    let hung = load("0.2").await.unwrap();
    let requests = hung["requests"].as_u64().unwrap();
    assert!(requests >= 2, "{hung}");
    assert_eq!((hung["ok"].as_u64(), hung["errors"].as_u64()), (Some(0), Some(requests)), "{hung}");
    assert_eq!(hung["latency_ms"]["p99"], 0.0, "no success to report: {hung}");
    let all_p50 = hung["latency_all_ms"]["p50"].as_f64().unwrap();
    assert!((190.0..1_000.0).contains(&all_p50), "failures count until they failed: {hung}");

    // Healthy again: both histograms hold the same calls.
    fake.set_mode(None);
    let healthy = load("5").await.unwrap();
    assert!(healthy["ok"].as_u64().unwrap() > 0, "{healthy}");
    assert_eq!(healthy["errors"], 0, "{healthy}");
    assert_eq!(healthy["latency_ms"], healthy["latency_all_ms"], "{healthy}");

    floor.terminate();
    assert!(floor.wait_exit(Duration::from_secs(10)).is_some(), "{}", floor.log_text());
}
