//! One decision: the first matching rule picks a target, then the house rules apply in a
//! fixed order: caller pin, retirement, stickiness (escalation only goes up, unless a spend
//! limit forces a downgrade), availability (declared fallbacks only), free-only budgets.

use crate::facts::Facts;
use crate::load::CompiledPolicy;
use crate::rules::{Rule, Target};
use crate::{Error, Result};
use cel_interpreter::Value;
use std::sync::Arc;
use std::time::SystemTime;
use triage_core::config::Lifecycle;
use triage_core::{Catalog, ModelSpec};
use triage_proto::pb;

/// Rule id reported when the caller's `requested_model` decided.
pub const REQUESTED_MODEL_RULE: &str = "requested_model";

pub(crate) fn decide(p: &CompiledPolicy, catalog: &Catalog, req: &pb::DecideRequest) -> Result<pb::DecideResponse> {
    decide_at(p, catalog, req, SystemTime::now())
}

/// [`decide`] at a given instant: rolling version swaps depend on the clock.
pub(crate) fn decide_at(
    p: &CompiledPolicy,
    catalog: &Catalog,
    req: &pb::DecideRequest,
    now: SystemTime,
) -> Result<pb::DecideResponse> {
    let facts = Facts::from_request(req, catalog);
    let requested = match req.requested_model.as_str() {
        "" => None,
        name => Some(
            catalog
                .get(name)
                .ok_or_else(|| Error::InvalidRequest(format!("requested_model `{name}` is not a declared model")))?,
        ),
    };
    let mut warnings = Vec::new();
    let rule = first_match(p, &facts, &mut warnings)?;
    let mut d = Draft { rule_id: rule.id.clone(), reason: rule.reason.clone(), warnings };

    // The caller's pin wins over every rule except a spend limit: budgets are hard walls.
    let (target, from_request) = match requested {
        Some(m) if !rule.budget_downgrade => {
            d.rule_id = REQUESTED_MODEL_RULE.to_owned();
            d.reason = format!("caller requested `{}`", m.name);
            (Arc::clone(m), true)
        }
        Some(m) => {
            d.warnings.push(format!("requested model `{}` ignored: rule `{}` enforces a spend limit", m.name, rule.id));
            (rule_target(rule, catalog)?, false)
        }
        None => (rule_target(rule, catalog)?, false),
    };
    let mut chosen = d.resolve_retired(catalog, &target)?;
    let mut budget_downgrade = false;

    if let Some(ct) = facts.conv_tier {
        if ct > chosen.tier {
            if rule.budget_downgrade {
                budget_downgrade = true;
                d.warnings.push(format!(
                    "spend limit: conversation moved down from {ct} to {} (budget remaining {:.3})",
                    chosen.tier, facts.budget
                ));
            } else {
                // Stickiness: a conversation never moves down because one turn looks easier.
                d.reason.push_str(&format!("; kept on {ct}: a conversation never moves down a tier"));
                let pinned = catalog.get(&facts.conv_model).filter(|m| m.tier == ct);
                let lifted = match pinned {
                    Some(m) => Arc::clone(m),
                    None => catalog.get(catalog.tier_default(ct)).cloned().ok_or_else(|| no_tier_model(ct))?,
                };
                chosen = d.resolve_retired(catalog, &lifted)?;
            }
        }
        // Same tier as the pinned conversation: keep its model (no silent swaps
        // mid-conversation), unless the caller asked for a model by name.
        let pinned = catalog.get(&facts.conv_model).filter(|m| m.tier == ct);
        if let Some(pinned) = pinned.filter(|_| chosen.tier == ct && !from_request) {
            chosen = d.resolve_retired(catalog, pinned)?;
        }
    }

    if rule.free_only {
        budget_downgrade = true;
        d.warnings.push(format!("budget exhausted (remaining {:.3}): only zero-price models serve", facts.budget));
    }
    let acceptable =
        |m: &ModelSpec| !m.is_retired() && facts.is_down(&m.name).is_none() && (!rule.free_only || m.price.is_free());
    let mut chain = fallback_chain(catalog, &chosen);
    if !acceptable(&chosen) {
        let why = facts.is_down(&chosen.name).unwrap_or("not zero-price");
        if let Some(i) = chain.iter().position(|m| acceptable(m)) {
            let next = chain.remove(i);
            chain.drain(..i);
            let msg = format!("`{}` {why}: failed over to `{}` (declared fallback)", chosen.name, next.name);
            d.failover(&msg);
            chosen = next;
        } else if let Some(free) = rule.free_only.then(|| cheapest_free(catalog, &acceptable)).flatten() {
            let msg = format!(
                "`{}` {why} and no declared fallback is free: `{}` (zero-price) serves",
                chosen.name, free.name
            );
            d.failover(&msg);
            chain = fallback_chain(catalog, &free);
            chosen = free;
        } else {
            let names: Vec<&str> = chain.iter().map(|m| m.name.as_str()).collect();
            return Err(Error::NoModel(format!(
                "`{}` is {why} and no declared fallback can serve ({})",
                chosen.name,
                if names.is_empty() { "none declared".to_owned() } else { names.join(", ") }
            )));
        }
    }
    if let Lifecycle::Deprecated { replacement, sunset } = &chosen.lifecycle {
        let when = sunset.as_deref().map(|s| format!(", sunset {s}")).unwrap_or_default();
        d.warnings.push(format!("model `{}` is deprecated{when}; replacement `{replacement}`", chosen.name));
    }

    // The version: a conversation stays on the one it started on while that version drains
    // during a rolling swap; new conversations split by the canary weight.
    let pin = if chosen.name == facts.conv_model { facts.conv_version.as_str() } else { "" };
    let mut version = chosen.version_for(pin, &facts.conv_id, now);
    // One version failing mid-swap: the other serves, and a conversation pinned to the failing
    // one moves to it (the gateway hands off on any change of version) rather than leaving
    // the model for a fallback.
    if let Some(other) = facts.version_around_open_breaker(&chosen, &version.version, now) {
        let moved = !pin.is_empty() && pin != other;
        d.warnings.push(format!(
            "version `{}` of `{}` has its breaker open; version `{other}` serves{}",
            version.version,
            chosen.name,
            if moved { " (conversation moved; handoff)" } else { "" }
        ));
        version = triage_core::catalog::VersionChoice { version: other, moved_from: None };
    }
    if let Some(from) = &version.moved_from {
        d.warnings.push(format!(
            "conversation moved from `{}` version `{from}` to `{}` (the previous version finished draining); handoff",
            chosen.name, version.version
        ));
    }

    let escalation = facts.conv_tier.is_some_and(|ct| chosen.tier > ct)
        || (rule.handoff && !facts.conv_model.is_empty() && facts.conv_model != chosen.name);
    Ok(pb::DecideResponse {
        model: chosen.name.clone(),
        model_version: version.version,
        tier: chosen.tier.to_pb() as i32,
        rule_id: d.rule_id,
        reason: d.reason,
        fallbacks: chain.iter().filter(|m| acceptable(m)).map(|m| m.name.clone()).collect(),
        escalation,
        warnings: d.warnings,
        policy_version: p.version.clone(),
        budget_downgrade,
    })
}

