//! Failover order, declared fallbacks only, availability, lifecycle, and the circuit
//! breaker end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use std::time::Duration;
use triage_backends::{Backends, Error};
use triage_proto::pb;
use triage_testkit::{FakeOpenAi, Fault, Reply};

async fn fake(text: &str) -> FakeOpenAi {
    let f = FakeOpenAi::start().await.unwrap();
    f.set_reply(Reply { text: text.into(), ..Default::default() });
    f
}

#[tokio::test]
async fn failover_walks_only_the_requested_fallbacks_in_order() {
    let (a, b2, c, d) = (fake("a").await, fake("b").await, fake("c").await, fake("d").await);
    a.set_mode(Some(Fault::status(500)));
    b2.set_mode(Some(Fault::status(503)));
    let be = backends(
        &[
            // The config declares d as a's fallback; the request's chain is what counts.
            openai("a", &a.base_url(), "a", None).fallbacks(&["d"]),
            openai("b", &b2.base_url(), "b", None),
            openai("c", &c.base_url(), "c", None),
            openai("d", &d.base_url(), "d", None),
        ],
        &Knobs { max_retries: 0, ..Knobs::default() },
    )
    .await;
    let r = be.generate(req("a", &["b", "c"])).await.unwrap();
    assert_eq!(r.text, "c");
    assert_eq!(r.model, "c");
    assert!(r.downgraded);
    assert_eq!(
        outcomes(&r),
        vec![("a".into(), "provider_error".into()), ("b".into(), "provider_error".into()), ("c".into(), "ok".into())]
    );
    assert_eq!(d.requests(), 0, "an undeclared model is never called");

    // No fallbacks in the request: no failover at all.
    let e = be.generate(req("a", &[])).await.unwrap_err();
    let Error::Exhausted { attempts, .. } = e else { panic!("{e:?}") };
    assert_eq!(attempts.len(), 1);
    assert_eq!(d.requests(), 0);
}

#[tokio::test]
async fn streams_fail_over_in_order_too() {
    let (a, c) = (fake("a").await, fake("c says hi").await);
    a.set_mode(Some(Fault::status(500)));
    let be = backends(
        &[openai("a", &a.base_url(), "a", None), openai("c", &c.base_url(), "c", None)],
        &Knobs { max_retries: 0, ..Knobs::default() },
    )
    .await;
    let got = stream(&be, req("a", &["c"])).await;
    assert_eq!(got.deltas.concat(), "c says hi");
    let done = got.done.unwrap();
    assert!(done.downgraded);
    assert_eq!(outcomes(&done), vec![("a".into(), "provider_error".into()), ("c".into(), "ok".into())]);
    // All failing before the first token: the call itself fails, with every attempt.
    c.set_mode(Some(Fault::status(500)));
    let e = be.generate_stream(req("a", &["c"])).await.err().unwrap();
    assert!(matches!(e, Error::Exhausted { ref attempts, .. } if attempts.len() == 2), "{e:?}");
}

#[tokio::test]
async fn missing_key_makes_the_model_unavailable_and_the_fallback_answers() {
    let (p, f) = (fake("p").await, fake("fallback").await);
    let mut no_key = openai("groq", &p.base_url(), "llama-3.3-70b-versatile", None);
    no_key.provider = format!(
        "{{ kind: openai, base_url: \"{}\", model_id: llama-3.3-70b-versatile, api_key: {{ env: TRIAGE_TEST_KEY_THAT_IS_NEVER_SET }} }}",
        p.base_url()
    );
    let be =
        backends(&[no_key.fallbacks(&["backup"]), openai("backup", &f.base_url(), "b", None)], &Knobs::default()).await;
    assert_eq!(be.unavailable(), vec!["groq".to_string()]);
    let reason = be.unavailable_reason("groq").unwrap();
    assert!(reason.contains("no API key") && reason.contains("TRIAGE_TEST_KEY_THAT_IS_NEVER_SET"), "{reason}");
    let info = be.list_models().await.unwrap().models.into_iter().find(|m| m.name == "groq").unwrap();
    assert!(!info.available);
    assert_eq!(info.unavailable_reason, reason);

    let r = be.generate(req("groq", &["backup"])).await.unwrap();
    assert_eq!(r.text, "fallback");
    assert!(r.downgraded);
    assert_eq!(outcomes(&r), vec![("groq".into(), "unavailable".into()), ("backup".into(), "ok".into())]);
    assert_eq!(p.requests(), 0);
}

