//! The embedded classifier on the examples of CLASSIFICATION.md, with and without history.
//! Skipped (with a note) when the encoder files are absent: run scripts/fetch-models.sh.

use pb::Complexity::{Complex, Moderate, Simple};
use std::path::PathBuf;
use triage_classifier::{BatchConfig, Classifier, EmbeddedClassifier};
use triage_proto::pb;

fn encoder_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TRIAGE_ENCODER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| triage_testkit::repo_root().join("models/all-minilm-l6-v2"));
    if triage_classifier::encoder::Encoder::files_present(&dir) {
        Some(dir)
    } else {
        eprintln!("SKIPPED: encoder files missing in {} (run scripts/fetch-models.sh)", dir.display());
        None
    }
}

fn user(s: &str) -> pb::Message {
    pb::Message { role: pb::Role::User as i32, content: s.into(), ..Default::default() }
}
fn assistant(s: &str) -> pb::Message {
    pb::Message { role: pb::Role::Assistant as i32, content: s.into(), ..Default::default() }
}

fn negotiation() -> Vec<pb::Message> {
    vec![
        user("We've bought 800 units a quarter from you since 2021, about $240,000 last year alone."),
        assistant("Thank you, you're one of our top accounts. Our standard volume discount at that level is 8%."),
        user("MegaMart quoted us 15% below your list price, with net-60 payment terms."),
        assistant("Our policy allows up to 12% for multi-year commitments, and net-45 for accounts in good standing."),
    ]
}

#[test]
fn labels_the_documented_examples() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = encoder_dir() else {
        return Ok(());
    };
    let c = EmbeddedClassifier::new(&dir, None, 4)?;
    assert!(c.model_version().starts_with("minilm-l6-v2+heads-"), "{}", c.model_version());
    // (query, complexity, language)
    let table = [
        ("where is my order?", Simple, "en"),
        ("what's happening with my thing?", Simple, "en"),
        ("¿dónde está mi pedido?", Simple, "es"),
        ("onde está meu pedido?", Simple, "pt"),
        ("¿a qué hora abren el sábado?", Simple, "es"),
        ("quanto custa o frete para Lisboa?", Simple, "pt"),
        ("how do I reset my password?", Simple, "en"),
        ("what's the difference between the Basic and Pro plans?", Moderate, "en"),
        ("I was charged twice for order 5521", Moderate, "en"),
        ("please authorise a refund of $600 for order 4410", Complex, "en"),
        ("write a Python function that dedupes customer emails and keeps the newest record", Complex, "en"),
        ("I'm taking warfarin, is it safe to also take ibuprofen?", Complex, "en"),
    ];
    let mut failures = Vec::new();
    for (q, cx, lang) in table {
        let got = c.classify_blocking(q, &[])?;
        if got.complexity != cx as i32 || got.language != lang {
            failures.push(format!("{q:?}: want {cx:?}/{lang}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn uses_the_conversation() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = encoder_dir() else {
        return Ok(());
    };
    let c = EmbeddedClassifier::new(&dir, None, 4)?;
    let stock = [
        user("do you have the running shoes in black?"),
        assistant("Yes, the running shoes are in stock in black, sizes S to L."),
    ];
    let red = c.classify_blocking("and the red one?", &stock)?;
    assert_eq!(red.complexity, Simple as i32, "{red:?}");
    assert!(red.requires_context, "{red:?}");

    let best = c.classify_blocking("given everything above, what's the best offer?", &negotiation())?;
    assert_eq!(best.complexity, Complex as i32, "{best:?}");
    assert!(best.requires_context, "{best:?}");

    let hours = [
        user("¿a qué hora abre la tienda de Madrid?"),
        assistant("La tienda de Madrid abre a las 9 y cierra a las 20 entre semana."),
    ];
    let sat = c.classify_blocking("¿y el sábado?", &hours)?;
    assert_eq!(sat.complexity, Simple as i32, "{sat:?}");
    assert!(sat.requires_context, "{sat:?}");
    assert_eq!(sat.language, "es");

    // History present but not needed: a new, standalone question.
    let fresh = c.classify_blocking("where is my order #55123?", &stock)?;
    assert_eq!(fresh.complexity, Simple as i32, "{fresh:?}");
    assert!(!fresh.requires_context, "{fresh:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_and_batched_paths_agree_with_blocking() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = encoder_dir() else {
        return Ok(());
    };
    let blocking = EmbeddedClassifier::new(&dir, None, 4)?;
    let batched = std::sync::Arc::new(EmbeddedClassifier::new(&dir, None, 4)?.with_batching(BatchConfig::default())?);
    let queries =
        ["where is my order?", "compare the Basic and Pro plans", "authorise a refund of $900", "e a vermelha?"];
    let mut tasks = Vec::new();
    for q in queries {
        let b = batched.clone();
        tasks.push(tokio::spawn(async move {
            b.classify(pb::ClassifyRequest { query: q.into(), history: negotiation() }).await
        }));
    }
    for (q, t) in queries.iter().zip(tasks) {
        let got = t.await??.classification.ok_or("no classification")?;
        let want = blocking.classify_blocking(q, &negotiation())?;
        assert_eq!(got.complexity, want.complexity, "{q}");
        assert_eq!(got.requires_context, want.requires_context, "{q}");
        // Padding in a batch moves floats slightly, never a label.
        assert!((got.confidence - want.confidence).abs() < 1e-3, "{q}: {} vs {}", got.confidence, want.confidence);
    }
    Ok(())
}
