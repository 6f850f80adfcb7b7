//! Comparing a model's answers with its baseline: refusals (EN/ES/PT patterns), length
//! ratio and embedding similarity, folded into one drift score per model.
//!
//! Per query: a refusal appearing or disappearing, or an answer turning into an error (or
//! back), scores 1. Otherwise `0.7 · (1 − cosine) + 0.3 · min(1, |log2(length ratio)|)`:
//! the same answer scores 0, a paraphrase ~0.1, a different answer of the same size ~0.5,
//! a different answer of half the size ~0.85. Without the encoder the score is the length
//! term alone. The model's score is the mean over the queries both runs share.

use super::store::{Answer, ModelRun};
use regex::RegexSet;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Weight of the semantic term in a query's score; the length term takes the rest.
const SEMANTIC_WEIGHT: f64 = 0.7;

fn refusal_patterns() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        let patterns = [
            // English
            r"(?i)\bI(?:['’]m| am) (?:sorry|afraid)\b[^.!?\n]{0,80}\b(?:can(?:not|['’]t)|unable|not able|won['’]t)\b",
            r"(?i)\bI (?:can(?:not|['’]t)|won['’]t|am unable to|['’]m unable to|am not able to|must decline to) (?:help|assist|provide|answer|do|comply|share|discuss|fulfil|fulfill|support)",
            r"(?i)\bas an (?:ai|artificial intelligence|ai language model|language model)\b",
            r"(?i)\bI must (?:decline|refuse)\b",
            // Spanish
            r"(?i)\blo siento,? (?:pero )?no (?:puedo|es posible)",
            r"(?i)\bno (?:puedo|podemos) (?:ayudar|ayudarte|ayudarle|proporcionar|responder|hacer|cumplir|asistir|ofrecer|dar)",
            r"(?i)\bno me es posible\b",
            r"(?i)\bcomo (?:una? )?(?:ia|inteligencia artificial|modelo de lenguaje)\b",
            // Portuguese
            r"(?i)\b(?:desculpe|lamento|sinto muito),? (?:mas )?não (?:posso|é possível|consigo)",
            r"(?i)\bnão (?:posso|podemos|consigo) (?:ajudar|fornecer|responder|fazer|cumprir|atender|oferecer|dar)",
            r"(?i)\bnão (?:me )?é possível\b",
            r"(?i)\bcomo (?:uma? )?(?:ia|inteligência artificial|modelo de linguagem)\b",
        ];
        // The patterns are literals checked by the tests below; an empty set never matches.
        RegexSet::new(patterns).unwrap_or_else(|_| RegexSet::empty())
    })
}

/// True when `text` reads as a refusal.
pub fn is_refusal(text: &str) -> bool {
    refusal_patterns().is_match(text)
}

/// Cosine similarity of two vectors (1 for two empty or zero vectors: nothing to tell apart).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        dot += f64::from(*x) * f64::from(*y);
        na += f64::from(*x) * f64::from(*x);
        nb += f64::from(*y) * f64::from(*y);
    }
    if na == 0.0 || nb == 0.0 { 1.0 } else { (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0) }
}

/// New answer length over the baseline's, in characters (1 when both are empty).
pub fn length_ratio(old: &str, new: &str) -> f64 {
    let (o, n) = (old.chars().count() as f64, new.chars().count() as f64);
    if o == 0.0 && n == 0.0 { 1.0 } else { n.max(1.0) / o.max(1.0) }
}

/// A query's (baseline, new) answer embeddings.
pub type EmbeddingPair = (Vec<f32>, Vec<f32>);

/// One query compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryDrift {
    pub id: String,
    pub length_ratio: f64,
    /// Cosine similarity of the answers' embeddings, when the encoder was available.
    pub similarity: Option<f64>,
    pub refusal_before: bool,
    pub refusal_now: bool,
    pub error_changed: bool,
    pub score: f64,
}

/// One model compared with its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDrift {
    pub model: String,
    pub version: String,
    /// `compared`, or `baseline` when this run became the first baseline.
    pub status: String,
    /// Queries of the run.
    pub queries: usize,
    /// Queries also in the baseline (the score's denominator).
    pub compared: usize,
    pub errors: usize,
    pub refusals_before: usize,
    pub refusals_now: usize,
    /// Mean length ratio over the compared queries.
    pub length_ratio: Option<f64>,
    /// Mean similarity over the compared queries.
    pub similarity: Option<f64>,
    pub score: f64,
    /// The score passed the threshold.
    pub moved: bool,
    pub per_query: Vec<QueryDrift>,
}

/// Scores one query; embeddings are `None` without the encoder.
pub fn query_drift(old: &Answer, new: &Answer, emb: Option<(&[f32], &[f32])>) -> QueryDrift {
    let length_ratio = length_ratio(&old.text, &new.text);
    let similarity = emb.map(|(a, b)| cosine(a, b));
    let error_changed = old.error.is_some() != new.error.is_some();
    let (refusal_before, refusal_now) = (old.refusal, new.refusal);
    let length_term = length_ratio.log2().abs().min(1.0);
    let score = if error_changed || refusal_before != refusal_now {
        1.0
    } else if old.error.is_some() {
        0.0
    } else {
        match similarity {
            Some(s) => SEMANTIC_WEIGHT * (1.0 - s).clamp(0.0, 1.0) + (1.0 - SEMANTIC_WEIGHT) * length_term,
            None => length_term,
        }
    };
    QueryDrift { id: new.id.clone(), length_ratio, similarity, refusal_before, refusal_now, error_changed, score }
}

