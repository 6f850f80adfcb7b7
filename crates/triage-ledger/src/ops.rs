//! Reserve: one atomic Lua script; everything around it (scopes, window math, key lists,
//! limits, alerts, the fail mode) happens here in Rust. Commit and release are in
//! `settle.rs`, the reaper and reconciliation in `maintenance.rs`.

use crate::keys::{check_kind, encode_key_list};
use crate::limits::{MAX_MICROS, refusal_message, remaining_fraction, scope_label};
use crate::local::{Charges, CounterIndex, CounterRef, Inflight};
use crate::redis_ledger::StoreFail;
use crate::window::{DAY_MS, HOUR_MS, Span, Window};
use crate::{BudgetAlert, Error, RedisLedger, Result};
use redis::Script;
use std::sync::{Arc, LazyLock};
use triage_core::Micros;
use triage_core::config::FailMode;
use triage_proto::pb;

static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/reserve.lua")));

/// Settled records are kept this long so a retried commit or release stays idempotent.
pub const RECORD_RETENTION_MS: i64 = 2 * DAY_MS;
/// The scope kind whose whole-life cost the ledger keeps per scope (see [`Charges`]).
pub(crate) const CONVERSATION: &str = "conversation";

/// One counter a reservation touches: a scope in one window instance.
#[derive(Debug, Clone)]
pub(crate) struct CounterPlan {
    pub scope: pb::Scope,
    pub span: Span,
    pub key: String,
    pub ids_key: String,
    pub limit: Option<i64>,
}

/// Checks kinds, drops scopes without an id (nothing to account them to), removes
/// duplicates and puts `global` first, adding it when absent so the ledger total is always
/// the global counter.
pub(crate) fn normalize_scopes(scopes: &[pb::Scope]) -> Result<Vec<pb::Scope>> {
    let mut out = vec![pb::Scope { kind: "global".into(), id: String::new() }];
    for s in scopes {
        check_kind(&s.kind)?;
        if s.kind == "global" {
            if !s.id.is_empty() {
                return Err(Error::InvalidRequest("the global scope takes no id".into()));
            }
            continue;
        }
        if s.id.is_empty() {
            tracing::debug!(kind = %s.kind, "scope without id not accounted");
            continue;
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

pub(crate) fn check_amount(what: &str, v: i64) -> Result<()> {
    if !(0..=MAX_MICROS).contains(&v) {
        return Err(Error::InvalidRequest(format!("{what} {v} micros is outside 0..={MAX_MICROS}")));
    }
    Ok(())
}

pub(crate) fn check_request_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidRequest("request_id is empty".into()));
    }
    Ok(())
}

impl RedisLedger {
    /// The counters `scopes` touch at `now`: every scope's hour, and its day and month only
    /// where it has a limit in that window. Reports sum the other days and months from hours
    /// (reports.rs): each counter costs every reserve and commit two or three script calls,
    /// and those calls, not the data, were most of Redis's time per Route.
    ///
    /// A conversation scope has counters only where a limit on it exists. Its whole-life
    /// cost is kept in its scope hash by every commit (see [`Charges`]); hour counters per
    /// conversation, kept until their month's report is over, would grow Redis by every
    /// new conversation (~250 bytes each per hour it talks, for a month) and cost each new
    /// conversation's commit six calls of set-up and indexing.
    pub(crate) fn plan(&self, scopes: &[pb::Scope], now_unix_ms: i64) -> Result<Vec<CounterPlan>> {
        let spans = Span::all_at(now_unix_ms)?;
        let keys = &self.inner.keys;
        let limits = &self.inner.limits;
        let mut out = Vec::with_capacity(scopes.len() * spans.len());
        for scope in scopes {
            if scope.kind == CONVERSATION && !limits.limits_any_window(&scope.kind, &scope.id) {
                continue;
            }
            for span in &spans {
                let limit = limits.get(&scope.kind, &scope.id, span.window);
                if limit.is_none() && span.window != Window::Hour {
                    continue;
                }
                out.push(CounterPlan {
                    key: keys.counter(&scope.kind, &scope.id, span),
                    ids_key: keys.ids(&scope.kind, span),
                    limit,
                    scope: scope.clone(),
                    span: span.clone(),
                });
            }
        }
        Ok(out)
    }

