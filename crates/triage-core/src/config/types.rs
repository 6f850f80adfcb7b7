//! The strict shape of the YAML config. Every struct rejects unknown keys.

use crate::money::Price;
use crate::tier::Tier;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The whole configuration of a Triage deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Public endpoint and request limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where each service listens and how the others reach it when split.
    #[serde(default)]
    pub services: ServicesConfig,
    /// Redis for context, ledger, cache and decision log.
    #[serde(default)]
    pub redis: RedisConfig,
    /// The model each tier routes to by default.
    pub tiers: TiersConfig,
    /// Declared models, by name. Tiers, prices and fallbacks are declared once, here.
    pub models: BTreeMap<String, ModelConfig>,
    /// Classifier service.
    #[serde(default)]
    pub classifier: ClassifierConfig,
    /// Policy service.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Retry, breaker and deadline defaults of the backends service.
    #[serde(default)]
    pub backends: BackendsConfig,
    /// Context service.
    #[serde(default)]
    pub context: ContextConfig,
    /// Ledger service.
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// Logs and traces.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// API keys and per-tenant rate limits of the public endpoints.
    #[serde(default)]
    pub auth: AuthConfig,
    /// File the config came from (set by the loader, not read from YAML).
    #[serde(skip)]
    pub source: PathBuf,
}

/// The public endpoint and per-request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// How long in-flight calls may drain after SIGTERM before the process exits.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
    /// Time between reporting NOT_SERVING and refusing new connections, so load balancers
    /// stop sending first.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Largest accepted user turn, bytes.
    pub max_turn_bytes: usize,
    /// max_tokens used when a request sends 0.
    pub default_max_tokens: u32,
    /// Largest max_tokens a request may ask for.
    pub max_tokens_limit: u32,
    /// In-flight requests at which system.load reaches 1.0.
    pub capacity: u32,
    /// Latency (EWMA per model) at which that model's pressure puts system.load at 1.0.
    #[serde(with = "humantime_serde")]
    pub latency_target: Duration,
    /// Tenant used when no authentication is configured.
    pub default_tenant: String,
    /// Deadlines of each step of the request flow.
    pub deadlines: Deadlines,
    /// Where the OpenAI-compatible HTTP endpoint listens (with the gateway).
    pub http_listen: String,
    /// Largest accepted HTTP request body, bytes.
    pub max_body_bytes: usize,
    /// Most messages one chat completion request may carry.
    pub max_messages: usize,
    /// A client must send its request headers within this time.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A client must send its whole request body within this time.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Server TLS of the HTTP endpoint; plain TCP when absent.
    pub tls: Option<TlsConfig>,
    /// Bearer token the `triage.v1.Admin` service (live model and policy changes, pushed by
    /// the operator) requires. Unset: Admin is not served at all.
    pub admin_token: Option<SecretRef>,
}

/// PEM files of a server certificate (chain first-to-root) and its private key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(20),
            drain_delay: Duration::from_secs(2),
            max_turn_bytes: 64 * 1024,
            default_max_tokens: 256,
            max_tokens_limit: 8192,
            capacity: 256,
            latency_target: Duration::from_secs(2),
            default_tenant: "default".into(),
            deadlines: Deadlines::default(),
            http_listen: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            max_messages: 256,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            tls: None,
            admin_token: None,
        }
    }
}

/// Deadline per step; each step has a declared failure mode when it passes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deadlines {
    /// context.Get and context.Append.
    #[serde(with = "humantime_serde")]
    pub context: Duration,
    /// classifier.Classify; past it the policy's default rule is used.
    #[serde(with = "humantime_serde")]
    pub classify: Duration,
    /// policy.Decide.
    #[serde(with = "humantime_serde")]
    pub policy: Duration,
    /// ledger Reserve / Commit.
    #[serde(with = "humantime_serde")]
    pub ledger: Duration,
    /// The whole generation including failover.
    #[serde(with = "humantime_serde")]
    pub generate: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            context: Duration::from_millis(500),
            classify: Duration::from_millis(250),
            policy: Duration::from_millis(100),
            ledger: Duration::from_millis(300),
            generate: Duration::from_secs(120),
        }
    }
}

/// Names of the services one binary can run.
pub const SERVICE_NAMES: [&str; 6] = ["gateway", "classifier", "policy", "backends", "context", "ledger"];

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

