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
