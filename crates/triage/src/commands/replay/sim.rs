//! The replay itself: every query decided by the policy as the gateway would, with no
//! model call. Conversations (lines sharing a `conversation_id`) are replayed in order,
//! carrying turns and the pinned tier and model, so stickiness and escalations count as
//! they would in production.

use super::input::Entry;
use anyhow::{Context as _, Result};
use std::collections::{BTreeMap, HashMap};
use triage_core::{Catalog, Micros, Tier};
use triage_policy::LocalPolicy;
use triage_proto::pb;

/// Output tokens assumed when a line does not say: the seed's average reply.
pub const DEFAULT_TOKENS_OUT: u64 = 180;

/// One decided query.
#[derive(Debug, Clone)]
pub struct Decided {
    pub id: String,
    pub model: String,
    pub tier: Tier,
    pub rule: String,
    pub escalation: bool,
    pub cost: Micros,
    pub frontier_cost: Micros,
    /// True complexity (label, else the classifier's own).
    pub truth: Option<pb::Complexity>,
}

/// Everything a replay found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub queries: Vec<Decided>,
    pub baseline_model: String,
}

#[derive(Debug, Default)]
struct ConvState {
    turns: u32,
    tier: i32,
    model: String,
    version: String,
    tokens: u64,
}

/// Input tokens: as logged, else about one token per 3 bytes of everything the prompt
/// carries (query and history), the usual ratio for English and Romance languages.
pub fn tokens_in(e: &Entry) -> u64 {
    e.tokens_in.unwrap_or_else(|| {
        let bytes = e.query.len() + e.history.iter().map(|m| m.content.len()).sum::<usize>();
        (bytes as u64).div_ceil(3).max(1)
    })
}

/// Decides every entry in order. Entries must be classified (lines without labels go to the
/// policy's classifier-failure rule, which is what production does with them too).
pub fn replay(policy: &LocalPolicy, entries: &[Entry]) -> Result<Outcome> {
    let catalog_now = policy.catalog();
    let catalog: &Catalog = &catalog_now;
    let baseline = catalog.frontier_baseline().context("no frontier model declared: nothing to compare against")?;
    let mut convs: HashMap<&str, ConvState> = HashMap::new();
    let mut queries = Vec::with_capacity(entries.len());
    for e in entries {
        let mut single = ConvState::default();
        let state = match &e.conversation_id {
            Some(c) => convs.entry(c.as_str()).or_default(),
            None => &mut single,
        };
        // A logged history longer than what this replay has seen is the truer count.
        state.turns = state.turns.max(e.history.len() as u32);
        let req = pb::DecideRequest {
            classification: e.classification.clone(),
            classifier_failure: if e.classification.is_none() {
                "classifier_unavailable".into()
            } else {
                String::new()
            },
            conversation: Some(pb::ConversationState {
                turns: state.turns,
                tier: state.tier,
                model: state.model.clone(),
                model_version: state.version.clone(),
                tokens: state.tokens,
                conversation_id: e.conversation_id.clone().unwrap_or_default(),
            }),
            user: Some(pb::UserContext {
                premium: e.premium,
                plan: if e.premium { "premium".into() } else { "free".into() },
                ..Default::default()
            }),
            tenant: "replay".into(),
            // What-if at nominal load and full budgets: the question is what the rules do
            // with the traffic, not with one incident's signals.
            system: Some(pb::SystemSignals { load: 0.0, ..Default::default() }),
            requested_model: String::new(),
        };
        let d = policy.decide_now(&req).with_context(|| format!("query {}", e.id))?;
        let spec = catalog.get(&d.model).with_context(|| format!("query {}: undeclared model `{}`", e.id, d.model))?;
        let (tin, tout) = (tokens_in(e), e.tokens_out.unwrap_or(DEFAULT_TOKENS_OUT));
        state.turns += 2;
        state.tier = spec.tier.to_pb() as i32;
        state.model = d.model.clone();
        state.version = d.model_version.clone();
        state.tokens += tin + tout;
        queries.push(Decided {
            id: e.id.clone(),
            model: d.model,
            tier: spec.tier,
            rule: d.rule_id,
            escalation: d.escalation,
            cost: spec.price.cost(tin, tout),
            frontier_cost: baseline.price.cost(tin, tout),
            truth: e
                .expected
                .or_else(|| e.classification.as_ref().and_then(|c| pb::Complexity::try_from(c.complexity).ok())),
        });
    }
    Ok(Outcome { queries, baseline_model: baseline.name.clone() })
}

