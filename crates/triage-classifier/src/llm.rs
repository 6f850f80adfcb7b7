//! The seed's approach 3: an instruct LLM prompted with the label definitions and forced
//! to a JSON schema, its answer parsed strictly, with one retry on malformed output.
//!
//! The engine is behind [`JsonChat`] so the prompt, schema, parsing and retry are the same
//! for every backend; the mistral.rs adapter (feature `mistralrs`) implements it.

use crate::labels::{CATEGORY, COMPLEXITY, LANGUAGE, category_pb, complexity_pb, index_of};
use crate::{Classifier, Error, Result};
use serde::Deserialize;
use std::time::Instant;
use triage_proto::pb;

/// A chat model that can be constrained to a JSON schema.
#[async_trait::async_trait]
pub trait JsonChat: Send + Sync + 'static {
    /// Completes `(role, content)` messages ("system" | "user" | "assistant") with text that
    /// should be a JSON document valid against `schema`.
    async fn complete_json(
        &self,
        messages: &[(String, String)],
        schema: &serde_json::Value,
        max_tokens: u32,
    ) -> Result<String>;
    /// Model name and version, for `model_version`.
    fn model_id(&self) -> String;
}

/// The JSON schema of an answer.
pub fn label_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "complexity": {"type": "string", "enum": COMPLEXITY},
            "category": {"type": "string", "enum": CATEGORY},
            "requires_context": {"type": "boolean"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "language": {"type": "string", "enum": LANGUAGE},
        },
        "required": ["complexity", "category", "requires_context", "confidence", "language"],
        "additionalProperties": false,
    })
}

const SYSTEM: &str = "You label customer queries for a router. Answer with JSON only.
complexity: simple = a lookup or routine action (order status, tracking, hours, prices, stock, payment methods, password reset, cancel/change an order, greetings, thanks, one-word follow-ups), in any language or vague phrasing; moderate = some reasoning or a short explanation (compare two plans, explain a policy, troubleshoot, a double charge, a short reply, three name ideas); complex = multi-turn reasoning over earlier turns, long documents or contracts, long or many-variant creative work, code, high stakes (refund over $500, medical, legal, compliance), code-switching with a nuanced ask.
category: transactional = do or look up something; analytical = explain, compare, evaluate, decide, diagnose; creative = produce new text or code.
requires_context: true when the query cannot be understood without the earlier turns.
confidence: your probability that the complexity label is right.
language: en, es, pt, or mixed.";

/// A strictly parsed answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    complexity: String,
    category: String,
    requires_context: bool,
    confidence: f32,
    language: String,
}

/// Parses an answer; anything but the exact schema is [`Error::MalformedOutput`].
pub fn parse_answer(text: &str, model_version: &str) -> Result<pb::Classification> {
    let bad = |m: String| Error::MalformedOutput(m);
    let a: Answer = serde_json::from_str(text.trim()).map_err(|e| bad(format!("{e}: {text:?}")))?;
    let c = index_of(&COMPLEXITY, &a.complexity).ok_or_else(|| bad(format!("complexity {:?}", a.complexity)))?;
    let cat = index_of(&CATEGORY, &a.category).ok_or_else(|| bad(format!("category {:?}", a.category)))?;
    index_of(&LANGUAGE, &a.language).ok_or_else(|| bad(format!("language {:?}", a.language)))?;
    if !(0.0..=1.0).contains(&a.confidence) {
        return Err(bad(format!("confidence {}", a.confidence)));
    }
    Ok(pb::Classification {
        complexity: complexity_pb(c) as i32,
        category: category_pb(cat) as i32,
        requires_context: a.requires_context,
        confidence: a.confidence,
        language: a.language,
        model_version: model_version.to_string(),
    })
}

/// LLM classifier over any [`JsonChat`] engine.
pub struct LlmClassifier<E> {
    engine: E,
    history_turns: usize,
    version: String,
}

impl<E: JsonChat> LlmClassifier<E> {
    /// Reads the last `history_turns` turns.
    pub fn new(engine: E, history_turns: usize) -> Self {
        let version = format!("llm:{}", engine.model_id());
        Self { engine, history_turns, version }
    }

