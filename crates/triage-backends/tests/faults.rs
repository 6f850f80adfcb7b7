//! One test per scripted fault of the fake providers, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use std::time::{Duration, Instant};
use triage_backends::{Backends, Error};
use triage_testkit::{FakeAnthropic, FakeOpenAi, Fault, Reply};

async fn pair(k: &Knobs) -> (FakeOpenAi, FakeOpenAi, triage_backends::LocalBackends) {
    let primary = FakeOpenAi::start().await.unwrap();
    let fallback = FakeOpenAi::start().await.unwrap();
    fallback.set_reply(Reply { text: "from the fallback".into(), ..Default::default() });
    let b = backends(
        &[
            openai("primary", &primary.base_url(), "gpt-primary", None).fallbacks(&["backup"]),
            openai("backup", &fallback.base_url(), "gpt-backup", None),
        ],
        k,
    )
    .await;
    (primary, fallback, b)
}

#[tokio::test]
async fn latency_within_deadline_is_fine() {
    let (p, f, b) = pair(&Knobs { timeout: "1s", ..Knobs::default() }).await;
    p.push_fault(Fault::Latency(Duration::from_millis(150)));
    let t = Instant::now();
    let r = b.generate(req("primary", &["backup"])).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.model, "primary");
    assert_eq!(outcomes(&r), vec![("primary".into(), "ok".into())]);
    assert!(r.attempts[0].latency_us >= 150_000);
    assert_eq!(f.requests(), 0);
}

#[tokio::test]
async fn server_error_is_retried_then_ok() {
    let (p, f, b) = pair(&Knobs::default()).await;
    p.push_fault(Fault::status(500));
    p.push_fault(Fault::status(503));
    let r = b.generate(req("primary", &["backup"])).await.unwrap();
    assert_eq!(r.model, "primary");
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.attempts[0].retries, 2);
    assert_eq!(p.requests(), 3);
    assert_eq!(f.requests(), 0);
    assert!(!r.downgraded);
    assert_eq!(b.stats()["primary"].retries, 2);
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    let (p, _f, b) = pair(&Knobs { max_delay: "1s", ..Knobs::default() }).await;
    p.push_fault(Fault::rate_limited("0.4"));
    let t = Instant::now();
    let r = b.generate(req("primary", &["backup"])).await.unwrap();
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(400), "waited {took:?}, Retry-After said 400ms");
    assert!(took < Duration::from_millis(900), "{took:?}");
    assert_eq!(r.model, "primary");
    assert_eq!(r.attempts[0].retries, 1);
}

#[tokio::test]
async fn retry_after_is_capped_by_max_delay() {
    let (p, _f, b) = pair(&Knobs { max_delay: "200ms", ..Knobs::default() }).await;
    p.push_fault(Fault::rate_limited("30"));
    let t = Instant::now();
    let r = b.generate(req("primary", &["backup"])).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(r.model, "primary");
}

#[tokio::test]
async fn hang_times_out_and_falls_back() {
    let (p, f, b) = pair(&Knobs { timeout: "150ms", max_retries: 1, ..Knobs::default() }).await;
    p.set_mode(Some(Fault::Hang));
    let t = Instant::now();
    let r = b.generate(req("primary", &["backup"])).await.unwrap();
    let took = t.elapsed();
    assert_eq!(r.model, "backup");
    assert_eq!(r.text, "from the fallback");
    assert!(r.downgraded);
    assert_eq!(outcomes(&r), vec![("primary".into(), "timeout".into()), ("backup".into(), "ok".into())]);
    assert_eq!(r.attempts[0].retries, 1, "a timeout is retried once, then the fallback answers");
    assert!(r.attempts[0].error.contains("request deadline"), "{}", r.attempts[0].error);
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(f.requests(), 1);
}

#[tokio::test]
async fn malformed_json_fails_over_without_retry() {
    let (p, _f, b) = pair(&Knobs::default()).await;
    p.set_mode(Some(Fault::MalformedJson));
    let r = b.generate(req("primary", &["backup"])).await.unwrap();
    assert_eq!(r.model, "backup");
    assert_eq!(outcomes(&r)[0], ("primary".into(), "malformed".into()));
    assert_eq!(p.requests(), 1);
    // The same through a stream: the broken event arrives before any text.
    let c = stream(&b, req("primary", &["backup"])).await;
    let done = c.done.unwrap();
    assert_eq!(done.model, "backup");
    assert_eq!(done.attempts[0].outcome, "malformed");
}

