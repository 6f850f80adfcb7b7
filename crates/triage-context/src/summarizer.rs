//! Asks a cheap model for a handoff summary through Backends, with a JSON schema so
//! providers that support constrained decoding return exactly the fields, and merges its
//! answer with the extractive summary. Any failure (error, timeout, malformed or
//! incomplete JSON) is reported to the caller, which falls back to the extractive summary.

use crate::text::{clip, skeleton};
use serde::Deserialize;
use std::time::Duration;
use triage_backends::Backends;
use triage_proto::pb;

/// Transcript budget sent to the summarizer, characters: the most recent turns fit, and a
/// cheap model's window is never the reason a handoff fails.
const TRANSCRIPT_MAX_CHARS: usize = 24_000;
/// Items kept per field from the model, and their length: the summary goes into every
/// later prompt, a runaway model must not blow it up.
const MAX_ITEMS: usize = 20;
const MAX_ITEM_CHARS: usize = 300;
const MAX_TOKENS: u32 = 1_024;

const SYSTEM: &str = "You write handoff notes for an AI customer-service assistant that takes over \
a conversation from another model. Read the transcript and answer with JSON only, following the \
schema. decisions: every decision or promise the assistant made (refunds, discounts, \
cancellations, credits, dates promised, amounts), with amounts and dates. facts: order ids, \
amounts, dates, names, emails and other facts the user gave. open_questions: questions of the \
user that have not been answered yet. languages: ISO 639-1 codes of the languages the user \
writes in. Never invent anything that is not in the transcript.";

const SCHEMA: &str = r#"{"type":"object","properties":{"decisions":{"type":"array","items":{"type":"string"}},"facts":{"type":"array","items":{"type":"string"}},"open_questions":{"type":"array","items":{"type":"string"}},"languages":{"type":"array","items":{"type":"string"}}},"required":["decisions","facts","open_questions","languages"],"additionalProperties":false}"#;

/// The fields the model must return; all four are required, a missing one is malformed.
#[derive(Debug, Deserialize)]
pub(crate) struct Answer {
    decisions: Vec<String>,
    facts: Vec<String>,
    open_questions: Vec<String>,
    languages: Vec<String>,
}

fn transcript(conv: &pb::Conversation, extractive: &pb::HandoffSummary) -> String {
    let offset = (conv.turn_count as usize).saturating_sub(conv.turns.len());
    let mut lines: Vec<String> = conv
        .turns
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let who = match pb::Role::try_from(m.role) {
                Ok(pb::Role::Assistant) => format!("assistant ({})", m.model),
                _ => "user".to_string(),
            };
            format!("[turn {}] {who}: {}", offset + i + 1, m.content)
        })
        .collect();
    // Keep the most recent turns within budget; the ledger below covers older decisions.
    let mut used = 0;
    let mut keep = lines.len();
    while keep > 0 && used + lines[keep - 1].len() < TRANSCRIPT_MAX_CHARS {
        used += lines[keep - 1].len() + 1;
        keep -= 1;
    }
    let mut out = String::new();
    if keep > 0 {
        out.push_str(&format!("({keep} earlier turns omitted)\n"));
    }
    out.push_str(&lines.split_off(keep).join("\n"));
    if !extractive.decisions.is_empty() {
        out.push_str("\n\nDecisions recorded so far:\n");
        for d in &extractive.decisions {
            out.push_str(&format!("- {d}\n"));
        }
    }
    out
}

/// Finds the JSON object in a reply that may be wrapped in prose or a code fence.
pub(crate) fn parse(text: &str) -> Result<Answer, String> {
    let start = text.find('{').ok_or("no JSON object in reply")?;
    let end = text.rfind('}').ok_or("no JSON object in reply")?;
    if end < start {
        return Err("no JSON object in reply".into());
    }
    serde_json::from_str(&text[start..=end]).map_err(|e| format!("malformed summary JSON: {e}"))
}

/// Calls the summarizer; returns its answer and the model that produced it.
pub(crate) async fn ask(
    backends: &dyn Backends,
    model: &str,
    conv: &pb::Conversation,
    extractive: &pb::HandoffSummary,
    timeout: Duration,
) -> Result<(Answer, String), String> {
    let req = pb::GenerateRequest {
        request_id: format!("handoff:{}:{}", conv.id, extractive.at_turn),
        model: model.to_string(),
        fallbacks: Vec::new(),
        system: SYSTEM.to_string(),
        messages: vec![pb::Message {
            role: pb::Role::User as i32,
            content: transcript(conv, extractive),
            ..Default::default()
        }],
        max_tokens: MAX_TOKENS,
        temperature: Some(0.0),
        json_schema: SCHEMA.to_string(),
        model_version: String::new(),
    };
    let resp = match tokio::time::timeout(timeout, backends.generate(req)).await {
        Err(_) => return Err(format!("no answer within {timeout:?}")),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(r)) => r,
    };
    let answer = parse(&resp.text)?;
    let produced_by = if resp.model.is_empty() { model.to_string() } else { resp.model };
    Ok((answer, produced_by))
}

fn clean(items: Vec<String>) -> Vec<String> {
    items.into_iter().map(|s| clip(s.trim(), MAX_ITEM_CHARS)).filter(|s| !s.is_empty()).take(MAX_ITEMS).collect()
}

/// True when `a` says what `b` says, ignoring case, spacing and punctuation.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (skeleton(a), skeleton(b));
    !a.is_empty() && !b.is_empty() && (a.contains(&b) || b.contains(&a))
}

/// Model answer over the extractive summary. Decisions: the ledger's first, always (the
/// model may drop or reword them), then the model's that say something new. Facts: the
/// extractive ones (exact values with turn numbers) plus the model's new ones. Open
/// questions: the model's, which reads "answered" better than keyword overlap, plus any
/// conflicting-decision warnings. Languages: both, deduplicated.
pub(crate) fn merge(mut base: pb::HandoffSummary, answer: Answer, produced_by: String) -> pb::HandoffSummary {
    for d in clean(answer.decisions) {
        if !base.decisions.iter().any(|b| same(b, &d)) {
            base.decisions.push(d);
        }
    }
    for f in clean(answer.facts) {
        if !base.facts.iter().any(|b| same(b, &f)) {
            base.facts.push(f);
        }
    }
    let conflicts: Vec<String> =
        base.open_questions.iter().filter(|q| q.starts_with("Conflicting ")).cloned().collect();
    base.open_questions = conflicts;
    base.open_questions.extend(clean(answer.open_questions));
    for l in answer.languages {
        let l = l.trim().to_lowercase();
        let code = l.len() == 2 && l.chars().all(|c| c.is_ascii_lowercase());
        if code && !base.languages.contains(&l) {
            base.languages.push(l);
        }
    }
    base.produced_by = produced_by;
    base
}
