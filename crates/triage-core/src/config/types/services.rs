//! The classifier, policy, backends and context services.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Which classifier implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierKind {
    /// Keyword rules (the seed's approach 1); a baseline and a last resort.
    Heuristic,
    /// all-MiniLM-L6-v2 embeddings with trained heads, on CPU.
    Embedded,
    /// An instruct LLM with JSON-schema constrained output (feature `mistralrs`).
    Mistralrs,
}

/// Classifier service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    /// Implementation.
    pub kind: ClassifierKind,
    /// Directory of the encoder (model.safetensors, tokenizer.json, config.json).
    pub encoder_dir: PathBuf,
    /// Trained heads (JSON); defaults to the weights compiled into the binary.
    pub heads: Option<PathBuf>,
    /// Model for the mistralrs classifier.
    pub llm_path: Option<PathBuf>,
    /// Earlier turns the classifier sees.
    pub history_turns: u32,
    /// Cache of labels in Redis.
    pub cache: CacheConfig,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            kind: ClassifierKind::Embedded,
            encoder_dir: PathBuf::from("models/all-minilm-l6-v2"),
            heads: None,
            llm_path: None,
            history_turns: 4,
            cache: CacheConfig::default(),
        }
    }
}

/// A Redis-backed cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Whether to cache.
    pub enabled: bool,
    /// Time to live of an entry.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Entries also kept in process (LRU), in front of Redis: a hit there makes no Redis
    /// call. 0 turns that layer off.
    pub local_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { enabled: true, ttl: Duration::from_secs(24 * 3600), local_entries: 10_000 }
    }
}

/// Policy service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Policy file (YAML rules); absent uses the built-in seed policy.
    pub file: Option<PathBuf>,
    /// How often the file is checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self { file: None, reload_interval: Duration::from_secs(2) }
    }
}

/// Retry, breaker and deadline defaults for model calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendsConfig {
    /// Per-call deadline.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Time-to-first-token deadline of streams.
    #[serde(with = "humantime_serde")]
    pub ttft_timeout: Duration,
    /// Retries.
    pub retry: RetryConfig,
    /// Circuit breaker.
    pub breaker: BreakerConfig,
}

impl Default for BackendsConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            ttft_timeout: Duration::from_secs(10),
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
        }
    }
}

/// Capped exponential backoff with jitter, under a retry budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// Largest backoff (also caps Retry-After).
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Retries allowed per model as a fraction of its recent requests (retry budget).
    pub budget_ratio: f64,
    /// Retries always allowed per second regardless of the ratio.
    pub budget_min_per_sec: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            budget_ratio: 0.2,
            budget_min_per_sec: 5,
        }
    }
}

/// Circuit breaker per (provider, model).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before a half-open probe.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { failure_threshold: 5, cooldown: Duration::from_secs(15) }
    }
}

/// Context service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextConfig {
    /// Conversations expire this long after their last turn.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Most recent turns sent to a model with the handoff summary.
    pub prompt_turns: u32,
    /// Cheap model that writes handoff summaries; absent uses the extractive summariser.
    pub summarizer_model: Option<String>,
    /// How long the summarizer model may take before the extractive summary is used, so a
    /// slow cheap model never holds up an escalation.
    #[serde(with = "humantime_serde")]
    pub summarizer_timeout: Duration,
    /// System prompt given to every model.
    pub system_prompt: String,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(7 * 24 * 3600),
            prompt_turns: 8,
            summarizer_model: None,
            summarizer_timeout: Duration::from_secs(8),
            system_prompt: "You are a helpful, concise customer service assistant.".into(),
        }
    }
}
