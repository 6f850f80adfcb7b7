//! What callers said of the answers in the log (`Router.Feedback`, kept with each decision
//! record): resolution rate and satisfaction by the model that answered in production.
//! This is the quality side of the replay's cost side: a cheaper split only pays if the
//! models it moves traffic to keep resolving.

use super::input::Entry;
use super::report::round;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Feedback on one model's answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelFeedback {
    /// Lines answered by the model.
    pub answers: usize,
    /// Of those, lines with any feedback.
    pub with_feedback: usize,
    pub resolved: usize,
    pub unresolved: usize,
    pub escalated_to_human: usize,
    satisfaction_sum: u64,
    pub satisfaction_n: usize,
}

impl ModelFeedback {
    /// Resolved among the answers whose resolution is known.
    pub fn resolution_rate(&self) -> Option<f64> {
        let known = self.resolved + self.unresolved;
        (known > 0).then(|| self.resolved as f64 / known as f64)
    }

    /// Mean satisfaction (0..10) where given.
    pub fn satisfaction_mean(&self) -> Option<f64> {
        (self.satisfaction_n > 0).then(|| self.satisfaction_sum as f64 / self.satisfaction_n as f64)
    }

    /// Handed to a human among the answers with feedback.
    pub fn human_rate(&self) -> Option<f64> {
        (self.with_feedback > 0).then(|| self.escalated_to_human as f64 / self.with_feedback as f64)
    }
}

/// Feedback per answering model, over the lines that name one.
pub fn by_model(entries: &[Entry]) -> BTreeMap<String, ModelFeedback> {
    let mut out: BTreeMap<String, ModelFeedback> = BTreeMap::new();
    for e in entries {
        let Some(model) = &e.answered_by else { continue };
        let m = out.entry(model.clone()).or_default();
        m.answers += 1;
        let Some(f) = e.feedback else { continue };
        m.with_feedback += 1;
        match f.resolved {
            Some(true) => m.resolved += 1,
            Some(false) => m.unresolved += 1,
            None => {}
        }
        m.escalated_to_human += usize::from(f.escalated_to_human);
        if let Some(s) = f.satisfaction {
            m.satisfaction_sum += u64::from(s);
            m.satisfaction_n += 1;
        }
    }
    out
}

/// The `feedback_by_model` object of `--json`.
pub fn json(fb: &BTreeMap<String, ModelFeedback>) -> serde_json::Value {
    let opt = |x: Option<f64>| x.map(|v| round(v, 4));
    fb.iter()
        .map(|(model, m)| {
            let v = json!({
                "answers": m.answers,
                "with_feedback": m.with_feedback,
                "resolved": m.resolved,
                "unresolved": m.unresolved,
                "resolution_rate": opt(m.resolution_rate()),
                "escalated_to_human_rate": opt(m.human_rate()),
                "satisfaction_mean": opt(m.satisfaction_mean()),
                "satisfaction_n": m.satisfaction_n,
            });
            (model.clone(), v)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The text section; empty when no line carries feedback.
pub fn text(fb: &BTreeMap<String, ModelFeedback>) -> String {
    if fb.values().all(|m| m.with_feedback == 0) {
        return String::new();
    }
    let show = |x: Option<f64>, pct: bool| match x {
        Some(v) if pct => format!("{:.1}%", v * 100.0),
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    };
    let mut s = String::new();
    let _ = writeln!(s, "\nfeedback by answering model (as logged)");
    let _ = writeln!(
        s,
        "{:<22} {:>8} {:>9} {:>11} {:>8} {:>13}",
        "model", "answers", "feedback", "resolution", "human", "satisfaction"
    );
    for (model, m) in fb {
        let _ = writeln!(
            s,
            "{model:<22} {:>8} {:>9} {:>11} {:>8} {:>13}",
            m.answers,
            m.with_feedback,
            show(m.resolution_rate(), true),
            show(m.human_rate(), true),
            show(m.satisfaction_mean(), false),
        );
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::commands::replay::input::Feedback;

    fn entry(model: Option<&str>, f: Option<Feedback>) -> Entry {
        Entry {
            id: "x".into(),
            query: "q".into(),
            history: vec![],
            conversation_id: None,
            classification: None,
            expected: None,
            tokens_in: None,
            tokens_out: None,
            premium: false,
            answered_by: model.map(str::to_string),
            feedback: f,
        }
    }

    #[test]
    fn resolution_and_satisfaction_by_model() {
        let fb = |resolved, human, sat| Some(Feedback { resolved, escalated_to_human: human, satisfaction: sat });
        let entries = vec![
            entry(Some("fast"), fb(Some(true), false, Some(9))),
            entry(Some("fast"), fb(Some(true), false, Some(7))),
            entry(Some("fast"), fb(Some(false), true, Some(2))),
            entry(Some("fast"), None),
            entry(Some("frontier"), fb(None, false, Some(10))),
            entry(None, fb(Some(true), false, None)),
        ];
        let by = by_model(&entries);
        assert_eq!(by.len(), 2);
        let fast = &by["fast"];
        assert_eq!((fast.answers, fast.with_feedback), (4, 3));
        assert!((fast.resolution_rate().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert!((fast.satisfaction_mean().unwrap() - 6.0).abs() < 1e-9);
        assert!((fast.human_rate().unwrap() - 1.0 / 3.0).abs() < 1e-9);
        let frontier = &by["frontier"];
        assert_eq!(frontier.resolution_rate(), None);
        assert_eq!(frontier.satisfaction_mean(), Some(10.0));

        let v = json(&by);
        assert_eq!(v["fast"]["resolution_rate"].as_f64(), Some(0.6667));
        assert_eq!(v["frontier"]["resolution_rate"], serde_json::Value::Null);
        let t = text(&by);
        assert!(t.contains("66.7%") && t.contains("6.00") && t.contains("frontier"), "{t}");
        assert_eq!(text(&by_model(&[entry(Some("fast"), None)])), "");
    }
}
