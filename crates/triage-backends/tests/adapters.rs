//! Both adapters against the fake providers over real HTTP: request shape, headers, reply,
//! usage, stop reasons, unary and streaming.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use triage_backends::Backends;
use triage_proto::pb;
use triage_testkit::{FakeAnthropic, FakeOpenAi, Reply};

const OPENAI_KEY: &str = "sk-test-openai-0123456789";
const ANTHROPIC_KEY: &str = "sk-ant-test-9876543210";

#[tokio::test]
async fn openai_unary() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.require_key(OPENAI_KEY);
    fake.set_reply(Reply { text: "It shipped.".into(), input_tokens: 21, output_tokens: 4, ..Default::default() });
    let key = key_file(OPENAI_KEY);
    let b = backends(&[openai("gpt", &fake.base_url(), "gpt-4o-mini-2024-07-18", Some(key.path()))], &Knobs::default())
        .await;
    let r = b.generate(req("gpt", &[])).await.unwrap();
    assert_eq!(r.text, "It shipped.");
    assert_eq!(r.model, "gpt");
    assert_eq!(r.model_version, "gpt-4o-mini-2024-07-18");
    assert_eq!(r.provider, "openai");
    assert_eq!(r.tier, pb::Tier::Middle as i32);
    assert_eq!(r.usage, Some(pb::Usage { input_tokens: 21, output_tokens: 4 }));
    assert_eq!(r.stop_reason, "end_turn");
    assert!(!r.downgraded);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.reported_model.is_empty());
    assert_eq!(outcomes(&r), vec![("gpt".into(), "ok".into())]);

    let last = fake.last_request().unwrap();
    assert_eq!(last.path, "/v1/chat/completions");
    assert_eq!(last.headers["authorization"], format!("Bearer {OPENAI_KEY}"));
    assert_eq!(last.headers["content-type"], "application/json");
    assert_eq!(last.headers["x-client-request-id"], "req-1");
    let body = last.body;
    assert_eq!(body["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(body["stream"], false);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["messages"][0], serde_json::json!({"role": "system", "content": "Be brief."}));
    assert_eq!(body["messages"][1], serde_json::json!({"role": "user", "content": "Where is my order?"}));
    assert!(body.get("stream_options").is_none());
    assert!(body.get("temperature").is_none());
}

#[tokio::test]
async fn openai_stream() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.set_reply(Reply {
        text: "Your parcel is on its way.".into(),
        input_tokens: 9,
        output_tokens: 6,
        ..Default::default()
    });
    let b = backends(&[openai("gpt", &fake.base_url(), "gpt-x", None)], &Knobs::default()).await;
    let c = stream(&b, req("gpt", &[])).await;
    assert!(c.error.is_none(), "{:?}", c.error);
    assert_eq!(c.deltas.concat(), "Your parcel is on its way.");
    assert!(c.deltas.len() > 1, "streamed in pieces: {:?}", c.deltas);
    let done = c.done.unwrap();
    assert_eq!(done.text, "Your parcel is on its way.");
    assert_eq!(done.usage, Some(pb::Usage { input_tokens: 9, output_tokens: 6 }));
    assert_eq!(done.stop_reason, "end_turn");
    assert_eq!(done.model, "gpt");
    let body = fake.last_request().unwrap().body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    // No key configured (vLLM, Ollama): no Authorization header.
    assert!(!fake.last_request().unwrap().headers.contains_key("authorization"));
}

