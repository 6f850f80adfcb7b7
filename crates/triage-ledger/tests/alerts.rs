//! Budget threshold alerts against a real redis-server: crossings fire once per scope,
//! window instance and threshold across instances; the webhook gets JSON off the request
//! path, and a dead webhook never fails a commit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use triage_core::config::{AlertWebhookConfig, FailMode, LedgerConfig, Window};
use triage_core::metrics::BudgetAlertLabels;
use triage_ledger::{Ledger, RedisLedger};
use triage_testkit::RedisServer;

/// Reserves and commits `actual` for tenant acme.
async fn spend(l: &RedisLedger, id: &str, actual: i64) {
    assert!(l.reserve(reserve(id, actual, scopes("acme", "u1", "fast", "c1"))).await.unwrap().granted, "{id}");
    assert_eq!(l.commit(commit(id, actual)).await.unwrap().charged_micros, actual);
}

fn crossed(alerts: &Alerts) -> Vec<(String, Window, f64, i64)> {
    let a = alerts.1.lock().unwrap();
    a.iter().map(|a| (format!("{}:{}", a.scope.kind, a.scope.id), a.window, a.threshold, a.used.0)).collect()
}

fn alerts_metric(kind: &str, window: &str, threshold: &str) -> u64 {
    let labels = BudgetAlertLabels { scope_kind: kind.into(), window: window.into(), threshold: threshold.into() };
    triage_core::metrics::global().budget_alerts.get_or_create(&labels).get()
}

#[tokio::test]
async fn each_threshold_fires_once_per_window_across_instances() {
    let redis = RedisServer::start().unwrap();
    let cfg = config(vec![limit("tenant", None, Window::Day, 1_000)], FailMode::Closed);
    let (a, aclock, alerts_a) = ledger_at(redis.url(), &cfg, "al");
    let (b, bclock, alerts_b) = ledger_at(redis.url(), &cfg, "al");
    let metric_before = alerts_metric("tenant", "day", "0.8");

    spend(&a, "r1", 499).await;
    assert!(crossed(&alerts_a).is_empty(), "below 0.5");
    spend(&a, "r2", 1).await; // 500: reaching the threshold exactly crosses it
    spend(&b, "r3", 350).await; // 850: 0.8 crossed, on the other instance
    spend(&a, "r4", 10).await; // 860: past 0.8 again, nothing new
    spend(&b, "r5", 100).await; // 960
    assert_eq!(crossed(&alerts_a), vec![("tenant:acme".into(), Window::Day, 0.5, 500)]);
    assert_eq!(crossed(&alerts_b), vec![("tenant:acme".into(), Window::Day, 0.8, 850)]);
    assert!(alerts_metric("tenant", "day", "0.8") > metric_before);
    {
        let x = alerts_b.1.lock().unwrap();
        assert_eq!((x[0].limit.0, x[0].resets_at_unix_ms, x[0].window_id.as_str()), (1_000, T0_NEXT_DAY, "2025-03-14"));
    }

    // Another instance already sent the 1.0 alert of this window (its marker is in Redis):
    // crossing 1.0 here sends nothing.
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}:alert:tenant:day:2025-03-14:1000000:acme", a.keys().base());
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{}:alert:tenant:day:2025-03-14:800000:acme", a.keys().base()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > T0_NEXT_DAY - T0 - 5_000 && ttl <= T0_NEXT_DAY - T0 + 60_000, "expires with the window: {ttl}");
    let _: () = redis::cmd("SET").arg(&key).arg(1).query_async(&mut conn).await.unwrap();
    spend(&a, "r6", 40).await; // 1000
    assert_eq!(crossed(&alerts_a).len() + crossed(&alerts_b).len(), 2);

    // A retried commit and a commit into the past window (after the reset) alert nobody.
    assert!(a.commit(commit("r6", 40)).await.unwrap().already_committed);
    assert!(a.reserve(reserve("late", 0, scopes("acme", "u1", "fast", "c1"))).await.unwrap().granted);
    aclock.set(T0_NEXT_DAY);
    bclock.set(T0_NEXT_DAY);
    assert_eq!(a.commit(commit("late", 500)).await.unwrap().charged_micros, 500);
    assert_eq!(crossed(&alerts_a).len() + crossed(&alerts_b).len(), 2);

    // The next day alerts again; one commit past several thresholds fires each of them.
    spend(&b, "d2", 1_000).await;
    let day2: Vec<f64> = crossed(&alerts_b).into_iter().skip(1).map(|c| c.2).collect();
    assert_eq!(day2, vec![0.5, 0.8, 1.0]);
}

/// A webhook on 127.0.0.1:0 forwarding each JSON body it receives.
async fn webhook() -> (String, mpsc::UnboundedReceiver<serde_json::Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

fn with_webhook(url: &str, timeout: Duration) -> LedgerConfig {
    let mut cfg = config(vec![limit("tenant", None, Window::Day, 1_000)], FailMode::Closed);
    cfg.alerts.thresholds = vec![0.5];
    cfg.alerts.webhook = Some(AlertWebhookConfig { url: url.into(), timeout });
    cfg
}

#[tokio::test]
async fn webhook_receives_the_alert_as_json() {
    let redis = RedisServer::start().unwrap();
    let (url, mut rx) = webhook().await;
    let (l, _, _) = ledger_at(redis.url(), &with_webhook(&url, Duration::from_secs(2)), "wh");
    spend(&l, "r1", 600).await;
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "scope": "tenant:acme", "window": "day", "threshold": 0.5,
            "limit_micros": 1_000, "used_micros": 600, "resets_at": "2025-03-15T00:00:00Z"
        })
    );
    spend(&l, "r2", 100).await;
    assert!(tokio::time::timeout(Duration::from_millis(300), rx.recv()).await.is_err(), "sent once");
}

#[tokio::test]
async fn a_dead_webhook_never_fails_or_slows_the_commit() {
    let redis = RedisServer::start().unwrap();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/alerts");
    let (l, _, alerts) = ledger_at(redis.url(), &with_webhook(&url, Duration::from_millis(500)), "dead");
    let failures = || triage_core::metrics::global().budget_alert_webhook_failures.get();
    let before = failures();
    let started = Instant::now();
    spend(&l, "r1", 700).await;
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(crossed(&alerts).len(), 1, "the alert itself fired");
    let start = Instant::now();
    while failures() == before {
        assert!(start.elapsed() < Duration::from_secs(5), "webhook failure not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
