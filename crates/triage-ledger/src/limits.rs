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
    /// kind -> id -> limit per window (hour, day, month).
    specific: HashMap<String, HashMap<String, PerWindow>>,
    /// kind -> limit per window.
    generic: HashMap<String, PerWindow>,
}

/// A limit per window, indexed as [`Window::ALL`].
type PerWindow = [Option<i64>; 3];

fn slot(window: Window) -> usize {
    match window {
        Window::Hour => 0,
        Window::Day => 1,
        Window::Month => 2,
    }
}

/// Keeps the tighter of two limits for the same scope and window.
fn tighten(per: &mut PerWindow, window: Window, limit: i64) {
    let v = &mut per[slot(window)];
    *v = Some(v.map_or(limit, |old| old.min(limit)));
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
            let per = match &l.id {
                Some(id) if l.scope != "global" => {
                    t.specific.entry(l.scope.clone()).or_default().entry(id.clone()).or_default()
                }
                _ => t.generic.entry(l.scope.clone()).or_default(),
            };
            tighten(per, l.window, l.limit_micros);
        }
        Ok(t)
    }

    /// The limit on `kind:id` in `window`, if any. Asked for every counter of every reserve,
    /// so it looks up by borrowed strings and allocates nothing.
    pub fn get(&self, kind: &str, id: &str, window: Window) -> Option<i64> {
        let specific = self.specific.get(kind).and_then(|ids| ids.get(id)).and_then(|per| per[slot(window)]);
        specific.or_else(|| self.generic.get(kind).and_then(|per| per[slot(window)]))
    }

    /// True when a limit applies to scope `kind`/`id` in any window.
    pub fn limits_any_window(&self, kind: &str, id: &str) -> bool {
        Window::ALL.iter().any(|w| self.get(kind, id, *w).is_some())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(scope: &str, id: Option<&str>, window: Window, limit_micros: i64) -> LimitConfig {
        LimitConfig { scope: scope.into(), id: id.map(Into::into), window, limit_micros }
    }

    #[test]
    fn an_id_overrides_its_kind_per_window_and_the_tighter_limit_wins() {
        let t = LimitTable::new(&[
            limit("tenant", None, Window::Day, 100),
            limit("tenant", None, Window::Day, 80),
            limit("tenant", Some("big"), Window::Day, 1_000),
            limit("tenant", Some("big"), Window::Day, 900),
            limit("tenant", None, Window::Month, 2_000),
            limit("global", Some("ignored"), Window::Hour, 5),
        ])
        .unwrap();
        assert_eq!(t.get("tenant", "acme", Window::Day), Some(80));
        assert_eq!(t.get("tenant", "big", Window::Day), Some(900));
        assert_eq!(t.get("tenant", "big", Window::Month), Some(2_000), "no month override: the kind's");
        assert_eq!(t.get("tenant", "acme", Window::Hour), None);
        assert_eq!(t.get("global", "", Window::Hour), Some(5), "global takes no id");
        assert_eq!(t.get("user", "big", Window::Day), None);
        assert!(!t.is_empty() && LimitTable::new(&[]).unwrap().is_empty());
        assert!(LimitTable::new(&[limit("Tenant", None, Window::Day, 1)]).is_err());
        assert!(LimitTable::new(&[limit("tenant", None, Window::Day, -1)]).is_err());
    }
}