/// Where each service listens, and where the others reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesConfig {
    /// The Router (public) endpoint; in all-in-one mode every service is served here too.
    pub gateway: Endpoint,
    /// Classifier service.
    pub classifier: Endpoint,
    /// Policy service.
    pub policy: Endpoint,
    /// Backends service.
    pub backends: Endpoint,
    /// Context service.
    pub context: Endpoint,
    /// Ledger service.
    pub ledger: Endpoint,
    /// mTLS between services; plain TCP when absent.
    pub tls: Option<ServicesTlsConfig>,
}

/// mTLS between services: every service's server requires a client certificate signed by
/// `ca`, and every inter-service client presents `cert`/`key` and trusts `ca`. All three
/// are required.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesTlsConfig {
    /// CA certificate (PEM) that signs the services' server and client certificates.
    pub ca: PathBuf,
    /// Certificate chain of this service (PEM), used as server and client certificate.
    pub cert: PathBuf,
    /// Private key of `cert` (PEM).
    pub key: PathBuf,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        let ep =
            |port: u16| Endpoint { listen: format!("127.0.0.1:{port}"), connect: format!("http://127.0.0.1:{port}") };
        Self {
            gateway: ep(50051),
            classifier: ep(50052),
            policy: ep(50053),
            backends: ep(50054),
            context: ep(50055),
            ledger: ep(50056),
            tls: None,
        }
    }
}

impl ServicesConfig {
    /// The endpoint of a service by name.
    pub fn get(&self, name: &str) -> Option<&Endpoint> {
        match name {
            "gateway" => Some(&self.gateway),
            "classifier" => Some(&self.classifier),
            "policy" => Some(&self.policy),
            "backends" => Some(&self.backends),
            "context" => Some(&self.context),
            "ledger" => Some(&self.ledger),
            _ => None,
        }
    }

    /// Mutable endpoint of a service by name.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Endpoint> {
        match name {
            "gateway" => Some(&mut self.gateway),
            "classifier" => Some(&mut self.classifier),
            "policy" => Some(&mut self.policy),
            "backends" => Some(&mut self.backends),
            "context" => Some(&mut self.context),
            "ledger" => Some(&mut self.ledger),
            _ => None,
        }
    }
}

/// A service's addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Socket address to bind when this process runs the service (`127.0.0.1:50052`).
    pub listen: String,
    /// URL other processes use to reach it (`http://classifier:50052`).
    pub connect: String,
}

/// Redis connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db`; `TRIAGE_REDIS_URL` overrides it. Absent: Triage starts a
    /// private `redis-server` child process (no persistence) for the embedded default.
    pub url: Option<String>,
    /// Binary used for the private Redis.
    pub server_binary: String,
    /// Prefix of every key Triage writes.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self { url: None, server_binary: "redis-server".into(), key_prefix: "triage".into() }
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

/// What the ledger does when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Let calls through, count the unaccounted spend, reconcile after recovery.
    Open,
    /// Refuse paid calls.
    Closed,
}

/// A spend window (UTC calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Calendar hour.
    Hour,
    /// Calendar day.
    Day,
    /// Calendar month.
    Month,
}

impl Window {
    /// Every window.
    pub const ALL: [Window; 3] = [Window::Hour, Window::Day, Window::Month];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
        }
    }
}

/// A hard spend limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// `global`, `tenant`, `user`, `model` or `conversation`.
    pub scope: String,
    /// Id within the scope kind; absent applies the limit to every id of the kind.
    #[serde(default)]
    pub id: Option<String>,
    /// Window.
    pub window: Window,
    /// Limit, micro-dollars.
    pub limit_micros: i64,
}

