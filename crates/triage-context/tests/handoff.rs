//! Handoff summaries against a real redis-server: the decision made by the fast model
//! reaches the frontier model, the summarizer model's answer is merged over the ledger,
//! and every way the summarizer can fail falls back to the extractive summary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use triage_backends::Backends;
use triage_context::{ContextStore, EXTRACTIVE, RedisContext, build_prompt, extract_commitments};
use triage_proto::pb;
use triage_testkit::RedisServer;

const TENANT: &str = "acme";
const CONV: &str = "refund-conv";

/// User turn and fast-model reply of exchange `n` (1-based).
fn exchange(n: u32) -> (String, String) {
    match n {
        1 => (
            "Hi, my order #A-7781 arrived broken. My email is ana@example.com".into(),
            "Sorry to hear that! I see order #A-7781 for $40.".into(),
        ),
        2 => ("Can I get my money back?".into(), "Let me check the order details for your money back request.".into()),
        3 => (
            "Please, I need the refund.".into(),
            "Your refund of $40 has been approved. It will reach your card within 5 business days.".into(),
        ),
        4 => (
            "Hola, ¿cuándo llega el dinero a mi cuenta?".into(),
            "El dinero llega a su cuenta en 5 días hábiles.".into(),
        ),
        5 => ("Obrigado! E o meu pedido novo, quando chega?".into(), "O seu pedido novo chega na sexta-feira.".into()),
        n => (
            format!("Another small question number {n}, what is the status of the tracking?"),
            format!("The tracking status for question {n} shows in transit."),
        ),
    }
}

/// Stores exchanges 1..=11 as the gateway does: reply commitments extracted with the
/// reply's turn number (its 1-based position).
async fn twelve_turn_conversation(ctx: &RedisContext) {
    for n in 1..=11 {
        let c = ctx
            .get(pb::GetConversationRequest {
                tenant: TENANT.into(),
                conversation_id: CONV.into(),
                create_if_missing: true,
                last_turns: 1,
            })
            .await
            .unwrap();
        let (u, a) = exchange(n);
        let commitments = extract_commitments(&a, FAST, FAST_VERSION, c.turn_count + 2);
        let first = c.pinned_model.is_empty();
        ctx.append(pb::AppendRequest {
            pin_model: if first { FAST.into() } else { String::new() },
            pin_version: if first { FAST_VERSION.into() } else { String::new() },
            pin_tier: pb::Tier::Fast as i32,
            commitments,
            tokens: 100,
            ..append(TENANT, CONV, vec![user(&u), assistant(&a, FAST, FAST_VERSION)])
        })
        .await
        .unwrap();
    }
}

fn handoff_req(summarizer: &str) -> pb::HandoffRequest {
    pb::HandoffRequest {
        tenant: TENANT.into(),
        conversation_id: CONV.into(),
        from_model: FAST.into(),
        to_model: FRONTIER.into(),
        summarizer_model: summarizer.into(),
    }
}

fn words(s: &str) -> u32 {
    s.split_whitespace().count() as u32
}

fn assert_refund_decision(summary: &pb::HandoffSummary) {
    let d = summary
        .decisions
        .iter()
        .find(|d| d.contains("refund of $40 approved"))
        .unwrap_or_else(|| panic!("no refund decision in {:?}", summary.decisions));
    assert!(d.contains(FAST) && d.contains(FAST_VERSION), "decision names the fast model and version: {d}");
    assert!(d.contains("turn 6"), "decision carries its turn: {d}");
}

#[tokio::test]
async fn refund_approved_by_fast_model_at_turn_3_reaches_the_frontier_model_at_turn_12() {
    let server = RedisServer::start().unwrap();
    let ctx = store(&server, None, &config()).await;
    twelve_turn_conversation(&ctx).await;

    let ledger = ctx.get(get(TENANT, CONV)).await.unwrap();
    assert_eq!(ledger.turn_count, 22);
    assert_eq!(ledger.pinned_model, FAST);
    let refund: Vec<_> = ledger.commitments.iter().filter(|c| c.text.starts_with("refund of $40 approved")).collect();
    assert_eq!(refund.len(), 1, "{:?}", ledger.commitments);
    assert_eq!((refund[0].model.as_str(), refund[0].model_version.as_str(), refund[0].turn), (FAST, FAST_VERSION, 6));

    // Turn 12: the policy escalates; the gateway asks for the summary first.
    let summary = ctx.handoff(handoff_req("")).await.unwrap();
    assert_eq!(summary.produced_by, EXTRACTIVE);
    assert_eq!((summary.from_model.as_str(), summary.to_model.as_str(), summary.at_turn), (FAST, FRONTIER, 22));
    assert_refund_decision(&summary);
    for fact in ["#A-7781", "$40", "ana@example.com"] {
        assert!(summary.facts.iter().any(|f| f.contains(fact)), "fact {fact} missing: {:?}", summary.facts);
    }
    for lang in ["en", "es", "pt"] {
        assert!(summary.languages.iter().any(|l| l == lang), "{lang} missing: {:?}", summary.languages);
    }

    // The summary is stored as the conversation's latest, and the frontier prompt has it
    // even though the refund turn is far outside the last turns it receives.
    let conv = ctx.get(pb::GetConversationRequest { last_turns: 4, ..get(TENANT, CONV) }).await.unwrap();
    assert_eq!(conv.summary.as_ref(), Some(&summary));
    let new_turn = "This is getting complicated: compare the warranty options for my other items.";
    let (system, messages) = build_prompt(&conv, "You are a helpful assistant.", 4, 200_000, &words, new_turn, 1024);
    assert!(system.starts_with("You are a helpful assistant."));
    assert!(system.contains("refund of $40 approved"), "{system}");
    assert!(system.contains(&format!("{FAST}@{FAST_VERSION}")), "{system}");
    assert!(messages.iter().all(|m| !m.content.contains("refund of $40")), "the decision comes from the summary");
    assert_eq!(messages.len(), 5);
    assert_eq!(messages.last().unwrap().content, new_turn);
}

