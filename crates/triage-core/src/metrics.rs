//! Prometheus metrics of every service, in one process-wide registry, served at `/metrics`
//! on each process's gRPC port. Labels are bounded: models, tiers, rules, steps, tenants
//! (configured) and scope kinds; never conversation, request or user ids.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

/// Labels naming a model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    /// Declared model name.
    pub model: String,
}

/// Labels of a routed request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Model that answered.
    pub model: String,
    /// Its tier.
    pub tier: String,
    /// Policy rule that fired.
    pub rule: String,
}

/// A step of the request flow.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabel {
    /// Step name (context_get, classify, policy, reserve, generate, commit, append, handoff).
    pub step: String,
}

/// An outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// What happened.
    pub outcome: String,
}

/// Model and tenant.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelTenantLabels {
    /// Model.
    pub model: String,
    /// Tenant.
    pub tenant: String,
}

/// A tenant.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    /// Tenant.
    pub tenant: String,
}

/// A failover from one model to another.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DowngradeLabels {
    /// Model the policy chose.
    pub from: String,
    /// Model that answered.
    pub to: String,
}

/// A budget scope and window (`tenant:acme/day`); only global, tenant and model scopes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabel {
    /// Scope and window.
    pub scope: String,
}

/// A budget threshold alert: scope kind (never the id), window and threshold.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetAlertLabels {
    /// `global`, `tenant`, `user`, `model` or `conversation`.
    pub scope_kind: String,
    /// `hour`, `day` or `month`.
    pub window: String,
    /// Configured fraction of the limit (`0.8`).
    pub threshold: String,
}

/// Feedback on a model's answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedbackLabels {
    /// Model that answered.
    pub model: String,
    /// `resolved`, `unresolved` or `escalated_to_human`.
    pub outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs .. ~100 s: covers a cache hit and a slow frontier call alike.
    Histogram::new(exponential_buckets(0.0001, 2.5, 16))
}

fn satisfaction_histogram() -> Histogram {
    Histogram::new(linear_buckets(0.0, 1.0, 11))
}

fn cost_histogram() -> Histogram {
    // Micro-dollars per answer: 1 µ$ .. ~$1.
    Histogram::new(exponential_buckets(1.0, 4.0, 11))
}

/// Every Triage metric.
pub struct Metrics {
    registry: Registry,
    /// Routed requests by answering model, tier and rule.
    pub routes: Family<RouteLabels, Counter>,
    /// Failed routes by gRPC code.
    pub route_errors: Family<OutcomeLabel, Counter>,
    /// Step latency.
    pub step_seconds: HistogramFamily<StepLabel>,
    /// Generation latency by answering model.
    pub model_seconds: HistogramFamily<ModelLabel>,
    /// Money spent by model, micro-dollars.
    pub cost_micros: Family<ModelLabel, Counter>,
    /// Cost of single answers, micro-dollars.
    pub answer_cost_micros: Histogram,
    /// Conversations started, by tenant (cost per conversation = cost / conversations).
    pub conversations_started: Family<TenantLabel, Counter>,
    /// Turns answered, by tenant (escalation rate = escalations / turns).
    pub turns: Family<TenantLabel, Counter>,
    /// Escalations by new model and tenant.
    pub escalations: Family<ModelTenantLabels, Counter>,
    /// Failovers from the chosen model to the one that answered.
    pub downgrades: Family<DowngradeLabels, Counter>,
    /// Classifier outcomes: ok, cache_hit, classifier_timeout, classifier_unavailable.
    pub classifier_outcomes: Family<OutcomeLabel, Counter>,
    /// Circuit breaker state per model: 0 closed, 1 half-open, 2 open.
    pub breaker_state: Family<ModelLabel, Gauge>,
    /// Remaining budget fraction per scope and window.
    pub budget_remaining: Family<ScopeLabel, Gauge<f64, AtomicU64>>,
    /// Policy reloads rejected (the last good policy kept serving).
    pub policy_reload_failures: Counter,
    /// Replies whose provider-reported model differs from the pin.
    pub version_drift: Family<ModelLabel, Counter>,
    /// Calls to deprecated models.
    pub deprecated_calls: Family<ModelLabel, Counter>,
    /// Feedback by model and outcome (resolution rate = resolved / all).
    pub feedback: Family<FeedbackLabels, Counter>,
    /// User satisfaction 0..10 by model.
    pub satisfaction: HistogramFamily<ModelLabel>,
    /// Requests in flight in the gateway.
    pub in_flight: Gauge,
    /// Budget threshold alerts fired (once per scope, window instance and threshold).
    pub budget_alerts: Family<BudgetAlertLabels, Counter>,
    /// Budget alert webhook POSTs that failed (error, timeout or non-2xx).
    pub budget_alert_webhook_failures: Counter,
    /// Decision records not written to the JSONL files because the writer fell behind.
    pub decision_log_dropped: Counter,
    /// Log lines the log writer dropped (its queue full: stderr's reader fell behind);
    /// brought up to the writer's own count each time the metrics are read.
    pub log_lines_dropped: Counter,
}

