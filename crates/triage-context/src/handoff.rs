//! Handoff summaries: what a model taking over a conversation must know. The seed lost
//! context at handoff and let a second model contradict the first ("refund approved", then
//! "refund denied"); the summary carries every recorded decision with the model that made
//! it, the facts (ids, amounts, dates, emails), questions still open and the user's
//! languages.
//!
//! The extractive summary is built from the turns and the commitments ledger by rules and
//! always succeeds. When a summarizer model is configured, it is asked for the same fields
//! through Backends with a JSON schema, and its answer is merged over the extractive one;
//! the ledger's decisions are kept whatever the model writes.

use crate::facts;
use crate::language::languages_in;
use crate::summarizer;
use crate::text::{Words, clip, sentences, skeleton, tokens};
use std::time::Duration;
use triage_backends::Backends;
use triage_proto::pb;

/// `produced_by` of a summary built without a model.
pub const EXTRACTIVE: &str = "extractive";
const MAX_DECISIONS: usize = 40;
const MAX_FACTS: usize = 30;
const MAX_OPEN_QUESTIONS: usize = 5;

/// Which model writes summaries and how long it may take.
#[derive(Debug, Clone)]
pub(crate) struct SummarizerSettings {
    pub model: Option<String>,
    pub timeout: Duration,
}

/// A ledger entry as a decision line: what, which model and version, which turn.
pub fn render_commitment(c: &pb::Commitment) -> String {
    let by = if c.model_version.is_empty() { c.model.clone() } else { format!("{}@{}", c.model, c.model_version) };
    format!("{} [by {by}, turn {}]", c.text, c.turn)
}

/// The normalized head of a commitment ("refund of $40 approved") and its polarity.
fn head_of(c: &pb::Commitment) -> (&str, Option<bool>) {
    let head = c.text.split(": \"").next().unwrap_or(&c.text);
    let head = head.split(" (when:").next().unwrap_or(head);
    let yes = ["approved", "granted", "issued", "cancelled", "waived"].iter().any(|w| head.ends_with(w));
    let no = ["denied", "refused"].iter().any(|w| head.ends_with(w));
    (
        head,
        if yes {
            Some(true)
        } else if no {
            Some(false)
        } else {
            None
        },
    )
}

/// Decisions of one kind that point both ways ("refund approved" by one model, "refund
/// denied" by another): the next model must resolve them, not silently pick one.
fn conflicts(commitments: &[pb::Commitment]) -> Vec<String> {
    let mut out = Vec::new();
    for kind in ["refund", "discount", "credit", "replacement", "cancellation", "fee"] {
        let of_kind = |c: &&pb::Commitment| {
            let (head, _) = head_of(c);
            head.starts_with(kind) || (kind == "cancellation" && head.contains("cancel"))
        };
        let yes = commitments.iter().filter(of_kind).find(|c| head_of(c).1 == Some(true));
        let no = commitments.iter().filter(of_kind).find(|c| head_of(c).1 == Some(false));
        if let (Some(y), Some(n)) = (yes, no) {
            out.push(format!(
                "Conflicting {kind} decisions: \"{}\" ({}, turn {}) vs \"{}\" ({}, turn {}); confirm which stands",
                head_of(y).0,
                y.model,
                y.turn,
                head_of(n).0,
                n.model,
                n.turn
            ));
        }
    }
    out
}

/// 1-based turn number of `turns[i]`, accounting for turns not loaded.
fn turn_no(conv: &pb::Conversation, i: usize) -> u32 {
    let offset = (conv.turn_count as usize).saturating_sub(conv.turns.len());
    u32::try_from(offset + i + 1).unwrap_or(u32::MAX)
}

fn is_role(m: &pb::Message, r: pb::Role) -> bool {
    m.role == r as i32
}

fn extract_facts(conv: &pb::Conversation) -> Vec<String> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (i, m) in conv.turns.iter().enumerate() {
        let toks = tokens(&m.content);
        for f in facts::all(&toks) {
            // "order ORD-1" and a bare "ORD-1" later are one fact: ids dedupe on the id.
            let id = if f.kind == "id" { f.value.rsplit(' ').next().unwrap_or(&f.value) } else { &f.value };
            let key = skeleton(id.trim_start_matches('#'));
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let label = match f.kind {
                "id" if f.value.starts_with('#') => "id ",
                "id" => "",
                "amount" => "amount ",
                "percent" => "percentage ",
                "date" => "date ",
                "email" => "email ",
                _ => "",
            };
            out.push(format!("{label}{} (turn {})", f.value, turn_no(conv, i)));
        }
    }
    out.truncate(MAX_FACTS);
    out
}

