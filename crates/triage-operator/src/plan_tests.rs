use super::*;
use crate::crd::{LifecycleSpec, LifecycleState, PolicyRuleSpec, PriceSpec, ProviderKind, SecretRefSpec, TierSpec};
use proptest::prelude::*;

fn base() -> Config {
    Config::embedded_default().unwrap()
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn spec(model_id: &str) -> LlmModelSpec {
    LlmModelSpec {
        provider: ProviderSpec {
            kind: ProviderKind::Openai,
            base_url: Some("https://api.openai.com/v1".into()),
            model_id: Some(model_id.into()),
            api_key: Some(SecretRefSpec { env: Some("OPENAI_API_KEY".into()), file: None }),
            api_version: None,
            gguf: None,
            seed: None,
            model_path: None,
        },
        version: model_id.into(),
        tier: TierSpec::Middle,
        price: PriceSpec { input_per_mtok: 150_000, output_per_mtok: 600_000, per_request: 0 },
        context_window: 128_000,
        prompt_turns: None,
        fallbacks: vec!["local-smollm2".into()],
        lifecycle: LifecycleSpec::default(),
        canary_weight: 100,
        drain_deadline: "30m".into(),
        timeout: None,
        ttft_timeout: None,
    }
}

fn input(name: &str, generation: i64, spec: LlmModelSpec, status: Option<LlmModelStatus>) -> ModelInput {
    ModelInput { name: name.into(), generation, spec, status }
}

fn served(version: &str) -> LlmModelStatus {
    LlmModelStatus {
        served_version: Some(version.into()),
        served_provider: Some(spec(version).provider),
        ..Default::default()
    }
}

#[test]
fn first_apply_serves_the_spec_without_a_drain() {
    let s = serving(&spec("v1"), None, t0()).unwrap();
    assert_eq!(s.version, "v1");
    assert!(s.previous.is_none());
}

#[test]
fn version_change_drains_the_served_version() {
    let s = serving(&spec("v2"), Some(&served("v1")), t0()).unwrap();
    let (prev, until) = s.previous.unwrap();
    assert_eq!(prev.version, "v1");
    assert_eq!(prev.provider.model_id.as_deref(), Some("v1"));
    assert_eq!(until, t0() + Duration::from_secs(1800));
}

#[test]
fn drain_is_kept_until_its_deadline_then_dropped() {
    let st = model_status(
        None,
        2,
        &Verdict::Accepted,
        Some(&serving(&spec("v2"), Some(&served("v1")), t0()).unwrap()),
        t0(),
    );
    assert_eq!(st.previous_version.as_ref().unwrap().version, "v1");
    let mid = serving(&spec("v2"), Some(&st), t0() + Duration::from_secs(600)).unwrap();
    assert_eq!(mid.previous.as_ref().unwrap().1, t0() + Duration::from_secs(1800));
    assert_eq!(next_requeue([&mid].into_iter(), t0() + Duration::from_secs(600)), Some(Duration::from_secs(1200)));
    let after = serving(&spec("v2"), Some(&st), t0() + Duration::from_secs(1800)).unwrap();
    assert!(after.previous.is_none());
    let st2 = model_status(Some(&st), 2, &Verdict::Accepted, Some(&after), t0() + Duration::from_secs(1800));
    assert!(st2.previous_version.is_none() && st2.drain_until.is_none());
}

#[test]
fn zero_drain_swaps_at_once_and_bad_durations_are_invalid() {
    let mut s = spec("v2");
    s.drain_deadline = "0s".into();
    assert!(serving(&s, Some(&served("v1")), t0()).unwrap().previous.is_none());
    s.drain_deadline = "soon".into();
    assert!(serving(&s, Some(&served("v1")), t0()).unwrap_err().contains("drainDeadline"));
}

#[test]
fn accepted_resources_overlay_the_file_models() {
    let p = plan_models(
        &base(),
        &[input("gpt-b", 3, spec("b"), None), input("gpt-a", 1, spec("a"), None)],
        &BTreeMap::new(),
        t0(),
    );
    assert_eq!(p.verdicts.get("gpt-a"), Some(&Verdict::Accepted));
    assert!(p.models.contains_key("gpt-a") && p.models.contains_key("local-smollm2"));
    assert!(p.revision.starts_with("gpt-a@1,gpt-b@3 #"), "{}", p.revision);
    assert_eq!(p.accepted.len(), 2);
    assert_eq!(p.requeue_after, None);
    let yaml = models_yaml(&p.models).unwrap();
    let set: ModelSet = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(set.models.len(), p.models.len());
}

#[test]
fn an_invalid_resource_is_left_out_and_the_others_apply() {
    let mut bad = spec("bad");
    bad.fallbacks = vec!["no-such-model".into()];
    let p =
        plan_models(&base(), &[input("good", 1, spec("g"), None), input("bad", 1, bad, None)], &BTreeMap::new(), t0());
    match p.verdicts.get("bad") {
        Some(Verdict::Invalid(m)) => {
            assert!(m.contains("models.bad.fallbacks[0]") && m.contains("no-such-model"), "{m}")
        }
        v => panic!("{v:?}"),
    }
    assert!(!p.models.contains_key("bad"));
    assert!(p.models.contains_key("good"));
    assert!(!p.revision.contains("bad@"));
}

#[test]
fn dependents_of_an_invalid_resource_fall_with_it() {
    let mut bad = spec("bad");
    bad.context_window = 0;
    let mut dependent = spec("dep");
    dependent.fallbacks = vec!["bad".into()];
    let p =
        plan_models(&base(), &[input("bad", 1, bad, None), input("dep", 1, dependent, None)], &BTreeMap::new(), t0());
    assert!(matches!(p.verdicts.get("bad"), Some(Verdict::Invalid(m)) if m.contains("context_window")));
    assert!(matches!(p.verdicts.get("dep"), Some(Verdict::Invalid(m)) if m.contains("unknown model `bad`")));
    assert!(p.accepted.is_empty());
}

#[test]
fn an_invalid_edit_keeps_the_last_good_form_serving() {
    let good = plan_models(&base(), &[input("m", 1, spec("v1"), None)], &BTreeMap::new(), t0());
    let mut edit = spec("v2");
    edit.provider.model_id = None;
    let p = plan_models(&base(), &[input("m", 2, edit, Some(served("v1")))], &good.accepted, t0());
    assert!(matches!(p.verdicts.get("m"), Some(Verdict::Invalid(_))));
    assert_eq!(p.models["m"].version, "v1");
    assert!(p.revision.starts_with("m@1 #"));
    assert!(p.accepted.is_empty());
    let st = model_status(Some(&served("v1")), 2, &p.verdicts["m"], p.serving.get("m"), t0());
    assert_eq!(st.served_version.as_deref(), Some("v1"));
    assert_eq!(st.conditions[0].status, "False");
    assert_eq!(st.conditions[0].reason, "Invalid");
    assert_eq!(st.observed_generation, Some(2));
}

#[test]
fn overriding_a_tier_default_with_another_tier_is_blamed_on_the_resource() {
    let mut s = spec("x");
    s.tier = TierSpec::Frontier;
    s.fallbacks.clear();
    let p = plan_models(&base(), &[input("groq-llama-70b", 1, s, None)], &BTreeMap::new(), t0());
    assert!(matches!(p.verdicts.get("groq-llama-70b"), Some(Verdict::Invalid(m)) if m.starts_with("tiers.middle")));
    assert_eq!(p.models["groq-llama-70b"].version, "llama-3.3-70b-versatile");
}

#[test]
fn retired_without_replacement_is_invalid() {
    let mut s = spec("x");
    s.lifecycle = LifecycleSpec { state: LifecycleState::Retired, replacement: None, sunset: None };
    let p = plan_models(&base(), &[input("old", 1, s, None)], &BTreeMap::new(), t0());
    assert!(matches!(p.verdicts.get("old"), Some(Verdict::Invalid(m)) if m.contains("replacement")));
}

#[test]
fn taking_over_a_file_model_with_a_new_version_drains_the_file_version() {
    let mut s = spec("llama-4-70b");
    s.fallbacks.clear();
    let p = plan_models(&base(), &[input("groq-llama-70b", 1, s.clone(), None)], &BTreeMap::new(), t0());
    let r = p.models["groq-llama-70b"].rollout.as_ref().unwrap();
    assert_eq!(r.previous.version, "llama-3.3-70b-versatile");
    assert_eq!(r.previous.provider.provider_model_id(), "llama-3.3-70b-versatile");
    s.version = "llama-3.3-70b-versatile".into();
    let p = plan_models(&base(), &[input("groq-llama-70b", 1, s, None)], &BTreeMap::new(), t0());
    assert!(p.models["groq-llama-70b"].rollout.is_none());
}

#[test]
fn a_rollout_is_pushed_and_requeued_at_its_deadline() {
    let p = plan_models(&base(), &[input("m", 2, spec("v2"), Some(served("v1")))], &BTreeMap::new(), t0());
    let r = p.models["m"].rollout.as_ref().unwrap();
    assert_eq!(r.previous.version, "v1");
    assert_eq!(r.canary_weight, 100);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(1800)));
}

