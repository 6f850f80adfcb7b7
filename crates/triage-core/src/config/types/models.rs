//! Models, their providers and versions, and the default model of each tier: the catalog's shape.

use crate::money::Price;
use crate::tier::Tier;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The default model of each tier: what a policy rule targeting a tier calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TiersConfig {
    /// Fast tier.
    pub fast: String,
    /// Middle tier.
    pub middle: String,
    /// Frontier tier.
    pub frontier: String,
}

impl TiersConfig {
    /// Default model of a tier.
    pub fn model_for(&self, tier: Tier) -> &str {
        match tier {
            Tier::Fast => &self.fast,
            Tier::Middle => &self.middle,
            Tier::Frontier => &self.frontier,
        }
    }
}

/// One declared model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Tier the model serves.
    pub tier: Tier,
    /// How to call it.
    pub provider: ProviderConfig,
    /// Pinned version; replies reporting another version count as drift.
    pub version: String,
    /// Prices.
    #[serde(default)]
    pub price: Price,
    /// Context window, tokens.
    pub context_window: u32,
    /// Recent messages of the conversation this model sees, overriding
    /// `context.prompt_turns`; 0: only the new turn (and a handoff summary). Small models
    /// copy the last reply in their prompt instead of answering, so they get fewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_turns: Option<u32>,
    /// Declared fallbacks, tried in order; failover never goes anywhere else.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Lifecycle.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// Per-call deadline; defaults to `backends.timeout`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Time-to-first-token deadline of streams; defaults to `backends.ttft_timeout`.
    #[serde(default, with = "humantime_serde")]
    pub ttft_timeout: Option<Duration>,
    /// A version swap in progress: the previous version keeps the conversations pinned to it
    /// until the drain deadline. Absent when the model serves one version.
    #[serde(default)]
    pub rollout: Option<Rollout>,
}

/// A rolling version swap: `version`/`provider` above are the new version; `previous` drains.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// The version being replaced.
    pub previous: PreviousVersion,
    /// When conversations still on the previous version move to the new one (with a
    /// handoff) at their next turn. RFC 3339, e.g. `2026-11-28T18:00:00Z`.
    #[serde(with = "humantime_serde")]
    pub drain_until: std::time::SystemTime,
    /// Percent (0..=100) of new conversations sent to the new version before the deadline;
    /// the rest start on the previous one. 100 sends every new conversation to the new one.
    #[serde(default = "full_weight")]
    pub canary_weight: u8,
}

fn full_weight() -> u8 {
    100
}

/// The draining version of a model and how to call it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousVersion {
    /// Its pinned version.
    pub version: String,
    /// How to call it (usually the same provider with the old model id).
    pub provider: ProviderConfig,
}

impl Rollout {
    /// Whether the previous version still serves at `now`.
    pub fn draining(&self, now: std::time::SystemTime) -> bool {
        now < self.drain_until
    }
}

/// How to reach a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProviderConfig {
    /// OpenAI chat completions and compatible servers (Groq, OpenAI, Together, vLLM, Ollama,
    /// mistral.rs server).
    Openai {
        /// API base, up to and including `/v1`.
        base_url: String,
        /// Exact model id sent to the provider.
        model_id: String,
        /// API key source; absent for servers that take none (vLLM, Ollama).
        #[serde(default)]
        api_key: Option<SecretRef>,
    },
    /// Anthropic Messages API.
    Anthropic {
        /// API base (`https://api.anthropic.com`).
        base_url: String,
        /// Exact model id.
        model_id: String,
        /// API key source.
        api_key: SecretRef,
        /// `anthropic-version` header.
        #[serde(default = "default_anthropic_version")]
        api_version: String,
    },
    /// In-process GGUF model run with candle on CPU.
    Local {
        /// GGUF file (tokenizer and chat template are read from its metadata).
        gguf: PathBuf,
        /// Sampling seed, for reproducible replies.
        #[serde(default = "default_seed")]
        seed: u64,
    },
    /// In-process mistral.rs engine (cargo feature `mistralrs`).
    Mistralrs {
        /// GGUF file or model directory.
        model_path: PathBuf,
    },
}

fn default_anthropic_version() -> String {
    "2023-06-01".into()
}

fn default_seed() -> u64 {
    299_792_458
}

impl ProviderConfig {
    /// Short provider kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::Openai { .. } => "openai",
            ProviderConfig::Anthropic { .. } => "anthropic",
            ProviderConfig::Local { .. } => "local",
            ProviderConfig::Mistralrs { .. } => "mistralrs",
        }
    }

    /// The model id the provider knows the model by.
    pub fn provider_model_id(&self) -> String {
        match self {
            ProviderConfig::Openai { model_id, .. } | ProviderConfig::Anthropic { model_id, .. } => model_id.clone(),
            ProviderConfig::Local { gguf, .. } => file_stem(gguf),
            ProviderConfig::Mistralrs { model_path } => file_stem(model_path),
        }
    }
}

fn file_stem(p: &std::path::Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Where a secret comes from: an environment variable or a mounted file. Never inline.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Environment variable holding the secret.
    #[serde(default)]
    pub env: Option<String>,
    /// File holding the secret (a mounted Kubernetes Secret); trailing whitespace trimmed.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRef").field("env", &self.env).field("file", &self.file).finish()
    }
}

impl SecretRef {
    /// Reads the secret; `Err` says where it was looked for, never what it is.
    pub fn resolve(&self) -> Result<String, String> {
        if let Some(var) = &self.env
            && let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return Ok(v.trim().to_string());
        }
        if let Some(path) = &self.file
            && let Ok(v) = std::fs::read_to_string(path)
            && !v.trim().is_empty()
        {
            return Ok(v.trim().to_string());
        }
        let mut places = Vec::new();
        if let Some(var) = &self.env {
            places.push(format!("env {var}"));
        }
        if let Some(path) = &self.file {
            places.push(format!("file {}", path.display()));
        }
        Err(format!("no API key ({} unset or empty)", places.join(", ")))
    }
}

/// Where a model is in its life.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum Lifecycle {
    /// Serving normally.
    #[default]
    Active,
    /// Serving with a warning; `replacement` takes over after `sunset`.
    Deprecated {
        /// Declared replacement.
        replacement: String,
        /// Sunset date (YYYY-MM-DD), informational.
        #[serde(default)]
        sunset: Option<String>,
    },
    /// Not called; requests and pinned conversations go to `replacement`.
    Retired {
        /// Declared replacement.
        replacement: String,
    },
}

impl Lifecycle {
    /// Replacement model, when deprecated or retired.
    pub fn replacement(&self) -> Option<&str> {
        match self {
            Lifecycle::Active => None,
            Lifecycle::Deprecated { replacement, .. } | Lifecycle::Retired { replacement } => Some(replacement),
        }
    }
}