#[tokio::test]
async fn malformed_anthropic_stream_fails_over() {
    let an = FakeAnthropic::start().await.unwrap();
    an.set_mode(Some(Fault::MalformedJson));
    let backup = FakeOpenAi::start().await.unwrap();
    let key = key_file("sk-ant-x");
    let b = backends(
        &[
            anthropic("claude", &an.base_url(), "claude-x", key.path()).fallbacks(&["backup"]),
            openai("backup", &backup.base_url(), "b", None),
        ],
        &Knobs::default(),
    )
    .await;
    let c = stream(&b, req("claude", &["backup"])).await;
    assert_eq!(c.done.unwrap().attempts[0].outcome, "malformed");
    let r = b.generate(req("claude", &["backup"])).await.unwrap();
    assert_eq!(r.attempts[0].outcome, "malformed");
}

#[tokio::test]
async fn stream_cut_after_first_token_errors_and_is_not_retried() {
    let (p, f, b) = pair(&Knobs::default()).await;
    p.set_reply(Reply { text: "one two three four five".into(), ..Default::default() });
    p.push_fault(Fault::CutStream { after_chunks: 2 });
    let c = stream(&b, req("primary", &["backup"])).await;
    assert_eq!(c.deltas, vec!["one", " two"]);
    assert!(c.done.is_none());
    let e = c.error.expect("the cut surfaces as an error");
    assert_eq!(e.outcome(), "stream_cut");
    assert_eq!(p.requests(), 1, "never retried after the first token");
    assert_eq!(f.requests(), 0, "never failed over after the first token");
}

#[tokio::test]
async fn anthropic_stream_cut_after_first_token() {
    let an = FakeAnthropic::start().await.unwrap();
    an.set_reply(Reply { text: "a b c d".into(), ..Default::default() });
    an.push_fault(Fault::CutStream { after_chunks: 1 });
    let key = key_file("sk-ant-x");
    let b = backends(&[anthropic("claude", &an.base_url(), "claude-x", key.path())], &Knobs::default()).await;
    let c = stream(&b, req("claude", &[])).await;
    assert_eq!(c.deltas, vec!["a"]);
    assert_eq!(c.error.unwrap().outcome(), "stream_cut");
    assert_eq!(an.requests(), 1);
}

#[tokio::test]
async fn stream_cut_before_first_token_is_retried() {
    let (p, f, b) = pair(&Knobs::default()).await;
    p.push_fault(Fault::CutStream { after_chunks: 0 });
    let c = stream(&b, req("primary", &["backup"])).await;
    let done = c.done.unwrap();
    assert_eq!(done.model, "primary");
    assert_eq!(done.attempts[0].retries, 1);
    assert_eq!(p.requests(), 2);
    assert_eq!(f.requests(), 0);
}

#[tokio::test]
async fn unary_body_cut_is_retried() {
    let (p, _f, b) = pair(&Knobs::default()).await;
    p.push_fault(Fault::CutStream { after_chunks: 0 });
    let r = b.generate(req("primary", &["backup"])).await.unwrap();
    assert_eq!(r.model, "primary");
    assert_eq!(r.attempts[0].retries, 1);
}

#[tokio::test]
async fn time_to_first_token_deadline_fails_over() {
    let (p, f, b) = pair(&Knobs { ttft: "200ms", max_retries: 0, ..Knobs::default() }).await;
    p.set_mode(Some(Fault::FirstTokenDelay(Duration::from_secs(2))));
    let t = Instant::now();
    let c = stream(&b, req("primary", &["backup"])).await;
    let done = c.done.unwrap();
    assert_eq!(done.model, "backup");
    assert!(done.downgraded);
    assert_eq!(done.attempts[0].outcome, "timeout");
    assert!(done.attempts[0].error.contains("first token"), "{}", done.attempts[0].error);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(f.requests(), 1);
}

#[tokio::test]
async fn hang_in_stream_hits_the_first_token_deadline() {
    let (p, _f, b) = pair(&Knobs { ttft: "150ms", max_retries: 0, ..Knobs::default() }).await;
    p.set_mode(Some(Fault::Hang));
    let done = stream(&b, req("primary", &["backup"])).await.done.unwrap();
    assert_eq!(outcomes(&done), vec![("primary".into(), "timeout".into()), ("backup".into(), "ok".into())]);
}

