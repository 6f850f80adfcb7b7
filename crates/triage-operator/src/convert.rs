//! Resources to the config file's types. The conversion goes through the file's own serde
//! shape, so a resource is parsed exactly as strictly as the same model in `triage.yaml`
//! (unknown keys, durations, timestamps).

use crate::crd::{
    LifecycleState, LlmModelSpec, PolicyRuleSpec, ProviderKind, ProviderSpec, RoutingPolicySpec, TierSpec,
};
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime};
use triage_core::config::ModelConfig;

/// The draining side of a rolling swap, as pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutInput {
    /// The version being replaced.
    pub previous_version: String,
    /// How it is called.
    pub previous_provider: ProviderSpec,
    /// End of the drain.
    pub drain_until: SystemTime,
}

/// Lower-case tier name.
pub fn tier_name(t: TierSpec) -> &'static str {
    match t {
        TierSpec::Fast => "fast",
        TierSpec::Middle => "middle",
        TierSpec::Frontier => "frontier",
    }
}

/// The provider in the config file's shape (`kind` tag, snake_case keys).
pub fn provider_value(p: &ProviderSpec) -> Value {
    let mut m = Map::new();
    let kind = match p.kind {
        ProviderKind::Openai => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Local => "local",
        ProviderKind::Mistralrs => "mistralrs",
    };
    m.insert("kind".into(), json!(kind));
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    match p.kind {
        ProviderKind::Openai | ProviderKind::Anthropic => {
            put("base_url", &p.base_url);
            put("model_id", &p.model_id);
            if p.kind == ProviderKind::Anthropic {
                put("api_version", &p.api_version);
            }
            if let Some(k) = &p.api_key {
                let mut key = Map::new();
                if let Some(e) = &k.env {
                    key.insert("env".into(), json!(e));
                }
                if let Some(f) = &k.file {
                    key.insert("file".into(), json!(f));
                }
                m.insert("api_key".into(), Value::Object(key));
            }
        }
        ProviderKind::Local => {
            put("gguf", &p.gguf);
            if let Some(s) = p.seed {
                m.insert("seed".into(), json!(s));
            }
        }
        ProviderKind::Mistralrs => put("model_path", &p.model_path),
    }
    // Fields of another kind are dropped above; the strict parse then reports what is missing.
    Value::Object(m)
}

/// A config file provider as a resource's, for a version the file served before a resource
/// took the model over (it becomes the draining version).
pub fn provider_spec(p: &triage_core::config::ProviderConfig) -> Option<ProviderSpec> {
    let Value::Object(m) = serde_json::to_value(p).ok()? else { return None };
    let camel: Map<String, Value> = m
        .into_iter()
        .map(|(k, v)| {
            let k = match k.as_str() {
                "base_url" => "baseUrl".to_string(),
                "model_id" => "modelId".to_string(),
                "api_key" => "apiKey".to_string(),
                "api_version" => "apiVersion".to_string(),
                "model_path" => "modelPath".to_string(),
                _ => k,
            };
            (k, v)
        })
        .filter(|(_, v)| !v.is_null())
        .collect();
    serde_json::from_value(Value::Object(camel)).ok()
}

/// The model in the config file's shape.
pub fn model_value(spec: &LlmModelSpec, rollout: Option<&RolloutInput>) -> Value {
    let mut m = Map::new();
    m.insert("tier".into(), json!(tier_name(spec.tier)));
    m.insert("provider".into(), provider_value(&spec.provider));
    m.insert("version".into(), json!(spec.version));
    m.insert(
        "price".into(),
        json!({
            "input_per_mtok": spec.price.input_per_mtok,
            "output_per_mtok": spec.price.output_per_mtok,
            "per_request": spec.price.per_request,
        }),
    );
    m.insert("context_window".into(), json!(spec.context_window));
    if let Some(turns) = spec.prompt_turns {
        m.insert("prompt_turns".into(), json!(turns));
    }
    if !spec.fallbacks.is_empty() {
        m.insert("fallbacks".into(), json!(spec.fallbacks));
    }
    let lc = &spec.lifecycle;
    let lifecycle = match lc.state {
        LifecycleState::Active => json!({"state": "active"}),
        LifecycleState::Deprecated => {
            let mut d = Map::new();
            d.insert("state".into(), json!("deprecated"));
            d.insert("replacement".into(), json!(lc.replacement.clone().unwrap_or_default()));
            if let Some(s) = &lc.sunset {
                d.insert("sunset".into(), json!(s));
            }
            Value::Object(d)
        }
        LifecycleState::Retired => {
            json!({"state": "retired", "replacement": lc.replacement.clone().unwrap_or_default()})
        }
    };
    m.insert("lifecycle".into(), lifecycle);
    if let Some(t) = &spec.timeout {
        m.insert("timeout".into(), json!(t));
    }
    if let Some(t) = &spec.ttft_timeout {
        m.insert("ttft_timeout".into(), json!(t));
    }
    if let Some(r) = rollout {
        m.insert(
            "rollout".into(),
            json!({
                "previous": { "version": r.previous_version, "provider": provider_value(&r.previous_provider) },
                "drain_until": humantime::format_rfc3339_seconds(r.drain_until).to_string(),
                "canary_weight": spec.canary_weight,
            }),
        );
    }
    Value::Object(m)
}

