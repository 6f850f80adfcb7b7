//! The custom resources, generated from these types (`triage crds`). Field names are the
//! Kubernetes camelCase forms of the config file's keys; [`crate::convert`] maps them back.
//!
//! Rules the apiserver can check alone are CEL (`x-kubernetes-validations`), so `kubectl apply`
//! refuses an obviously broken model before the operator sees it. Rules that need the other
//! models (unknown fallbacks, cycles, tiers) are the config validation's, run by the operator.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every Triage resource.
pub const GROUP: &str = "triage.dev";
/// The one served version.
pub const VERSION: &str = "v1alpha1";

/// A declared model: how to call it, its pinned version, tier, prices and fallbacks. Changing
/// `version` rolls the model: the previous version keeps the conversations pinned to it until
/// `drainDeadline` has passed, while `canaryWeight` percent of new conversations start on the
/// new one.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "triage.dev",
    version = "v1alpha1",
    kind = "LlmModel",
    plural = "llmmodels",
    shortname = "llm",
    namespaced,
    status = "LlmModelStatus",
    printcolumn(name = "Tier", type_ = "string", json_path = ".spec.tier"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(name = "State", type_ = "string", json_path = ".spec.lifecycle.state"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(name = "Draining", type_ = "string", priority = 1, json_path = ".status.previousVersion.version"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("!has(self.spec.fallbacks) || !(self.metadata.name in self.spec.fallbacks)")
        .message("a model cannot fall back to itself"),
    validation = Rule::new("!has(self.spec.lifecycle) || !has(self.spec.lifecycle.replacement) || self.spec.lifecycle.replacement != self.metadata.name")
        .message("a model cannot replace itself")
)]
#[serde(rename_all = "camelCase")]
pub struct LlmModelSpec {
    /// How to call the model.
    pub provider: ProviderSpec,
    /// Pinned version; replies reporting another version count as drift. Changing it starts
    /// a rolling swap.
    #[x_kube(validation = Rule::new("self.matches('[[:graph:]]')").message("a pinned version is required"))]
    #[schemars(length(max = 253))]
    pub version: String,
    /// Tier the model serves.
    pub tier: TierSpec,
    /// Prices in integer micro-dollars.
    #[serde(default)]
    pub price: PriceSpec,
    /// Context window, tokens.
    #[schemars(range(min = 1, max = 4_294_967_295_i64))]
    pub context_window: i64,
    /// Recent messages of a conversation this model's prompts carry, instead of the
    /// deployment's `context.prompt_turns`; 0: the new turn and the handoff summary only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub prompt_turns: Option<i64>,
    /// Other LlmModels (or models of the config file) tried in order when this one fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 253)))]
    pub fallbacks: Vec<String>,
    /// Where the model is in its life.
    #[serde(default)]
    pub lifecycle: LifecycleSpec,
    /// Percent (0..=100) of new conversations sent to the new version while the previous one
    /// drains; the rest start on the previous version.
    #[serde(default = "full_weight")]
    #[schemars(range(min = 0, max = 100))]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 100").message("canaryWeight is a percent (0..=100)"))]
    pub canary_weight: i32,
    /// How long the previous version keeps its pinned conversations after a version change
    /// (`30m`, `2h`); `0s` swaps at once.
    #[serde(default = "default_drain")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(ms|s|m|h))+$')").message("drainDeadline is a duration such as 30m, 1h30m or 0s"))]
    pub drain_deadline: String,
    /// Per-call deadline (`30s`); defaults to the deployment's `backends.timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub timeout: Option<String>,
    /// Time-to-first-token deadline of streams; defaults to `backends.ttft_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub ttft_timeout: Option<String>,
}

fn full_weight() -> i32 {
    100
}

fn default_drain() -> String {
    "30m".into()
}

/// Capability tier.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TierSpec {
    /// Cheap and fast.
    Fast,
    /// Between fast and frontier.
    Middle,
    /// Worth its price.
    Frontier,
}

/// Provider kind.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI chat completions and compatible servers (Groq, vLLM, Ollama, mistral.rs server).
    Openai,
    /// Anthropic Messages API.
    Anthropic,
    /// In-process GGUF model on CPU.
    Local,
    /// In-process mistral.rs engine.
    Mistralrs,
}

/// How to reach a model. One flat object rather than a tagged union: Kubernetes structural
/// schemas allow no `oneOf` of objects, so the per-kind requirements are CEL rules.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(self.kind in ['openai', 'anthropic']) || (has(self.modelId) && size(self.modelId) > 0)")
        .message("an openai or anthropic provider needs modelId"),
    validation = Rule::new("!(self.kind in ['openai', 'anthropic']) || (has(self.baseUrl) && (self.baseUrl.startsWith('http://') || self.baseUrl.startsWith('https://')))")
        .message("an openai or anthropic provider needs an http(s) baseUrl"),
    validation = Rule::new("self.kind != 'anthropic' || has(self.apiKey)").message("an anthropic provider needs apiKey"),
    validation = Rule::new("self.kind != 'local' || (has(self.gguf) && size(self.gguf) > 0)").message("a local provider needs gguf"),
    validation = Rule::new("self.kind != 'mistralrs' || (has(self.modelPath) && size(self.modelPath) > 0)")
        .message("a mistralrs provider needs modelPath")
)]
pub struct ProviderSpec {
    /// Provider kind.
    pub kind: ProviderKind,
    /// API base: up to and including `/v1` for openai, `https://api.anthropic.com` for anthropic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub base_url: Option<String>,
    /// Exact model id sent to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub model_id: Option<String>,
    /// Where the API key is read from; never the key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretRefSpec>,
    /// `anthropic-version` header (anthropic only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// GGUF file of a local model, relative to TRIAGE_HOME or absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub gguf: Option<String>,
    /// Sampling seed of a local model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub seed: Option<i64>,
    /// GGUF file or model directory of a mistralrs model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub model_path: Option<String>,
}

