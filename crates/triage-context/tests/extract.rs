//! The deterministic extractors: commitments in English, Spanish and Portuguese, language
//! detection, and the facts of the extractive summary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use triage_context::{detect_language, extract_commitments, extractive_summary, languages_in};
use triage_proto::pb;

/// Normalized decisions of a reply (the text before the quoted sentence).
fn decisions(reply: &str) -> Vec<String> {
    extract_commitments(reply, FAST, FAST_VERSION, 4)
        .into_iter()
        .map(|c| c.text.split(": \"").next().unwrap().to_string())
        .collect()
}

#[test]
fn commitments_carry_model_version_turn_and_the_sentence() {
    let c = extract_commitments("Thanks for waiting! Your refund of $40 has been approved.", FAST, FAST_VERSION, 6);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].text, "refund of $40 approved: \"Your refund of $40 has been approved.\"");
    assert_eq!((c[0].model.as_str(), c[0].model_version.as_str(), c[0].turn), (FAST, FAST_VERSION, 6));
}

#[test]
fn english_decisions_and_promises() {
    let cases: &[(&str, &[&str])] = &[
        ("Your refund of $40 has been approved.", &["refund of $40 approved"]),
        ("I'm sorry, but I can't approve a refund for this order.", &["refund denied"]),
        ("Unfortunately your refund request was denied.", &["refund denied"]),
        ("Your refund has not been approved yet.", &["refund denied"]),
        ("I will refund you $25.50 today.", &["refund of $25.50 approved (when: today)"]),
        ("You will receive your refund within 5 business days.", &["refund approved (when: within 5 business days)"]),
        ("I've applied a 15% discount to your next order.", &["discount of 15% granted"]),
        (
            "I have cancelled order #A-1234 and issued a refund of $20.",
            &["refund of $20 approved", "order #A-1234 cancelled"],
        ),
        ("We cannot cancel your subscription at this point.", &["subscription cancellation refused"]),
        ("Your replacement will ship by Friday.", &["replacement approved (when: Friday)"]),
        ("Your new order will arrive on May 3.", &["promised May 3"]),
        ("I've waived the $15 late fee.", &["fee of $15 waived"]),
        ("A store credit of $10 has been added to your account.", &["credit of $10 issued"]),
    ];
    for (reply, want) in cases {
        assert_eq!(decisions(reply), *want, "{reply}");
    }
}

#[test]
fn spanish_and_portuguese_decisions() {
    let cases: &[(&str, &[&str])] = &[
        ("Su reembolso de $40 ha sido aprobado.", &["refund of $40 approved"]),
        ("Lo siento, su reembolso fue rechazado.", &["refund denied"]),
        ("No podemos aprobar el reembolso de este pedido.", &["refund denied"]),
        ("Le reembolsaremos 30 dólares mañana.", &["refund of 30 dólares approved (when: mañana)"]),
        ("Hemos aplicado un descuento del 10% a su pedido.", &["discount of 10% granted"]),
        ("Su pedido 55821 ha sido cancelado.", &["pedido 55821 cancelled"]),
        ("Su pedido llegará el 3 de mayo.", &["promised 3 de mayo"]),
        ("Seu reembolso de R$ 50,00 foi aprovado.", &["refund of R$ 50,00 approved"]),
        ("O estorno foi negado pela nossa equipe.", &["refund denied"]),
        ("Não podemos cancelar o seu pedido.", &["order cancellation refused"]),
        ("Apliquei um desconto de 20% na sua compra e ele foi aprovado.", &["discount of 20% granted"]),
        ("Seu pedido chegará até sexta-feira.", &["promised sexta-feira"]),
    ];
    for (reply, want) in cases {
        assert_eq!(decisions(reply), *want, "{reply}");
    }
}

#[test]
fn questions_conditionals_and_small_talk_are_not_decisions() {
    for reply in [
        "Would you like me to approve the refund?",
        "¿Quiere que cancele su pedido?",
        "If your item is eligible, the refund will be approved.",
        "Si el producto está dañado, el reembolso será aprobado.",
        "Our refund policy covers returns within 30 days.",
        "We will look into your refund and get back to you.",
        "You can cancel anytime from your account page.",
        "Hello! How can I help you today?",
        "You applied for a refund last week.",
        "",
    ] {
        assert!(decisions(reply).is_empty(), "{reply}: {:?}", decisions(reply));
    }
}

#[test]
fn a_restated_decision_in_one_reply_is_kept_once() {
    let c =
        extract_commitments("Your refund of $40 has been approved. Your refund of $40 has been approved.", FAST, "", 2);
    assert_eq!(c.len(), 1);
}

#[test]
fn language_detection_en_es_pt_mixed() {
    assert_eq!(detect_language("Where is my order? It was supposed to arrive yesterday."), "en");
    assert_eq!(detect_language("Hola, ¿dónde está mi pedido? Lo pedí hace una semana."), "es");
    assert_eq!(detect_language("Olá, onde está o meu pedido? Ainda não chegou."), "pt");
    assert_eq!(detect_language("donde esta mi pedido"), "es");
    assert_eq!(detect_language("cadê meu pedido, não chegou ainda"), "pt");
    assert_eq!(detect_language("Hola, I need help con mi pedido, please, it has not arrived"), "mixed");
    assert_eq!(detect_language("Oi, my order não chegou e eu need it for the weekend"), "mixed");
    assert_eq!(detect_language("#A-7781 $40"), "und");
    assert_eq!(languages_in("Hola, I need help con mi pedido, please, it has not arrived"), ["en", "es"]);
    assert_eq!(languages_in("Thanks, that is all."), ["en"]);
    assert!(languages_in("12345").is_empty());
}

#[test]
fn extractive_summary_collects_facts_open_questions_and_languages() {
    let conv = pb::Conversation {
        tenant: "acme".into(),
        id: "c".into(),
        turns: vec![
            user("My order ORD-5521 placed on 2025-03-14 was charged $129.99 twice. Email: bo@example.org"),
            assistant("I see order ORD-5521 and the duplicate charge of $129.99.", FAST, FAST_VERSION),
            user("Can you refund the duplicate charge? And could you change my delivery address?"),
            assistant("Your refund of $129.99 has been approved.", FAST, FAST_VERSION),
        ],
        turn_count: 4,
        commitments: extract_commitments("Your refund of $129.99 has been approved.", FAST, FAST_VERSION, 4),
        ..Default::default()
    };
    let s = extractive_summary(&conv, FAST, FRONTIER);
    assert_eq!(s.produced_by, "extractive");
    assert_eq!(s.at_turn, 4);
    assert_eq!(
        s.decisions,
        [format!(
            "refund of $129.99 approved: \"Your refund of $129.99 has been approved.\" [by {FAST}@{FAST_VERSION}, turn 4]"
        )]
    );
    assert_eq!(
        s.facts,
        [
            "order ORD-5521 (turn 1)",
            "amount $129.99 (turn 1)",
            "date 2025-03-14 (turn 1)",
            "email bo@example.org (turn 1)"
        ]
    );
    assert_eq!(
        s.open_questions,
        ["And could you change my delivery address? (turn 3)"],
        "the refund question was answered"
    );
    assert_eq!(s.languages, ["en"]);
}
