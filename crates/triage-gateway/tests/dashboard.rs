//! The Grafana dashboard queries only metrics that exist: every PromQL `expr` in
//! `deploy/grafana/triage-dashboard.json` is parsed, its metric names extracted, and each
//! checked against the families of the process-wide registry (counter `N` exports
//! `N_total`, histogram `N` exports `N_bucket`, `N_sum`, `N_count`). A family appears in
//! the exposition once it has a series, so the services are exercised first: routes, an
//! escalation that fails over to a deprecated model, a failed route, feedback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use triage_core::Config;
use triage_core::config::{ClassifierKind, Lifecycle, ProviderConfig, SecretRef};
use triage_gateway::RouterServer;
use triage_proto::pb;
use triage_proto::pb::router_server::Router as _;
use triage_testkit::{FakeOpenAi, Fault, RedisServer, Reply};

fn dashboard() -> serde_json::Value {
    let p = triage_testkit::repo_root().join("deploy/grafana/triage-dashboard.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// Metric names in a PromQL expression: identifiers outside quoted strings that start with
/// `triage_` (functions, keywords and labels never do).
fn metric_names(expr: &str) -> Vec<String> {
    let mut unquoted = String::new();
    let mut quote: Option<char> = None;
    for c in expr.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None => unquoted.push(c),
        }
    }
    let mut names = Vec::new();
    let mut cur = String::new();
    for c in unquoted.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            cur.push(c);
        } else {
            if cur.starts_with("triage_") {
                names.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
    }
    names
}

/// Exported sample names by family type, from the `# TYPE` lines of the exposition.
fn exported_names(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
        let samples: Vec<String> = match kind {
            "counter" => vec![format!("{name}_total")],
            "histogram" => ["_bucket", "_sum", "_count"].iter().map(|s| format!("{name}{s}")).collect(),
            _ => vec![name.to_string()],
        };
        for s in samples {
            out.insert(s, name.to_string());
        }
    }
    out
}

#[test]
fn names_are_extracted_carefully() {
    let e = r#"sum by (le) (rate(triage_answer_cost_micros_bucket{model="triage_x"}[5m])) / on() triage_turns_total"#;
    assert_eq!(metric_names(e), ["triage_answer_cost_micros_bucket", "triage_turns_total"]);
    let text = "# TYPE triage_cost_micros counter\n# TYPE triage_answer_cost_micros histogram\n# TYPE triage_in_flight_requests gauge\n";
    let names = exported_names(text);
    assert!(names.contains_key("triage_cost_micros_total"));
    assert!(names.contains_key("triage_answer_cost_micros_count"));
    assert!(!names.contains_key("triage_cost_micros"));
    assert!(!names.contains_key("triage_in_flight_requests_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_uses_exported_metrics() {
    let redis = RedisServer::start().unwrap();
    let fake = FakeOpenAi::start().await.unwrap();
    // A provider reporting another model than the pin: version drift is counted too.
    fake.set_reply(Reply { model: Some("some-other-build".into()), ..Reply::default() });
    // The frontier model's provider is down: its turns fail over (a downgrade) to
    // openai-gpt-4o, declared deprecated here (a deprecated call).
    let down = FakeOpenAi::start().await.unwrap();
    down.set_mode(Some(Fault::status(500)));
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key");
    std::fs::write(&key, "k").unwrap();
    let mut config = Config::embedded_default().unwrap();
    config.redis.url = Some(redis.url());
    config.classifier.kind = ClassifierKind::Heuristic;
    for (name, m) in config.models.iter_mut() {
        let base = if name == "claude-sonnet" { down.base_url() } else { fake.base_url() };
        if name == "openai-gpt-4o" {
            m.lifecycle = Lifecycle::Deprecated { replacement: "claude-sonnet".into(), sunset: None };
        }
        m.provider = ProviderConfig::Openai {
            base_url: base,
            model_id: name.clone(),
            api_key: Some(SecretRef { env: None, file: Some(key.clone()) }),
        };
    }
    let config = Arc::new(config);
    let gateway = common::local_gateway(&config, &redis, "d").await;
    let router = RouterServer::new(gateway.clone());
    let turn = |conv: &str, text: &str| pb::RouteRequest {
        conversation_id: conv.into(),
        create_if_missing: true,
        turn: text.into(),
        max_tokens: 8,
        ..Default::default()
    };
    let first = gateway.route("acme", turn("c1", "Where is my order 1234?")).await.unwrap();
    let hard = "Given the liability clause 14 and the indemnity in clause 9, analyse whether we can claim lost profits and draft the legal argument.";
    let escalated = gateway.route("acme", turn("c1", hard)).await.unwrap();
    assert!(escalated.escalated && escalated.downgraded, "{escalated:?}");
    // An unknown conversation: a failed route.
    let missing = pb::RouteRequest { conversation_id: "nope".into(), turn: "hi".into(), ..Default::default() };
    assert!(gateway.route("acme", missing).await.is_err());
    let fb = pb::FeedbackRequest {
        request_id: first.request_id.clone(),
        resolved: Some(true),
        satisfaction: Some(8),
        escalated_to_human: true,
        ..Default::default()
    };
    let mut req = tonic::Request::new(fb);
    req.extensions_mut().insert(triage_gateway::Tenant("acme".into()));
    assert!(router.feedback(req).await.unwrap().into_inner().recorded);

    let text = triage_core::metrics::global().encode();
    let exported = exported_names(&text);
    let samples: BTreeSet<&str> =
        text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
    let mut all = Vec::new();
    exprs(&dashboard(), &mut all);
    assert!(all.len() >= 15, "{} queries", all.len());
    let mut used = BTreeSet::new();
    for e in &all {
        let names = metric_names(e);
        assert!(!names.is_empty(), "no metric in `{e}`");
        for n in names {
            assert!(exported.contains_key(&n), "`{n}` in `{e}` is not an exported metric; exported: {exported:?}");
            assert!(samples.contains(n.as_str()), "`{n}` has no series after exercising the services:\n{text}");
            used.insert(exported[&n].clone());
        }
    }
    // The panels the dashboard promises, by family.
    for family in [
        "triage_routes",
        "triage_cost_micros",
        "triage_conversations_started",
        "triage_escalations",
        "triage_turns",
        "triage_step_duration_seconds",
        "triage_breaker_state",
        "triage_budget_remaining_ratio",
        "triage_classifier_outcomes",
        "triage_feedback",
        "triage_satisfaction",
    ] {
        assert!(used.contains(family), "no panel uses {family}");
    }
}
