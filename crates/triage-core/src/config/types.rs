//! The strict shape of the YAML config. Every struct rejects unknown keys.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

mod ledger;
mod models;
mod services;
mod telemetry;

pub use ledger::*;
pub use models::*;
pub use services::*;
pub use telemetry::*;

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
    /// A plain-text port serving grpc.health.v1 alone (what the service ports report), for
    /// the kubelet's gRPC probes, which speak no TLS, when the service ports serve TLS.
    /// Unset: health is served on the service ports only.
    pub health_listen: Option<String>,
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
            health_listen: None,
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
