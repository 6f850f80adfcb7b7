//! Provider keys never appear in logs (captured at TRACE, dependencies included) or in
//! errors, even when a provider quotes the key back; a missing key is one clear warning.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use triage_backends::{Backends, Error};
use triage_testkit::{FakeAnthropic, FakeOpenAi, Fault};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

const OPENAI_KEY: &str = "sk-proj-SECRET-openai-5f3a9c1d7e";
const ANTHROPIC_KEY: &str = "sk-ant-api03-SECRET-anthropic-b81c4e";

fn assert_clean(what: &str, text: &str) {
    for key in [OPENAI_KEY, ANTHROPIC_KEY, "SECRET"] {
        assert!(!text.contains(key), "{what} leaks `{key}`:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_appear_in_logs_or_errors() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt().with_env_filter("trace").with_ansi(false).with_writer(move || writer.clone()).init();

    let oa = FakeOpenAi::start().await.unwrap();
    let an = FakeAnthropic::start().await.unwrap();
    // The fakes expect other keys: every call is a 401 that quotes the sent key back, as
    // real providers partly do.
    oa.require_key("sk-the-right-one");
    an.require_key("sk-ant-the-right-one");
    let (ok, ak) = (key_file(OPENAI_KEY), key_file(ANTHROPIC_KEY));
    let mut unset = openai("groq", &oa.base_url(), "llama", None);
    unset.provider = format!(
        "{{ kind: openai, base_url: \"{}\", model_id: llama, api_key: {{ env: TRIAGE_TEST_GROQ_KEY_UNSET }} }}",
        oa.base_url()
    );
    let be = backends(
        &[
            openai("gpt", &oa.base_url(), "gpt-x", Some(ok.path())),
            anthropic("claude", &an.base_url(), "claude-x", ak.path()),
            unset,
        ],
        &Knobs { timeout: "200ms", ttft: "200ms", threshold: 100, ..Knobs::default() },
    )
    .await;

    let mut errors = Vec::new();
    for model in ["gpt", "claude"] {
        let e = be.generate(req(model, &[])).await.unwrap_err();
        errors.push(format!("{e}\n{e:?}"));
        let e = be.generate_stream(req(model, &[])).await.err().unwrap();
        errors.push(format!("{e}\n{e:?}"));
        if let Error::Exhausted { attempts, .. } = &e {
            assert_eq!(attempts[0].outcome, "provider_error");
            assert!(attempts[0].error.contains("401"), "{}", attempts[0].error);
            assert!(attempts[0].error.contains("[redacted]"), "{}", attempts[0].error);
        }
    }
    // A provider error body that quotes the key, a timeout, and an error mid-stream.
    oa.require_key(OPENAI_KEY);
    oa.push_fault(Fault::Status { status: 500, message: format!("upstream saw key {OPENAI_KEY}"), retry_after: None });
    oa.push_fault(Fault::Status { status: 500, message: format!("upstream saw key {OPENAI_KEY}"), retry_after: None });
    oa.push_fault(Fault::Status { status: 500, message: format!("upstream saw key {OPENAI_KEY}"), retry_after: None });
    let e = be.generate(req("gpt", &[])).await.unwrap_err();
    errors.push(format!("{e}\n{e:?}"));
    oa.set_mode(Some(Fault::Hang));
    let e = be.generate(req("gpt", &[])).await.unwrap_err();
    errors.push(format!("{e}\n{e:?}"));
    oa.clear_faults();
    oa.push_fault(Fault::CutStream { after_chunks: 1 });
    let c = stream(&be, req("gpt", &[])).await;
    errors.push(format!("{:?}", c.error));
    errors.push(format!("{be:?}"));
    errors.push(format!("{:?}", be.list_models().await.unwrap()));

    tokio::time::sleep(Duration::from_millis(50)).await;
    let text = logs.text();
    for e in &errors {
        assert_clean("an error", e);
    }
    assert_clean("the logs", &text);
    // The fake really did receive the keys (the test would prove nothing otherwise).
    assert_eq!(oa.last_request().unwrap().headers["authorization"], format!("Bearer {OPENAI_KEY}"));
    assert_eq!(an.last_request().unwrap().headers["x-api-key"], ANTHROPIC_KEY);

    // One clear warning for the model without a key, naming where the key was looked for.
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("model groq unavailable")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    assert!(lines[0].contains("no API key (env TRIAGE_TEST_GROQ_KEY_UNSET unset or empty)"), "{}", lines[0]);
    if std::env::var_os("TRIAGE_DUMP_LOGS").is_some() {
        println!("{text}");
    }
    println!("captured {} log lines, {} errors: no key found", text.lines().count(), errors.len());
}