#[tokio::test]
async fn missing_local_model_file_is_unavailable_with_the_reason() {
    let f = fake("fallback").await;
    let local = M {
        name: "tiny",
        tier: "fast",
        provider: "{ kind: local, gguf: /nonexistent/tiny.gguf }".into(),
        version: "tiny-q4".into(),
        fallbacks: vec!["backup"],
        extra: String::new(),
    };
    let be = backends(&[local, openai("backup", &f.base_url(), "b", None)], &Knobs::default()).await;
    assert!(be.unavailable().contains(&"tiny".to_string()));
    assert!(be.unavailable_reason("tiny").unwrap().contains("/nonexistent/tiny.gguf"));
    let r = be.generate(req("tiny", &["backup"])).await.unwrap();
    assert_eq!(r.model, "backup");
}

#[tokio::test]
async fn retired_models_go_to_their_replacement_and_deprecated_ones_warn() {
    let (old, new) = (fake("old").await, fake("new").await);
    let be = backends(
        &[
            openai("gpt-retired", &old.base_url(), "gpt-3", None)
                .extra("lifecycle: { state: retired, replacement: gpt-new }"),
            openai("gpt-dep", &old.base_url(), "gpt-3.5", None)
                .extra("lifecycle: { state: deprecated, replacement: gpt-new, sunset: 2031-01-01 }"),
            openai("gpt-new", &new.base_url(), "gpt-5", None),
        ],
        &Knobs::default(),
    )
    .await;
    let r = be.generate(req("gpt-retired", &[])).await.unwrap();
    assert_eq!(r.model, "gpt-new");
    assert_eq!(r.text, "new");
    assert!(!r.downgraded, "a replacement is not a downgrade");
    assert!(r.warnings.iter().any(|w| w.contains("retired") && w.contains("gpt-new")), "{:?}", r.warnings);
    assert_eq!(old.requests(), 0);
    assert!(be.unavailable().contains(&"gpt-retired".to_string()));

    let r = be.generate(req("gpt-dep", &[])).await.unwrap();
    assert_eq!(r.model, "gpt-dep");
    assert!(r.warnings.iter().any(|w| w.contains("deprecated") && w.contains("2031-01-01")), "{:?}", r.warnings);
    assert_eq!(be.stats()["gpt-dep"].deprecated_calls, 1);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_any_call() {
    let f = fake("x").await;
    let be = backends(&[openai("m", &f.base_url(), "m", None)], &Knobs::default()).await;
    assert!(matches!(be.generate(req("nope", &[])).await, Err(Error::UnknownModel(_))));
    let mut r = req("m", &[]);
    r.messages.clear();
    assert!(matches!(be.generate(r).await, Err(Error::InvalidRequest(_))));
    let mut r = req("m", &[]);
    r.messages[0].role = pb::Role::Unspecified as i32;
    assert!(matches!(be.generate(r).await, Err(Error::InvalidRequest(_))));
    let mut r = req("m", &[]);
    r.temperature = Some(7.0);
    assert!(matches!(be.generate(r).await, Err(Error::InvalidRequest(_))));
    // An unknown fallback is recorded, not fatal.
    f.set_mode(Some(Fault::status(500)));
    let e = be.generate(req("m", &["ghost"])).await.unwrap_err();
    let Error::Exhausted { attempts, .. } = e else { panic!() };
    assert_eq!(attempts[1].outcome, "unknown_model");
    assert_eq!(f.requests(), 3);
}

#[tokio::test]
async fn breaker_opens_fails_fast_and_a_half_open_probe_closes_it() {
    let (a, c) = (fake("a").await, fake("c").await);
    a.set_mode(Some(Fault::status(500)));
    let be = backends(
        &[openai("a", &a.base_url(), "a", None), openai("c", &c.base_url(), "c", None)],
        &Knobs { max_retries: 0, threshold: 3, cooldown: "300ms", ..Knobs::default() },
    )
    .await;
    for i in 0..3 {
        assert_eq!(be.breaker_states()["a"], pb::BreakerState::Closed, "call {i}");
        let r = be.generate(req("a", &["c"])).await.unwrap();
        assert_eq!(r.attempts[0].outcome, "provider_error");
    }
    assert_eq!(be.breaker_states()["a"], pb::BreakerState::Open);
    assert_eq!(a.requests(), 3);

    // Open: a is not called at all, the fallback answers at once.
    for _ in 0..5 {
        let r = be.generate(req("a", &["c"])).await.unwrap();
        assert_eq!(outcomes(&r), vec![("a".into(), "breaker_open".into()), ("c".into(), "ok".into())]);
    }
    assert_eq!(a.requests(), 3, "fails fast while open");
    let listed = be.list_models().await.unwrap().models.into_iter().find(|m| m.name == "a").unwrap();
    assert_eq!(listed.breaker, pb::BreakerState::Open as i32);

    // Cooldown passes while a is still broken: the one probe fails and reopens it.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(be.breaker_states()["a"], pb::BreakerState::HalfOpen);
    be.generate(req("a", &["c"])).await.unwrap();
    assert_eq!(a.requests(), 4);
    assert_eq!(be.breaker_states()["a"], pb::BreakerState::Open);

    // a heals; after the cooldown the probe succeeds and the breaker closes.
    a.clear_faults();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = be.generate(req("a", &["c"])).await.unwrap();
    assert_eq!(r.model, "a");
    assert_eq!(be.breaker_states()["a"], pb::BreakerState::Closed);
    assert_eq!(be.stats()["a"].breaker_opens, 2);
    assert!(be.stats()["a"].breaker_rejections >= 5);
}

#[tokio::test]
async fn only_one_probe_while_half_open() {
    let (a, c) = (fake("a").await, fake("c").await);
    a.set_mode(Some(Fault::status(500)));
    let be = backends(
        &[openai("a", &a.base_url(), "a", None), openai("c", &c.base_url(), "c", None)],
        &Knobs { max_retries: 0, threshold: 1, cooldown: "100ms", ..Knobs::default() },
    )
    .await;
    be.generate(req("a", &["c"])).await.unwrap();
    assert_eq!(be.breaker_states()["a"], pb::BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The probe is slow; concurrent calls meanwhile must not reach a.
    a.set_mode(Some(Fault::Latency(Duration::from_millis(300))));
    let calls = (0..8).map(|_| be.generate(req("a", &["c"])));
    let results = futures::future::join_all(calls).await;
    let served_by_a = results.iter().filter(|r| r.as_ref().unwrap().model == "a").count();
    assert_eq!(served_by_a, 1, "exactly one probe");
    assert_eq!(a.requests(), 2);
    assert_eq!(be.breaker_states()["a"], pb::BreakerState::Closed);
}

#[tokio::test]
async fn retry_budget_stops_a_retry_storm() {
    let a = fake("a").await;
    a.set_mode(Some(Fault::status(503)));
    let be = backends(
        &[openai("a", &a.base_url(), "a", None)],
        &Knobs {
            max_retries: 3,
            base_delay: "1ms",
            max_delay: "2ms",
            budget_ratio: 0.1,
            budget_min_per_sec: 1,
            threshold: 1000,
            ..Knobs::default()
        },
    )
    .await;
    for _ in 0..100 {
        let _ = be.generate(req("a", &[])).await;
    }
    let s = be.stats()["a"].clone();
    // Without a budget: 100 × (1 + 3) = 400 calls. With it: ≈ 100 + 0.1·100 + a few.
    assert!(a.requests() < 130, "{} calls, stats {s:?}", a.requests());
    assert!(s.retries_denied > 50, "{s:?}");
}
