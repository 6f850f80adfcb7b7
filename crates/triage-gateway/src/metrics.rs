//! What the gateway records in the process-wide Prometheus registry after each Route.

use crate::signals::Snapshot;
use std::collections::HashMap;
use triage_core::Tier;
use triage_core::metrics::{self as m, global};
use triage_proto::pb;

/// A finished Route: shares, latencies, cost, escalations, failovers, classifier outcome.
pub(crate) fn route(rec: &pb::DecisionRecord, new_conversation: bool) {
    let g = global();
    let tier = Tier::from_pb(rec.tier).map(|t| t.as_str()).unwrap_or("unknown");
    g.routes
        .get_or_create(&m::RouteLabels { model: rec.model.clone(), tier: tier.into(), rule: rec.rule_id.clone() })
        .inc();
    for s in &rec.steps {
        let secs = s.duration_us as f64 / 1e6;
        g.step_seconds.get_or_create(&m::StepLabel { step: s.step.clone() }).observe(secs);
        if s.step == "generate" {
            g.model_seconds.get_or_create(&m::ModelLabel { model: rec.model.clone() }).observe(secs);
        }
    }
    if let Ok(cost) = u64::try_from(rec.cost_micros) {
        g.cost_micros.get_or_create(&m::ModelLabel { model: rec.model.clone() }).inc_by(cost);
        g.answer_cost_micros.observe(cost as f64);
    }
    let tenant = m::TenantLabel { tenant: rec.tenant.clone() };
    g.turns.get_or_create(&tenant).inc();
    if new_conversation {
        g.conversations_started.get_or_create(&tenant).inc();
    }
    if rec.escalated {
        g.escalations
            .get_or_create(&m::ModelTenantLabels { model: rec.model.clone(), tenant: rec.tenant.clone() })
            .inc();
    }
    if rec.downgraded {
        g.downgrades.get_or_create(&m::DowngradeLabels { from: rec.chosen_model.clone(), to: rec.model.clone() }).inc();
    }
    classifier(&rec.classifier_outcome);
}

/// A classifier outcome (ok, cache_hit, classifier_timeout, classifier_unavailable).
pub(crate) fn classifier(outcome: &str) {
    if !outcome.is_empty() {
        global().classifier_outcomes.get_or_create(&m::OutcomeLabel { outcome: outcome.into() }).inc();
    }
}

/// A failed Route.
pub(crate) fn route_error(code: tonic::Code) {
    global().route_errors.get_or_create(&m::OutcomeLabel { outcome: format!("{code:?}") }).inc();
}

/// Breaker states and budgets as the policy saw them. Only global, tenant and model scopes
/// become labels: user and conversation ids would make the label set unbounded.
pub(crate) fn signals(models: &Snapshot, budget: &HashMap<String, f64>) {
    let g = global();
    // Per-version keys (`model@version`) exist only while a swap drains: as gauges they would
    // keep their last value after it, so the model's own key (the better version) is exported.
    for (model, state) in models.breakers.iter().filter(|(k, _)| !k.contains('@')) {
        let v = match pb::BreakerState::try_from(*state) {
            Ok(pb::BreakerState::Open) => 2,
            Ok(pb::BreakerState::HalfOpen) => 1,
            _ => 0,
        };
        g.breaker_state.get_or_create(&m::ModelLabel { model: model.clone() }).set(v);
    }
    for (scope, remaining) in budget {
        if scope.starts_with("global/") || scope.starts_with("tenant:") || scope.starts_with("model:") {
            g.budget_remaining.get_or_create(&m::ScopeLabel { scope: scope.clone() }).set(*remaining);
        }
    }
}

/// Caller feedback on an answer by `model`.
pub(crate) fn feedback(model: &str, fb: &pb::FeedbackRequest) {
    let g = global();
    let outcome = |o: &str| {
        g.feedback.get_or_create(&m::FeedbackLabels { model: model.into(), outcome: o.into() }).inc();
    };
    match fb.resolved {
        Some(true) => outcome("resolved"),
        Some(false) => outcome("unresolved"),
        None => {}
    }
    if fb.escalated_to_human {
        outcome("escalated_to_human");
    }
    if let Some(s) = fb.satisfaction {
        g.satisfaction.get_or_create(&m::ModelLabel { model: model.into() }).observe(f64::from(s));
    }
}

/// Counts a request in flight until dropped.
pub(crate) struct InFlightGauge;

impl InFlightGauge {
    pub(crate) fn enter() -> InFlightGauge {
        global().in_flight.inc();
        InFlightGauge
    }
}

impl Drop for InFlightGauge {
    fn drop(&mut self) {
        global().in_flight.dec();
    }
}
