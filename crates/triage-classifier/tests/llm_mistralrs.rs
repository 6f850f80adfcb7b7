//! The seed's LLM classifier on mistral.rs, with the real SmolLM2-135M-Instruct GGUF on CPU:
//! constrained decoding must give answers that parse strictly against the label schema (the
//! labels' quality is not asserted: a 135M model is only the CI stand-in for Mistral-7B).
//! Built and run only with `--features mistralrs` (scripts/test.sh runs it as its own step).
#![cfg(feature = "mistralrs")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use triage_classifier::Classifier;
use triage_classifier::llm::{JsonChat, LlmClassifier, label_schema, parse_answer};
use triage_classifier::llm_mistralrs::MistralRsChat;
use triage_proto::pb;

fn gguf() -> PathBuf {
    let p = triage_testkit::repo_root().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.exists(), "{} missing: run scripts/fetch-models.sh", p.display());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smollm2_on_mistralrs_gives_schema_valid_classifications() {
    let chat = MistralRsChat::load(&gguf(), true).await.unwrap();
    assert!(chat.model_id().contains("SmolLM2"), "{}", chat.model_id());
    // Raw constrained output parses strictly, for every query.
    let msgs = vec![
        ("system".to_string(), "Label the query as JSON.".to_string()),
        ("user".to_string(), "where is my order 123?".to_string()),
    ];
    let raw = chat.complete_json(&msgs, &label_schema(), 96).await.unwrap();
    parse_answer(&raw, "v").unwrap_or_else(|e| panic!("constrained output did not parse: {e}: {raw}"));

    let classifier = LlmClassifier::new(chat, 4);
    let history = vec![pb::Message {
        role: pb::Role::User as i32,
        content: "do you have the blue shirt in M?".into(),
        ..Default::default()
    }];
    for (query, history) in [
        ("¿dónde está mi pedido?", vec![]),
        ("and the red one?", history),
        ("Review this 40-page supplier contract for indemnity risks and propose redlines.", vec![]),
    ] {
        let r = classifier.classify(pb::ClassifyRequest { query: query.into(), history }).await.unwrap();
        let c = r.classification.unwrap();
        assert!(c.model_version.starts_with("llm:"), "{}", c.model_version);
        assert!((0.0..=1.0).contains(&c.confidence));
        assert!(["en", "es", "pt", "mixed"].contains(&c.language.as_str()), "{}", c.language);
    }
}
