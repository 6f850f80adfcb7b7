//! Configured hard limits and the integer arithmetic around them.

use crate::window::{Span, Window, format_utc};
use crate::{Error, Result};
use std::collections::HashMap;
use triage_core::Micros;
use triage_core::config::LimitConfig;

/// Largest amount or limit accepted, micro-dollars ($1e9). The scripts compare sums as Lua
/// numbers (doubles), exact below 2^53 ~ 9e15; capping each term at 1e15 keeps
/// spent + reserved + amount exact for any realistic window (Redis stores the counters
/// themselves as exact 64-bit integers via HINCRBY).
pub const MAX_MICROS: i64 = 1_000_000_000_000_000;

/// The limits of one ledger, looked up per scope and window.
#[derive(Debug, Clone, Default)]
pub struct LimitTable {
    specific: HashMap<(String, String, Window), i64>,
    generic: HashMap<(String, Window), i64>,
}

impl LimitTable {
    /// Indexes the configured limits. A limit with an id overrides the kind-wide one for that
    /// id (a big tenant may get a higher cap than the default per-tenant cap); two limits for
    /// the same scope and window keep the tighter one.
    pub fn new(limits: &[LimitConfig]) -> Result<Self> {
        let mut t = LimitTable::default();
        for l in limits {
            crate::keys::check_kind(&l.scope).map_err(|e| Error::Config(e.to_string()))?;
            if !(0..=MAX_MICROS).contains(&l.limit_micros) {
                return Err(Error::Config(format!(
                    "limit {} micros for {} is outside 0..={MAX_MICROS}",
                    l.limit_micros, l.scope
                )));
            }
            let slot = match &l.id {
                Some(id) if l.scope != "global" => t.specific.entry((l.scope.clone(), id.clone(), l.window)),
                _ => {
                    let v = t.generic.entry((l.scope.clone(), l.window)).or_insert(l.limit_micros);
                    *v = (*v).min(l.limit_micros);
                    continue;
                }
            };
            let v = slot.or_insert(l.limit_micros);
            *v = (*v).min(l.limit_micros);
        }
        Ok(t)
    }

    /// The limit on `kind:id` in `window`, if any.
    pub fn get(&self, kind: &str, id: &str, window: Window) -> Option<i64> {
        self.specific
            .get(&(kind.to_string(), id.to_string(), window))
            .or_else(|| self.generic.get(&(kind.to_string(), window)))
            .copied()
    }

    /// True when no limit is configured at all.
    pub fn is_empty(&self) -> bool {
        self.specific.is_empty() && self.generic.is_empty()
    }
}

/// True when reserving `amount` on top of `used` (spent + reserved) stays within `limit`.
/// Exactly the check the reserve script makes; reaching the limit exactly is allowed.
pub fn fits(used: i64, amount: i64, limit: i64) -> bool {
    used.checked_add(amount).is_some_and(|total| total <= limit)
}

/// Fraction of `limit` left after `used`, clamped to 0..1; a zero limit has nothing left.
/// Display and policy input only: money decisions stay in integers.
pub fn remaining_fraction(limit: i64, used: i64) -> f64 {
    if limit <= 0 {
        return 0.0;
    }
    let left = limit.saturating_sub(used).clamp(0, limit);
    left as f64 / limit as f64
}

/// Display name of a scope: `global`, `tenant:acme`.
pub fn scope_label(kind: &str, id: &str) -> String {
    if id.is_empty() { kind.to_string() } else { format!("{kind}:{id}") }
}

/// The refusal message: scope, window, limit, usage and reset time, in words.
pub fn refusal_message(kind: &str, id: &str, span: &Span, limit: i64, used: i64, amount: i64) -> String {
    format!(
        "{} {} spend limit {} reached: {} used + {} requested exceeds it; resets at {}",
        scope_label(kind, id),
        span.window.as_str(),
        Micros(limit),
        Micros(used),
        Micros(amount),
        format_utc(span.end_unix_ms),
    )
}
