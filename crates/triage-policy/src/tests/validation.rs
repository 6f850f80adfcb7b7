//! Load-time validation: every error names the file, the rule and the reason.

use super::*;
use crate::Error;
use std::path::Path;

fn load(rules: &str) -> crate::Result<LocalPolicy> {
    let text = format!(
        "version: 1\nrules:\n{rules}\n  - id: default\n    when: \"true\"\n    tier: middle\n    reason: middle\n"
    );
    LocalPolicy::from_yaml(&lifecycle_cfg(), &text, Path::new("/etc/triage/policy.yaml"))
}

fn rule(id: &str, when: &str, target: &str) -> String {
    format!("  - id: {id}\n    when: '{when}'\n    {target}\n    reason: because\n")
}

/// Asserts an `InvalidRule` for `id` whose reason contains `needle`, and that the message
/// names the file.
fn rejects(res: crate::Result<LocalPolicy>, id: &str, needle: &str) {
    match res {
        Err(e @ Error::InvalidRule { .. }) => {
            let Error::InvalidRule { rule, reason, path } = &e else { unreachable!() };
            assert_eq!(rule, id, "{e}");
            assert!(reason.contains(needle), "expected `{needle}` in: {e}");
            assert_eq!(path, Path::new("/etc/triage/policy.yaml"));
            assert!(e.to_string().starts_with("/etc/triage/policy.yaml: rule `"), "{e}");
        }
        Err(e) => panic!("expected InvalidRule for `{id}`, got {e}"),
        Ok(_) => panic!("expected InvalidRule for `{id}`, got a policy"),
    }
}

#[test]
fn conditions_must_compile() {
    rejects(load(&rule("broken", "classification.complexity == ", "tier: fast")), "broken", "does not compile");
}

#[test]
fn unknown_variables_and_fields_are_rejected() {
    rejects(load(&rule("r", "request.size > 3", "tier: fast")), "r", "unknown variable `request`");
    rejects(
        load(&rule("r", "classification.colour == \"red\"", "tier: fast")),
        "r",
        "unknown field `classification.colour`",
    );
    // Hidden behind a short-circuit: evaluating a sample would never see it.
    rejects(load(&rule("r", "false && system.lod > 0.5", "tier: fast")), "r", "unknown field `system.lod`");
    rejects(load(&rule("r", "classification.confidence.value > 1.0", "tier: fast")), "r", "has none");
    rejects(load(&rule("r", "frobnicate(user.tier)", "tier: fast")), "r", "unknown function `frobnicate`");
    // Comprehension variables are local, and do not leak out of the macro.
    rejects(
        load(&rule("r", "system.unavailable.exists(m, m == \"x\") && m == \"y\"", "tier: fast")),
        "r",
        "unknown variable `m`",
    );
}

#[test]
fn the_whole_environment_is_usable() {
    let when = r#"system.unavailable.exists(m, m == "claude-sonnet") || "openai-gpt-4o" in system.unavailable || system.breakers["claude-sonnet"] == "open" || system.budget_by_scope["global/day"] < 0.5 || (has(classification.language) && classification.language.startsWith("es")) || size(conversation.model) > 0 && conversation.version != "" && conversation.tokens > 100000 || user.tier == "enterprise" && user.plan == user.tier && user.tenant == "acme" && user.revenue_per_conversation >= 12 || !classification.available && classification.failure == "classifier_timeout" || system.load > 1"#;
    let p = load(&rule("everything", when, "model: openai-gpt-4o")).unwrap();
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    // Missing map keys fail at run time: the rule is skipped with a warning, never an error.
    let d = decide(&p, &req(Moderate, 0.8));
    assert_eq!(d.rule_id, "default");
    let d = decide(&p, &req(Moderate, 0.8).down("claude-sonnet"));
    assert_eq!(d.rule_id, "everything");
}

#[test]
fn conditions_must_be_bools_that_can_succeed() {
    rejects(load(&rule("r", "classification.confidence", "tier: fast")), "r", "must be a bool");
    rejects(load(&rule("r", "classification.confidence > \"high\"", "tier: fast")), "r", "fails for every request");
}

#[test]
fn targets_must_be_declared() {
    rejects(load(&rule("r", "true", "model: gpt-17")), "r", "unknown model `gpt-17`");
    rejects(load(&rule("r", "true", "tier: turbo")), "r", "unknown tier `turbo`");
    rejects(
        load("  - id: r\n    when: 'true'\n    model: claude-sonnet\n    tier: fast\n    reason: x\n"),
        "r",
        "not both",
    );
    rejects(load("  - id: r\n    when: 'true'\n    reason: x\n"), "r", "a target is required");
}

