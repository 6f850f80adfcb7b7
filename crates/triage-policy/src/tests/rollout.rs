//! Rolling version swaps and models or policies applied at run time.

use super::*;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The test config with `claude-sonnet` moving from its pinned version to `v-next`.
fn swapping(drain_until: SystemTime, canary_weight: u8) -> Config {
    let mut c = cfg();
    let m = c.models.get_mut("claude-sonnet").unwrap();
    let previous = triage_core::config::PreviousVersion { version: m.version.clone(), provider: m.provider.clone() };
    m.version = "claude-next".into();
    m.rollout = Some(triage_core::config::Rollout { previous, drain_until, canary_weight });
    c
}

fn frontier_turn(conv: &str, pinned_version: Option<&str>) -> R {
    let mut r = req(Complex, 0.9).turns(if pinned_version.is_some() { 4 } else { 0 });
    if let Some(v) = pinned_version {
        r = r.on(Tier::Frontier, "claude-sonnet");
        r.conv().model_version = v.into();
    }
    r.conv().conversation_id = conv.into();
    r
}

#[test]
fn a_running_conversation_finishes_on_its_version_while_new_ones_take_the_new_one() {
    let p = default_policy();
    p.apply_models(&swapping(SystemTime::now() + Duration::from_secs(600), 100)).unwrap();
    let old = decide(&p, &frontier_turn("running", Some("claude-3-5-sonnet-20241022")));
    assert_eq!((old.model.as_str(), old.model_version.as_str()), ("claude-sonnet", "claude-3-5-sonnet-20241022"));
    let new = decide(&p, &frontier_turn("fresh", None));
    assert_eq!(new.model_version, "claude-next");
}

#[test]
fn past_the_drain_deadline_the_conversation_moves_with_a_warning() {
    let p = default_policy();
    p.apply_models(&swapping(SystemTime::now() - Duration::from_secs(1), 100)).unwrap();
    let d = decide(&p, &frontier_turn("running", Some("claude-3-5-sonnet-20241022")));
    assert_eq!(d.model_version, "claude-next");
    assert!(d.warnings.iter().any(|w| w.contains("finished draining")), "{:?}", d.warnings);
}

/// Mid-swap, each version's breaker is reported as `model@version`, and the model's own key
/// holds the better of the two (backends `breaker_states`).
fn with_version_breakers(mut r: R, new: pb::BreakerState, old: pb::BreakerState) -> R {
    let better = if new == pb::BreakerState::Closed || old == pb::BreakerState::Closed {
        pb::BreakerState::Closed
    } else if new == pb::BreakerState::HalfOpen || old == pb::BreakerState::HalfOpen {
        pb::BreakerState::HalfOpen
    } else {
        pb::BreakerState::Open
    };
    r = r.breaker("claude-sonnet", better);
    r = r.breaker("claude-sonnet@claude-next", new);
    r.breaker("claude-sonnet@claude-3-5-sonnet-20241022", old)
}

#[test]
fn a_version_whose_breaker_opens_mid_swap_hands_its_conversations_to_the_other_version() {
    use pb::BreakerState::{Closed, Open};
    let p = default_policy();
    p.apply_models(&swapping(SystemTime::now() + Duration::from_secs(600), 100)).unwrap();

    // The new version fails: new conversations and those already on it go to the draining
    // version of the same model, not to a fallback model.
    let fresh = decide(&p, &with_version_breakers(frontier_turn("fresh", None), Open, Closed));
    assert_eq!((fresh.model.as_str(), fresh.model_version.as_str()), ("claude-sonnet", "claude-3-5-sonnet-20241022"));
    assert!(fresh.warnings.iter().any(|w| w.contains("breaker open")), "{:?}", fresh.warnings);
    let on_new = decide(&p, &with_version_breakers(frontier_turn("on-new", Some("claude-next")), Open, Closed));
    assert_eq!(on_new.model_version, "claude-3-5-sonnet-20241022");
    assert!(on_new.warnings.iter().any(|w| w.contains("conversation moved")), "{:?}", on_new.warnings);
    let on_old =
        decide(&p, &with_version_breakers(frontier_turn("on-old", Some("claude-3-5-sonnet-20241022")), Open, Closed));
    assert_eq!(on_old.model_version, "claude-3-5-sonnet-20241022");
    assert!(on_old.warnings.is_empty(), "{:?}", on_old.warnings);

    // The draining version fails: its conversations move to the new one.
    let moved =
        decide(&p, &with_version_breakers(frontier_turn("on-old", Some("claude-3-5-sonnet-20241022")), Closed, Open));
    assert_eq!((moved.model.as_str(), moved.model_version.as_str()), ("claude-sonnet", "claude-next"));

    // Both fail: the model is down and its declared fallback serves.
    let both = decide(&p, &with_version_breakers(frontier_turn("fresh", None), Open, Open));
    assert_ne!(both.model, "claude-sonnet", "{both:?}");

    // After the drain deadline only the new version is served: nothing to hand over to.
    p.apply_models(&swapping(SystemTime::now() - Duration::from_secs(1), 100)).unwrap();
    let late = decide(&p, &with_version_breakers(frontier_turn("fresh", None), Closed, Open));
    assert_eq!(late.model_version, "claude-next");
}

#[test]
fn canary_weight_splits_new_conversations_stably() {
    let p = default_policy();
    p.apply_models(&swapping(SystemTime::now() + Duration::from_secs(600), 25)).unwrap();
    let versions: Vec<String> =
        (0..400).map(|i| decide(&p, &frontier_turn(&format!("c{i}"), None)).model_version).collect();
    let on_new = versions.iter().filter(|v| *v == "claude-next").count();
    assert!((60..=140).contains(&on_new), "{on_new} of 400 on the canary at weight 25");
    let again: Vec<String> =
        (0..400).map(|i| decide(&p, &frontier_turn(&format!("c{i}"), None)).model_version).collect();
    assert_eq!(versions, again, "a conversation's bucket never changes");
}

#[test]
fn a_model_set_that_breaks_the_policy_is_refused_and_nothing_changes() {
    let p = default_policy();
    let before = p.catalog();
    let mut c = cfg();
    // The default policy's rules target tiers; a policy naming a model that disappears fails.
    let text = "version: 1\nrules:\n  - id: default\n    when: 'true'\n    model: openai-gpt-4o\n    reason: pinned\n";
    p.apply_policy(text, Path::new("<operator>")).unwrap();
    c.models.remove("openai-gpt-4o");
    for m in c.models.values_mut() {
        m.fallbacks.retain(|f| f != "openai-gpt-4o");
    }
    let err = p.apply_models(&c).unwrap_err();
    assert!(err.to_string().contains("openai-gpt-4o"), "{err}");
    assert_eq!(*p.catalog(), *before, "the models in force are unchanged");
    let d = decide(&p, &req(Simple, 0.99));
    assert_eq!((d.model.as_str(), d.rule_id.as_str()), ("openai-gpt-4o", "default"));
}

#[test]
fn an_invalid_policy_is_refused_and_the_last_good_one_keeps_serving() {
    let p = default_policy();
    let version = p.policy_version();
    let err = p.apply_policy("version: 1\nrules:\n  - id: x\n    when: 'nope('\n    tier: fast\n", Path::new("<op>"));
    assert!(err.is_err());
    assert_eq!(p.policy_version(), version);
    assert_eq!(decide(&p, &req(Simple, 0.99)).rule_id, "simple_confident");
}