/// Compares a model's run with its baseline (`None`: this run is the first baseline).
/// `embed` gives each query id's (baseline, new) embeddings when the encoder is present.
pub fn model_drift(
    run: &ModelRun,
    baseline: Option<&ModelRun>,
    embeddings: &dyn Fn(&str) -> Option<EmbeddingPair>,
    threshold: f64,
) -> ModelDrift {
    let errors = run.answers.iter().filter(|a| a.error.is_some()).count();
    let refusals_now = run.answers.iter().filter(|a| a.refusal).count();
    let mut d = ModelDrift {
        model: run.model.clone(),
        version: run.version.clone(),
        status: "baseline".into(),
        queries: run.answers.len(),
        compared: 0,
        errors,
        refusals_before: 0,
        refusals_now,
        length_ratio: None,
        similarity: None,
        score: 0.0,
        moved: false,
        per_query: Vec::new(),
    };
    let Some(base) = baseline else { return d };
    d.status = "compared".into();
    for new in &run.answers {
        let Some(old) = base.answers.iter().find(|a| a.id == new.id) else { continue };
        let emb = embeddings(&new.id);
        d.per_query.push(query_drift(old, new, emb.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice()))));
    }
    let n = d.per_query.len();
    d.compared = n;
    d.refusals_before = d.per_query.iter().filter(|q| q.refusal_before).count();
    if n > 0 {
        let nf = n as f64;
        d.score = d.per_query.iter().map(|q| q.score).sum::<f64>() / nf;
        d.length_ratio = Some(d.per_query.iter().map(|q| q.length_ratio).sum::<f64>() / nf);
        let sims: Vec<f64> = d.per_query.iter().filter_map(|q| q.similarity).collect();
        if !sims.is_empty() {
            d.similarity = Some(sims.iter().sum::<f64>() / sims.len() as f64);
        }
    }
    d.moved = d.score > threshold;
    d
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn answer(id: &str, text: &str) -> Answer {
        Answer { id: id.into(), text: text.into(), error: None, output_tokens: 0, refusal: is_refusal(text) }
    }

    #[test]
    fn refusals_in_three_languages() {
        for r in [
            "I'm sorry, but I can't help with that request.",
            "I cannot provide legal advice.",
            "As an AI language model, I do not have opinions.",
            "Lo siento, pero no puedo ayudarte con eso.",
            "No puedo proporcionar esa información.",
            "Desculpe, mas não posso ajudar com isso.",
            "Não posso fornecer esse tipo de informação.",
            "Lamento, mas não é possível atender ao pedido.",
        ] {
            assert!(is_refusal(r), "{r}");
        }
        for ok in [
            "Your order shipped yesterday and arrives Friday.",
            "Sorry for the delay: your refund was approved.",
            "Puedo ayudarte: el pedido llega el viernes.",
            "Claro! O seu pedido chega na sexta-feira.",
            "I can't wait to help you plan the trip: here are three options.",
        ] {
            assert!(!is_refusal(ok), "{ok}");
        }
    }

    #[test]
    fn cosine_and_length() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-9);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-9);
        assert_eq!(length_ratio("abcd", "ab"), 0.5);
        assert_eq!(length_ratio("", ""), 1.0);
    }

    #[test]
    fn scores_same_changed_and_refused() {
        let same =
            query_drift(&answer("a", "hello there"), &answer("a", "hello there"), Some((&[1.0, 0.0], &[1.0, 0.0])));
        assert_eq!(same.score, 0.0);
        let refused =
            query_drift(&answer("a", "Here it is."), &answer("a", "I'm sorry, I can't help with that."), None);
        assert_eq!(refused.score, 1.0);
        assert!(refused.refusal_now && !refused.refusal_before);
        // Different meaning, same length: the semantic term alone.
        let changed = query_drift(&answer("a", "abcd"), &answer("a", "wxyz"), Some((&[1.0, 0.0], &[0.0, 1.0])));
        assert!((changed.score - 0.7).abs() < 1e-9, "{}", changed.score);
        // Without embeddings, halving the length is a full point.
        let shorter = query_drift(&answer("a", "abcdefgh"), &answer("a", "abcd"), None);
        assert!((shorter.score - 1.0).abs() < 1e-9);
    }

    #[test]
    fn model_score_is_the_mean_and_moves_past_the_threshold() {
        let run = |texts: &[&str]| ModelRun {
            model: "m".into(),
            version: "v1".into(),
            at_unix_ms: 0,
            answers: texts.iter().enumerate().map(|(i, t)| answer(&i.to_string(), t)).collect(),
        };
        let base = run(&["Your order ships today.", "We open at nine.", "Refunds take five days."]);
        let none = |_: &str| None;
        let first = model_drift(&base, None, &none, 0.3);
        assert_eq!((first.status.as_str(), first.moved), ("baseline", false));
        let same = model_drift(&base, Some(&base), &none, 0.3);
        assert_eq!((same.score, same.moved, same.compared), (0.0, false, 3));
        let now =
            run(&["Your order ships today.", "I'm sorry, but I can't help with that.", "Refunds take five days."]);
        let d = model_drift(&now, Some(&base), &none, 0.3);
        assert!((d.score - 1.0 / 3.0).abs() < 1e-9, "{}", d.score);
        assert!(d.moved);
        assert_eq!((d.refusals_before, d.refusals_now), (0, 1));
    }
}