    /// [`crate::Ledger::reserve`] at an explicit time (tests, replays).
    pub async fn reserve_at(&self, req: pb::ReserveRequest, now_unix_ms: i64) -> Result<pb::ReserveResponse> {
        check_request_id(&req.request_id)?;
        check_amount("amount", req.amount_micros)?;
        let scopes = normalize_scopes(&req.scopes)?;
        let plan = self.plan(&scopes, now_unix_ms)?;
        let k = &self.inner.keys;
        let deadline = now_unix_ms.saturating_add(self.inner.ttl_ms);
        let seeds = self.seeds(&plan, now_unix_ms)?;

        let mut inv = RESERVE.prepare_invoke();
        inv.key(k.record(&req.request_id)).key(k.deadlines()).key(k.kinds());
        for c in &plan {
            inv.key(&c.key);
        }
        for c in &plan {
            inv.key(&c.ids_key);
        }
        for (_, hours) in &seeds {
            for h in hours {
                inv.key(h);
            }
        }
        inv.arg(&req.request_id).arg(req.amount_micros).arg(deadline).arg(now_unix_ms).arg(&req.model).arg(plan.len());
        for c in &plan {
            inv.arg(c.limit.unwrap_or(-1))
                .arg(self.ttl_until(c.span.expire_at_unix_ms()))
                .arg(&c.scope.kind)
                .arg(&c.scope.id);
        }
        inv.arg(seeds.len());
        for (i, hours) in &seeds {
            inv.arg(i + 1).arg(hours.len());
        }
        let conversations: Vec<&str> =
            scopes.iter().filter(|s| s.kind == CONVERSATION).map(|s| s.id.as_str()).collect();
        inv.arg(encode_key_list(&conversations));
        inv.arg(encode_key_list(&plan.iter().map(|c| c.key.as_str()).collect::<Vec<_>>()));
        let charges = || {
            Arc::new(Charges {
                counters: plan
                    .iter()
                    .map(|c| CounterRef {
                        key: c.key.clone(),
                        expire_at_unix_ms: c.span.expire_at_unix_ms(),
                        index: Some(CounterIndex {
                            ids_key: c.ids_key.clone(),
                            kind: c.scope.kind.clone(),
                            id: c.scope.id.clone(),
                        }),
                    })
                    .collect(),
                conversations: conversations.iter().map(|c| c.to_string()).collect(),
            })
        };
        let entry = |accounted| Inflight {
            charges: charges(),
            model: req.model.clone(),
            amount: req.amount_micros,
            deadline_unix_ms: deadline,
            accounted,
        };

        let reply: Vec<i64> = match self.inner.eval(&inv).await {
            Ok(r) => r,
            Err(StoreFail::Down(m)) if self.inner.fail_mode == FailMode::Open => {
                // Fail open: let the call through, count it here, reconcile its commit later.
                if let Some(e) = self.inner.local.inflight(&req.request_id) {
                    return Ok(pb::ReserveResponse {
                        granted: true,
                        existing: true,
                        unaccounted: !e.accounted,
                        ..Default::default()
                    });
                }
                self.inner.local.add_inflight(&req.request_id, entry(false));
                tracing::warn!(
                    request_id = %req.request_id, amount = %Micros(req.amount_micros), error = %m,
                    "ledger unreachable: reservation granted unaccounted (fail-open)"
                );
                return Ok(pb::ReserveResponse {
                    granted: true,
                    existing: false,
                    unaccounted: true,
                    ..Default::default()
                });
            }
            Err(e) => return Err(e.into()),
        };
        if matches!(reply.first(), Some(0 | 1)) {
            for (i, _) in &seeds {
                if let Some(c) = plan.get(*i) {
                    let until = c.span.end_unix_ms.min(now_unix_ms.saturating_add(self.inner.reseed_ms));
                    self.inner.local.seeded.mark(&c.key, until, now_unix_ms);
                }
            }
        }
        match reply.as_slice() {
            // Reserved or committed: the first reservation stands. Released or expired ones
            // are over and are not granted again under the same id (a new call needs a new id).
            [2, 1 | 2] => Ok(pb::ReserveResponse { granted: true, existing: true, ..Default::default() }),
            [2, state] => Ok(pb::ReserveResponse {
                granted: false,
                existing: true,
                refusal: format!(
                    "request id `{}` was already {}; reserve under a new id",
                    req.request_id,
                    if *state == 3 { "released" } else { "expired" }
                ),
                ..Default::default()
            }),
            [0, i, used] => {
                let c = usize::try_from(*i - 1)
                    .ok()
                    .and_then(|i| plan.get(i))
                    .ok_or_else(|| Error::Store(format!("reserve script named counter {i} of {}", plan.len())))?;
                let limit = c.limit.unwrap_or(0);
                let refusal = refusal_message(&c.scope.kind, &c.scope.id, &c.span, limit, *used, req.amount_micros);
                tracing::info!(request_id = %req.request_id, %refusal, "reservation refused");
                self.check_alert(c, *used, now_unix_ms);
                self.inner.signals.put([(c.key.as_str(), *used)]);
                Ok(pb::ReserveResponse {
                    granted: false,
                    refusal,
                    resets_at_unix_ms: c.span.end_unix_ms,
                    ..Default::default()
                })
            }
            [1, used @ ..] if used.len() == plan.len() => {
                self.inner.local.add_inflight(&req.request_id, entry(true));
                for (c, u) in plan.iter().zip(used) {
                    self.check_alert(c, *u, now_unix_ms);
                }
                // The script read every limited counter: fresh budget signals for free.
                self.inner
                    .signals
                    .put(plan.iter().zip(used).filter(|(c, _)| c.limit.is_some()).map(|(c, u)| (c.key.as_str(), *u)));
                Ok(pb::ReserveResponse { granted: true, ..Default::default() })
            }
            other => Err(Error::Store(format!("unexpected reserve script reply {other:?}"))),
        }
    }