#[test]
fn transition_time_changes_only_when_the_status_flips() {
    let c1 = accepted_condition(&[], true, "Applied", "a".into(), 1, t0());
    let later = t0() + Duration::from_secs(60);
    let c2 = accepted_condition(std::slice::from_ref(&c1), true, "Applied", "b".into(), 2, later);
    assert_eq!(c2.last_transition_time, c1.last_transition_time);
    let c3 = accepted_condition(&[c2], false, "Invalid", "c".into(), 3, later);
    assert_eq!(c3.last_transition_time, format_time(later));
}

fn rule(id: &str, when: &str, model: Option<&str>, tier: Option<TierSpec>) -> PolicyRuleSpec {
    PolicyRuleSpec {
        id: id.into(),
        when: when.into(),
        model: model.map(Into::into),
        tier,
        reason: "because".into(),
        handoff: false,
        budget_downgrade: false,
        free_only: false,
    }
}

fn policy(name: &str, created: &str, rules: Vec<PolicyRuleSpec>) -> PolicyInput {
    PolicyInput {
        name: name.into(),
        generation: 4,
        created: created.into(),
        spec: RoutingPolicySpec { version: 1, rules },
        status: None,
    }
}

#[test]
fn the_oldest_policy_serves_and_is_validated_against_the_models() {
    let ok = vec![
        rule("premium", "user.premium", Some("claude-sonnet"), None),
        rule("default", "true", None, Some(TierSpec::Middle)),
    ];
    let p = plan_policy(
        &base(),
        Some("ignored while a RoutingPolicy exists"),
        &[policy("b", "2026-01-02T00:00:00Z", ok.clone()), policy("a", "2026-01-01T00:00:00Z", ok)],
    );
    assert_eq!(p.push.as_ref().unwrap().1, "a@4");
    assert!(p.verdicts["a"].0);
    assert_eq!(p.verdicts["b"].1, "Superseded");

    let bad =
        vec![rule("x", "true", Some("no-such-model"), None), rule("default", "true", None, Some(TierSpec::Middle))];
    let p = plan_policy(&base(), Some("base"), &[policy("a", "2026-01-01T00:00:00Z", bad)]);
    assert!(p.push.is_none(), "an invalid RoutingPolicy leaves the last good one, not the base");
    assert_eq!(p.verdicts["a"].1, "Invalid");
    assert!(p.verdicts["a"].2.contains("no-such-model"), "{}", p.verdicts["a"].2);
    let st = policy_status(None, 4, &p.verdicts["a"], t0());
    assert_eq!(st.conditions[0].status, "False");
}