/// Where a secret is read from on the Triage pods: an environment variable or a mounted file.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.env) || has(self.file)").message("apiKey names an env variable or a file; keys are never inline"))]
pub struct SecretRefSpec {
    /// Environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// File holding the key (a mounted Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Prices in integer micro-dollars (1e-6 USD): never floating point.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PriceSpec {
    /// Micro-dollars per million input tokens.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub input_per_mtok: i64,
    /// Micro-dollars per million output tokens.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub output_per_mtok: i64,
    /// Micro-dollars per request.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub per_request: i64,
}

/// Lifecycle state.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleState {
    /// Serving normally.
    #[default]
    Active,
    /// Serving with a warning; `replacement` takes over after `sunset`.
    Deprecated,
    /// Not called; its traffic goes to `replacement`.
    Retired,
}

/// Where a model is in its life.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(
    validation = Rule::new("self.state == 'active' || (has(self.replacement) && size(self.replacement) > 0)")
        .message("a deprecated or retired model needs a replacement"),
    validation = Rule::new("self.state != 'active' || (!has(self.replacement) && !has(self.sunset))")
        .message("an active model takes no replacement or sunset")
)]
pub struct LifecycleSpec {
    /// `active`, `deprecated` or `retired`.
    #[serde(default)]
    pub state: LifecycleState,
    /// The model that takes over (deprecated, retired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub replacement: Option<String>,
    /// Sunset date, YYYY-MM-DD (deprecated), informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<String>,
}

/// A Kubernetes condition (the `metav1.Condition` shape).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type; the operator writes `Accepted`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason (`Applied`, `Invalid`, `Rejected`, `Superseded`).
    pub reason: String,
    /// Human-readable details.
    pub message: String,
    /// When `status` last changed, RFC 3339.
    pub last_transition_time: String,
    /// Generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The version a model replaces while it drains.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PreviousVersionStatus {
    /// The draining version.
    pub version: String,
    /// How it is called.
    pub provider: ProviderSpec,
}

/// What the operator last did with an LlmModel.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LlmModelStatus {
    /// Generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`: whether the spec was validated and pushed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The version new conversations are served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_version: Option<String>,
    /// The provider `servedVersion` is called with, kept so the next version change knows
    /// how to call the version it drains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_provider: Option<ProviderSpec>,
    /// The version being drained, while `drainUntil` is in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<PreviousVersionStatus>,
    /// End of the drain, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_until: Option<String>,
}

/// The routing policy: ordered rules with CEL conditions, the policy file's shape. One is
/// served per namespace (the oldest); others are reported `Superseded`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "triage.dev",
    version = "v1alpha1",
    kind = "RoutingPolicy",
    plural = "routingpolicies",
    shortname = "rp",
    namespaced,
    status = "RoutingPolicyStatus",
    printcolumn(name = "Rules", type_ = "integer", json_path = ".spec.rules.length()"),
    printcolumn(name = "Accepted", type_ = "string", json_path = ".status.conditions[?(@.type==\"Accepted\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("size(self.rules) > 0 && self.rules[size(self.rules) - 1].id == 'default' && self.rules[size(self.rules) - 1].when == 'true'")
        .message("the last rule must be `default` with when: \"true\"")
)]
pub struct RoutingPolicySpec {
    /// Policy format version; must be 1.
    #[serde(default = "policy_format")]
    #[x_kube(validation = Rule::new("self == 1").message("version must be 1"))]
    pub version: u32,
    /// Ordered rules; the first whose `when` is true decides.
    #[schemars(length(min = 1, max = 256))]
    pub rules: Vec<PolicyRuleSpec>,
}

fn policy_format() -> u32 {
    1
}

/// One rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.model) != has(self.tier)").message("set model or tier, not both"))]
pub struct PolicyRuleSpec {
    /// Unique id, reported in every decision the rule makes.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// CEL condition over classification, conversation, user and system.
    #[schemars(length(min = 1, max = 4096))]
    pub when: String,
    /// Target model (a declared name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Target tier: its default model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierSpec>,
    /// Why, in words; copied into every decision.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// Moving a conversation is an escalation with a handoff summary.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handoff: bool,
    /// May move a conversation below its tier (spend limit).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub budget_downgrade: bool,
    /// Only zero-price models may serve.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub free_only: bool,
}

/// What the operator last did with a RoutingPolicy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoutingPolicyStatus {
    /// Generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`: whether the policy was validated and pushed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