    /// The day and month counters of `plan` this instance has not set from their hours in
    /// the last `ledger.reseed_interval`, each with its scope's hour counters so far in the
    /// window.
    ///
    /// Such a counter is written only while a limit exists, so it can miss spend: a limit
    /// added (or removed and added again) mid-window, a gateway whose configuration lacks
    /// the limit, a day that began before this key layout. Hours are always written, and a
    /// commit charges a reservation's hour with its day and month in one script, so the
    /// sum of the hours is at every moment what the counter should hold: the reserve script
    /// sets it to that sum before it checks the limit. Each instance does so on its first
    /// use of the counter, then every `ledger.reseed_interval`, which bounds how long a skew
    /// between gateways' configurations can undercount. A month's seed at its end reads 744
    /// hours (~0.5 ms of Redis for a scope without any, ~1.5 ms with all: redis_cost.rs).
    /// The next hour goes along too: a gateway whose clock runs ahead may already have
    /// charged it.
    fn seeds(&self, plan: &[CounterPlan], now_unix_ms: i64) -> Result<Vec<(usize, Vec<String>)>> {
        let k = &self.inner.keys;
        plan.iter()
            .enumerate()
            .filter(|(_, c)| c.span.window != Window::Hour && !self.inner.local.seeded.contains(&c.key, now_unix_ms))
            .map(|(i, c)| {
                let hours = c.span.hours_through(now_unix_ms.saturating_add(HOUR_MS))?;
                Ok((i, hours.iter().map(|h| k.counter(&c.scope.kind, &c.scope.id, h)).collect()))
            })
            .collect()
    }

    /// TTL until `expire_at` on the ledger's clock, passed to Redis as a relative PEXPIRE so
    /// clock skew (or a test clock) cannot make Redis drop a live counter. At least an hour:
    /// a commit replayed long after its window still stays readable for a while.
    pub(crate) fn ttl_until(&self, expire_at_unix_ms: i64) -> i64 {
        expire_at_unix_ms.saturating_sub(self.now_unix_ms()).max(crate::window::HOUR_MS)
    }

    /// When the counter `key` may expire (its window's end + retention); 0 when the key does
    /// not parse (the scripts then leave its TTL alone).
    pub(crate) fn counter_expire_at(&self, key: &str) -> i64 {
        self.inner
            .keys
            .parse_counter(key)
            .and_then(|p| Span::from_id(crate::window::parse_window(p.window).ok()?, p.window_id))
            .map_or(0, |s| s.expire_at_unix_ms())
    }

    /// Logs (and hands to the hook) the first time a scope's remaining fraction in a window
    /// instance drops below the configured threshold.
    fn check_alert(&self, c: &CounterPlan, used: i64, now_unix_ms: i64) {
        let Some(limit) = c.limit else { return };
        let remaining = remaining_fraction(limit, used);
        if remaining >= self.inner.alert_fraction {
            return;
        }
        let label = scope_label(&c.scope.kind, &c.scope.id);
        let key = format!("{label}/{}/{}", c.span.window.as_str(), c.span.id);
        if !self.inner.local.alerted.mark(&key, c.span.end_unix_ms, now_unix_ms) {
            return;
        }
        tracing::warn!(
            scope = %label, window = c.span.window.as_str(), limit = %Micros(limit), used = %Micros(used),
            remaining_fraction = remaining, resets_at = %crate::window::format_utc(c.span.end_unix_ms),
            "spend alert: budget below threshold"
        );
        self.inner.opts.alert_hook.budget_low(&BudgetAlert {
            scope: c.scope.clone(),
            window: c.span.window,
            window_id: c.span.id.clone(),
            limit: Micros(limit),
            used: Micros(used),
            remaining_fraction: remaining,
            resets_at_unix_ms: c.span.end_unix_ms,
        });
    }
}
