//! The inputs of one decision, normalised once from the wire request: the same values feed
//! the CEL conditions and the semantics applied after the rule (stickiness, availability).

use std::collections::BTreeMap;
use std::time::SystemTime;
use triage_core::catalog::version_key;
use triage_core::{Catalog, ModelSpec, Tier};
use triage_proto::pb;

/// Breaker state as CEL sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Breaker {
    Closed,
    Open,
    HalfOpen,
}

impl Breaker {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Breaker::Closed => "closed",
            Breaker::Open => "open",
            Breaker::HalfOpen => "half_open",
        }
    }

    fn from_pb(v: i32) -> Breaker {
        match pb::BreakerState::try_from(v) {
            Ok(pb::BreakerState::Open) => Breaker::Open,
            Ok(pb::BreakerState::HalfOpen) => Breaker::HalfOpen,
            // Unreported states count as closed: the backends' own breakers still guard calls.
            _ => Breaker::Closed,
        }
    }
}

/// Everything a decision reads.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub complexity: &'static str,
    pub category: &'static str,
    pub requires_context: bool,
    pub confidence: f64,
    pub language: String,
    pub available: bool,
    pub failure: String,
    pub turns: i64,
    /// The conversation's tier: as sent, else the tier of its pinned model.
    pub conv_tier: Option<Tier>,
    pub conv_model: String,
    pub conv_version: String,
    /// Conversation id (stable canary bucket during a rolling swap).
    pub conv_id: String,
    pub tokens: i64,
    pub plan: String,
    pub premium: bool,
    pub tenant: String,
    pub revenue_dollars: f64,
    pub load: f64,
    /// Lowest remaining fraction over every scope; 1.0 when no limit reported one.
    pub budget: f64,
    pub budget_by_scope: BTreeMap<String, f64>,
    pub breakers: BTreeMap<String, Breaker>,
    pub unavailable: Vec<String>,
}

/// `f32` confidence as the decimal the classifier meant: `0.9f32 as f64` is 0.8999999761…,
/// which would make `confidence >= 0.9` false for a reported 0.9. The shortest decimal that
/// round-trips the f32 is what operators write thresholds against.
fn confidence(c: f32) -> f64 {
    if !c.is_finite() {
        return 0.0;
    }
    c.to_string().parse::<f64>().unwrap_or(f64::from(c))
}

impl Facts {
    pub(crate) fn from_request(req: &pb::DecideRequest, catalog: &Catalog) -> Facts {
        let cls = req.classification.as_ref();
        let complexity = match cls.map(|c| pb::Complexity::try_from(c.complexity)) {
            Some(Ok(pb::Complexity::Simple)) => "simple",
            Some(Ok(pb::Complexity::Moderate)) => "moderate",
            Some(Ok(pb::Complexity::Complex)) => "complex",
            _ => "",
        };
        let category = match cls.map(|c| pb::Category::try_from(c.category)) {
            Some(Ok(pb::Category::Transactional)) => "transactional",
            Some(Ok(pb::Category::Analytical)) => "analytical",
            Some(Ok(pb::Category::Creative)) => "creative",
            _ => "",
        };
        let conv = req.conversation.clone().unwrap_or_default();
        let conv_tier = Tier::from_pb(conv.tier).or_else(|| catalog.get(&conv.model).map(|m| m.tier));
        let user = req.user.clone().unwrap_or_default();
        let sys = req.system.clone().unwrap_or_default();
        let budget_by_scope: BTreeMap<String, f64> = sys
            .budget_remaining
            .into_iter()
            // NaN would make every `budget < x` false and spend without limit: fail closed.
            .map(|(k, v)| (k, if v.is_nan() { 0.0 } else { v }))
            .collect();
        let budget = budget_by_scope.values().copied().fold(1.0_f64, f64::min);
        Facts {
            complexity,
            category,
            requires_context: cls.is_some_and(|c| c.requires_context),
            confidence: cls.map_or(0.0, |c| confidence(c.confidence)),
            language: cls.map(|c| c.language.clone()).unwrap_or_default(),
            available: cls.is_some(),
            failure: req.classifier_failure.clone(),
            turns: i64::from(conv.turns),
            conv_tier,
            conv_model: conv.model,
            conv_version: conv.model_version,
            conv_id: conv.conversation_id,
            tokens: i64::try_from(conv.tokens).unwrap_or(i64::MAX),
            plan: user.plan,
            premium: user.premium,
            tenant: req.tenant.clone(),
            // Display-precision dollars for comparisons in rules; money math never uses it.
            revenue_dollars: user.revenue_per_conversation_micros as f64 / 1_000_000.0,
            // A broken load signal is treated as saturation: degrading quality beats dropping
            // traffic (the seed's "accept degraded quality over downtime").
            load: if sys.load.is_finite() { sys.load } else { 1.0 },
            budget,
            budget_by_scope,
            breakers: sys.breakers.into_iter().map(|(k, v)| (k, Breaker::from_pb(v))).collect(),
            unavailable: sys.unavailable,
        }
    }

    /// True when the model must not be called now.
    pub(crate) fn is_down(&self, model: &str) -> Option<&'static str> {
        if self.unavailable.iter().any(|m| m == model) {
            return Some("unavailable");
        }
        (self.breakers.get(model) == Some(&Breaker::Open)).then_some("breaker open")
    }

    /// While a rolling swap serves two versions of `m`: the other one, when `version`'s
    /// breaker is open and the other's is not (the backends report both as `model@version`).
    pub(crate) fn version_around_open_breaker(&self, m: &ModelSpec, version: &str, now: SystemTime) -> Option<String> {
        let r = m.rollout.as_ref().filter(|r| now < r.drain_until)?;
        let other = match version {
            v if v == m.version => &r.previous_version,
            v if v == r.previous_version => &m.version,
            _ => return None,
        };
        let state = |v: &str| self.breakers.get(&version_key(&m.name, v)).copied().unwrap_or(Breaker::Closed);
        (state(version) == Breaker::Open && state(other) != Breaker::Open).then(|| other.clone())
    }
}

/// A request with every field set, for checking conditions at load.
pub(crate) fn sample_request(catalog: &Catalog) -> pb::DecideRequest {
    let first = catalog.iter().next().map(|m| m.name.clone()).unwrap_or_default();
    pb::DecideRequest {
        classification: Some(pb::Classification {
            complexity: pb::Complexity::Moderate as i32,
            category: pb::Category::Analytical as i32,
            requires_context: true,
            confidence: 0.5,
            language: "en".into(),
            model_version: "sample".into(),
        }),
        classifier_failure: String::new(),
        conversation: Some(pb::ConversationState {
            turns: 3,
            tier: pb::Tier::Middle as i32,
            model: first.clone(),
            model_version: "v".into(),
            tokens: 1000,
            conversation_id: String::new(),
        }),
        user: Some(pb::UserContext {
            user_id: "u".into(),
            plan: "free".into(),
            premium: false,
            revenue_per_conversation_micros: 1_000_000,
        }),
        tenant: "sample".into(),
        system: Some(pb::SystemSignals {
            load: 0.5,
            budget_remaining: [("global/day".to_owned(), 0.5)].into_iter().collect(),
            breakers: catalog.iter().map(|m| (m.name.clone(), pb::BreakerState::Closed as i32)).collect(),
            unavailable: vec![first],
        }),
        requested_model: String::new(),
    }
}
