//! Engine mechanics against a 60 KB random-weight llama (tests/fixtures/tiny-llama.gguf, made
//! by make_tiny_gguf.py). Its output is noise: assert counts and stop behaviour, never text.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use triage_engine::{ChatMessage, Error, GenerateParams, Generation, LocalLlm, StopReason};

fn fixture_path() -> PathBuf {
    triage_testkit::repo_root().join("crates/triage-engine/tests/fixtures/tiny-llama.gguf")
}

fn model() -> &'static LocalLlm {
    static MODEL: OnceLock<LocalLlm> = OnceLock::new();
    MODEL.get_or_init(|| LocalLlm::load(&fixture_path()).unwrap())
}

fn greedy(max_tokens: u32) -> GenerateParams {
    GenerateParams { max_tokens, ..GenerateParams::default() }
}

/// Runs `generate` and checks the streamed pieces add up to the final text.
fn generate(messages: &[ChatMessage], params: &GenerateParams) -> Generation {
    let mut streamed = String::new();
    let g = model()
        .generate(messages, params, &mut |piece| {
            assert!(!piece.is_empty(), "empty pieces are not sent");
            streamed.push_str(piece);
            true
        })
        .unwrap();
    assert_eq!(streamed, g.text, "streamed pieces must add up to the text");
    g
}

fn assert_budget_respected(g: &Generation, max_tokens: u32) {
    match g.stop_reason {
        StopReason::MaxTokens => assert_eq!(g.output_tokens, max_tokens, "{g:?}"),
        StopReason::EndTurn => assert!(g.output_tokens >= 1 && g.output_tokens <= max_tokens),
        StopReason::StopSequence => panic!("no stop sequences were given: {g:?}"),
    }
}

#[test]
fn loads_metadata() {
    let m = model();
    assert_eq!(m.model_id(), "tiny-llama");
    assert_eq!(m.context_window(), 128);
    assert_eq!(m.tokenizer().vocab_size(), 267);
}

#[test]
fn local_llm_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<LocalLlm>();
    check::<Arc<LocalLlm>>();
}

#[test]
fn counts_chatml_tokens_exactly() {
    let m = model();
    // <|im_start|> "user" "\n" "h" "i" <|im_end|> "\n"  +  <|im_start|> a-s-s-i-s-t-a-n-t "\n"
    assert_eq!(m.count_tokens(&[ChatMessage::user("hi")]).unwrap(), 7 + 11);
    // <|im_start|> "system" "\n" "b" "e" "Ġ" "b" "r" "i" "e" "f" <|im_end|> "\n"
    let with_system = [ChatMessage::system("be brief"), ChatMessage::user("hi")];
    assert_eq!(m.count_tokens(&with_system).unwrap(), 13 + 7 + 11);
    // Control tokens typed by a user are plain text (10 bytes), not a forged end of turn.
    assert_eq!(m.count_tokens(&[ChatMessage::user("<|im_end|>")]).unwrap(), 5 + 10 + 11);
}

#[test]
fn tokenizer_round_trips() {
    let tok = model().tokenizer();
    for text in ["¿dónde está mi pedido?", "user system 123\n\t🚀", ""] {
        assert_eq!(tok.decode(&tok.encode(text).unwrap()), text);
    }
}

#[test]
fn greedy_generation_respects_max_tokens_and_is_deterministic() {
    let messages = [ChatMessage::user("hello there")];
    let first = generate(&messages, &greedy(12));
    assert_budget_respected(&first, 12);
    assert_eq!(first.input_tokens, model().count_tokens(&messages).unwrap(), "no truncation for a short prompt");
    let again = generate(&messages, &greedy(12));
    assert_eq!(first, again, "a fresh KV cache per call makes greedy repeatable");
}

#[test]
fn seeded_sampling_is_repeatable() {
    let messages = [ChatMessage::user("sample me")];
    let params = |seed| GenerateParams { max_tokens: 16, temperature: Some(1.0), seed, stop: vec![] };
    let a = generate(&messages, &params(7));
    assert_budget_respected(&a, 16);
    assert_eq!(a, generate(&messages, &params(7)));
}

#[test]
fn concurrent_calls_are_serialized_and_agree() {
    let llm = Arc::new(LocalLlm::load(&fixture_path()).unwrap());
    let messages = vec![ChatMessage::user("in parallel")];
    let expected = llm.generate(&messages, &greedy(8), &mut |_| true).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let llm = Arc::clone(&llm);
            let messages = messages.clone();
            std::thread::spawn(move || llm.generate(&messages, &greedy(8), &mut |_| true).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), expected);
    }
}

#[test]
fn zero_max_tokens_returns_immediately() {
    let g = generate(&[ChatMessage::user("hi")], &greedy(0));
    assert_eq!(g.output_tokens, 0);
    assert_eq!(g.text, "");
    assert_eq!(g.stop_reason, StopReason::MaxTokens);
    assert_eq!(g.input_tokens, 18);
}

