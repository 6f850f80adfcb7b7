//! The policy file format (YAML). Strict: unknown keys are rejected so a typo in a rule can
//! never silently turn it into a different rule.
//!
//! ```yaml
//! version: 1
//! rules:                      # ordered; the first rule whose `when` is true decides
//!   - id: simple_confident
//!     when: classification.complexity == "simple" && classification.confidence > 0.9
//!     tier: fast              # or `model: NAME` (a declared model)
//!     reason: simple query, confident label
//!     handoff: false          # optional: moving the conversation needs a handoff summary
//!     budget_downgrade: false # optional: may go below the conversation's tier (spend limit)
//!     free_only: false        # optional: only zero-price models may serve
//!   - id: default             # required, last, `when: "true"`
//!     when: "true"
//!     tier: middle
//!     reason: middle ground
//! ```

use cel_interpreter::Program;
use serde::{Deserialize, Serialize};
use triage_core::Tier;

/// The only file format version this build reads.
pub const POLICY_FORMAT_VERSION: u32 = 1;

/// A policy file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// File format version; must be 1.
    pub version: u32,
    /// Ordered rules; first match wins.
    pub rules: Vec<RuleSpec>,
}

/// One rule as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique id, reported as `rule_id` in every decision it makes.
    pub id: String,
    /// CEL condition over `classification`, `conversation`, `user` and `system`.
    pub when: String,
    /// Target model (declared name). Exactly one of `model` and `tier`.
    #[serde(default)]
    pub model: Option<String>,
    /// Target tier (`fast`, `middle`, `frontier`): its default model in the config.
    #[serde(default)]
    pub tier: Option<String>,
    /// Why, in words; copied into the decision.
    pub reason: String,
    /// When this rule moves a conversation to another model, the move is an escalation and the
    /// gateway writes a handoff summary first (DecideResponse.escalation).
    #[serde(default)]
    pub handoff: bool,
    /// A spend limit speaks through this rule: it may move a conversation below its tier
    /// (stickiness yields), and such a move is reported as `budget_downgrade`.
    #[serde(default)]
    pub budget_downgrade: bool,
    /// Only zero-price models may serve (the budget is gone): a paid target is replaced by the
    /// first free model of its declared chain, then by any declared free model.
    #[serde(default)]
    pub free_only: bool,
}

/// Where a rule routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The default model of a tier.
    Tier(Tier),
    /// A declared model.
    Model(String),
}

/// A rule ready to evaluate.
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: String,
    pub when: String,
    pub program: Program,
    pub target: Target,
    pub reason: String,
    pub handoff: bool,
    pub budget_downgrade: bool,
    pub free_only: bool,
}