/// The parts of the answer built up along the way.
struct Draft {
    rule_id: String,
    reason: String,
    warnings: Vec<String>,
}

impl Draft {
    /// Follows retirement to the declared replacement, saying so.
    fn resolve_retired(&mut self, catalog: &Catalog, m: &Arc<ModelSpec>) -> Result<Arc<ModelSpec>> {
        if !m.is_retired() {
            return Ok(Arc::clone(m));
        }
        let r = catalog
            .resolve_retired(&m.name)
            .ok_or_else(|| Error::NoModel(format!("`{}` is retired and its replacement is not declared", m.name)))?;
        self.warnings.push(format!("model `{}` is retired; its replacement `{}` serves", m.name, r.name));
        Ok(Arc::clone(r))
    }

    fn failover(&mut self, msg: &str) {
        self.reason.push_str("; ");
        self.reason.push_str(msg);
        self.warnings.push(msg.to_owned());
    }
}

fn no_tier_model(t: triage_core::Tier) -> Error {
    Error::NoModel(format!("the default model of tier {t} is not declared"))
}

fn rule_target(rule: &Rule, catalog: &Catalog) -> Result<Arc<ModelSpec>> {
    let name = match &rule.target {
        Target::Tier(t) => catalog.tier_default(*t),
        Target::Model(m) => m.as_str(),
    };
    catalog.get(name).cloned().ok_or_else(|| Error::NoModel(format!("rule `{}`: `{name}` is not declared", rule.id)))
}

/// First rule whose condition is true. A condition that errors (a missing map key, say) does
/// not match and is reported, so one odd input never blocks routing.
fn first_match<'p>(p: &'p CompiledPolicy, facts: &Facts, warnings: &mut Vec<String>) -> Result<&'p Rule> {
    let ctx = p.env.context(facts);
    for rule in &p.rules {
        match rule.program.execute(&ctx) {
            Ok(Value::Bool(true)) => return Ok(rule),
            Ok(Value::Bool(false)) => {}
            Ok(v) => {
                warnings.push(format!("rule `{}` skipped: `when` gave {} instead of a bool", rule.id, v.type_of()))
            }
            Err(e) => {
                tracing::debug!(rule = %rule.id, error = %e, "policy condition failed; rule skipped");
                warnings.push(format!("rule `{}` skipped: {e}", rule.id));
            }
        }
    }
    Err(Error::Evaluation { rule: crate::load::DEFAULT_RULE_ID.into(), reason: "no rule matched".into() })
}

/// The declared fallbacks of `m`, transitively and breadth first (its own list in order, then
/// theirs), without repeats; retired entries are replaced by their declared replacement. Only
/// declared models can appear: failover never drops to an undeclared one.
pub(crate) fn fallback_chain(catalog: &Catalog, m: &ModelSpec) -> Vec<Arc<ModelSpec>> {
    let mut out: Vec<Arc<ModelSpec>> = Vec::new();
    let mut queue: std::collections::VecDeque<&str> = m.fallbacks.iter().map(String::as_str).collect();
    while let Some(name) = queue.pop_front() {
        let Some(spec) = catalog.resolve_retired(name) else {
            continue;
        };
        if spec.name == m.name || out.iter().any(|o| o.name == spec.name) {
            continue;
        }
        out.push(Arc::clone(spec));
        if let Some(declared) = catalog.get(name) {
            queue.extend(declared.fallbacks.iter().map(String::as_str));
        }
    }
    out
}

/// Cheapest-tier free model that can serve, by name within a tier (deterministic).
fn cheapest_free(catalog: &Catalog, ok: &dyn Fn(&ModelSpec) -> bool) -> Option<Arc<ModelSpec>> {
    catalog
        .iter()
        .filter(|m| m.price.is_free() && ok(m))
        .min_by(|a, b| (a.tier, &a.name).cmp(&(b.tier, &b.name)))
        .cloned()
}
