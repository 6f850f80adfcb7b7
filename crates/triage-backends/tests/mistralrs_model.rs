//! The in-process mistral.rs adapter (`provider.kind: mistralrs`) with the real SmolLM2-135M
//! GGUF on CPU: unary, streamed, and JSON-schema constrained. Built and run only with
//! `--features mistralrs` (scripts/test.sh runs it as its own step).
#![cfg(feature = "mistralrs")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use triage_backends::Backends;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistralrs_engine_unary_stream_and_schema() {
    let path = triage_testkit::repo_root().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(path.is_file(), "{} missing: run scripts/fetch-models.sh", path.display());
    let m = M {
        name: "gpu-smollm2",
        tier: "fast",
        provider: format!("{{ kind: mistralrs, model_path: \"{}\" }}", path.display()),
        version: "smollm2-135m-instruct-q4_1".into(),
        fallbacks: vec![],
        extra: String::new(),
    };
    let be =
        backends(&[m], &Knobs { timeout: "120s", ttft: "120s", generate_deadline: "240s", ..Knobs::default() }).await;
    assert!(!be.unavailable().contains(&"gpu-smollm2".to_string()), "{:?}", be.unavailable_reason("gpu-smollm2"));

    let mut r = req("gpu-smollm2", &[]);
    r.max_tokens = 8;
    let out = be.generate(r.clone()).await.unwrap();
    assert_eq!(out.provider, "mistralrs");
    let usage = out.usage.unwrap();
    assert!(usage.input_tokens > 0 && (1..=8).contains(&usage.output_tokens), "{usage:?}");

    let c = stream(&be, r.clone()).await;
    assert!(c.error.is_none(), "{:?}", c.error);
    assert_eq!(c.deltas.concat(), c.done.unwrap().text);

    // Constrained decoding: the reply is JSON valid against the schema.
    r.max_tokens = 64;
    r.json_schema = r#"{"type":"object","properties":{"answer":{"type":"string","enum":["yes","no"]}},"required":["answer"],"additionalProperties":false}"#.into();
    let out = be.generate(r).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(out.text.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.text));
    assert!(["yes", "no"].contains(&v["answer"].as_str().unwrap()), "{v}");
}
