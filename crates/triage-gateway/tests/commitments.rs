//! Commitments a model makes are kept with its version, shown by Explain, and reach the
//! next model in the handoff summary when the conversation escalates.

mod common;

use std::sync::Arc;
use triage_core::Config;
use triage_core::config::{ClassifierKind, ProviderConfig, SecretRef};
use triage_proto::pb;
use triage_testkit::{FakeAnthropic, FakeOpenAi, RedisServer, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_decision_is_explained_and_handed_off() {
    let redis = RedisServer::start().unwrap();
    let fast = FakeOpenAi::start().await.unwrap();
    fast.set_reply(Reply { text: "Good news: your refund of $40 has been approved.".into(), ..Reply::default() });
    let frontier = FakeAnthropic::start().await.unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key");
    std::fs::write(&key, "k").unwrap();

    // Every model on the fakes: frontier models on the Anthropic one, the rest on the other.
    let mut config = Config::embedded_default().unwrap();
    config.redis.url = Some(redis.url());
    config.classifier.kind = ClassifierKind::Heuristic;
    for m in config.models.values_mut() {
        m.provider = if m.tier != triage_core::Tier::Frontier {
            ProviderConfig::Openai {
                base_url: fast.base_url(),
                model_id: "fast-model".into(),
                api_key: Some(SecretRef { env: None, file: Some(key.clone()) }),
            }
        } else {
            ProviderConfig::Anthropic {
                base_url: frontier.base_url(),
                model_id: m.version.clone(),
                api_key: SecretRef { env: None, file: Some(key.clone()) },
                api_version: "2023-06-01".into(),
            }
        };
    }
    let config = Arc::new(config);
    let gw = common::local_gateway(&config, &redis, "c").await;

    let turn = |text: &str| pb::RouteRequest {
        conversation_id: "conv-refund".into(),
        create_if_missing: true,
        turn: text.into(),
        max_tokens: 16,
        ..Default::default()
    };
    let first = gw.route("acme", turn("I want a refund for order 1234")).await.unwrap();
    assert_ne!(first.tier, pb::Tier::Frontier as i32, "{first:?}");
    let rec = gw.decision_log().get("acme", &first.request_id).await.unwrap();
    let c = rec.commitments.iter().find(|c| c.text.contains("$40")).expect("refund commitment in the record");
    assert_eq!(c.model, first.model);
    assert_eq!(c.model_version, first.model_version);

    // A complex turn escalates to the frontier: the handoff summary carries the decision.
    frontier.set_reply(Reply { text: "Understood.".into(), ..Reply::default() });
    let hard = gw
        .route("acme", turn("Given the liability clause 14 and the indemnity in clause 9, analyse whether we can also claim lost profits and draft the legal argument."))
        .await
        .unwrap();
    assert!(hard.escalated, "{hard:?}");
    let rec = gw.decision_log().get("acme", &hard.request_id).await.unwrap();
    assert!(rec.handoff_summary_json.contains("$40"), "{}", rec.handoff_summary_json);
    let sent = frontier.last_request().unwrap().body.to_string();
    assert!(sent.contains("$40"), "the frontier model received the decision: {sent}");
}
