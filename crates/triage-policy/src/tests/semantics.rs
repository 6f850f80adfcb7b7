//! The house rules applied after the matching rule: stickiness, escalation, budget
//! downgrades, caller pins, lifecycles and failover.

use super::*;
use crate::{Error, Policy};
use pb::BreakerState;

#[test]
fn a_conversation_never_moves_down_and_keeps_its_pinned_model_and_version() {
    let p = default_policy();
    let d = decide(&p, &req(Simple, 0.99).turns(4).on(Tier::Frontier, "openai-gpt-4o"));
    assert_eq!(d.rule_id, "simple_confident");
    assert_eq!((d.model.as_str(), tier_of(&d)), ("openai-gpt-4o", Tier::Frontier));
    assert_eq!(d.model_version, "gpt-4o-2024-08-06");
    assert!(!d.escalation && !d.budget_downgrade);
    assert!(d.reason.contains("never moves down"), "{}", d.reason);
}

#[test]
fn same_tier_keeps_the_pinned_model_even_when_the_rule_names_another() {
    let p = default_policy();
    let d = decide(&p, &req(Complex, 0.9).on(Tier::Frontier, "openai-gpt-4o"));
    assert_eq!((d.rule_id.as_str(), d.model.as_str()), ("complex_frontier", "openai-gpt-4o"));
    assert_eq!(d.model_version, "gpt-4o-2024-08-06");
    assert!(!d.escalation);
}

#[test]
fn conversation_tier_is_taken_from_its_model_when_not_sent() {
    let p = default_policy();
    let mut r = req(Simple, 0.99).on(Tier::Frontier, "claude-sonnet");
    r.0.conversation.as_mut().unwrap().tier = pb::Tier::Unspecified as i32;
    assert_eq!(decide(&p, &r).model, "claude-sonnet");
}

#[test]
fn escalation_goes_up_with_the_catalog_version() {
    let p = default_policy();
    let d = decide(&p, &req(Complex, 0.9).turns(3).on(Tier::Middle, "groq-llama-70b"));
    assert_eq!((d.model.as_str(), tier_of(&d)), ("claude-sonnet", Tier::Frontier));
    assert!(d.escalation);
    assert_eq!(d.model_version, "claude-3-5-sonnet-20241022");
    // A new conversation has nothing to escalate from.
    assert!(!decide(&p, &req(Complex, 0.9)).escalation);
}

#[test]
fn the_fast_tier_handoff_is_an_escalation() {
    let d = decide(&default_policy(), &req(Simple, 0.99).turns(11).on(Tier::Fast, "local-smollm2"));
    assert_eq!(d.rule_id, "fast_conversation_handoff");
    assert!(d.escalation);
}

#[test]
fn classifier_failure_keeps_a_frontier_conversation_on_frontier() {
    let d = decide(&default_policy(), &req(Simple, 0.99).no_classifier().turns(4).on(Tier::Frontier, "claude-sonnet"));
    assert_eq!((d.rule_id.as_str(), d.model.as_str()), ("classifier_fallback", "claude-sonnet"));
}

#[test]
fn a_spend_limit_may_move_a_conversation_down() {
    let p = default_policy();
    let d = decide(&p, &req(Moderate, 0.8).turns(4).on(Tier::Frontier, "claude-sonnet").budget(0.1));
    assert_eq!((d.rule_id.as_str(), d.model.as_str()), ("budget_low", "local-smollm2"));
    assert!(d.budget_downgrade && !d.escalation);
    assert!(d.warnings.iter().any(|w| w.contains("spend limit")), "{:?}", d.warnings);
    // On a new conversation the same rule is no downgrade of anything.
    assert!(!decide(&p, &req(Moderate, 0.8).budget(0.1)).budget_downgrade);
    // Exhausted: a frontier conversation goes to a free model.
    let d = decide(&p, &req(Complex, 0.8).turns(4).on(Tier::Frontier, "claude-sonnet").budget(0.0));
    assert_eq!(d.model, "local-smollm2");
    assert!(d.budget_downgrade);
}

#[test]
fn budget_exhausted_walks_to_a_free_model_when_the_fast_tier_is_paid() {
    let mut c = cfg();
    let mut mixtral = c.models["groq-llama-70b"].clone();
    mixtral.tier = triage_core::Tier::Fast;
    mixtral.fallbacks = vec!["local-smollm2".into()];
    c.models.insert("groq-mixtral".into(), mixtral.clone());
    c.tiers.fast = "groq-mixtral".into();
    let p = LocalPolicy::from_config(&c).unwrap();
    let d = decide(&p, &req(Simple, 0.99).budget(0.0));
    assert_eq!(d.model, "local-smollm2");
    assert!(d.reason.contains("not zero-price"), "{}", d.reason);
    // With no free model in the chain, any declared free model serves.
    mixtral.fallbacks = vec![];
    c.models.insert("groq-mixtral".into(), mixtral);
    let p = LocalPolicy::from_config(&c).unwrap();
    assert_eq!(decide(&p, &req(Simple, 0.99).budget(0.0)).model, "local-smollm2");
    // And when the only free model is down, the request is refused rather than paid for.
    let err = p.decide_now(&req(Simple, 0.99).budget(0.0).down("local-smollm2").0).unwrap_err();
    assert!(matches!(err, Error::NoModel(_)), "{err}");
}