#[tokio::test]
async fn anthropic_unary() {
    let fake = FakeAnthropic::start().await.unwrap();
    fake.require_key(ANTHROPIC_KEY);
    fake.set_reply(Reply { text: "Refund approved.".into(), input_tokens: 30, output_tokens: 3, ..Default::default() });
    let key = key_file(ANTHROPIC_KEY);
    let b =
        backends(&[anthropic("claude", &fake.base_url(), "claude-3-5-sonnet-20241022", key.path())], &Knobs::default())
            .await;
    let mut rq = req("claude", &[]);
    rq.temperature = Some(0.2);
    let r = b.generate(rq).await.unwrap();
    assert_eq!(r.text, "Refund approved.");
    assert_eq!(r.provider, "anthropic");
    assert_eq!(r.tier, pb::Tier::Frontier as i32);
    assert_eq!(r.usage, Some(pb::Usage { input_tokens: 30, output_tokens: 3 }));
    assert_eq!(r.stop_reason, "end_turn");

    let last = fake.last_request().unwrap();
    assert_eq!(last.path, "/v1/messages");
    assert_eq!(last.headers["x-api-key"], ANTHROPIC_KEY);
    assert_eq!(last.headers["anthropic-version"], "2023-06-01");
    assert!(!last.headers.contains_key("authorization"));
    let body = last.body;
    assert_eq!(body["model"], "claude-3-5-sonnet-20241022");
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["messages"], serde_json::json!([{"role": "user", "content": "Where is my order?"}]));
    assert_eq!(body["max_tokens"], 64);
    assert!((body["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    assert_eq!(body["stream"], false);
}

#[tokio::test]
async fn anthropic_stream() {
    let fake = FakeAnthropic::start().await.unwrap();
    fake.set_reply(Reply { text: "Three words here".into(), input_tokens: 11, output_tokens: 3, ..Default::default() });
    let key = key_file(ANTHROPIC_KEY);
    let b = backends(&[anthropic("claude", &fake.base_url(), "claude-x", key.path())], &Knobs::default()).await;
    let c = stream(&b, req("claude", &[])).await;
    assert!(c.error.is_none(), "{:?}", c.error);
    assert_eq!(c.deltas, vec!["Three", " words", " here"]);
    let done = c.done.unwrap();
    assert_eq!(done.text, "Three words here");
    assert_eq!(done.usage, Some(pb::Usage { input_tokens: 11, output_tokens: 3 }));
    assert_eq!(done.stop_reason, "end_turn");
    assert_eq!(fake.last_request().unwrap().body["stream"], true);
}

#[tokio::test]
async fn stop_reasons_are_mapped() {
    let oa = FakeOpenAi::start().await.unwrap();
    oa.set_reply(Reply { stop_reason: Some("length".into()), ..Default::default() });
    let an = FakeAnthropic::start().await.unwrap();
    an.set_reply(Reply { stop_reason: Some("max_tokens".into()), ..Default::default() });
    let key = key_file(ANTHROPIC_KEY);
    let b = backends(
        &[openai("gpt", &oa.base_url(), "gpt-x", None), anthropic("claude", &an.base_url(), "claude-x", key.path())],
        &Knobs::default(),
    )
    .await;
    assert_eq!(b.generate(req("gpt", &[])).await.unwrap().stop_reason, "max_tokens");
    assert_eq!(b.generate(req("claude", &[])).await.unwrap().stop_reason, "max_tokens");
    assert_eq!(stream(&b, req("gpt", &[])).await.done.unwrap().stop_reason, "max_tokens");
    assert_eq!(stream(&b, req("claude", &[])).await.done.unwrap().stop_reason, "max_tokens");
    oa.set_reply(Reply { stop_reason: Some("content_filter".into()), ..Default::default() });
    an.set_reply(Reply { stop_reason: Some("stop_sequence".into()), ..Default::default() });
    assert_eq!(b.generate(req("gpt", &[])).await.unwrap().stop_reason, "content_filter");
    assert_eq!(b.generate(req("claude", &[])).await.unwrap().stop_reason, "stop_sequence");
}

#[tokio::test]
async fn json_schema_sets_response_format() {
    let fake = FakeOpenAi::start().await.unwrap();
    let b = backends(&[openai("gpt", &fake.base_url(), "gpt-x", None)], &Knobs::default()).await;
    let mut r = req("gpt", &[]);
    r.json_schema = r#"{"type":"object","properties":{"complexity":{"type":"string"}},"required":["complexity"],"additionalProperties":false}"#.into();
    b.generate(r.clone()).await.unwrap();
    let body = fake.last_request().unwrap().body;
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["schema"]["required"][0], "complexity");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    r.json_schema = "{not json".into();
    let e = b.generate(r).await.unwrap_err();
    assert_eq!(e.outcome(), "invalid_request");
}

#[tokio::test]
async fn provider_error_body_is_reported_and_not_retried() {
    let fake = FakeOpenAi::start().await.unwrap();
    fake.set_mode(Some(triage_testkit::Fault::Status {
        status: 400,
        message: "max_tokens is too large".into(),
        retry_after: None,
    }));
    let b = backends(&[openai("gpt", &fake.base_url(), "gpt-x", None)], &Knobs::default()).await;
    let e = b.generate(req("gpt", &[])).await.unwrap_err();
    let triage_backends::Error::Exhausted { attempts, summary } = e else { panic!("{e:?}") };
    assert_eq!(fake.requests(), 1, "a 400 is not retried");
    assert_eq!(attempts[0].outcome, "provider_error");
    assert!(attempts[0].error.contains("invalid_request_error: max_tokens is too large"), "{}", attempts[0].error);
    assert!(summary.contains("400"), "{summary}");
    // A bad request says nothing about the model's health.
    assert_eq!(b.breaker_states()["gpt"], pb::BreakerState::Closed);
}

#[tokio::test]
async fn list_models_reports_live_state() {
    let fake = FakeOpenAi::start().await.unwrap();
    let b = backends(
        &[
            openai("gpt", &fake.base_url(), "gpt-x", None).fallbacks(&["gpt-old"]),
            openai("gpt-old", &fake.base_url(), "gpt-old", None)
                .extra("lifecycle: { state: deprecated, replacement: gpt, sunset: 2030-01-01 }"),
        ],
        &Knobs::default(),
    )
    .await;
    let list = b.list_models().await.unwrap();
    let gpt = list.models.iter().find(|m| m.name == "gpt").unwrap();
    assert!(gpt.available);
    assert_eq!(gpt.provider, "openai");
    assert_eq!(gpt.provider_model_id, "gpt-x");
    assert_eq!(gpt.breaker, pb::BreakerState::Closed as i32);
    assert_eq!(gpt.lifecycle, pb::Lifecycle::Active as i32);
    assert_eq!(gpt.input_micros_per_mtok, 150_000);
    assert_eq!(gpt.output_micros_per_mtok, 600_000);
    assert_eq!(gpt.context_window, 8192);
    assert_eq!(gpt.fallbacks, vec!["gpt-old".to_string()]);
    let old = list.models.iter().find(|m| m.name == "gpt-old").unwrap();
    assert_eq!(old.lifecycle, pb::Lifecycle::Deprecated as i32);
    assert_eq!(old.replacement, "gpt");
}