impl Metrics {
    fn new() -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            routes: Family::default(),
            route_errors: Family::default(),
            step_seconds: Family::new_with_constructor(latency_histogram),
            model_seconds: Family::new_with_constructor(latency_histogram),
            cost_micros: Family::default(),
            answer_cost_micros: cost_histogram(),
            conversations_started: Family::default(),
            turns: Family::default(),
            escalations: Family::default(),
            downgrades: Family::default(),
            classifier_outcomes: Family::default(),
            breaker_state: Family::default(),
            budget_remaining: Family::default(),
            policy_reload_failures: Counter::default(),
            version_drift: Family::default(),
            deprecated_calls: Family::default(),
            feedback: Family::default(),
            satisfaction: Family::new_with_constructor(satisfaction_histogram),
            in_flight: Gauge::default(),
            budget_alerts: Family::default(),
            budget_alert_webhook_failures: Counter::default(),
            decision_log_dropped: Counter::default(),
            log_lines_dropped: Counter::default(),
            registry: Registry::default(),
        };
        r.register("triage_routes", "Routed requests by answering model, tier and rule", m.routes.clone());
        r.register("triage_route_errors", "Failed routes by gRPC code", m.route_errors.clone());
        r.register("triage_step_duration_seconds", "Duration of each step of the request flow", m.step_seconds.clone());
        r.register("triage_model_duration_seconds", "Generation duration by answering model", m.model_seconds.clone());
        r.register("triage_cost_micros", "Money spent by model, micro-dollars", m.cost_micros.clone());
        r.register("triage_answer_cost_micros", "Cost of single answers, micro-dollars", m.answer_cost_micros.clone());
        r.register("triage_conversations_started", "Conversations started by tenant", m.conversations_started.clone());
        r.register("triage_turns", "Turns answered by tenant", m.turns.clone());
        r.register("triage_escalations", "Escalations by new model and tenant", m.escalations.clone());
        r.register(
            "triage_downgrades",
            "Failovers from the chosen model to the one that answered",
            m.downgrades.clone(),
        );
        r.register(
            "triage_classifier_outcomes",
            "Classifier outcomes (ok, cache_hit, timeout, unavailable)",
            m.classifier_outcomes.clone(),
        );
        r.register(
            "triage_breaker_state",
            "Circuit breaker per model: 0 closed, 1 half-open, 2 open",
            m.breaker_state.clone(),
        );
        r.register(
            "triage_budget_remaining_ratio",
            "Remaining budget fraction per scope and window",
            m.budget_remaining.clone(),
        );
        r.register(
            "triage_policy_reload_failures",
            "Policy reloads rejected; the last good policy kept serving",
            m.policy_reload_failures.clone(),
        );
        r.register(
            "triage_model_version_drift",
            "Replies whose reported model differs from the pinned version",
            m.version_drift.clone(),
        );
        r.register("triage_deprecated_model_calls", "Calls to deprecated models", m.deprecated_calls.clone());
        r.register("triage_feedback", "Caller feedback by model and outcome", m.feedback.clone());
        r.register("triage_satisfaction", "User satisfaction (0-10) by model", m.satisfaction.clone());
        r.register("triage_in_flight_requests", "Requests in flight in the gateway", m.in_flight.clone());
        r.register(
            "triage_budget_alerts",
            "Budget threshold alerts by scope kind, window and threshold",
            m.budget_alerts.clone(),
        );
        r.register(
            "triage_budget_alert_webhook_failures",
            "Budget alert webhook POSTs that failed",
            m.budget_alert_webhook_failures.clone(),
        );
        r.register(
            "triage_decision_log_dropped",
            "Decision records dropped from the JSONL files (writer behind)",
            m.decision_log_dropped.clone(),
        );
        r.register(
            "triage_log_lines_dropped",
            "Log lines dropped because stderr's reader fell behind (the request path never waits for logs)",
            m.log_lines_dropped.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// The text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        if let Some(drops) = LOG_DROPS.get() {
            // fetch_max: two scrapes at once cannot add the same drops twice.
            let dropped = drops.dropped_lines() as u64;
            self.log_lines_dropped.inner().fetch_max(dropped, std::sync::atomic::Ordering::Relaxed);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The log writer's count of dropped lines (see [`crate::telemetry::log_writer`]).
static LOG_DROPS: OnceLock<tracing_appender::non_blocking::ErrorCounter> = OnceLock::new();

/// Exports the dropped lines of the process's log writer as `triage_log_lines_dropped_total`;
/// the first writer given wins (a process has one).
pub fn watch_log_drops(counter: tracing_appender::non_blocking::ErrorCounter) {
    let _ = LOG_DROPS.set(counter);
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// `GET /metrics`, merged into every gRPC port (HTTP/1.1 accepted there too).
pub fn router() -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                global().encode(),
            )
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_names_with_bounded_labels() {
        let m = global();
        m.routes.get_or_create(&RouteLabels { model: "a".into(), tier: "fast".into(), rule: "r".into() }).inc();
        m.step_seconds.get_or_create(&StepLabel { step: "classify".into() }).observe(0.002);
        let text = m.encode();
        assert!(text.contains("triage_routes_total{model=\"a\",tier=\"fast\",rule=\"r\"} 1"), "{text}");
        assert!(text.contains("triage_step_duration_seconds_bucket{"), "{text}");
        assert!(text.contains("# EOF"));
    }
}
