//! Policy service: decides the model for each turn from ordered YAML rules with CEL
//! conditions, compiled once at load and hot-reloaded.
//!
//! The built-in policy (`config/policy.yaml`) is the seed's decision tree plus the rules the
//! seed adds around it (spend limits, complex queries, long fast-tier conversations, classifier
//! failure). After the first matching rule, fixed house rules apply: a caller's pinned model,
//! retirement, conversation stickiness (escalation only goes up, unless a spend limit forces a
//! downgrade) and failover along declared fallbacks only.

mod cases;
mod cel_env;
mod decide;
mod error;
mod facts;
mod gate;
mod grpc;
mod load;
mod local;
mod reload;
mod rules;

pub use cases::{CaseFailure, FieldDiff, TestReport, run_policy_tests};
pub use decide::REQUESTED_MODEL_RULE;
pub use error::{Error, Result};
pub use gate::{CONFIDENCE_GATE_RULE, with_confidence_gate};
pub use grpc::{PolicyServer, RemotePolicy};
pub use load::{DEFAULT_POLICY_ORIGIN, DEFAULT_POLICY_YAML, DEFAULT_RULE_ID, policy_version};
pub use local::LocalPolicy;
pub use reload::ReloadOutcome;
pub use rules::{POLICY_FORMAT_VERSION, PolicyFile, RuleSpec};

use triage_core::Config;
use triage_proto::pb;

/// Decides the model for a turn. Implemented in-process and by the gRPC client.
#[async_trait::async_trait]
pub trait Policy: Send + Sync + 'static {
    /// Decides one turn.
    async fn decide(&self, req: pb::DecideRequest) -> Result<pb::DecideResponse>;
}

/// Validates policy text against the models of `cfg` without serving it (`triage policy
/// check`): `Ok` carries the warnings (shadowed rules, deprecated targets).
pub fn validate_policy(cfg: &Config, text: &str, origin: &std::path::Path) -> Result<Vec<String>> {
    LocalPolicy::from_yaml(cfg, text, origin).map(|p| p.warnings())
}

#[cfg(test)]
mod tests;