/// The model as the config file's type; `Err` is the strict parse's message.
pub fn to_model_config(spec: &LlmModelSpec, rollout: Option<&RolloutInput>) -> Result<ModelConfig, String> {
    if lifecycle_needs_replacement(spec) {
        return Err("lifecycle.replacement: a deprecated or retired model needs a replacement".into());
    }
    if !(0..=100).contains(&spec.canary_weight) {
        return Err(format!("canaryWeight: {} is not a percent (0..=100)", spec.canary_weight));
    }
    serde_json::from_value(model_value(spec, rollout)).map_err(|e| e.to_string())
}

fn lifecycle_needs_replacement(spec: &LlmModelSpec) -> bool {
    spec.lifecycle.state != LifecycleState::Active
        && spec.lifecycle.replacement.as_deref().is_none_or(|r| r.trim().is_empty())
}

/// `drainDeadline` as a duration (`30m`, `1h30m`, `0s`).
pub fn drain_deadline(spec: &LlmModelSpec) -> Result<Duration, String> {
    humantime::parse_duration(spec.drain_deadline.trim())
        .map_err(|e| format!("drainDeadline: `{}` is not a duration: {e}", spec.drain_deadline))
}

/// The policy in the policy file's YAML shape.
pub fn policy_yaml(spec: &RoutingPolicySpec) -> Result<String, String> {
    let rules: Vec<Value> = spec.rules.iter().map(rule_value).collect();
    serde_yaml::to_string(&json!({ "version": spec.version, "rules": rules })).map_err(|e| e.to_string())
}

fn rule_value(r: &PolicyRuleSpec) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id));
    m.insert("when".into(), json!(r.when));
    if let Some(model) = &r.model {
        m.insert("model".into(), json!(model));
    }
    if let Some(t) = r.tier {
        m.insert("tier".into(), json!(tier_name(t)));
    }
    m.insert("reason".into(), json!(r.reason));
    for (k, v) in [("handoff", r.handoff), ("budget_downgrade", r.budget_downgrade), ("free_only", r.free_only)] {
        if v {
            m.insert(k.into(), json!(true));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{LifecycleSpec, PriceSpec, SecretRefSpec};

    pub(crate) fn openai(version: &str) -> LlmModelSpec {
        LlmModelSpec {
            provider: ProviderSpec {
                kind: ProviderKind::Openai,
                base_url: Some("https://api.openai.com/v1".into()),
                model_id: Some(version.into()),
                api_key: Some(SecretRefSpec { env: Some("OPENAI_API_KEY".into()), file: None }),
                api_version: None,
                gguf: None,
                seed: None,
                model_path: None,
            },
            version: version.into(),
            tier: TierSpec::Middle,
            price: PriceSpec { input_per_mtok: 150_000, output_per_mtok: 600_000, per_request: 0 },
            context_window: 128_000,
            prompt_turns: None,
            fallbacks: vec![],
            lifecycle: LifecycleSpec::default(),
            canary_weight: 100,
            drain_deadline: "30m".into(),
            timeout: Some("30s".into()),
            ttft_timeout: None,
        }
    }

    #[test]
    fn converts_with_rollout() {
        let spec = openai("gpt-4o-mini-2024-07-18");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let r = RolloutInput {
            previous_version: "gpt-4o-mini-old".into(),
            previous_provider: openai("gpt-4o-mini-old").provider,
            drain_until: at,
        };
        let m = to_model_config(&spec, Some(&r)).unwrap();
        assert_eq!(m.version, "gpt-4o-mini-2024-07-18");
        assert_eq!(m.prompt_turns, None, "the deployment's context.prompt_turns");
        let small = LlmModelSpec { prompt_turns: Some(0), ..openai("v") };
        assert_eq!(to_model_config(&small, None).unwrap().prompt_turns, Some(0));
        assert_eq!(m.timeout, Some(Duration::from_secs(30)));
        let ro = m.rollout.unwrap();
        assert_eq!(ro.previous.version, "gpt-4o-mini-old");
        assert_eq!(ro.drain_until, at);
        assert_eq!(ro.canary_weight, 100);
    }

    #[test]
    fn file_providers_convert_back() {
        let cfg = triage_core::Config::embedded_default().unwrap();
        for m in cfg.models.values() {
            let p = provider_spec(&m.provider).unwrap();
            let back: triage_core::config::ProviderConfig = serde_json::from_value(provider_value(&p)).unwrap();
            assert_eq!(back.provider_model_id(), m.provider.provider_model_id());
        }
        assert_eq!(drain_deadline(&openai("v")).unwrap(), Duration::from_secs(1800));
        let mut s = openai("v");
        s.drain_deadline = "1h30m".into();
        assert_eq!(drain_deadline(&s).unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn strict_parse_reports_missing_fields() {
        let mut spec = openai("v1");
        spec.provider.model_id = None;
        assert!(to_model_config(&spec, None).unwrap_err().contains("model_id"));
        let mut spec = openai("v1");
        spec.lifecycle.state = LifecycleState::Retired;
        assert!(to_model_config(&spec, None).is_err());
        spec.lifecycle.replacement = Some("other".into());
        assert!(to_model_config(&spec, None).is_ok());
    }

    #[test]
    fn policy_round_trips_into_the_file_shape() {
        let spec = RoutingPolicySpec {
            version: 1,
            rules: vec![PolicyRuleSpec {
                id: "default".into(),
                when: "true".into(),
                model: None,
                tier: Some(TierSpec::Middle),
                reason: "middle".into(),
                handoff: false,
                budget_downgrade: true,
                free_only: false,
            }],
        };
        let y = policy_yaml(&spec).unwrap();
        let f: triage_policy::PolicyFile = serde_yaml::from_str(&y).unwrap();
        assert!(f.rules[0].budget_downgrade);
        assert_eq!(f.rules[0].tier.as_deref(), Some("middle"));
    }
}
