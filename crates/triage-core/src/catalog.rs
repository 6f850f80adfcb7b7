//! The declared models, shared by the policy and backends services: one source of tiers,
//! pinned versions, prices, context windows, fallbacks and lifecycles.

use crate::config::{Config, Lifecycle, ProviderConfig};
use crate::money::{Micros, Price};
use crate::tier::Tier;
use std::collections::BTreeMap;
use std::sync::Arc;
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
    /// Declared fallbacks, in order.
    pub fallbacks: Vec<String>,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
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
                    fallbacks: m.fallbacks.clone(),
                    lifecycle: m.lifecycle.clone(),
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
