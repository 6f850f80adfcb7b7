//! What-if variants of a policy: the same rules with the fast-tier confidence gate moved, so
//! `triage replay --sweep` can show what each threshold would cost before anyone edits the
//! file in production.

use crate::local::LocalPolicy;
use crate::rules::PolicyFile;
use crate::{Error, Result};
use std::path::Path;
use triage_core::Config;

/// Rule whose confidence threshold is the fast-tier gate (the seed's branch 1).
pub const CONFIDENCE_GATE_RULE: &str = "simple_confident";

const CONFIDENCE_VAR: &str = "classification.confidence";

/// `text` with the threshold of `rule`'s `classification.confidence > X` (or `>=`) replaced by
/// `threshold`. Every other rule is kept as written. The YAML is rewritten from its parsed
/// form (comments are lost), which is fine: the result is only ever loaded, never saved.
pub fn with_confidence_gate(text: &str, origin: &Path, rule: &str, threshold: f64) -> Result<String> {
    let invalid = |reason: String| Error::InvalidRule { path: origin.to_path_buf(), rule: rule.to_owned(), reason };
    if !(0.0..=1.0).contains(&threshold) {
        return Err(invalid(format!("confidence gate {threshold} is outside 0..1")));
    }
    let mut file: PolicyFile =
        serde_yaml::from_str(text).map_err(|e| Error::Load { path: origin.to_path_buf(), message: e.to_string() })?;
    let spec = file
        .rules
        .iter_mut()
        .find(|r| r.id == rule)
        .ok_or_else(|| invalid("no such rule: the sweep moves its confidence threshold".into()))?;
    spec.when = replace_threshold(&spec.when, threshold)
        .ok_or_else(|| invalid(format!("`when` has no `{CONFIDENCE_VAR} > NUMBER` to move: {}", spec.when)))?;
    serde_yaml::to_string(&file).map_err(|e| Error::Load { path: origin.to_path_buf(), message: e.to_string() })
}

/// Replaces the number after the first `classification.confidence >`/`>=` in a condition.
fn replace_threshold(when: &str, threshold: f64) -> Option<String> {
    let start = when.find(CONFIDENCE_VAR)? + CONFIDENCE_VAR.len();
    let rest = &when[start..];
    let after_ws = rest.len() - rest.trim_start().len();
    let op_rest = rest.trim_start();
    let op_len = if op_rest.starts_with(">=") {
        2
    } else if op_rest.starts_with('>') {
        1
    } else {
        return None;
    };
    let num_rest = &op_rest[op_len..];
    let num_ws = num_rest.len() - num_rest.trim_start().len();
    let digits = num_rest.trim_start();
    let num_len = digits.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(digits.len());
    if num_len == 0 {
        return None;
    }
    let num_at = start + after_ws + op_len + num_ws;
    // `{:?}` keeps a decimal point (0.9 -> "0.9", 1 -> "1.0") so CEL compares doubles.
    Some(format!("{}{threshold:?}{}", &when[..num_at], &when[num_at + num_len..]))
}

impl LocalPolicy {
    /// The policy in `text` with the fast-tier gate (rule [`CONFIDENCE_GATE_RULE`]) at
    /// `threshold`; never reloaded.
    pub fn with_confidence_gate(cfg: &Config, text: &str, origin: &Path, threshold: f64) -> Result<LocalPolicy> {
        let moved = with_confidence_gate(text, origin, CONFIDENCE_GATE_RULE, threshold)?;
        LocalPolicy::from_yaml(cfg, &moved, origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_POLICY_YAML;

    #[test]
    fn replaces_only_the_number() {
        let w = "classification.complexity == \"simple\" && classification.confidence > 0.9";
        assert_eq!(
            replace_threshold(w, 0.75).as_deref(),
            Some("classification.complexity == \"simple\" && classification.confidence > 0.75")
        );
        assert_eq!(
            replace_threshold("classification.confidence>=0.5 && x", 1.0).as_deref(),
            Some("classification.confidence>=1.0 && x")
        );
        assert_eq!(replace_threshold("classification.confidence < 0.5", 0.7), None);
        assert_eq!(replace_threshold("true", 0.7), None);
    }

    #[test]
    fn default_policy_gate_moves_and_compiles() {
        let cfg = Config::embedded_default().expect("default config");
        let p = LocalPolicy::with_confidence_gate(&cfg, DEFAULT_POLICY_YAML, Path::new("x"), 0.6).expect("policy");
        assert_eq!(p.rule_ids().first().map(String::as_str), Some("budget_exhausted"));
        let req = triage_proto::pb::DecideRequest {
            classification: Some(triage_proto::pb::Classification {
                complexity: triage_proto::pb::Complexity::Simple as i32,
                confidence: 0.7,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(p.decide_now(&req).expect("decide").rule_id, CONFIDENCE_GATE_RULE);
        let strict =
            LocalPolicy::with_confidence_gate(&cfg, DEFAULT_POLICY_YAML, Path::new("x"), 0.95).expect("policy");
        assert_ne!(strict.decide_now(&req).expect("decide").rule_id, CONFIDENCE_GATE_RULE);
    }

    #[test]
    fn rejects_out_of_range_and_missing_rule() {
        assert!(with_confidence_gate(DEFAULT_POLICY_YAML, Path::new("x"), CONFIDENCE_GATE_RULE, 1.5).is_err());
        assert!(with_confidence_gate(DEFAULT_POLICY_YAML, Path::new("x"), "nope", 0.5).is_err());
    }
}
