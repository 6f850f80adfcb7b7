use super::*;
use proptest::prelude::*;
use std::time::Duration;

fn spec(rollout: Option<RolloutSpec>) -> ModelSpec {
    ModelSpec {
        name: "claude-sonnet".into(),
        tier: Tier::Frontier,
        provider: "anthropic",
        provider_model_id: "v2-id".into(),
        version: "v2".into(),
        price: Price::default(),
        prompt_turns: None,
        context_window: 1000,
        fallbacks: vec![],
        lifecycle: Lifecycle::Active,
        rollout,
    }
}

fn draining(until: SystemTime, weight: u8) -> Option<RolloutSpec> {
    Some(RolloutSpec {
        previous_version: "v1".into(),
        previous_provider_model_id: "v1-id".into(),
        drain_until: until,
        canary_weight: weight,
    })
}

#[test]
fn running_conversations_finish_on_the_draining_version() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let m = spec(draining(now + Duration::from_secs(60), 100));
    assert_eq!(m.version_for("v1", "c1", now), VersionChoice { version: "v1".into(), moved_from: None });
    assert_eq!(m.version_for("v2", "c1", now).version, "v2");
    // New conversations all go to the new version at weight 100.
    assert_eq!(m.version_for("", "c1", now).version, "v2");
    assert!(m.serves_version("v1", now));
}

#[test]
fn after_the_deadline_pinned_conversations_move_with_a_handoff() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let m = spec(draining(now, 100));
    assert_eq!(m.version_for("v1", "c1", now), VersionChoice { version: "v2".into(), moved_from: Some("v1".into()) });
    assert!(!m.serves_version("v1", now));
    // A version that was never declared also moves.
    let plain = spec(None);
    assert_eq!(plain.version_for("v0", "c", now).moved_from.as_deref(), Some("v0"));
}

#[test]
fn weight_zero_keeps_new_conversations_on_the_previous_version() {
    let now = SystemTime::UNIX_EPOCH;
    let m = spec(draining(now + Duration::from_secs(1), 0));
    for i in 0..50 {
        assert_eq!(m.version_for("", &format!("conv-{i}"), now).version, "v1");
    }
}

proptest! {
    /// The canary share of new conversations tracks the weight, and a conversation's bucket
    /// never changes between calls.
    #[test]
    fn canary_split_is_stable_and_proportional(weight in 0u8..=100, seed in 0u64..1_000) {
        let now = SystemTime::UNIX_EPOCH;
        let m = spec(draining(now + Duration::from_secs(1), weight));
        let n = 2_000;
        let mut on_new = 0;
        for i in 0..n {
            let id = format!("conv-{seed}-{i}");
            let first = m.version_for("", &id, now);
            prop_assert_eq!(&first, &m.version_for("", &id, now));
            prop_assert!(first.moved_from.is_none());
            if first.version == "v2" {
                on_new += 1;
            }
        }
        let share = f64::from(on_new) / f64::from(n) * 100.0;
        prop_assert!((share - f64::from(weight)).abs() < 6.0, "weight {} share {}", weight, share);
    }

    /// Whatever the pin and the clock, the chosen version is one the model serves then, and a
    /// move is reported exactly when the pin was set and is no longer served.
    #[test]
    fn chosen_version_is_always_served(pin in prop::sample::select(vec!["", "v1", "v2", "v0"]), secs in 0u64..200, weight in 0u8..=100) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let m = spec(draining(SystemTime::UNIX_EPOCH + Duration::from_secs(100), weight));
        let c = m.version_for(pin, "conv", now);
        prop_assert!(m.serves_version(&c.version, now));
        prop_assert_eq!(c.moved_from.is_some(), !pin.is_empty() && !m.serves_version(pin, now));
    }
}
