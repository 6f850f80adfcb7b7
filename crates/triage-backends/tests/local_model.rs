//! The in-process adapter with the real embedded default model (SmolLM2-135M GGUF), when
//! `scripts/fetch-models.sh` has fetched it; skipped with a note otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns are test code too

mod common;

use common::*;
use std::path::PathBuf;
use triage_backends::Backends;

fn gguf() -> Option<PathBuf> {
    let p = triage_testkit::repo_root().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    p.is_file().then_some(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_model_unary_and_stream() {
    let Some(path) = gguf() else {
        println!("skipped: SmolLM2 GGUF not present (scripts/fetch-models.sh)");
        return;
    };
    let local = M {
        name: "local-smollm2",
        tier: "fast",
        provider: format!("{{ kind: local, gguf: \"{}\" }}", path.display()),
        version: "smollm2-135m-instruct-q4_1".into(),
        fallbacks: vec![],
        extra: String::new(),
    };
    let be = backends(&[local], &Knobs { timeout: "60s", ttft: "30s", ..Knobs::default() }).await;
    assert!(be.unavailable().is_empty() || !be.unavailable().contains(&"local-smollm2".to_string()));
    let mut r = req("local-smollm2", &[]);
    r.max_tokens = 8;
    let out = be.generate(r.clone()).await.unwrap();
    assert_eq!(out.provider, "local");
    assert_eq!(out.model_version, "smollm2-135m-instruct-q4_1");
    assert!(!out.text.is_empty());
    let usage = out.usage.unwrap();
    assert!(usage.input_tokens > 0 && (1..=8).contains(&usage.output_tokens), "{usage:?}");
    assert!(["end_turn", "max_tokens"].contains(&out.stop_reason.as_str()));
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);

    let c = stream(&be, r).await;
    assert!(c.error.is_none(), "{:?}", c.error);
    let done = c.done.unwrap();
    assert_eq!(c.deltas.concat(), done.text);
    // Greedy decoding (no temperature) is deterministic: the stream says what unary said.
    assert_eq!(done.text, out.text);
    println!("local: {:?} ({} deltas)", done.text, c.deltas.len());
}