    /// `llm:<model id>`.
    pub fn model_version(&self) -> &str {
        &self.version
    }

    fn messages(&self, req: &pb::ClassifyRequest) -> Vec<(String, String)> {
        let turns: Vec<String> = req
            .history
            .iter()
            .rev()
            .filter(|m| m.role != pb::Role::System as i32 && !m.content.trim().is_empty())
            .take(self.history_turns)
            .map(|m| {
                format!("{}: {}", if m.role == pb::Role::Assistant as i32 { "assistant" } else { "user" }, m.content)
            })
            .collect();
        let history = if turns.is_empty() {
            "(none)".to_string()
        } else {
            turns.into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        vec![
            ("system".into(), SYSTEM.into()),
            ("user".into(), format!("Earlier turns:\n{history}\n\nQuery to label:\n{}", req.query)),
        ]
    }
}

#[async_trait::async_trait]
impl<E: JsonChat> Classifier for LlmClassifier<E> {
    async fn classify(&self, req: pb::ClassifyRequest) -> Result<pb::ClassifyResponse> {
        let start = Instant::now();
        if req.query.trim().is_empty() {
            return Err(Error::InvalidRequest("empty query".into()));
        }
        let schema = label_schema();
        let mut messages = self.messages(&req);
        let first = self.engine.complete_json(&messages, &schema, 96).await?;
        let classification = match parse_answer(&first, &self.version) {
            Ok(c) => c,
            Err(Error::MalformedOutput(why)) => {
                // One retry, showing the model its answer and what was wrong with it.
                tracing::warn!(%why, "malformed classifier output; retrying once");
                messages.push(("assistant".into(), first));
                messages.push((
                    "user".into(),
                    format!("That was not valid: {why}. Answer again with JSON matching the schema only."),
                ));
                let second = self.engine.complete_json(&messages, &schema, 96).await?;
                parse_answer(&second, &self.version)?
            }
            Err(e) => return Err(e),
        };
        Ok(crate::fresh_response(classification, start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// Replays canned answers: the parsing and retry logic under test is ours, not a model's.
    struct Scripted(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl JsonChat for Scripted {
        async fn complete_json(&self, _: &[(String, String)], _: &serde_json::Value, _: u32) -> Result<String> {
            self.0.lock().pop().ok_or_else(|| Error::Inference("script exhausted".into()))
        }
        fn model_id(&self) -> String {
            "scripted".into()
        }
    }

    const GOOD: &str = r#"{"complexity":"simple","category":"transactional","requires_context":false,"confidence":0.93,"language":"es"}"#;

    fn req() -> pb::ClassifyRequest {
        pb::ClassifyRequest { query: "¿dónde está mi pedido?".into(), history: vec![] }
    }

    #[test]
    fn parses_strictly() {
        assert!(parse_answer(GOOD, "v").is_ok());
        assert!(parse_answer(&GOOD.replace("simple", "easy"), "v").is_err());
        assert!(parse_answer(&GOOD.replace("0.93", "1.5"), "v").is_err());
        assert!(parse_answer(&GOOD.replace("}", r#","extra":1}"#), "v").is_err());
        assert!(parse_answer("{\"complexity\":", "v").is_err());
    }

    #[tokio::test]
    async fn retries_once_then_gives_up() -> Result<()> {
        // Answers are popped from the end.
        let ok = LlmClassifier::new(Scripted(Mutex::new(vec![GOOD.into(), "not json".into()])), 4);
        let r = ok.classify(req()).await?;
        assert_eq!(r.classification.map(|c| c.language), Some("es".to_string()));
        let bad = LlmClassifier::new(Scripted(Mutex::new(vec![GOOD.into(), "{}".into(), "nope".into()])), 4);
        // Two malformed answers: an error, and the third (good) answer is never asked for.
        assert!(matches!(bad.classify(req()).await, Err(Error::MalformedOutput(_))));
        assert_eq!(bad.engine.0.lock().len(), 1);
        Ok(())
    }
}
