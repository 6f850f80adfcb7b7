//! Replay input: one JSON object a line, the `triage classify` format plus optional labels.
//! Unknown fields are ignored so production logs can be replayed as exported. Decision
//! records (the JSONL decision log, `triage explain --json`) are read too: `turn` is the
//! query, `classification` its labels, `model` the model that answered and `feedback` what
//! the caller said of the answer; a request id seen again replaces its earlier line (the
//! decision log appends a record again when its feedback arrives).

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use std::path::Path;
use triage_proto::pb;

#[derive(Debug, Deserialize)]
struct Line {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(alias = "turn")]
    query: String,
    /// Labels as a decision record carries them.
    #[serde(default)]
    classification: Option<pb::Classification>,
    /// Model that answered in production.
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    feedback: Option<pb::FeedbackRequest>,
    #[serde(default)]
    resolved: Option<bool>,
    #[serde(default)]
    satisfaction: Option<u32>,
    #[serde(default)]
    escalated_to_human: Option<bool>,
    #[serde(default)]
    history: Vec<HistoryMessage>,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    complexity: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    requires_context: Option<bool>,
    #[serde(default)]
    confidence: Option<f32>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    expected_complexity: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    tokens_in: Option<u64>,
    #[serde(default)]
    tokens_out: Option<u64>,
    #[serde(default)]
    premium: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct HistoryMessage {
    role: String,
    content: String,
}

/// One query to replay.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub query: String,
    pub history: Vec<pb::Message>,
    pub conversation_id: Option<String>,
    /// Labels carried by the line, or filled in by the classifier before the replay.
    pub classification: Option<pb::Classification>,
    /// The true complexity (`expected_complexity` / `label`), when the log has one.
    pub expected: Option<pb::Complexity>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub premium: bool,
    /// Model that answered in production, when the log says.
    pub answered_by: Option<String>,
    /// Caller feedback on that answer.
    pub feedback: Option<Feedback>,
}

/// What a caller said of an answer (`Router.Feedback`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Feedback {
    pub resolved: Option<bool>,
    pub escalated_to_human: bool,
    pub satisfaction: Option<u32>,
}

pub fn complexity(s: &str) -> Option<pb::Complexity> {
    match s.trim().to_ascii_lowercase().as_str() {
        "simple" => Some(pb::Complexity::Simple),
        "moderate" => Some(pb::Complexity::Moderate),
        "complex" => Some(pb::Complexity::Complex),
        _ => None,
    }
}

fn category(s: &str) -> Option<pb::Category> {
    match s.trim().to_ascii_lowercase().as_str() {
        "transactional" => Some(pb::Category::Transactional),
        "analytical" => Some(pb::Category::Analytical),
        "creative" => Some(pb::Category::Creative),
        _ => None,
    }
}

fn role(s: &str) -> Option<pb::Role> {
    match s {
        "user" => Some(pb::Role::User),
        "assistant" => Some(pb::Role::Assistant),
        _ => None,
    }
}

/// Reads every non-empty line of `path`; errors name the line.
pub fn read(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out: Vec<Entry> = Vec::new();
    let mut by_request: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let line: Line = serde_json::from_str(raw).with_context(at)?;
        let request_id = line.request_id.clone().filter(|r| !r.is_empty());
        match request_id.as_ref().and_then(|r| by_request.get(r)) {
            Some(&at_index) => out[at_index] = entry(line, at_index).with_context(at)?,
            None => {
                if let Some(r) = request_id {
                    by_request.insert(r, out.len());
                }
                out.push(entry(line, out.len()).with_context(at)?);
            }
        }
    }
    if out.is_empty() {
        bail!("{}: no queries", path.display());
    }
    Ok(out)
}

