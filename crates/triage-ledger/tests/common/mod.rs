//! Shared helpers of the ledger tests: every test talks to a real redis-server.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use triage_core::config::{FailMode, LedgerConfig, LimitConfig, Window};
use triage_ledger::{AlertHook, BudgetAlert, LedgerOptions, ManualClock, RedisLedger, RedisTarget, ThresholdAlert};
use triage_proto::pb;

/// 2025-03-14T09:30:00Z.
pub const T0: i64 = 1_741_944_600_000;
/// 2025-03-14T10:00:00Z.
pub const T0_NEXT_HOUR: i64 = 1_741_946_400_000;
/// 2025-03-15T00:00:00Z.
pub const T0_NEXT_DAY: i64 = 1_741_996_800_000;
pub const MINUTE: i64 = 60_000;

pub fn limit(scope: &str, id: Option<&str>, window: Window, micros: i64) -> LimitConfig {
    LimitConfig { scope: scope.into(), id: id.map(Into::into), window, limit_micros: micros }
}

pub fn config(limits: Vec<LimitConfig>, fail_mode: FailMode) -> LedgerConfig {
    LedgerConfig { limits, fail_mode, ..LedgerConfig::default() }
}

pub fn scope(kind: &str, id: &str) -> pb::Scope {
    pb::Scope { kind: kind.into(), id: id.into() }
}

/// What the gateway sends: global, tenant, user, model, conversation.
pub fn scopes(tenant: &str, user: &str, model: &str, conversation: &str) -> Vec<pb::Scope> {
    vec![
        scope("global", ""),
        scope("tenant", tenant),
        scope("user", &format!("{tenant}:{user}")),
        scope("model", model),
        scope("conversation", &format!("{tenant}:{conversation}")),
    ]
}

pub fn reserve(id: &str, amount: i64, scopes: Vec<pb::Scope>) -> pb::ReserveRequest {
    pb::ReserveRequest { request_id: id.into(), scopes, amount_micros: amount, model: "fast".into() }
}

pub fn commit(id: &str, actual: i64) -> pb::CommitRequest {
    pb::CommitRequest {
        request_id: id.into(),
        actual_micros: actual,
        conversation_id: "c1".into(),
        model: "fast".into(),
        revenue_micros: None,
    }
}

/// A commit carrying the conversation's revenue.
pub fn commit_with_revenue(id: &str, actual: i64, revenue: i64) -> pb::CommitRequest {
    pb::CommitRequest { revenue_micros: Some(revenue), ..commit(id, actual) }
}

pub fn release(id: &str) -> pb::ReleaseRequest {
    pb::ReleaseRequest { request_id: id.into() }
}

/// Collects alerts: budget-low ones, then threshold crossings.
#[derive(Default)]
pub struct Alerts(pub Mutex<Vec<BudgetAlert>>, pub Mutex<Vec<ThresholdAlert>>);

impl AlertHook for Alerts {
    fn budget_low(&self, alert: &BudgetAlert) {
        self.0.lock().unwrap().push(alert.clone());
    }

    fn threshold_crossed(&self, alert: &ThresholdAlert) {
        self.1.lock().unwrap().push(alert.clone());
    }
}

/// A ledger on `url` with a manual clock at `T0`.
pub fn ledger_at(
    target: impl Into<RedisTarget>,
    cfg: &LedgerConfig,
    prefix: &str,
) -> (RedisLedger, Arc<ManualClock>, Arc<Alerts>) {
    let clock = Arc::new(ManualClock::new(T0));
    let alerts = Arc::new(Alerts::default());
    let opts = LedgerOptions { clock: clock.clone(), alert_hook: alerts.clone(), op_timeout: Duration::from_secs(2) };
    (RedisLedger::with_options(target, cfg, prefix, opts).unwrap(), clock, alerts)
}

/// One spend row.
pub async fn row(l: &RedisLedger, kind: &str, id: &str, window: &str) -> pb::ScopeSpend {
    use triage_ledger::Ledger;
    let r = l.spend(pb::SpendRequest { kind: kind.into(), id: id.into(), window: window.into() }).await.unwrap();
    assert_eq!(r.rows.len(), 1, "{r:?}");
    r.rows.into_iter().next().unwrap()
}

/// (spent, reserved) of a scope in a window.
pub async fn totals(l: &RedisLedger, kind: &str, id: &str, window: &str) -> (i64, i64) {
    let r = row(l, kind, id, window).await;
    (r.spent_micros, r.reserved_micros)
}
