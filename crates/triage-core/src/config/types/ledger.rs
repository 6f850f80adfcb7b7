//! Spend windows, hard limits, the ledger and its budget alerts.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the ledger does when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Let calls through, count the unaccounted spend, reconcile after recovery.
    Open,
    /// Refuse paid calls.
    Closed,
}

/// A spend window (UTC calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Calendar hour.
    Hour,
    /// Calendar day.
    Day,
    /// Calendar month.
    Month,
}

impl Window {
    /// Every window.
    pub const ALL: [Window; 3] = [Window::Hour, Window::Day, Window::Month];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
        }
    }
}

/// A hard spend limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// `global`, `tenant`, `user`, `model` or `conversation`.
    pub scope: String,
    /// Id within the scope kind; absent applies the limit to every id of the kind.
    #[serde(default)]
    pub id: Option<String>,
    /// Window.
    pub window: Window,
    /// Limit, micro-dollars.
    pub limit_micros: i64,
}

/// Ledger service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// Hard limits.
    pub limits: Vec<LimitConfig>,
    /// Behaviour when Redis is down.
    pub fail_mode: FailMode,
    /// Reservations of a crashed gateway expire after this.
    #[serde(with = "humantime_serde")]
    pub reservation_ttl: Duration,
    /// Remaining fraction below which an alert fires (log and metric).
    pub alert_remaining_fraction: f64,
    /// Alerts when committed spend crosses fractions of a limit.
    pub alerts: BudgetAlertsConfig,
    /// How long a reading of a limited counter may serve as the budget signal (Limits)
    /// before Redis is read again; 0 reads Redis every time. Hard limits never use it.
    #[serde(with = "humantime_serde")]
    pub signal_max_age: Duration,
    /// How often each gateway sets a limited day or month counter again from the scope's
    /// hour counters (besides its first use of it): how long gateways whose configurations
    /// disagree on a limit may undercount. Each time costs a read of the window's hours.
    #[serde(with = "humantime_serde")]
    pub reseed_interval: Duration,
    /// How long a conversation's whole-life cost, requests and revenue (its margin) are kept
    /// after its last commit: 136 bytes of Redis per conversation for this long.
    #[serde(with = "humantime_serde")]
    pub conversation_retention: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            limits: Vec::new(),
            fail_mode: FailMode::Closed,
            reservation_ttl: Duration::from_secs(300),
            alert_remaining_fraction: 0.2,
            alerts: BudgetAlertsConfig::default(),
            signal_max_age: Duration::from_millis(250),
            reseed_interval: Duration::from_secs(600),
            conversation_retention: Duration::from_secs(90 * 86_400),
        }
    }
}

/// Budget threshold alerts: fired once per scope, window instance and threshold (across
/// every gateway) when a commit carries a scope's spend past `threshold x limit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetAlertsConfig {
    /// Fractions of each configured limit, each in (0, 1], ascending, no repeats.
    pub thresholds: Vec<f64>,
    /// Where alerts are POSTed as JSON, besides the log line and the metric.
    pub webhook: Option<AlertWebhookConfig>,
}

impl Default for BudgetAlertsConfig {
    fn default() -> Self {
        Self { thresholds: vec![0.5, 0.8, 1.0], webhook: None }
    }
}

/// A webhook receiving budget alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertWebhookConfig {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Bound on one POST; a failed POST is logged and counted, never retried.
    #[serde(with = "humantime_serde", default = "default_webhook_timeout")]
    pub timeout: Duration,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(5)
}
