//! The declared models, shared by the policy and backends services: one source of tiers,
//! pinned versions, prices, context windows, fallbacks and lifecycles.

use crate::config::{Config, Lifecycle, ProviderConfig};
use crate::money::{Micros, Price};
use crate::tier::Tier;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;
use triage_proto::pb;

/// One declared model as every service sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Declared name.
    pub name: String,
    /// Tier.
    pub tier: Tier,
    /// Provider kind (`openai`, `anthropic`, `local`, `mistralrs`).
    pub provider: &'static str,
    /// Exact id sent to the provider.
    pub provider_model_id: String,
    /// Pinned version.
    pub version: String,
    /// Prices.
    pub price: Price,
    /// Context window, tokens.
    pub context_window: u32,
    /// Recent messages of a conversation its prompts carry, when not `context.prompt_turns`.
    pub prompt_turns: Option<u32>,
    /// Declared fallbacks, in order.
    pub fallbacks: Vec<String>,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// A version swap in progress.
    pub rollout: Option<RolloutSpec>,
}

/// The key of one version's breaker among the policy's breaker signals (`model@version`),
/// reported beside the model's own key while a rolling swap serves two versions.
pub fn version_key(model: &str, version: &str) -> String {
    format!("{model}@{version}")
}

/// A version swap in progress: the previous version drains while the new one takes over.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSpec {
    /// The version being replaced.
    pub previous_version: String,
    /// Its provider model id.
    pub previous_provider_model_id: String,
    /// When conversations still on it move to the new version.
    pub drain_until: SystemTime,
    /// Percent of new conversations the new version gets before the deadline.
    pub canary_weight: u8,
}

/// The version a conversation's turn runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionChoice {
    /// Version to call.
    pub version: String,
    /// The version the conversation was pinned to, when this turn moves it off that version
    /// (the previous one finished draining, or it is no longer declared): a handoff is due.
    pub moved_from: Option<String>,
}

/// Stable 0..100 bucket of a conversation, the same in every process and release (FNV-1a),
/// so a canary split never flips a conversation between versions.
pub fn canary_bucket(conversation_id: &str) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in conversation_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % 100) as u8
}

impl ModelSpec {
    /// Worst-case cost of a call: the whole prompt plus `max_tokens` of output.
    pub fn worst_case_cost(&self, prompt_tokens: u64, max_tokens: u64) -> Micros {
        self.price.cost(prompt_tokens, max_tokens)
    }

    /// True when the model may not be called any more.
    pub fn is_retired(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Retired { .. })
    }

    /// The version for a turn of a conversation pinned to `pinned` ("" when the conversation
    /// is new to this model). Running conversations finish on the version they started on
    /// while it drains; new ones split by the canary weight; after the drain deadline (or when
    /// the pinned version is not declared any more) everyone is on the new version.
    pub fn version_for(&self, pinned: &str, conversation_id: &str, now: SystemTime) -> VersionChoice {
        let current = || VersionChoice { version: self.version.clone(), moved_from: None };
        if pinned == self.version {
            return current();
        }
        let draining = self.rollout.as_ref().filter(|r| now < r.drain_until);
        match draining {
            Some(r) if pinned == r.previous_version => {
                VersionChoice { version: r.previous_version.clone(), moved_from: None }
            }
            Some(r) if pinned.is_empty() => {
                if canary_bucket(conversation_id) < r.canary_weight {
                    current()
                } else {
                    VersionChoice { version: r.previous_version.clone(), moved_from: None }
                }
            }
            _ if pinned.is_empty() => current(),
            _ => VersionChoice { version: self.version.clone(), moved_from: Some(pinned.to_string()) },
        }
    }

    /// Whether `version` is served at `now`: the pin, or the previous one while it drains.
    pub fn serves_version(&self, version: &str, now: SystemTime) -> bool {
        version.is_empty()
            || version == self.version
            || self.rollout.as_ref().is_some_and(|r| r.previous_version == version && now < r.drain_until)
    }

    /// Wire form of the lifecycle.
    pub fn lifecycle_pb(&self) -> pb::Lifecycle {
        match self.lifecycle {
            Lifecycle::Active => pb::Lifecycle::Active,
            Lifecycle::Deprecated { .. } => pb::Lifecycle::Deprecated,
            Lifecycle::Retired { .. } => pb::Lifecycle::Retired,
        }
    }
}

/// All declared models, by name, plus the default model of each tier.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    models: BTreeMap<String, Arc<ModelSpec>>,
    tier_default: [String; 3],
}

impl Catalog {
    /// Builds the catalog of a validated config.
    pub fn from_config(cfg: &Config) -> Catalog {
        let models = cfg
            .models
            .iter()
            .map(|(name, m)| {
                let spec = ModelSpec {
                    name: name.clone(),
                    tier: m.tier,
                    provider: m.provider.kind(),
                    provider_model_id: m.provider.provider_model_id(),
                    version: m.version.clone(),
                    price: m.price,
                    context_window: m.context_window,
                    prompt_turns: m.prompt_turns,
                    fallbacks: m.fallbacks.clone(),
                    lifecycle: m.lifecycle.clone(),
                    rollout: m.rollout.as_ref().map(|r| RolloutSpec {
                        previous_version: r.previous.version.clone(),
                        previous_provider_model_id: r.previous.provider.provider_model_id(),
                        drain_until: r.drain_until,
                        canary_weight: r.canary_weight,
                    }),
                };
                (name.clone(), Arc::new(spec))
            })
            .collect();
        Catalog { models, tier_default: [cfg.tiers.fast.clone(), cfg.tiers.middle.clone(), cfg.tiers.frontier.clone()] }
    }

    /// A model by name.
    pub fn get(&self, name: &str) -> Option<&Arc<ModelSpec>> {
        self.models.get(name)
    }

    /// Every model, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ModelSpec>> {
        self.models.values()
    }

    /// The default model of a tier.
    pub fn tier_default(&self, tier: Tier) -> &str {
        match tier {
            Tier::Fast => &self.tier_default[0],
            Tier::Middle => &self.tier_default[1],
            Tier::Frontier => &self.tier_default[2],
        }
    }

    /// The model to call in place of `name`: follows retirements to the replacement.
    pub fn resolve_retired(&self, name: &str) -> Option<&Arc<ModelSpec>> {
        let mut cur = self.models.get(name)?;
        for _ in 0..self.models.len() {
            match &cur.lifecycle {
                Lifecycle::Retired { replacement } => cur = self.models.get(replacement)?,
                _ => return Some(cur),
            }
        }
        None
    }

    /// The most expensive output price among frontier models: the "all-frontier" baseline
    /// reports compare against.
    pub fn frontier_baseline(&self) -> Option<&Arc<ModelSpec>> {
        self.models.get(self.tier_default(Tier::Frontier))
    }
}

/// True when a provider needs an API key that is absent; the reason names where it looked.
pub fn missing_key(provider: &ProviderConfig) -> Option<String> {
    match provider {
        ProviderConfig::Openai { api_key: Some(k), .. } | ProviderConfig::Anthropic { api_key: k, .. } => {
            k.resolve().err()
        }
        _ => None,
    }
}

#[cfg(test)]
mod rollout_tests;
