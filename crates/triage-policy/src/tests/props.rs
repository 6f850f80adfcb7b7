//! Properties over arbitrary inputs: a declared, servable model for every input; no paid model
//! once the budget is gone; stickiness; determinism.

use super::*;
use crate::Error;
use proptest::prelude::*;
use std::sync::OnceLock;

/// Models of `lifecycle_cfg`, including a retired and a deprecated one.
const MODELS: [&str; 8] = [
    "local-smollm2",
    "groq-llama-70b",
    "openai-gpt-4o-mini",
    "claude-sonnet",
    "openai-gpt-4o",
    "old-sonnet",
    "legacy-mini",
    "free-middle",
];

fn policy() -> &'static LocalPolicy {
    static P: OnceLock<LocalPolicy> = OnceLock::new();
    P.get_or_init(|| LocalPolicy::from_config(&lifecycle_cfg()).unwrap())
}

fn budget() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![Just(None), Just(Some(0.0)), Just(Some(0.2)), Just(Some(-1.0)), (0.0f64..1.0).prop_map(Some)]
}

prop_compose! {
    fn request()(
        complexity in 0i32..4,
        category in 0i32..4,
        requires_context in any::<bool>(),
        confidence in 0.0f32..=1.0,
        classified in prop::bool::weighted(0.9),
        turns in 0u32..30,
        pinned in prop::option::of(0usize..MODELS.len()),
        premium in any::<bool>(),
        load in 0.0f64..1.2,
        budget in budget(),
        down in prop::collection::vec(0usize..MODELS.len(), 0..4),
        open in prop::collection::vec(0usize..MODELS.len(), 0..3),
        requested in prop::option::of(0usize..MODELS.len()),
    ) -> R {
        let mut r = req(Simple, confidence);
        if let Some(c) = r.0.classification.as_mut() {
            c.complexity = complexity;
            c.category = category;
            c.requires_context = requires_context;
        }
        if !classified {
            r = r.no_classifier();
        }
        r = r.turns(turns).load(load);
        if let Some(i) = pinned {
            let tier = policy().catalog().get(MODELS[i]).unwrap().tier;
            r = r.on(tier, MODELS[i]);
        }
        if premium {
            r = r.premium();
        }
        if let Some(b) = budget {
            r = r.budget(b);
        }
        for i in down {
            r = r.down(MODELS[i]);
        }
        for i in open {
            r = r.breaker(MODELS[i], pb::BreakerState::Open);
        }
        if let Some(i) = requested {
            r = r.requested(MODELS[i]);
        }
        r
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_input_gets_a_declared_servable_model(r in request()) {
        let p = policy();
        match p.decide_now(&r.0) {
            Ok(d) => {
                let catalog = p.catalog();
                let m = catalog.get(&d.model);
                prop_assert!(m.is_some(), "undeclared model {}", d.model);
                let m = m.unwrap();
                prop_assert!(!m.is_retired(), "retired model {}", d.model);
                prop_assert_eq!(m.tier.to_pb() as i32, d.tier);
                let sys = r.0.system.as_ref().unwrap();
                prop_assert!(!sys.unavailable.contains(&d.model), "unavailable model {}", d.model);
                prop_assert!(sys.breakers.get(&d.model) != Some(&(pb::BreakerState::Open as i32)));
                for f in &d.fallbacks {
                    prop_assert!(p.catalog().get(f).is_some_and(|m| !m.is_retired()), "fallback {f}");
                    prop_assert!(f != &d.model);
                }
                prop_assert!(!d.rule_id.is_empty() && !d.reason.is_empty());
            }
            // Refusing is allowed only when every candidate is down; never another error.
            Err(Error::NoModel(_)) => {
                let sys = r.0.system.as_ref().unwrap();
                prop_assert!(!sys.unavailable.is_empty() || !sys.breakers.is_empty());
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn an_exhausted_budget_never_chooses_a_paid_model(r in request()) {
        let r = r.budget(0.0);
        let p = policy();
        if let Ok(d) = p.decide_now(&r.0) {
            prop_assert!(p.catalog().get(&d.model).unwrap().price.is_free(), "paid model {}", d.model);
            prop_assert!(d.budget_downgrade);
            for f in &d.fallbacks {
                prop_assert!(p.catalog().get(f).unwrap().price.is_free(), "paid fallback {f}");
            }
        }
    }

    #[test]
    fn conversations_only_move_up_unless_forced(r in request()) {
        let p = policy();
        let conv = r.0.conversation.clone().unwrap();
        if let (Ok(d), Some(ct)) = (p.decide_now(&r.0), Tier::from_pb(conv.tier)) {
            let failed_over = d.warnings.iter().any(|w| w.contains("failed over") || w.contains("zero-price"));
            if !d.budget_downgrade && !failed_over {
                prop_assert!(tier_of(&d) >= ct, "{:?} moved down from {ct}: {}", d.model, d.reason);
            }
            prop_assert_eq!(d.escalation && d.rule_id != "fast_conversation_handoff", tier_of(&d) > ct && d.rule_id != "fast_conversation_handoff");
        }
    }

    #[test]
    fn decisions_are_deterministic(r in request()) {
        let p = policy();
        let a = p.decide_now(&r.0).map_err(|e| e.to_string());
        let b = p.decide_now(&r.0).map_err(|e| e.to_string());
        prop_assert_eq!(a, b);
    }
}
