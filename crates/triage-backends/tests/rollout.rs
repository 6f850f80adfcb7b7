//! Models applied at run time and rolling version swaps: the draining version answers the
//! conversations pinned to it until its deadline; unchanged versions keep their live state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::time::{Duration, SystemTime};
use triage_backends::Backends;
use triage_testkit::FakeOpenAi;

fn pinned(model: &str, version: &str) -> triage_proto::pb::GenerateRequest {
    let mut r = req(model, &[]);
    r.model_version = version.into();
    r
}

fn swapped(base: &str, until: SystemTime) -> M {
    let until = humantime::format_rfc3339_seconds(until);
    openai("chat", base, "chat-v2", None).extra(&format!(
        "rollout:\n  previous: {{ version: chat-v1, provider: {{ kind: openai, base_url: \"{base}\", model_id: chat-v1 }} }}\n  drain_until: {until}\n  canary_weight: 100"
    ))
}

#[tokio::test]
async fn the_draining_version_answers_its_conversations_until_the_deadline() {
    let fake = FakeOpenAi::start().await.unwrap();
    let other = FakeOpenAi::start().await.unwrap();
    let k = Knobs::default();
    let be = backends(
        &[openai("chat", &fake.base_url(), "chat-v1", None), openai("other", &other.base_url(), "o", None)],
        &k,
    )
    .await;
    be.generate(req("other", &[])).await.unwrap();
    let other_calls = be.stats()["other"].calls;

    be.apply_models(&config(
        &[
            swapped(&fake.base_url(), SystemTime::now() + Duration::from_secs(60)),
            openai("other", &other.base_url(), "o", None),
        ],
        &k,
    ))
    .await;
    let old = be.generate(pinned("chat", "chat-v1")).await.unwrap();
    assert_eq!(old.model_version, "chat-v1");
    assert_eq!(fake.last_request().unwrap().body["model"], "chat-v1");
    let new = be.generate(pinned("chat", "")).await.unwrap();
    assert_eq!(new.model_version, "chat-v2");
    assert_eq!(fake.last_request().unwrap().body["model"], "chat-v2");
    // The unchanged model kept its counters (and breaker, budget, adapter).
    assert_eq!(be.stats()["other"].calls, other_calls);

    // Just past the deadline (within one generate deadline), a turn decided before it is still
    // answered by the version it was decided for: no switch without a handoff.
    be.apply_models(&config(
        &[
            swapped(&fake.base_url(), SystemTime::now() - Duration::from_secs(1)),
            openai("other", &other.base_url(), "o", None),
        ],
        &k,
    ))
    .await;
    let late = be.generate(pinned("chat", "chat-v1")).await.unwrap();
    assert_eq!(late.model_version, "chat-v1");
    assert!(late.warnings.is_empty(), "{:?}", late.warnings);

    // Past the deadline by more than that, a pin on the old version gets the new one, with a
    // warning.
    let generate_deadline = config(&[], &k).server.deadlines.generate;
    be.apply_models(&config(
        &[
            swapped(&fake.base_url(), SystemTime::now() - generate_deadline - Duration::from_secs(1)),
            openai("other", &other.base_url(), "o", None),
        ],
        &k,
    ))
    .await;
    let moved = be.generate(pinned("chat", "chat-v1")).await.unwrap();
    assert_eq!(moved.model_version, "chat-v2");
    assert!(moved.warnings.iter().any(|w| w.contains("not served any more")), "{:?}", moved.warnings);
    let listed = be.list_models().await.unwrap();
    assert!(listed.models.iter().any(|m| m.name == "chat" && m.version == "chat-v2"));
}

/// Mid-swap each version has its own breaker, reported as `model@version`; the model's own key
/// holds the better of the two, so one failing version does not take the model out of routing.
#[tokio::test]
async fn each_served_version_reports_its_breaker_and_the_model_the_better_one() {
    use triage_proto::pb::BreakerState::{Closed, Open};
    let (new, old) = (FakeOpenAi::start().await.unwrap(), FakeOpenAi::start().await.unwrap());
    new.set_mode(Some(triage_testkit::Fault::status(500)));
    let k = Knobs { max_retries: 0, threshold: 3, cooldown: "60s", ..Knobs::default() };
    let swap = |until: SystemTime| {
        let until = humantime::format_rfc3339_seconds(until);
        openai("chat", &new.base_url(), "chat-v2", None).extra(&format!(
            "rollout:\n  previous: {{ version: chat-v1, provider: {{ kind: openai, base_url: \"{}\", model_id: chat-v1 }} }}\n  drain_until: {until}\n  canary_weight: 100",
            old.base_url()
        ))
    };
    let be = backends(&[swap(SystemTime::now() + Duration::from_secs(600))], &k).await;
    assert_eq!(be.breaker_states()["chat@chat-v2"], Closed);
    for _ in 0..3 {
        assert!(be.generate(pinned("chat", "chat-v2")).await.is_err());
    }
    let states = be.breaker_states();
    assert_eq!((states["chat@chat-v2"], states["chat@chat-v1"], states["chat"]), (Open, Closed, Closed), "{states:?}");
    let answered = be.generate(pinned("chat", "chat-v1")).await.unwrap();
    assert_eq!(answered.model_version, "chat-v1", "the draining version still answers");
    // The same through ListModels, which the gateway's signals read (also across processes).
    let listed = be.list_models().await.unwrap();
    let chat = listed.models.iter().find(|m| m.name == "chat").unwrap();
    assert_eq!(chat.breaker, Closed as i32);
    assert_eq!(
        chat.version_breakers,
        [("chat-v2".to_string(), Open as i32), ("chat-v1".to_string(), Closed as i32)].into()
    );

    // Drained: one version, one key, its own state.
    be.apply_models(&config(&[swap(SystemTime::now() - Duration::from_secs(1))], &k)).await;
    let states = be.breaker_states();
    assert!(!states.keys().any(|k| k.contains('@')), "{states:?}");
    assert_eq!(states["chat"], Open);
}