/// Ledger service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// Hard limits.
    pub limits: Vec<LimitConfig>,
    /// Behaviour when Redis is down.
    pub fail_mode: FailMode,
    /// Reservations of a crashed gateway expire after this.
    #[serde(with = "humantime_serde")]
    pub reservation_ttl: Duration,
    /// Remaining fraction below which an alert fires (log and metric).
    pub alert_remaining_fraction: f64,
    /// Alerts when committed spend crosses fractions of a limit.
    pub alerts: BudgetAlertsConfig,
    /// How long a reading of a limited counter may serve as the budget signal (Limits)
    /// before Redis is read again; 0 reads Redis every time. Hard limits never use it.
    #[serde(with = "humantime_serde")]
    pub signal_max_age: Duration,
    /// How often each gateway sets a limited day or month counter again from the scope's
    /// hour counters (besides its first use of it): how long gateways whose configurations
    /// disagree on a limit may undercount. Each time costs a read of the window's hours.
    #[serde(with = "humantime_serde")]
    pub reseed_interval: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            limits: Vec::new(),
            fail_mode: FailMode::Closed,
            reservation_ttl: Duration::from_secs(300),
            alert_remaining_fraction: 0.2,
            alerts: BudgetAlertsConfig::default(),
            signal_max_age: Duration::from_millis(250),
            reseed_interval: Duration::from_secs(600),
        }
    }
}

/// Budget threshold alerts: fired once per scope, window instance and threshold (across
/// every gateway) when a commit carries a scope's spend past `threshold x limit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetAlertsConfig {
    /// Fractions of each configured limit, each in (0, 1], ascending, no repeats.
    pub thresholds: Vec<f64>,
    /// Where alerts are POSTed as JSON, besides the log line and the metric.
    pub webhook: Option<AlertWebhookConfig>,
}

impl Default for BudgetAlertsConfig {
    fn default() -> Self {
        Self { thresholds: vec![0.5, 0.8, 1.0], webhook: None }
    }
}

/// A webhook receiving budget alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertWebhookConfig {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Bound on one POST; a failed POST is logged and counted, never retried.
    #[serde(with = "humantime_serde", default = "default_webhook_timeout")]
    pub timeout: Duration,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Logs and traces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `text` or `json` logs on stderr.
    pub log_format: LogFormat,
    /// Log filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub log_filter: String,
    /// OTLP gRPC endpoint for traces; `OTEL_EXPORTER_OTLP_ENDPOINT` overrides it.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported traces.
    pub service_name: String,
    /// Decision records also appended to rotating JSONL files (none by default).
    pub decision_log_files: Option<DecisionLogFilesConfig>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            otlp_endpoint: None,
            service_name: "triage".into(),
            decision_log_files: None,
        }
    }
}

/// Decision records as JSONL files: `DIR/decisions.jsonl`, rotated by size to
/// `decisions.1.jsonl` (newest) .. `decisions.N.jsonl`, the oldest deleted past `max_files`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionLogFilesConfig {
    /// Directory of the files (created when missing).
    pub dir: PathBuf,
    /// Size at which the current file is rotated.
    #[serde(default = "default_decision_file_bytes")]
    pub max_file_bytes: u64,
    /// Files kept, the current one included.
    #[serde(default = "default_decision_files")]
    pub max_files: u32,
    /// Records waiting for the writer; past this they are dropped (and counted), never
    /// slowing a request down.
    #[serde(default = "default_decision_queue")]
    pub queue: usize,
}

fn default_decision_file_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_decision_files() -> u32 {
    10
}

fn default_decision_queue() -> usize {
    4096
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// API keys (stored as sha256 hex, never in clear) and per-tenant rate limits. With no keys,
/// authentication is off and every request is the default tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Keys declared inline (hashes only).
    pub keys: Vec<ApiKeyConfig>,
    /// YAML list of the same entries, e.g. a mounted Kubernetes Secret; re-read every
    /// `reload_interval` so rotation and revocation need no restart.
    pub keys_file: Option<PathBuf>,
    /// How often the keys file is re-read.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Per-tenant request and token rates.
    pub rate_limits: RateLimitsConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            keys_file: None,
            reload_interval: Duration::from_secs(10),
            rate_limits: RateLimitsConfig::default(),
        }
    }
}

/// One API key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Lowercase hex sha256 of the bearer key.
    pub sha256: String,
    /// Tenant the key authenticates as.
    pub tenant: String,
    /// A revoked key is refused like an unknown one.
    #[serde(default)]
    pub revoked: bool,
}

/// Rate limits: a default for every tenant, overridden per tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    /// Limits of tenants not listed in `tenants`.
    pub default: RateLimit,
    /// Limits by tenant.
    pub tenants: BTreeMap<String, RateLimit>,
}

/// Token buckets refilled per minute; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    /// Requests per minute.
    pub requests_per_minute: u32,
    /// Tokens (prompt estimate plus max_tokens, settled to actual usage) per minute.
    pub tokens_per_minute: u32,
}
