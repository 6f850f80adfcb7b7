//! The keyword baseline on a small table of clear cases.

use triage_classifier::{Classifier, HEURISTIC_VERSION, HeuristicClassifier};
use triage_proto::pb;

fn msg(role: pb::Role, content: &str) -> pb::Message {
    pb::Message { role: role as i32, content: content.into(), ..Default::default() }
}

#[test]
fn labels_a_table_of_clear_cases() -> Result<(), Box<dyn std::error::Error>> {
    use pb::Category::*;
    use pb::Complexity::*;
    let h = HeuristicClassifier::new()?;
    // (query, complexity, category, language)
    let table = [
        ("where is my order #12345?", Simple, Transactional, "en"),
        ("¿dónde está mi pedido?", Simple, Transactional, "es"),
        ("onde está meu pedido?", Simple, Transactional, "pt"),
        ("what time do you open on Saturday?", Simple, Transactional, "en"),
        ("how do I reset my password?", Simple, Transactional, "en"),
        ("what's the difference between the Basic and Pro plans?", Moderate, Analytical, "en"),
        ("me cobraron dos veces el pedido 4411", Moderate, Transactional, "es"),
        ("please authorize a refund of $600 for order 881", Complex, Transactional, "en"),
        ("write a Python function that dedupes customer emails", Complex, Creative, "en"),
        ("review the liability clause in this contract and tell me the risk", Complex, Analytical, "en"),
        ("posso tomar ibuprofeno grávida? qual a dose de remédio segura?", Complex, Analytical, "pt"),
        ("write 20 variations of ad copy in our brand voice", Complex, Creative, "en"),
    ];
    for (q, cx, cat, lang) in table {
        let c = h.label(q, &[]);
        assert_eq!(c.complexity, cx as i32, "complexity of {q:?}: {c:?}");
        assert_eq!(c.category, cat as i32, "category of {q:?}: {c:?}");
        assert_eq!(c.language, lang, "language of {q:?}");
        assert_eq!(c.model_version, HEURISTIC_VERSION);
        assert!(c.confidence > 0.0 && c.confidence <= 1.0);
    }
    Ok(())
}

#[test]
fn small_refunds_are_not_high_stakes() -> Result<(), Box<dyn std::error::Error>> {
    let h = HeuristicClassifier::new()?;
    let c = h.label("where is my refund of $40?", &[]);
    assert_ne!(c.complexity, pb::Complexity::Complex as i32, "{c:?}");
    Ok(())
}

#[test]
fn follow_ups_require_context() -> Result<(), Box<dyn std::error::Error>> {
    let h = HeuristicClassifier::new()?;
    let history =
        [msg(pb::Role::User, "do you have the hoodie in blue?"), msg(pb::Role::Assistant, "Yes, sizes S to L.")];
    for q in ["and the red one?", "what about for 2 of them?", "y el sábado?"] {
        let c = h.label(q, &history);
        assert!(c.requires_context, "{q:?} needs context: {c:?}");
        assert_eq!(c.complexity, pb::Complexity::Simple as i32, "{q:?}: {c:?}");
    }
    assert!(!h.label("where is my order?", &history).requires_context);
    Ok(())
}

#[tokio::test]
async fn rejects_empty_queries() -> Result<(), Box<dyn std::error::Error>> {
    let h = HeuristicClassifier::new()?;
    let err = h.classify(pb::ClassifyRequest { query: "  ".into(), history: vec![] }).await;
    assert!(matches!(err, Err(triage_classifier::Error::InvalidRequest(_))));
    let ok = h.classify(pb::ClassifyRequest { query: "hi".into(), history: vec![] }).await?;
    assert!(!ok.cache_hit);
    Ok(())
}
