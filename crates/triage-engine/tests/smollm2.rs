//! The real SmolLM2-135M-Instruct Q4_1 model (scripts/fetch-models.sh). Skips, with a note,
//! where the file has not been fetched.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

use std::path::{Path, PathBuf};
use std::time::Instant;

use triage_engine::{ChatMessage, GenerateParams, LocalLlm, StopReason};

const RELATIVE: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

fn find_model() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(dir) = std::env::var("TRIAGE_MODELS_DIR") {
        candidates.push(Path::new(&dir).join(RELATIVE));
    }
    if let Ok(home) = std::env::var("TRIAGE_HOME") {
        candidates.push(Path::new(&home).join("models").join(RELATIVE));
    }
    candidates.push(triage_testkit::repo_root().join("models").join(RELATIVE));
    candidates.into_iter().find(|p| p.is_file())
}

#[test]
fn smollm2_answers_and_round_trips() {
    let Some(path) = find_model() else {
        eprintln!("skipping: SmolLM2 not found (run scripts/fetch-models.sh or set TRIAGE_HOME)");
        return;
    };

    let started = Instant::now();
    let llm = LocalLlm::load(&path).unwrap();
    eprintln!("smollm2: loaded {} in {:.0?}", llm.model_id(), started.elapsed());
    assert_eq!(llm.model_id(), "SmolLM2-135M-Instruct.Q4_1");
    // 8192 trained, capped at the 4096 positions candle's quantized llama supports.
    assert_eq!(llm.context_window(), 4096);

    let tok = llm.tokenizer();
    for text in [
        "¿dónde está mi pedido?",
        "Where is my order #12345? It's been 3 days…",
        "日本語のテキストと emoji 🚀✨",
        "  leading spaces\n\ttabs and\r\nnewlines  ",
    ] {
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids), text, "round trip of {text:?} via {ids:?}");
    }
    // SmolLM2's pre-tokenizer splits digits one by one.
    assert_eq!(tok.encode("2024").unwrap().len(), 4);

    let question = ChatMessage::user("What is the capital of France?");
    // The template injects SmolLM's default system prompt when there is none.
    let explicit =
        [ChatMessage::system("You are a helpful AI assistant named SmolLM, trained by Hugging Face"), question.clone()];
    let counted = llm.count_tokens(std::slice::from_ref(&question)).unwrap();
    assert_eq!(counted, llm.count_tokens(&explicit).unwrap());

    let params = GenerateParams { max_tokens: 24, ..GenerateParams::default() };
    let mut first_piece = None;
    let started = Instant::now();
    let g = llm
        .generate(std::slice::from_ref(&question), &params, &mut |_| {
            first_piece.get_or_insert_with(Instant::now);
            true
        })
        .unwrap();
    let elapsed = started.elapsed();
    eprintln!("smollm2: {g:?}");
    assert_eq!(g.input_tokens, counted);
    assert!(g.input_tokens > 5);
    assert!(g.output_tokens >= 1 && g.output_tokens <= 24);
    assert!(matches!(g.stop_reason, StopReason::EndTurn | StopReason::MaxTokens));
    let letters = g.text.chars().filter(char::is_ascii_alphabetic).count();
    assert!(letters >= 3, "expected English text, got {:?}", g.text);

    let ttft = first_piece.map(|t| t - started).unwrap_or(elapsed);
    let decode = elapsed.saturating_sub(ttft).as_secs_f64();
    eprintln!(
        "smollm2: {} prompt + {} generated tokens in {:.0?} (first piece after {:.0?}); \
         {:.1} tokens/s overall, {:.1} tokens/s decoding",
        g.input_tokens,
        g.output_tokens,
        elapsed,
        ttft,
        f64::from(g.output_tokens) / elapsed.as_secs_f64(),
        f64::from(g.output_tokens.saturating_sub(1)) / decode.max(1e-9),
    );

    let again = llm.generate(std::slice::from_ref(&question), &params, &mut |_| true).unwrap();
    assert_eq!(again, g, "greedy decoding is deterministic across calls");
}