#[test]
fn max_tokens_is_clamped_to_the_context_window() {
    let g = generate(&[ChatMessage::user("hi")], &greedy(10_000));
    assert!(g.input_tokens + g.output_tokens <= 128, "{g:?}");
    if g.stop_reason == StopReason::MaxTokens {
        assert_eq!(g.input_tokens + g.output_tokens, 128);
    }
}

#[test]
fn truncates_oldest_turns_keeping_system_and_last() {
    let m = model();
    let mut messages = vec![ChatMessage::system("be brief")];
    for i in 0..12 {
        messages.push(ChatMessage::user(format!("question {i}")));
        messages.push(ChatMessage::assistant(format!("answer {i}")));
    }
    messages.push(ChatMessage::user("last one"));
    let max_tokens = 16;
    assert!(m.count_tokens(&messages).unwrap() + max_tokens > m.context_window());

    // The longest suffix of the history that fits, behind the system message.
    let expected = (2..messages.len())
        .map(|start| {
            let mut kept = vec![messages[0].clone()];
            kept.extend_from_slice(&messages[start..]);
            m.count_tokens(&kept).unwrap()
        })
        .find(|&n| n + max_tokens <= m.context_window())
        .unwrap();
    let g = generate(&messages, &greedy(max_tokens));
    assert_eq!(g.input_tokens, expected);
    assert_budget_respected(&g, max_tokens);
}

#[test]
fn oversized_last_message_is_an_error_not_a_panic() {
    let long = "x".repeat(300);
    let err = model().generate(&[ChatMessage::user(long)], &greedy(4), &mut |_| true).unwrap_err();
    assert!(matches!(err, Error::ContextOverflow { context_window: 128, .. }), "{err}");
}

#[test]
fn empty_conversation_is_rejected() {
    assert!(matches!(model().count_tokens(&[]), Err(Error::InvalidRequest(_))));
    assert!(matches!(model().generate(&[], &greedy(4), &mut |_| true), Err(Error::InvalidRequest(_))));
}

#[test]
fn stop_sequence_cuts_the_text_before_it() {
    let messages = [ChatMessage::user("stop somewhere")];
    let full = generate(&messages, &greedy(40));
    let chars: Vec<char> = full.text.chars().collect();
    assert!(chars.len() >= 6, "need some text to pick a stop from: {full:?}");
    let stop: String = chars[3..5].iter().collect();
    let cut = &full.text[..full.text.find(&stop).unwrap()];

    let params = GenerateParams { stop: vec!["never appears \u{1}".into(), stop.clone()], ..greedy(40) };
    let g = generate(&messages, &params);
    assert_eq!(g.stop_reason, StopReason::StopSequence);
    assert_eq!(g.text, cut);
    assert!(g.output_tokens <= full.output_tokens);
}

#[test]
fn callback_returning_false_cancels() {
    let mut pieces = 0;
    let err = model()
        .generate(&[ChatMessage::user("cancel me")], &greedy(40), &mut |_| {
            pieces += 1;
            false
        })
        .unwrap_err();
    assert_eq!(pieces, 1);
    match err {
        Error::Cancelled { input_tokens, output_tokens } => {
            assert!(input_tokens > 0);
            assert!((1..40).contains(&output_tokens));
        }
        other => panic!("expected Cancelled, got {other}"),
    }
}

#[test]
fn load_errors_are_reported() {
    let missing = LocalLlm::load(Path::new("/nonexistent/model.gguf")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");

    let dir = std::env::temp_dir().join(format!("triage-engine-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.gguf");
    std::fs::write(&junk, b"definitely not a gguf file").unwrap();
    let err = LocalLlm::load(&junk).unwrap_err();
    assert!(matches!(err, Error::Candle(_)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Keeps the committed fixture and its generator in step. Skips where the `gguf` Python
/// package is missing (`pip install gguf==0.19.0`).
#[test]
fn fixture_generator_reproduces_an_equivalent_model() {
    let script = triage_testkit::repo_root().join("crates/triage-engine/tests/fixtures/make_tiny_gguf.py");
    let has_gguf =
        std::process::Command::new("python3").args(["-c", "import gguf"]).output().is_ok_and(|o| o.status.success());
    if !has_gguf {
        eprintln!("skipping: python3 with the `gguf` package is not available");
        return;
    }
    let dir = std::env::temp_dir().join(format!("triage-engine-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("tiny-llama.gguf");
    let run = std::process::Command::new("python3").arg(&script).arg(&out).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let regenerated = LocalLlm::load(&out).unwrap();
    let messages = [ChatMessage::system("be brief"), ChatMessage::user("hi")];
    assert_eq!(regenerated.count_tokens(&messages).unwrap(), model().count_tokens(&messages).unwrap());
    let params = greedy(8);
    assert_eq!(
        regenerated.generate(&messages, &params, &mut |_| true).unwrap(),
        model().generate(&messages, &params, &mut |_| true).unwrap(),
        "same seed, same weights"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
