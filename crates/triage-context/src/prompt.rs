//! Prompt assembly: the system prompt, the handoff summary and as many recent turns as the
//! model's context window allows.
//!
//! The summary is what keeps a model that takes over from contradicting the one before it,
//! so it is kept and history is trimmed oldest-first around it. Decisions recorded after
//! the summary was written are rendered too: a conversation pinned to one model still sees
//! every promise it made once the turns that made them leave the window.

use crate::handoff::render_commitment;
use crate::text::skeleton;
use triage_proto::pb;

/// Tokens reserved for each message's framing (role markers, separators) in chat formats,
/// on top of what `count_tokens` says for its text: the window check errs on the safe side.
pub const MESSAGE_OVERHEAD_TOKENS: u32 = 4;
/// Most ledger decisions rendered when there is no summary (the most recent ones).
const MAX_LEDGER_LINES: usize = 20;

fn bullets(out: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.push_str(title);
    out.push('\n');
    for i in items {
        out.push_str("- ");
        out.push_str(i);
        out.push('\n');
    }
}

/// A handoff summary as text for a system prompt: decisions, facts, open questions and
/// languages, each section only when it has content.
pub fn render_summary(summary: &pb::HandoffSummary) -> String {
    let mut out = format!(
        "Handoff summary (conversation handed over from {} to {} at turn {}, written by {}):\n",
        or_unknown(&summary.from_model),
        or_unknown(&summary.to_model),
        summary.at_turn,
        or_unknown(&summary.produced_by)
    );
    bullets(
        &mut out,
        "Decisions already made (honour them; never contradict one without telling the user why):",
        &summary.decisions,
    );
    bullets(&mut out, "Facts:", &summary.facts);
    bullets(&mut out, "Open questions:", &summary.open_questions);
    if !summary.languages.is_empty() {
        out.push_str(&format!("User languages: {} (answer in the user's language)\n", summary.languages.join(", ")));
    }
    out
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

/// Ledger decisions not covered by the summary: all of them without one, those made after
/// it with one.
fn later_decisions(conv: &pb::Conversation) -> Vec<String> {
    let after = conv.summary.as_ref().map(|s| s.at_turn);
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for c in conv.commitments.iter().filter(|c| after.is_none_or(|t| c.turn > t)) {
        let key = skeleton(&c.text);
        if !seen.contains(&key) {
            seen.push(key);
            out.push(render_commitment(c));
        }
    }
    let skip = out.len().saturating_sub(MAX_LEDGER_LINES);
    out.split_off(skip)
}

/// The system prompt with the summary and ledger, full or (when the window is tight)
/// decisions only.
fn system_text(conv: &pb::Conversation, system_prompt: &str, compact: bool) -> String {
    let mut out = system_prompt.trim_end().to_string();
    if let Some(s) = &conv.summary {
        let s = if compact {
            pb::HandoffSummary { facts: Vec::new(), open_questions: Vec::new(), ..s.clone() }
        } else {
            s.clone()
        };
        out.push_str("\n\n");
        out.push_str(render_summary(&s).trim_end());
    }
    let later = later_decisions(conv);
    let title = if conv.summary.is_some() {
        "Decisions made since the handoff (honour them):"
    } else {
        "Decisions already made in this conversation (honour them; never contradict one without telling the user why):"
    };
    if !later.is_empty() {
        out.push_str("\n\n");
        let mut section = String::new();
        bullets(&mut section, title, &later);
        out.push_str(section.trim_end());
    }
    out
}

/// Builds what a model receives: `(system, messages)`. `system` is `system_prompt`, the
/// handoff summary and the decisions since; `messages` are at most `prompt_turns` recent
/// turns, oldest first, then `new_turn` as the user message (when not empty).
///
/// Guarantee: `count(system) + Σ count(message) + MESSAGE_OVERHEAD_TOKENS per message
/// (system included) + max_tokens <= context_window`, by dropping the oldest turns first.
/// The summary is kept; only when system prompt, summary and new turn alone overflow is
/// the summary cut to its decisions, and if even that overflows the result holds no
/// history and the caller's own check must reject the request.
pub fn build_prompt(
    conv: &pb::Conversation,
    system_prompt: &str,
    prompt_turns: u32,
    context_window: u32,
    count_tokens: &dyn Fn(&str) -> u32,
    new_turn: &str,
    max_tokens: u32,
) -> (String, Vec<pb::Message>) {
    let cost = |text: &str| i64::from(count_tokens(text)) + i64::from(MESSAGE_OVERHEAD_TOKENS);
    let new_cost = if new_turn.is_empty() { 0 } else { cost(new_turn) };
    let fixed = i64::from(max_tokens) + new_cost;
    let mut system = system_text(conv, system_prompt, false);
    if fixed + cost(&system) > i64::from(context_window) {
        system = system_text(conv, system_prompt, true);
    }
    let mut budget = i64::from(context_window) - fixed - cost(&system);

    let history: Vec<&pb::Message> =
        conv.turns.iter().filter(|m| m.role == pb::Role::User as i32 || m.role == pb::Role::Assistant as i32).collect();
    let recent = &history[history.len().saturating_sub(prompt_turns as usize)..];
    let mut first = recent.len();
    while first > 0 {
        let c = cost(&recent[first - 1].content);
        if c > budget {
            break;
        }
        budget -= c;
        first -= 1;
    }
    // Chat APIs (Anthropic's among them) expect the conversation to open with a user
    // message; a reply whose question was trimmed away goes too.
    while first < recent.len() && recent[first].role == pb::Role::Assistant as i32 {
        first += 1;
    }
    let mut messages: Vec<pb::Message> = recent[first..].iter().map(|m| (*m).clone()).collect();
    if !new_turn.is_empty() {
        messages.push(pb::Message { role: pb::Role::User as i32, content: new_turn.to_string(), ..Default::default() });
    }
    (system, messages)
}
