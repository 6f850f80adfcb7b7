//! Decision records in Redis are kept as `telemetry.decision_records` says: each request's
//! record for its `ttl`, and the live stream only when it has a length.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;
use triage_proto::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_keep_their_configured_ttl_and_a_zero_length_stream_is_not_written() {
    let (redis, _fake, mut config, _keys) = common::fake_stack().await;
    config.telemetry.decision_records.ttl = Duration::from_secs(90 * 60);
    config.telemetry.decision_records.stream_max_len = 0;
    let gw = common::local_gateway(&Arc::new(config), &redis, "dr").await;

    let mut ids = Vec::new();
    for turn in ["Where is my order 1234?", "What are your opening hours?"] {
        let r = gw.route("acme", pb::RouteRequest { turn: turn.into(), max_tokens: 8, ..Default::default() }).await;
        ids.push(r.unwrap().request_id);
    }
    gw.flush_decisions().await;
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    for id in &ids {
        assert_eq!(&gw.decision_log().get("acme", id).await.unwrap().request_id, id, "Explain reads it");
        let found: Vec<String> = conn.keys(format!("*:decision:acme:{id}")).await.unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let ttl_ms: i64 = conn.pttl(&found[0]).await.unwrap();
        assert!((89 * 60_000..=90 * 60_000).contains(&ttl_ms), "ttl {ttl_ms} ms, want 90 min");
    }
    let stream: bool = conn.exists(gw.decision_log().stream_key()).await.unwrap();
    assert!(!stream, "stream_max_len 0 writes no stream");
}

/// Each request's key holds its record as protobuf (the stream keeps JSON for tools); a key
/// written as JSON before that is still read, under the tenant's key or the older bare one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_stored_as_protobuf_and_older_json_ones_are_still_read() {
    let (redis, _fake, config, _keys) = common::fake_stack().await;
    let gw = common::local_gateway(&Arc::new(config), &redis, "pbr").await;
    let r =
        gw.route("acme", pb::RouteRequest { turn: "Where is my order?".into(), max_tokens: 8, ..Default::default() });
    let id = r.await.unwrap().request_id;
    gw.flush_decisions().await;
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let found: Vec<String> = conn.keys(format!("*:decision:acme:{id}")).await.unwrap();
    let prefix = found[0].split(":decision:").next().unwrap().to_string();
    let stored: Vec<u8> = conn.get(&found[0]).await.unwrap();
    let decoded = <pb::DecisionRecord as prost::Message>::decode(&stored[..]).unwrap();
    assert_eq!(decoded.request_id, id);
    // One stream entry: its id and its fields.
    type Entry = (String, Vec<(String, String)>);
    let entries: Vec<Entry> = redis::cmd("XRANGE")
        .arg(gw.decision_log().stream_key())
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let json = &entries[0].1[0].1;
    assert!(serde_json::from_str::<pb::DecisionRecord>(json).is_ok(), "{json}");

    // JSON, as written before: under the tenant's key, and under the bare key of older still.
    let mut old = decoded.clone();
    old.request_id = "old-1".into();
    let _: () = conn.set(format!("{prefix}:decision:acme:old-1"), serde_json::to_string(&old).unwrap()).await.unwrap();
    old.request_id = "old-2".into();
    let _: () = conn.set(format!("{prefix}:decision:old-2"), serde_json::to_string(&old).unwrap()).await.unwrap();
    for id in ["old-1", "old-2"] {
        assert_eq!(gw.decision_log().get("acme", id).await.unwrap().request_id, id);
        assert!(gw.decision_log().get("globex", id).await.is_err(), "another tenant's");
    }
}
