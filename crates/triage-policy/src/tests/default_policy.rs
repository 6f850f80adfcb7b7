//! Every branch of the built-in policy and its boundaries, as one table.

use super::*;
use crate::DEFAULT_POLICY_YAML;

const FAST: &str = "local-smollm2";
const MIDDLE: &str = "groq-llama-70b";
const FRONTIER: &str = "claude-sonnet";

#[test]
fn every_branch_and_boundary() {
    let p = default_policy();
    let rows: Vec<(&str, R, &str, &str)> = vec![
        // Seed branch 1: simple && confidence > 0.9, strictly.
        ("simple 0.95", req(Simple, 0.95), "simple_confident", FAST),
        ("simple at 0.9 is not above 0.9", req(Simple, 0.9), "default", MIDDLE),
        ("simple at 0.9001", req(Simple, 0.9001), "simple_confident", FAST),
        ("simple 0.5", req(Simple, 0.5), "default", MIDDLE),
        ("moderate 0.99", req(Moderate, 0.99), "default", MIDDLE),
        // Seed branch 2: requires_context && turns > 5.
        ("context at 5 turns", req(Moderate, 0.8).context().turns(5), "default", MIDDLE),
        ("context at 6 turns", req(Moderate, 0.8).context().turns(6), "long_context", FRONTIER),
        ("no context at 6 turns", req(Moderate, 0.8).turns(6), "default", MIDDLE),
        ("branch 1 before branch 2", req(Simple, 0.95).context().turns(6), "simple_confident", FAST),
        // Seed branch 3: analytical && premium.
        ("analytical premium", req(Moderate, 0.8).category(Analytical).premium(), "premium_analytical", FRONTIER),
        ("analytical free", req(Moderate, 0.8).category(Analytical), "default", MIDDLE),
        ("creative premium", req(Moderate, 0.8).category(Creative).premium(), "default", MIDDLE),
        (
            "branch 2 before branch 3",
            req(Moderate, 0.8).context().turns(6).category(Analytical).premium(),
            "long_context",
            FRONTIER,
        ),
        // Seed branch 4: load > 0.8 && not complex.
        ("load at 0.8", req(Moderate, 0.8).load(0.8), "default", MIDDLE),
        ("load at 0.8001", req(Moderate, 0.8).load(0.8001), "high_load", FAST),
        ("load with simple unsure", req(Simple, 0.5).load(0.95), "high_load", FAST),
        (
            "branch 3 before branch 4",
            req(Moderate, 0.8).category(Analytical).premium().load(0.95),
            "premium_analytical",
            FRONTIER,
        ),
        ("complex under load", req(Complex, 0.9).load(0.95), "complex_frontier", FRONTIER),
        // Seed "when frontier models become essential".
        ("complex", req(Complex, 0.7), "complex_frontier", FRONTIER),
        ("complex creative", req(Complex, 0.99).category(Creative), "complex_frontier", FRONTIER),
        // Fast-tier conversation past 10 turns.
        ("fast conversation at 10 turns", req(Simple, 0.95).turns(10).on(Tier::Fast, FAST), "simple_confident", FAST),
        (
            "fast conversation at 11 turns",
            req(Simple, 0.95).turns(11).on(Tier::Fast, FAST),
            "fast_conversation_handoff",
            FRONTIER,
        ),
        ("middle conversation at 11 turns", req(Moderate, 0.8).turns(11).on(Tier::Middle, MIDDLE), "default", MIDDLE),
        // Spend limits.
        ("budget at 0.2", req(Moderate, 0.8).budget(0.2), "default", MIDDLE),
        ("budget at 0.1999", req(Moderate, 0.8).budget(0.1999), "budget_low", FAST),
        ("budget low keeps complex on frontier", req(Complex, 0.8).budget(0.1), "complex_frontier", FRONTIER),
        (
            "budget low beats the handoff",
            req(Simple, 0.95).turns(11).on(Tier::Fast, FAST).budget(0.1),
            "budget_low",
            FAST,
        ),
        ("budget at 0", req(Complex, 0.8).budget(0.0), "budget_exhausted", FAST),
        ("budget overspent", req(Moderate, 0.8).budget(-0.5), "budget_exhausted", FAST),
        ("budget just above 0", req(Complex, 0.8).budget(0.0001), "complex_frontier", FRONTIER),
        // Classifier failure.
        ("classifier down", req(Simple, 0.99).no_classifier(), "classifier_fallback", MIDDLE),
        ("classifier down, budget low", req(Simple, 0.99).no_classifier().budget(0.1), "budget_low", FAST),
        (
            "classifier down, long fast conversation",
            req(Simple, 0.99).no_classifier().turns(11).on(Tier::Fast, FAST),
            "fast_conversation_handoff",
            FRONTIER,
        ),
    ];
    let mut failures = Vec::new();
    for (name, r, rule, model) in rows {
        let d = decide(&p, &r);
        if d.rule_id != rule || d.model != model {
            failures
                .push(format!("{name}: expected {rule} -> {model}, got {} -> {} ({})", d.rule_id, d.model, d.reason));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn lowest_budget_over_all_scopes_decides() {
    let p = default_policy();
    let mut r = req(Moderate, 0.8).budget(0.9);
    r.0.system.as_mut().unwrap().budget_remaining.insert("tenant:acme/hour".into(), 0.05);
    assert_eq!(decide(&p, &r).rule_id, "budget_low");
}

#[test]
fn budget_exhausted_is_a_budget_downgrade_to_a_free_model() {
    let p = default_policy();
    let d = decide(&p, &req(Complex, 0.9).budget(0.0));
    assert_eq!(d.model, FAST);
    assert!(d.budget_downgrade);
    assert!(d.warnings.iter().any(|w| w.contains("budget exhausted")), "{:?}", d.warnings);
    // No paid model in the failover chain either: the backends must not spend on failover.
    assert!(d.fallbacks.is_empty(), "{:?}", d.fallbacks);
}

#[test]
fn policy_version_is_the_short_hash_of_the_text() {
    let d = decide(&default_policy(), &req(Simple, 0.95));
    assert_eq!(d.policy_version, crate::policy_version(DEFAULT_POLICY_YAML));
    assert_eq!(d.policy_version.len(), 12);
    assert!(d.policy_version.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn default_policy_loads_without_warnings() {
    let p = default_policy();
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    assert_eq!(p.rule_ids().last().map(String::as_str), Some("default"));
}

#[test]
fn example_cases_file_passes() {
    let cases = include_str!("../../../../config/policy-cases.yaml");
    // The real embedded config: the cases document the shipped defaults.
    let shipped = LocalPolicy::from_config(&Config::embedded_default().unwrap()).unwrap();
    let report = crate::run_policy_tests(&shipped, cases).unwrap();
    assert!(report.ok(), "{report}");
    assert!(report.total >= 20, "{report}");
}

#[test]
fn cases_report_a_readable_diff() {
    let cases = r#"
cases:
  - name: wrong on purpose
    input:
      classification: { complexity: simple, confidence: 0.95 }
    expect: { model: claude-sonnet, rule: simple_confident, tier: frontier }
  - name: right
    input:
      classification: { complexity: complex, confidence: 0.95 }
    expect: { model: claude-sonnet }
  - name: unknown requested model
    input:
      requested_model: gpt-17
    expect: { error: "not a declared model" }
"#;
    let report = crate::run_policy_tests(&default_policy(), cases).unwrap();
    assert_eq!((report.total, report.passed), (3, 2), "{report}");
    let text = report.to_string();
    assert!(text.contains("FAIL wrong on purpose"), "{text}");
    assert!(text.contains("- expected claude-sonnet"), "{text}");
    assert!(text.contains("+ actual   local-smollm2"), "{text}");
    assert!(text.contains("tier"), "{text}");
    assert!(!text.contains("  rule"), "rule matched, no diff expected: {text}");
    assert!(text.contains("3 cases, 2 passed, 1 failed"), "{text}");
}

#[test]
fn malformed_cases_file_is_an_error() {
    let err = crate::run_policy_tests(&default_policy(), "cases:\n  - name: x\n    expect: {}\n    bogus: 1\n");
    assert!(err.is_err());
}
