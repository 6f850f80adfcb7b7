//! Prompt assembly: the context window is never exceeded, oldest turns go first, the
//! summary and the decisions ledger stay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use triage_context::{MESSAGE_OVERHEAD_TOKENS, build_prompt, render_summary};
use triage_proto::pb;

/// A crude tokenizer: one token per 4 bytes, at least one.
fn tokens(s: &str) -> u32 {
    (s.len() as u32).div_ceil(4).max(1)
}

fn prompt_size(system: &str, messages: &[pb::Message]) -> u32 {
    tokens(system)
        + MESSAGE_OVERHEAD_TOKENS
        + messages.iter().map(|m| tokens(&m.content) + MESSAGE_OVERHEAD_TOKENS).sum::<u32>()
}

fn long_conversation(turns: usize) -> pb::Conversation {
    let turns: Vec<pb::Message> = (0..turns)
        .map(|i| {
            let text = format!("turn {i}: {}", "lorem ipsum dolor sit amet ".repeat(1 + i % 7));
            if i % 2 == 0 { user(&text) } else { assistant(&text, FAST, FAST_VERSION) }
        })
        .collect();
    pb::Conversation {
        tenant: "acme".into(),
        id: "long".into(),
        turn_count: turns.len() as u32,
        turns,
        summary: Some(pb::HandoffSummary {
            decisions: vec![format!("refund of $40 approved [by {FAST}@{FAST_VERSION}, turn 6]")],
            facts: vec!["order #A-7781 (turn 1)".into(), "amount $40 (turn 2)".into()],
            open_questions: vec!["Which warranty applies? (turn 150)".into()],
            languages: vec!["en".into(), "es".into()],
            from_model: FAST.into(),
            to_model: FRONTIER.into(),
            produced_by: "extractive".into(),
            at_turn: 190,
        }),
        commitments: vec![pb::Commitment {
            text: "discount of 10% granted: \"I applied a 10% discount.\"".into(),
            model: FRONTIER.into(),
            model_version: FRONTIER_VERSION.into(),
            turn: 195,
        }],
        ..Default::default()
    }
}

#[test]
fn a_200_turn_conversation_is_trimmed_oldest_first_to_fit_a_small_window() {
    let conv = long_conversation(200);
    let new_turn = "And what about the warranty?";
    for (window, max_tokens) in [(600, 100), (1_000, 256), (2_000, 512), (4_096, 1_024)] {
        let (system, messages) = build_prompt(&conv, "Be concise.", 200, window, &tokens, new_turn, max_tokens);
        let size = prompt_size(&system, &messages);
        assert!(size + max_tokens <= window, "window {window}: {size} + {max_tokens}");
        // The summary and later decisions are kept whole.
        assert!(system.contains("refund of $40 approved"), "{system}");
        assert!(system.contains("order #A-7781"));
        assert!(system.contains("Which warranty applies?"));
        assert!(system.contains("discount of 10% granted"), "decision after the handoff: {system}");
        // What is kept is the most recent turns, contiguous, ending with the new turn.
        assert_eq!(messages.last().unwrap().content, new_turn);
        let history = &messages[..messages.len() - 1];
        assert!(!history.is_empty() && history.len() < 200, "window {window}: {} turns", history.len());
        let expected_tail: Vec<&str> = conv.turns[200 - history.len()..].iter().map(|m| m.content.as_str()).collect();
        let got: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(got, expected_tail);
        assert_eq!(history[0].role, pb::Role::User as i32, "history opens with a user turn");
        // And it used the window: one more turn would not have fit.
        let first_kept = 200 - history.len();
        let one_more = tokens(&conv.turns[first_kept - 1].content) + MESSAGE_OVERHEAD_TOKENS;
        let two_more = one_more + tokens(&conv.turns[first_kept - 2].content) + MESSAGE_OVERHEAD_TOKENS;
        assert!(size + max_tokens + two_more > window, "window {window} was not used");
    }
}

#[test]
fn prompt_turns_caps_history_when_the_window_is_large() {
    let conv = long_conversation(200);
    let (_, messages) = build_prompt(&conv, "Be concise.", 8, 1_000_000, &tokens, "next", 1_024);
    assert_eq!(messages.len(), 9);
    assert_eq!(messages[0].content, conv.turns[192].content);
    let (_, messages) = build_prompt(&conv, "Be concise.", 8, 1_000_000, &tokens, "", 1_024);
    assert_eq!(messages.len(), 8, "no empty user message is added");
}

#[test]
fn a_tight_window_keeps_the_decisions_and_drops_the_history() {
    let conv = long_conversation(200);
    let full = build_prompt(&conv, "Be concise.", 8, 1_000_000, &tokens, "next", 100).0;
    let window = tokens(&full) - 10 + 100 + 2 * MESSAGE_OVERHEAD_TOKENS + tokens("next");
    let (system, messages) = build_prompt(&conv, "Be concise.", 8, window, &tokens, "next", 100);
    assert!(system.contains("refund of $40 approved"), "{system}");
    assert!(!system.contains("order #A-7781"), "facts are dropped before decisions");
    assert_eq!(messages.len(), 1);
    assert!(prompt_size(&system, &messages) + 100 <= window);
}

#[test]
fn without_a_summary_the_ledger_is_rendered() {
    let mut conv = long_conversation(10);
    conv.summary = None;
    conv.commitments[0].turn = 3;
    let (system, _) = build_prompt(&conv, "Be concise.", 8, 100_000, &tokens, "next", 100);
    assert!(system.contains("Decisions already made in this conversation"));
    assert!(
        system.contains(&format!(
            "discount of 10% granted: \"I applied a 10% discount.\" [by {FRONTIER}@{FRONTIER_VERSION}, turn 3]"
        )),
        "{system}"
    );
}

#[test]
fn summary_renders_every_section() {
    let s = long_conversation(1).summary.unwrap();
    let text = render_summary(&s);
    for part in
        ["Decisions already made", "Facts:", "Open questions:", "User languages: en, es", FAST, FRONTIER, "turn 190"]
    {
        assert!(text.contains(part), "{part} missing in {text}");
    }
}