fn entry(line: Line, index: usize) -> Result<Entry> {
    let id = match line.id {
        Some(serde_json::Value::String(s)) => s,
        Some(v) if !v.is_null() => v.to_string(),
        _ => line.request_id.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| format!("#{}", index + 1)),
    };
    let mut feedback = line.feedback.map(|f| Feedback {
        resolved: f.resolved,
        escalated_to_human: f.escalated_to_human,
        satisfaction: f.satisfaction,
    });
    if line.resolved.is_some() || line.satisfaction.is_some() || line.escalated_to_human.is_some() {
        let f = feedback.get_or_insert_with(Feedback::default);
        f.resolved = line.resolved.or(f.resolved);
        f.satisfaction = line.satisfaction.or(f.satisfaction);
        f.escalated_to_human |= line.escalated_to_human.unwrap_or(false);
    }
    if let Some(s) = feedback.and_then(|f| f.satisfaction)
        && s > 10
    {
        bail!("satisfaction {s} is outside 0..10");
    }
    let mut history = Vec::with_capacity(line.history.len());
    for m in line.history {
        let Some(r) = role(&m.role) else { bail!("history role `{}` (user or assistant)", m.role) };
        history.push(pb::Message { role: r as i32, content: m.content, ..Default::default() });
    }
    // A line counts as classified when it carries a complexity: the rest default the way the
    // classifier would leave them unset.
    let classification = match line.complexity.as_deref() {
        // A decision record's labels (a record whose classifier failed has none).
        None => line.classification.filter(|c| c.complexity != pb::Complexity::Unspecified as i32),
        Some(c) => {
            let Some(cx) = complexity(c) else { bail!("complexity `{c}` (simple, moderate, complex)") };
            let cat = match line.category.as_deref() {
                None => pb::Category::Unspecified,
                Some(c) => {
                    category(c).with_context(|| format!("category `{c}` (transactional, analytical, creative)"))?
                }
            };
            Some(pb::Classification {
                complexity: cx as i32,
                category: cat as i32,
                requires_context: line.requires_context.unwrap_or(false),
                confidence: line.confidence.unwrap_or(1.0),
                language: line.language.unwrap_or_default(),
                model_version: "log".into(),
            })
        }
    };
    let expected = match line.expected_complexity.or(line.label) {
        None => None,
        Some(l) => {
            Some(complexity(&l).with_context(|| format!("expected complexity `{l}` (simple, moderate, complex)"))?)
        }
    };
    Ok(Entry {
        id,
        query: line.query,
        history,
        conversation_id: line.conversation_id.filter(|c| !c.is_empty()),
        classification,
        expected,
        tokens_in: line.tokens_in,
        tokens_out: line.tokens_out,
        premium: line.premium.unwrap_or(false),
        answered_by: line.model.filter(|m| !m.is_empty()),
        feedback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Entry> {
        entry(serde_json::from_str(s)?, 0)
    }

    #[test]
    fn raw_and_classified_lines() {
        let e =
            parse(r#"{"id": 7, "query": "hi", "extra": 1, "history": [{"role": "user", "content": "a"}]}"#).unwrap();
        assert_eq!(e.id, "7");
        assert!(e.classification.is_none());
        assert_eq!(e.history.len(), 1);
        let e = parse(r#"{"query": "q", "complexity": "simple", "confidence": 0.95, "label": "complex", "conversation_id": "c1"}"#).unwrap();
        assert_eq!(e.id, "#1");
        assert_eq!(e.classification.map(|c| c.complexity), Some(pb::Complexity::Simple as i32));
        assert_eq!(e.expected, Some(pb::Complexity::Complex));
        assert_eq!(e.conversation_id.as_deref(), Some("c1"));
        assert!(parse(r#"{"query": "q", "complexity": "hard"}"#).is_err());
        assert!(parse(r#"{"query": "q", "history": [{"role": "system", "content": "x"}]}"#).is_err());
    }

    #[test]
    fn decision_records_with_feedback() {
        let rec = r#"{"request_id": "r1", "turn": "where is my order?", "model": "local-smollm2",
            "classification": {"complexity": 1, "category": 1, "confidence": 0.9, "language": "en"},
            "feedback": {"request_id": "r1", "resolved": true, "satisfaction": 8}}"#;
        let e = parse(rec).unwrap();
        assert_eq!((e.id.as_str(), e.query.as_str()), ("r1", "where is my order?"));
        assert_eq!(e.answered_by.as_deref(), Some("local-smollm2"));
        assert_eq!(e.classification.map(|c| c.complexity), Some(pb::Complexity::Simple as i32));
        assert_eq!(
            e.feedback,
            Some(Feedback { resolved: Some(true), escalated_to_human: false, satisfaction: Some(8) })
        );
        let flat = parse(r#"{"query": "q", "model": "m", "resolved": false, "escalated_to_human": true}"#).unwrap();
        assert_eq!(
            flat.feedback,
            Some(Feedback { resolved: Some(false), escalated_to_human: true, satisfaction: None })
        );
        assert!(parse(r#"{"query": "q", "satisfaction": 11}"#).is_err());
    }

    #[test]
    fn a_request_seen_again_replaces_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        std::fs::write(
            &p,
            concat!(
                r#"{"request_id": "a", "turn": "one", "model": "m"}"#,
                "\n",
                r#"{"request_id": "b", "turn": "two", "model": "m"}"#,
                "\n",
                r#"{"request_id": "a", "turn": "one", "model": "m", "feedback": {"resolved": true}}"#,
                "\n"
            ),
        )
        .unwrap();
        let entries = read(&p).unwrap();
        assert_eq!(entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(entries[0].feedback.and_then(|f| f.resolved), Some(true));
    }
}