static QUESTION_WORDS: Words = Words::new(
    "what where when why how which who qué dónde donde cuándo cómo cuál cuánto cuánta onde \
     quando qual quanto quanta porque por",
);
static NOT_KEYWORDS: Words = Words::new(
    "what where when which does have this that with from your there would could should about \
     please dónde donde cuándo cuando como cómo para este esta está onde quando pode puede \
     puedo posso tengo tenho also still will they them then than just know want need quiero \
     quero preciso necesito porque sobre ainda todavía você usted hola hello thanks gracias \
     obrigado can't isn't mine their",
);

fn is_question(s: &str) -> bool {
    let first = tokens(s).into_iter().next().map(|t| t.lower).unwrap_or_default();
    s.ends_with('?') || s.starts_with('¿') || (QUESTION_WORDS.has(first.as_str()) && !s.ends_with(['.', '!']))
}

/// Content words of a question, cut to a 5-letter stem so "refund" meets "refunded".
fn keywords(s: &str) -> Vec<String> {
    tokens(s)
        .into_iter()
        .filter(|t| t.lower.chars().any(|c| c.is_ascii_digit()) || t.lower.chars().count() >= 4)
        .filter(|t| !NOT_KEYWORDS.has(t.lower.as_str()))
        .map(|t| t.lower.trim_start_matches('#').chars().take(5).collect())
        .collect()
}

/// An assistant reply answers a question when it shares a third of its content words.
fn answers(reply: &str, keys: &[String]) -> bool {
    if keys.is_empty() {
        return true;
    }
    let words = keywords(reply);
    let hits = keys.iter().filter(|k| words.contains(k)).count();
    hits >= 1 && hits * 3 >= keys.len()
}

fn open_questions(conv: &pb::Conversation) -> Vec<String> {
    let mut out = Vec::new();
    for (i, m) in conv.turns.iter().enumerate() {
        if !is_role(m, pb::Role::User) {
            continue;
        }
        for q in sentences(&m.content).into_iter().filter(|s| is_question(s)) {
            let keys = keywords(q);
            let later = &conv.turns[i + 1..];
            let answered = later.iter().filter(|r| is_role(r, pb::Role::Assistant)).any(|r| answers(&r.content, &keys));
            if !answered {
                out.push(format!("{} (turn {})", clip(q, 200), turn_no(conv, i)));
            }
        }
    }
    // The most recent open questions matter; older ones the user has likely dropped.
    let skip = out.len().saturating_sub(MAX_OPEN_QUESTIONS);
    out.split_off(skip)
}

fn user_languages(conv: &pb::Conversation) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in conv.turns.iter().filter(|m| is_role(m, pb::Role::User)) {
        for l in languages_in(&m.content) {
            if !out.iter().any(|o| o == l) {
                out.push(l.to_string());
            }
        }
    }
    out
}

/// The summary built from the turns and the commitments ledger alone, by rules.
pub fn extractive_summary(conv: &pb::Conversation, from_model: &str, to_model: &str) -> pb::HandoffSummary {
    let mut decisions: Vec<String> = Vec::new();
    let mut seen = Vec::new();
    for c in &conv.commitments {
        // A decision restated by the same model is one decision; the first mention counts.
        let key = (skeleton(&c.text), c.model.clone());
        if !seen.contains(&key) {
            seen.push(key);
            decisions.push(render_commitment(c));
        }
    }
    // Too many: keep the most recent, they supersede older ones.
    let skip = decisions.len().saturating_sub(MAX_DECISIONS);
    let decisions = decisions.split_off(skip);
    let mut open = conflicts(&conv.commitments);
    open.extend(open_questions(conv));
    pb::HandoffSummary {
        decisions,
        facts: extract_facts(conv),
        open_questions: open,
        languages: user_languages(conv),
        from_model: from_model.to_string(),
        to_model: to_model.to_string(),
        produced_by: EXTRACTIVE.to_string(),
        at_turn: conv.turn_count.max(u32::try_from(conv.turns.len()).unwrap_or(u32::MAX)),
    }
}

/// The handoff summary of `conv`: from the summarizer model when one is configured and
/// answers well-formed JSON in time, merged with the ledger; extractive otherwise.
pub(crate) async fn summarize(
    conv: &pb::Conversation,
    from_model: &str,
    to_model: &str,
    settings: &SummarizerSettings,
    backends: Option<&dyn Backends>,
) -> pb::HandoffSummary {
    let extractive = extractive_summary(conv, from_model, to_model);
    let (Some(model), Some(backends)) = (settings.model.as_deref(), backends) else {
        return extractive;
    };
    match summarizer::ask(backends, model, conv, &extractive, settings.timeout).await {
        Ok((answer, produced_by)) => summarizer::merge(extractive, answer, produced_by),
        Err(why) => {
            // Escalation must not wait on, or fail with, the cheap model.
            tracing::warn!(summarizer = model, conversation = %conv.id, reason = %why, "summarizer failed; using extractive handoff summary");
            extractive
        }
    }
}