#[test]
fn ids_must_be_unique_and_reasons_present() {
    let two =
        format!("{}{}", rule("twice", "user.premium", "tier: fast"), rule("twice", "!user.premium", "tier: fast"));
    rejects(load(&two), "twice", "duplicate id");
    rejects(load("  - id: r\n    when: 'true'\n    tier: fast\n    reason: ''\n"), "r", "reason");
}

#[test]
fn a_final_default_rule_is_required() {
    let cfg = cfg();
    let at = Path::new("/etc/triage/policy.yaml");
    let missing = "version: 1\nrules:\n  - id: only\n    when: 'true'\n    tier: fast\n    reason: x\n";
    rejects(LocalPolicy::from_yaml(&lifecycle_cfg(), missing, at), "default", "missing");
    let not_last = "version: 1\nrules:\n  - id: default\n    when: 'true'\n    tier: fast\n    reason: x\n  - id: after\n    when: 'true'\n    tier: fast\n    reason: x\n";
    rejects(LocalPolicy::from_yaml(&lifecycle_cfg(), not_last, at), "default", "last");
    let conditional = "version: 1\nrules:\n  - id: default\n    when: user.premium\n    tier: fast\n    reason: x\n";
    rejects(LocalPolicy::from_yaml(&cfg, conditional, at), "default", "must be \"true\"");
}

#[test]
fn the_format_is_strict() {
    let at = Path::new("p.yaml");
    let typo =
        "version: 1\nrules:\n  - id: default\n    when: 'true'\n    tier: middle\n    reason: x\n    handof: true\n";
    let err = LocalPolicy::from_yaml(&cfg(), typo, at).unwrap_err();
    assert!(matches!(err, Error::Load { .. }) && err.to_string().contains("handof"), "{err}");
    let v2 = "version: 2\nrules: []\n";
    let err = LocalPolicy::from_yaml(&cfg(), v2, at).unwrap_err();
    assert!(err.to_string().contains("version 2"), "{err}");
}

#[test]
fn shadowed_rules_and_lifecycle_targets_are_warnings() {
    let rules = [
        rule("premium", "user.premium", "tier: frontier"),
        rule("premium_again", "user.premium ", "tier: fast"),
        rule("old", "user.tier == \"old\"", "model: old-sonnet"),
        rule("legacy", "user.tier == \"legacy\"", "model: legacy-mini"),
        rule("always", "true", "tier: fast"),
        rule("never", "user.tier == \"x\"", "tier: fast"),
    ]
    .concat();
    let p = load(&rules).unwrap();
    let w = p.warnings().join("\n");
    assert!(w.contains("rule `premium_again` is shadowed: rule `premium` before it has the same condition"), "{w}");
    assert!(w.contains("rule `never` is shadowed: rule `always` before it always matches"), "{w}");
    assert!(w.contains("rule `default` is shadowed"), "{w}");
    assert!(w.contains("`old-sonnet` is retired"), "{w}");
    assert!(w.contains("`legacy-mini` is deprecated"), "{w}");
    assert!(w.contains("/etc/triage/policy.yaml"), "{w}");
    assert_eq!(
        crate::validate_policy(
            &lifecycle_cfg(),
            &format!(
                "version: 1\nrules:\n{rules}  - id: default\n    when: \"true\"\n    tier: middle\n    reason: m\n"
            ),
            Path::new("/etc/triage/policy.yaml")
        )
        .unwrap()
        .len(),
        5
    );
}

#[test]
fn a_bad_policy_file_names_its_path() {
    let err = LocalPolicy::new(&cfg(), Some(Path::new("/nonexistent/policy.yaml"))).unwrap_err();
    assert!(err.to_string().starts_with("/nonexistent/policy.yaml:"), "{err}");
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::FailedPrecondition);
}

#[test]
fn parser_panics_become_compile_errors() {
    for when in ["classification.complexity == ", "(user.premium", "user.premium &&", "[1, 2", "a.b.(c)"] {
        let res = load(&rule("r", when, "tier: fast"));
        assert!(matches!(res, Err(Error::InvalidRule { .. })), "{when}: {:?}", res.err());
    }
}
