//! Time and alert hooks, injectable so tests can move to the next hour and observe alerts.

use crate::window::Window;
use std::sync::atomic::{AtomicI64, Ordering};
use triage_core::Micros;
use triage_proto::pb;

/// Source of the current time for windows and reservation deadlines.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_unix_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ms(&self) -> i64 {
        triage_core::now_unix_ms()
    }
}

/// A clock that only moves when told to (tests, replays).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Starts at `unix_ms`.
    pub fn new(unix_ms: i64) -> Self {
        Self(AtomicI64::new(unix_ms))
    }

    /// Jumps to `unix_ms`.
    pub fn set(&self, unix_ms: i64) {
        self.0.store(unix_ms, Ordering::SeqCst);
    }

    /// Moves forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A scope's remaining budget fell below `alert_remaining_fraction`.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetAlert {
    /// Scope.
    pub scope: pb::Scope,
    /// Window.
    pub window: Window,
    /// Window instance (`2025-03-14`).
    pub window_id: String,
    /// The limit.
    pub limit: Micros,
    /// Spent plus reserved when the alert fired.
    pub used: Micros,
    /// Fraction left, 0..1 (display only; decisions use integers).
    pub remaining_fraction: f64,
    /// When the window resets, ms since the Unix epoch.
    pub resets_at_unix_ms: i64,
}

/// Receives budget alerts. The ledger always logs a warning too (and counts and posts
/// threshold alerts itself).
pub trait AlertHook: Send + Sync + 'static {
    /// Called when the remaining fraction first drops below `alert_remaining_fraction`, once
    /// per scope and window instance per ledger instance.
    fn budget_low(&self, alert: &BudgetAlert);

    /// Called when a commit carries committed spend across a configured threshold, once per
    /// scope, window instance and threshold across every ledger instance.
    fn threshold_crossed(&self, _alert: &crate::ThresholdAlert) {}
}

/// A hook that does nothing beyond the ledger's own log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAlertHook;

impl AlertHook for NoAlertHook {
    fn budget_low(&self, _alert: &BudgetAlert) {}
}