#[test]
fn requested_model_pins_a_declared_model() {
    let p = default_policy();
    let d = decide(&p, &req(Simple, 0.99).requested("openai-gpt-4o"));
    assert_eq!((d.rule_id.as_str(), d.model.as_str()), (crate::REQUESTED_MODEL_RULE, "openai-gpt-4o"));
    let err = p.decide_now(&req(Simple, 0.99).requested("gpt-17").0).unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err}");
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::InvalidArgument);
}

#[test]
fn requested_model_yields_to_an_exhausted_budget() {
    let d = decide(&default_policy(), &req(Simple, 0.99).requested("claude-sonnet").budget(0.0));
    assert_eq!((d.rule_id.as_str(), d.model.as_str()), ("budget_exhausted", "local-smollm2"));
    assert!(d.warnings.iter().any(|w| w.contains("ignored")), "{:?}", d.warnings);
}

#[test]
fn retired_models_resolve_to_their_replacement_and_deprecated_ones_warn() {
    let p = LocalPolicy::from_config(&lifecycle_cfg()).unwrap();
    let d = decide(&p, &req(Simple, 0.99).requested("old-sonnet"));
    assert_eq!(d.model, "claude-sonnet");
    assert!(d.warnings.iter().any(|w| w.contains("retired")), "{:?}", d.warnings);
    // A conversation pinned to a retired model moves to the replacement's version.
    let d = decide(&p, &req(Complex, 0.9).turns(3).on(Tier::Frontier, "old-sonnet"));
    assert_eq!((d.model.as_str(), d.model_version.as_str()), ("claude-sonnet", "claude-3-5-sonnet-20241022"));
    let d = decide(&p, &req(Moderate, 0.8).requested("legacy-mini"));
    assert_eq!(d.model, "legacy-mini");
    assert!(d.warnings.iter().any(|w| w.contains("deprecated") && w.contains("2099-01-01")), "{:?}", d.warnings);
}

#[test]
fn unavailable_targets_fail_over_along_declared_fallbacks_only() {
    let p = default_policy();
    let d = decide(&p, &req(Complex, 0.9));
    assert_eq!(d.fallbacks, ["openai-gpt-4o", "groq-llama-70b", "local-smollm2", "openai-gpt-4o-mini"]);
    let d = decide(&p, &req(Complex, 0.9).down("claude-sonnet"));
    assert_eq!(d.model, "openai-gpt-4o");
    assert!(d.reason.contains("failed over to `openai-gpt-4o`"), "{}", d.reason);
    assert!(d.warnings.iter().any(|w| w.contains("claude-sonnet` unavailable")), "{:?}", d.warnings);
    assert_eq!(d.fallbacks, ["groq-llama-70b", "local-smollm2", "openai-gpt-4o-mini"]);
    let d = decide(&p, &req(Complex, 0.9).breaker("claude-sonnet", BreakerState::Open).down("openai-gpt-4o"));
    assert_eq!(d.model, "groq-llama-70b");
    assert!(d.reason.contains("breaker open"), "{}", d.reason);
    assert_eq!(d.fallbacks, ["local-smollm2", "openai-gpt-4o-mini"]);
    // Half-open lets the probe through.
    assert_eq!(decide(&p, &req(Complex, 0.9).breaker("claude-sonnet", BreakerState::HalfOpen)).model, "claude-sonnet");
    // Every declared candidate down: refused, never an undeclared model.
    let r = req(Moderate, 0.8).down("groq-llama-70b").down("openai-gpt-4o-mini").down("local-smollm2");
    let err = p.decide_now(&r.0).unwrap_err();
    assert!(matches!(err, Error::NoModel(_)) && err.is_retryable(), "{err}");
}

#[test]
fn a_pinned_model_that_is_down_fails_over_too() {
    let d = decide(
        &default_policy(),
        &req(Moderate, 0.8).turns(3).on(Tier::Middle, "openai-gpt-4o-mini").down("openai-gpt-4o-mini"),
    );
    assert_eq!(d.model, "local-smollm2");
    assert_eq!(d.model_version, "smollm2-135m-instruct-q4_1", "a failover never claims the pinned version");
}

#[test]
fn decisions_are_deterministic() {
    let p = default_policy();
    let r = req(Moderate, 0.8).context().turns(7).down("claude-sonnet").budget(0.5);
    assert_eq!(decide(&p, &r), decide(&p, &r));
}

#[tokio::test]
async fn the_trait_and_the_sync_path_agree() {
    let p = std::sync::Arc::new(default_policy());
    let dynp: std::sync::Arc<dyn Policy> = p.clone();
    let r = req(Complex, 0.9);
    assert_eq!(dynp.decide(r.0.clone()).await.unwrap(), p.decide_now(&r.0).unwrap());
}
