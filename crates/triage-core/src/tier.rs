//! Model tiers and their order: escalation only moves up.

use serde::{Deserialize, Serialize};
use triage_proto::pb;

/// Capability tier of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Cheap and fast.
    Fast,
    /// Between fast and frontier.
    Middle,
    /// Worth its price.
    Frontier,
}

impl Tier {
    /// Every tier, cheapest first.
    pub const ALL: [Tier; 3] = [Tier::Fast, Tier::Middle, Tier::Frontier];

    /// Lower-case name used in config, CEL and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Fast => "fast",
            Tier::Middle => "middle",
            Tier::Frontier => "frontier",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "fast" => Some(Tier::Fast),
            "middle" => Some(Tier::Middle),
            "frontier" => Some(Tier::Frontier),
            _ => None,
        }
    }

    /// Wire value.
    pub fn to_pb(self) -> pb::Tier {
        match self {
            Tier::Fast => pb::Tier::Fast,
            Tier::Middle => pb::Tier::Middle,
            Tier::Frontier => pb::Tier::Frontier,
        }
    }

    /// From the wire value; unspecified is `None`.
    pub fn from_pb(t: i32) -> Option<Tier> {
        match pb::Tier::try_from(t).ok()? {
            pb::Tier::Fast => Some(Tier::Fast),
            pb::Tier::Middle => Some(Tier::Middle),
            pb::Tier::Frontier => Some(Tier::Frontier),
            pb::Tier::Unspecified => None,
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