#[tokio::test]
async fn summarizer_answer_is_merged_and_ledger_decisions_survive_when_it_drops_them() {
    let server = RedisServer::start().unwrap();
    let answer = r#"```json
{"decisions": ["Customer may return the second item"],
 "facts": ["Customer name: Ana"],
 "open_questions": ["Which warranty option does the customer prefer?"],
 "languages": ["en", "es", "pt", "French"]}
```"#;
    let model = ScriptedSummarizer::new(Reply::Text(answer.into()));
    let backends: Arc<dyn Backends> = model.clone();
    let cfg = triage_core::config::ContextConfig { summarizer_model: Some(SUMMARIZER.into()), ..config() };
    let ctx = store(&server, Some(backends), &cfg).await;
    twelve_turn_conversation(&ctx).await;

    let summary = ctx.handoff(handoff_req("")).await.unwrap();
    assert_eq!(model.calls(), 1);
    assert_eq!(summary.produced_by, SUMMARIZER);
    assert_refund_decision(&summary);
    assert!(summary.decisions.iter().any(|d| d == "Customer may return the second item"));
    assert!(summary.facts.iter().any(|f| f == "Customer name: Ana"));
    assert!(summary.facts.iter().any(|f| f.contains("#A-7781")), "extractive facts are kept");
    assert_eq!(summary.open_questions, ["Which warranty option does the customer prefer?"]);
    assert_eq!(summary.languages, ["en", "es", "pt"], "only language codes are taken from the model");

    let req = model.last_request.lock().unwrap().clone().unwrap();
    assert_eq!(req.model, SUMMARIZER);
    assert!(req.json_schema.contains("\"decisions\""), "asks for constrained JSON");
    assert!(req.messages[0].content.contains("Your refund of $40 has been approved"));
}

async fn falls_back(reply: Reply, timeout: Duration) {
    let server = RedisServer::start().unwrap();
    let model = ScriptedSummarizer::new(reply);
    let backends: Arc<dyn Backends> = model.clone();
    let cfg = triage_core::config::ContextConfig { summarizer_timeout: timeout, ..config() };
    let ctx = store(&server, Some(backends), &cfg).await;
    twelve_turn_conversation(&ctx).await;
    // The summarizer named in the request is used even when config names none.
    let started = std::time::Instant::now();
    let summary = ctx.handoff(handoff_req(SUMMARIZER)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(model.calls(), 1);
    assert_eq!(summary.produced_by, EXTRACTIVE);
    assert_refund_decision(&summary);
    let stored = ctx.get(get(TENANT, CONV)).await.unwrap().summary.unwrap();
    assert_eq!(stored.produced_by, EXTRACTIVE);
}

#[tokio::test]
async fn summarizer_error_falls_back_to_extractive() {
    falls_back(Reply::Fail, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn summarizer_malformed_json_falls_back_to_extractive() {
    falls_back(Reply::Text("Sure! {decisions: [refund approved], facts: }".into()), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn summarizer_json_missing_fields_falls_back_to_extractive() {
    falls_back(Reply::Text(r#"{"decisions": ["refund approved"]}"#.into()), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn summarizer_timeout_falls_back_to_extractive() {
    falls_back(Reply::Hang, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn contradicting_decisions_and_unanswered_questions_are_open_questions() {
    let server = RedisServer::start().unwrap();
    let ctx = store(&server, None, &config()).await;
    let steps = [
        ("I want a refund for order #991.", "Your refund has been approved.", FAST),
        ("Great. Where is my replacement charger?", "Let me look into that.", FAST),
        ("Any news?", "Unfortunately the refund was denied after review.", "groq-llama-70b"),
    ];
    for (i, (u, a, model)) in steps.iter().enumerate() {
        let turn = 2 * (i as u32 + 1);
        ctx.append(pb::AppendRequest {
            commitments: extract_commitments(a, model, "v1", turn),
            ..append(TENANT, "conflict", vec![user(u), assistant(a, model, "v1")])
        })
        .await
        .unwrap();
    }
    let s = ctx
        .handoff(pb::HandoffRequest {
            tenant: TENANT.into(),
            conversation_id: "conflict".into(),
            to_model: FRONTIER.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(s.from_model, "", "no pin was set, so there is no model handing over");
    assert_eq!(s.decisions.len(), 2, "{:?}", s.decisions);
    assert!(s.open_questions.iter().any(|q| q.starts_with("Conflicting refund decisions")), "{:?}", s.open_questions);
    assert!(s.open_questions.iter().any(|q| q.contains("Where is my replacement charger?")), "{:?}", s.open_questions);
}
