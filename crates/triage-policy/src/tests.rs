//! Tests of the policy crate; shared request builders live here.

mod default_policy;
mod props;
mod reload;
mod rollout;
mod semantics;
mod validation;

use crate::LocalPolicy;
use triage_core::config::{Config, Lifecycle};
use triage_core::{Micros, Tier};
use triage_proto::pb;

pub(crate) use pb::Category::{Analytical, Creative, Transactional};
pub(crate) use pb::Complexity::{Complex, Moderate, Simple};

/// The models of the default config (local-smollm2 fast and free, groq-llama-70b and
/// openai-gpt-4o-mini middle, claude-sonnet and openai-gpt-4o frontier, same fallbacks), kept
/// here so edits to config/triage.yaml do not move these tests; the cases file test runs the
/// real embedded config.
const TEST_CONFIG: &str = r#"
tiers: { fast: local-smollm2, middle: groq-llama-70b, frontier: claude-sonnet }
models:
  local-smollm2:
    tier: fast
    provider: { kind: local, gguf: models/smollm2.gguf }
    version: smollm2-135m-instruct-q4_1
    context_window: 4096
    price: { input_per_mtok: 0, output_per_mtok: 0 }
  groq-llama-70b:
    tier: middle
    provider: { kind: openai, base_url: "https://api.groq.com/openai/v1", model_id: llama-3.3-70b-versatile, api_key: { env: GROQ_API_KEY } }
    version: llama-3.3-70b-versatile
    context_window: 131072
    price: { input_per_mtok: 590000, output_per_mtok: 790000 }
    fallbacks: [openai-gpt-4o-mini, local-smollm2]
  openai-gpt-4o-mini:
    tier: middle
    provider: { kind: openai, base_url: "https://api.openai.com/v1", model_id: gpt-4o-mini-2024-07-18, api_key: { env: OPENAI_API_KEY } }
    version: gpt-4o-mini-2024-07-18
    context_window: 128000
    price: { input_per_mtok: 150000, output_per_mtok: 600000 }
    fallbacks: [local-smollm2]
  claude-sonnet:
    tier: frontier
    provider: { kind: anthropic, base_url: "https://api.anthropic.com", model_id: claude-3-5-sonnet-20241022, api_key: { env: ANTHROPIC_API_KEY } }
    version: claude-3-5-sonnet-20241022
    context_window: 200000
    price: { input_per_mtok: 3000000, output_per_mtok: 15000000 }
    fallbacks: [openai-gpt-4o, groq-llama-70b, local-smollm2]
  openai-gpt-4o:
    tier: frontier
    provider: { kind: openai, base_url: "https://api.openai.com/v1", model_id: gpt-4o-2024-08-06, api_key: { env: OPENAI_API_KEY } }
    version: gpt-4o-2024-08-06
    context_window: 128000
    price: { input_per_mtok: 2500000, output_per_mtok: 10000000 }
    fallbacks: [groq-llama-70b, local-smollm2]
"#;

pub(crate) fn cfg() -> Config {
    Config::from_yaml(TEST_CONFIG, std::path::Path::new("<policy test config>")).unwrap()
}

/// The default config plus lifecycle variety: `old-sonnet` (frontier, retired -> claude-sonnet),
/// `legacy-mini` (middle, deprecated -> openai-gpt-4o-mini) and a free middle model.
pub(crate) fn lifecycle_cfg() -> Config {
    let mut c = cfg();
    let mut old = c.models["claude-sonnet"].clone();
    old.lifecycle = Lifecycle::Retired { replacement: "claude-sonnet".into() };
    old.fallbacks = vec![];
    c.models.insert("old-sonnet".into(), old);
    let mut legacy = c.models["openai-gpt-4o-mini"].clone();
    legacy.lifecycle =
        Lifecycle::Deprecated { replacement: "openai-gpt-4o-mini".into(), sunset: Some("2099-01-01".into()) };
    c.models.insert("legacy-mini".into(), legacy);
    let mut free_mid = c.models["groq-llama-70b"].clone();
    free_mid.price.input_per_mtok = Micros(0);
    free_mid.price.output_per_mtok = Micros(0);
    free_mid.fallbacks = vec![];
    c.models.insert("free-middle".into(), free_mid);
    c
}

pub(crate) fn default_policy() -> LocalPolicy {
    LocalPolicy::from_config(&cfg()).unwrap()
}

/// A request builder: a classified first turn, nothing pinned, no load, full budget.
#[derive(Clone, Debug)]
pub(crate) struct R(pub pb::DecideRequest);

pub(crate) fn req(complexity: pb::Complexity, confidence: f32) -> R {
    R(pb::DecideRequest {
        classification: Some(pb::Classification {
            complexity: complexity as i32,
            category: Transactional as i32,
            requires_context: false,
            confidence,
            language: "en".into(),
            model_version: "test".into(),
        }),
        classifier_failure: String::new(),
        conversation: Some(pb::ConversationState::default()),
        user: Some(pb::UserContext::default()),
        tenant: "acme".into(),
        system: Some(pb::SystemSignals::default()),
        requested_model: String::new(),
    })
}

impl R {
    fn cls(&mut self) -> &mut pb::Classification {
        self.0.classification.get_or_insert_with(Default::default)
    }
    pub(crate) fn conv(&mut self) -> &mut pb::ConversationState {
        self.0.conversation.get_or_insert_with(Default::default)
    }
    fn sys(&mut self) -> &mut pb::SystemSignals {
        self.0.system.get_or_insert_with(Default::default)
    }
    pub(crate) fn category(mut self, c: pb::Category) -> Self {
        self.cls().category = c as i32;
        self
    }
    pub(crate) fn context(mut self) -> Self {
        self.cls().requires_context = true;
        self
    }
    pub(crate) fn turns(mut self, n: u32) -> Self {
        self.conv().turns = n;
        self
    }
    /// Pins the conversation to `model` on `tier`.
    pub(crate) fn on(mut self, tier: Tier, model: &str) -> Self {
        let c = self.conv();
        c.tier = tier.to_pb() as i32;
        c.model = model.into();
        // The conversation is on the model's pinned version, as it would be in production.
        c.model_version =
            cfg().models.get(model).map(|m| m.version.clone()).unwrap_or_else(|| format!("{model}@pinned"));
        self
    }
    pub(crate) fn premium(mut self) -> Self {
        self.0.user.get_or_insert_with(Default::default).premium = true;
        self
    }
    pub(crate) fn load(mut self, l: f64) -> Self {
        self.sys().load = l;
        self
    }
    pub(crate) fn budget(mut self, b: f64) -> Self {
        self.sys().budget_remaining.insert("global/day".into(), b);
        self
    }
    pub(crate) fn down(mut self, m: &str) -> Self {
        self.sys().unavailable.push(m.into());
        self
    }
    pub(crate) fn breaker(mut self, m: &str, s: pb::BreakerState) -> Self {
        self.sys().breakers.insert(m.into(), s as i32);
        self
    }
    pub(crate) fn no_classifier(mut self) -> Self {
        self.0.classification = None;
        self.0.classifier_failure = "classifier_timeout".into();
        self
    }
    pub(crate) fn requested(mut self, m: &str) -> Self {
        self.0.requested_model = m.into();
        self
    }
}

pub(crate) fn decide(p: &LocalPolicy, r: &R) -> pb::DecideResponse {
    p.decide_now(&r.0).unwrap_or_else(|e| panic!("decide failed for {r:?}: {e}"))
}

pub(crate) fn tier_of(d: &pb::DecideResponse) -> Tier {
    Tier::from_pb(d.tier).unwrap()
}