#[tokio::test]
async fn slow_stream_after_first_token_hits_the_request_deadline() {
    let (p, f, b) = pair(&Knobs { timeout: "300ms", ..Knobs::default() }).await;
    p.set_reply(Reply { text: "a b c d e f g h".into(), ..Default::default() });
    p.set_chunk_delay(Duration::from_millis(100));
    let c = stream(&b, req("primary", &["backup"])).await;
    assert!(!c.deltas.is_empty());
    assert_eq!(c.error.unwrap().outcome(), "timeout");
    assert_eq!(f.requests(), 0);
}

#[tokio::test]
async fn wrong_model_is_flagged_as_drift() {
    let (p, _f, b) = pair(&Knobs::default()).await;
    p.push_fault(Fault::WrongModel("gpt-primary-2099-01-01".into()));
    let r = b.generate(req("primary", &[])).await.unwrap();
    assert_eq!(r.model, "primary");
    assert_eq!(r.model_version, "gpt-primary");
    assert_eq!(r.reported_model, "gpt-primary-2099-01-01");
    assert!(r.warnings.iter().any(|w| w.contains("version drift")), "{:?}", r.warnings);
    // A reply reporting the pin is clean.
    let ok = b.generate(req("primary", &[])).await.unwrap();
    assert!(ok.warnings.is_empty() && ok.reported_model.is_empty());
    // Streams are checked too.
    p.push_fault(Fault::WrongModel("gpt-primary-2099-01-01".into()));
    let done = stream(&b, req("primary", &[])).await.done.unwrap();
    assert_eq!(done.reported_model, "gpt-primary-2099-01-01");
    assert_eq!(b.stats()["primary"].drift, 2);
}

#[tokio::test]
async fn anthropic_wrong_model_is_drift_and_529_is_retried() {
    let an = FakeAnthropic::start().await.unwrap();
    an.push_fault(Fault::status(529));
    an.push_fault(Fault::WrongModel("claude-other".into()));
    let key = key_file("sk-ant-x");
    let b = backends(&[anthropic("claude", &an.base_url(), "claude-x", key.path())], &Knobs::default()).await;
    let r = b.generate(req("claude", &[])).await.unwrap();
    assert_eq!(r.attempts[0].retries, 1, "529 overloaded is retried");
    assert_eq!(r.reported_model, "claude-other");
}

#[tokio::test]
async fn connection_refused_is_retried_then_fails_over() {
    let f = FakeOpenAi::start().await.unwrap();
    let dead = format!("http://127.0.0.1:{}/v1", triage_testkit::free_port());
    let b = backends(
        &[openai("gone", &dead, "gone", None).fallbacks(&["backup"]), openai("backup", &f.base_url(), "b", None)],
        &Knobs::default(),
    )
    .await;
    let r = b.generate(req("gone", &["backup"])).await.unwrap();
    assert_eq!(r.model, "backup");
    assert_eq!(r.attempts[0].outcome, "connect_error");
    assert_eq!(r.attempts[0].retries, 2);
}

#[tokio::test]
async fn exhausted_chain_lists_every_attempt() {
    let (p, f, b) = pair(&Knobs { max_retries: 0, ..Knobs::default() }).await;
    p.set_mode(Some(Fault::status(500)));
    f.set_mode(Some(Fault::status(502)));
    let e = b.generate(req("primary", &["backup"])).await.unwrap_err();
    let Error::Exhausted { attempts, summary } = e else { panic!("{e:?}") };
    assert_eq!(attempts.len(), 2);
    assert!(summary.contains("primary: provider_error") && summary.contains("backup: provider_error"), "{summary}");
}

#[tokio::test]
async fn a_caller_dropping_the_stream_is_not_a_model_failure() {
    use futures::StreamExt;
    let (p, _f, b) = pair(&Knobs { threshold: 1, ..Knobs::default() }).await;
    p.set_reply(Reply { text: "a b c d e f".into(), ..Default::default() });
    p.set_chunk_delay(Duration::from_millis(200));
    let mut s = b.generate_stream(req("primary", &["backup"])).await.unwrap();
    assert!(s.next().await.unwrap().is_ok());
    drop(s);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(b.stats()["primary"].failures, 0);
    assert_eq!(b.breaker_states()["primary"], triage_proto::pb::BreakerState::Closed);
}