#[test]
fn with_no_routing_policy_the_base_policy_serves_again() {
    let p = plan_policy(&base(), Some("version: 1\nrules: []\n"), &[]);
    assert_eq!(p.push, Some(("version: 1\nrules: []\n".to_string(), BASE_POLICY_REVISION.to_string())));
    assert!(p.verdicts.is_empty());
    // An unreadable base policy reverts nothing.
    assert_eq!(plan_policy(&base(), None, &[]).push, None);
}

proptest! {
    // Any sequence of version edits and clock steps keeps a coherent rollout: the draining
    // version is never the served one, a drain never outlives its deadline, the pushed model
    // always validates, and the requeue lands on the drain's end.
    #[test]
    fn rollouts_stay_coherent(steps in prop::collection::vec((0u8..4, 0u64..4000), 1..20), drain_s in 0u64..3600) {
        let base = base();
        let mut status: Option<LlmModelStatus> = None;
        let mut now = t0();
        for (generation, (v, dt)) in (1..).zip(steps) {
            now += Duration::from_secs(dt);
            let mut s = spec(&format!("v{v}"));
            s.drain_deadline = format!("{drain_s}s");
            let p = plan_models(&base, &[input("m", generation, s, status.clone())], &BTreeMap::new(), now);
            prop_assert_eq!(p.verdicts.get("m"), Some(&Verdict::Accepted));
            let sv = &p.serving["m"];
            let st = model_status(status.as_ref(), generation, &p.verdicts["m"], Some(sv), now);
            if let Some((prev, until)) = &sv.previous {
                prop_assert_ne!(&prev.version, &sv.version);
                prop_assert!(*until > now && *until <= now + Duration::from_secs(drain_s));
                prop_assert_eq!(p.requeue_after, until.duration_since(now).ok());
                prop_assert!(p.models["m"].rollout.is_some());
            } else {
                prop_assert!(p.models["m"].rollout.is_none());
                prop_assert!(st.previous_version.is_none());
            }
            prop_assert_eq!(st.served_version.clone(), Some(format!("v{v}")));
            status = Some(st);
        }
    }
}