impl Outcome {
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    fn share(&self, n: usize) -> f64 {
        if self.queries.is_empty() { 0.0 } else { n as f64 / self.queries.len() as f64 }
    }

    /// Share of queries per tier; every tier present, even at zero.
    pub fn share_by_tier(&self) -> BTreeMap<&'static str, f64> {
        [Tier::Fast, Tier::Middle, Tier::Frontier]
            .into_iter()
            .map(|t| (t.as_str(), self.share(self.queries.iter().filter(|q| q.tier == t).count())))
            .collect()
    }

    /// Queries per model, with its tier.
    pub fn count_by_model(&self) -> BTreeMap<&str, (Tier, usize)> {
        let mut m: BTreeMap<&str, (Tier, usize)> = BTreeMap::new();
        for q in &self.queries {
            m.entry(q.model.as_str()).or_insert((q.tier, 0)).1 += 1;
        }
        m
    }

    pub fn share_by_model(&self) -> BTreeMap<&str, f64> {
        self.count_by_model().into_iter().map(|(k, (_, n))| (k, self.share(n))).collect()
    }

    /// Queries per rule, most frequent first.
    pub fn count_by_rule(&self) -> Vec<(&str, usize)> {
        let mut m: BTreeMap<&str, usize> = BTreeMap::new();
        for q in &self.queries {
            *m.entry(q.rule.as_str()).or_default() += 1;
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    pub fn cost(&self) -> Micros {
        self.queries.iter().fold(Micros::ZERO, |a, q| a.saturating_add(q.cost))
    }

    pub fn frontier_cost(&self) -> Micros {
        self.queries.iter().fold(Micros::ZERO, |a, q| a.saturating_add(q.frontier_cost))
    }

    /// Dollars per 1,000 queries.
    pub fn cost_per_1k_usd(&self) -> f64 {
        if self.queries.is_empty() { 0.0 } else { self.cost().dollars() * 1000.0 / self.queries.len() as f64 }
    }

    pub fn frontier_per_1k_usd(&self) -> f64 {
        if self.queries.is_empty() { 0.0 } else { self.frontier_cost().dollars() * 1000.0 / self.queries.len() as f64 }
    }

    /// Cost over the all-frontier baseline (0.17 = 17 % of it).
    pub fn cost_vs_all_frontier(&self) -> f64 {
        let f = self.frontier_cost().0;
        if f == 0 { 0.0 } else { self.cost().0 as f64 / f as f64 }
    }

    pub fn escalations(&self) -> usize {
        self.queries.iter().filter(|q| q.escalation).count()
    }

    /// Escalations over queries: the share of turns that moved a conversation up a tier.
    pub fn escalation_rate(&self) -> f64 {
        self.share(self.escalations())
    }

    /// (truly complex queries, how many of them stayed off the fast tier).
    pub fn complex_kept_off_fast(&self) -> (usize, usize) {
        let complex: Vec<_> = self.queries.iter().filter(|q| q.truth == Some(pb::Complexity::Complex)).collect();
        let kept = complex.iter().filter(|q| q.tier != Tier::Fast).count();
        (complex.len(), kept)
    }

    /// Share of truly complex queries kept off the fast tier (1.0 when there are none).
    pub fn complex_kept_share(&self) -> f64 {
        let (n, kept) = self.complex_kept_off_fast();
        if n == 0 { 1.0 } else { kept as f64 / n as f64 }
    }
}
