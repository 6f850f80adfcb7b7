//! Read side: spend per scope and window, limits and remaining fractions, cost per model
//! and per conversation. Plain reads (each counter is read atomically on its own); only
//! writes need scripts.

use crate::keys::check_kind;
use crate::limits::{remaining_fraction, scope_label};
use crate::ops::{CONVERSATION, normalize_scopes};
use crate::window::{Span, Window, parse_window};
use crate::{Error, RedisLedger, Result};
use std::collections::{BTreeMap, HashMap};
use triage_core::Micros;
use triage_proto::pb;

/// Committed cost and request count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CostSummary {
    /// Committed spend.
    pub spent: Micros,
    /// Committed requests.
    pub requests: u64,
}

/// Whole-life spend of one conversation scope (its revenue and margin are reported in the
/// Spend rows of kind `conversation`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationCost {
    /// Committed spend and requests.
    pub cost: CostSummary,
    /// Model of the latest commit.
    pub last_model: String,
}

type Counters = Vec<(Option<i64>, Option<i64>, Option<u64>)>;

/// The Spend window of a conversation's whole life (its scope hash).
pub const WHOLE_LIFE: &str = "conversation";

/// Most commands in one report round trip: a listing over many scopes and hours goes in
/// pieces, so Redis never serves one huge pipeline while Routes wait behind it.
const READ_CHUNK: usize = 10_000;

impl RedisLedger {
    /// `fields` of each key (HMGET), in order.
    async fn read_fields<T: redis::FromRedisValue>(&self, keys: &[String], fields: &[&str]) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(READ_CHUNK) {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.hget(k, fields);
            }
            out.extend(self.inner.query::<Vec<T>>(&pipe).await?);
        }
        Ok(out)
    }

    async fn read_counters(&self, keys: &[String]) -> Result<Counters> {
        self.read_fields(keys, &["spent", "reserved", "requests"]).await
    }

    /// Fills revenue and margin into the rows of conversation scopes whose caller sent a
    /// revenue: margin = latest revenue - the conversation's whole committed cost.
    async fn add_margins(&self, rows: &mut [pb::ScopeSpend]) -> Result<()> {
        let mut ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.scope.as_ref())
            .filter(|s| s.kind == CONVERSATION)
            .map(|s| s.id.clone())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(self.inner.keys.margin(id), &["revenue", "cost"]);
        }
        let values: Vec<(Option<i64>, Option<i64>)> = self.inner.query(&pipe).await?;
        let margins: HashMap<&str, (i64, i64)> = ids
            .iter()
            .zip(values)
            .filter_map(|(id, (revenue, cost))| {
                revenue.map(|r| (id.as_str(), (r, r.saturating_sub(cost.unwrap_or(0)))))
            })
            .collect();
        for r in rows {
            if let Some(s) = r.scope.as_ref().filter(|s| s.kind == CONVERSATION)
                && let Some((revenue, margin)) = margins.get(s.id.as_str())
            {
                r.revenue_micros = Some(*revenue);
                r.margin_micros = Some(*margin);
            }
        }
        Ok(())
    }

    /// [`crate::Ledger::spend`] at an explicit time: the window instances containing `now`.
    ///
    /// A conversation scope is kept whole-life in its scope hash, reported as one row of
    /// window `conversation` when the conversation is named (kind and id). It has hour, day
    /// and month rows only under a limit on it (only then does it have counters: ops.rs), so
    /// a listing of every conversation lists the limited ones.
    pub async fn spend_at(&self, req: pb::SpendRequest, now_unix_ms: i64) -> Result<pb::SpendResponse> {
        let one_conversation = req.kind == CONVERSATION && !req.id.is_empty();
        let windows: Vec<Window> = match req.window.as_str() {
            "" => Window::ALL.to_vec(),
            WHOLE_LIFE if one_conversation => Vec::new(),
            WHOLE_LIFE => {
                return Err(Error::InvalidRequest(format!(
                    "window `{WHOLE_LIFE}` is one conversation's whole life: ask for kind `{CONVERSATION}` and its id"
                )));
            }
            w => vec![parse_window(w)?],
        };
        let kinds: Vec<String> = if req.kind.is_empty() {
            if !req.id.is_empty() {
                return Err(Error::InvalidRequest("an id needs a kind".into()));
            }
            let mut pipe = redis::pipe();
            pipe.smembers(self.inner.keys.kinds());
            let (mut kinds,): (Vec<String>,) = self.inner.query(&pipe).await?;
            kinds.sort();
            kinds
        } else {
            check_kind(&req.kind)?;
            vec![req.kind.clone()]
        };
        let mut out = Vec::new();
        let counted = !one_conversation || self.inner.limits.limits_any_window(CONVERSATION, &req.id);
        for w in windows.into_iter().filter(|_| counted) {
            out.extend(self.window_rows(&kinds, &req.id, &Span::at(w, now_unix_ms)?, now_unix_ms).await?);
        }
        if one_conversation && (req.window.is_empty() || req.window == WHOLE_LIFE) {
            let life = self.conversation_spend(&req.id).await?.unwrap_or_default();
            out.push(pb::ScopeSpend {
                scope: Some(pb::Scope { kind: CONVERSATION.into(), id: req.id.clone() }),
                window: WHOLE_LIFE.into(),
                spent_micros: life.cost.spent.0,
                requests: life.cost.requests,
                ..Default::default()
            });
        }
        self.add_margins(&mut out).await?;
        out.sort_by(|a, b| {
            // Whole-life rows (no window) after the windows of the same scope.
            let key = |r: &pb::ScopeSpend| {
                let s = r.scope.clone().unwrap_or_default();
                let w = parse_window(&r.window).ok();
                (s.kind, s.id, w.is_none(), w)
            };
            key(a).cmp(&key(b))
        });
        Ok(pb::SpendResponse { rows: out })
    }

    /// The rows of one window instance: every id of `kinds` charged in it (from the report
    /// indexes), or just `id`. An hour is its own counter. A day or month is the sum of its
    /// hours, or its own counter where that holds more: both only ever miss spend (a limited
    /// counter lags gateways whose configuration lacks the limit until it is next seeded, see
    /// ops.rs; a counter from before this layout outlived its early hours).
    async fn window_rows(
        &self,
        kinds: &[String],
        id: &str,
        span: &Span,
        now_unix_ms: i64,
    ) -> Result<Vec<pb::ScopeSpend>> {
        let k = &self.inner.keys;
        let hours = span.hours_through(now_unix_ms)?;
        // (kind, id, the hours with a counter of that scope).
        let mut rows: Vec<(String, String, Vec<&Span>)> = Vec::new();
        if id.is_empty() {
            let summed = span.window != Window::Hour;
            let mut pipe = redis::pipe();
            for kind in kinds {
                pipe.smembers(k.ids(kind, span));
                if summed {
                    for h in &hours {
                        pipe.smembers(k.ids(kind, h));
                    }
                }
            }
            let sets: Vec<Vec<String>> = if kinds.is_empty() { Vec::new() } else { self.inner.query(&pipe).await? };
            let per_kind = if summed { 1 + hours.len() } else { 1 };
            for (kind, sets) in kinds.iter().zip(sets.chunks(per_kind)) {
                let mut by_id: BTreeMap<&str, Vec<&Span>> = BTreeMap::new();
                for (i, set) in sets.iter().enumerate() {
                    for member in set {
                        let hours_of = by_id.entry(member.as_str()).or_default();
                        if let Some(h) = i.checked_sub(1).and_then(|h| hours.get(h)) {
                            hours_of.push(h);
                        }
                    }
                }
                rows.extend(by_id.into_iter().map(|(member, hs)| (kind.clone(), member.to_string(), hs)));
            }
        } else {
            rows.extend(kinds.iter().map(|kind| (kind.clone(), id.to_string(), hours.iter().collect())));
        }

        let own =
            self.read_counters(&rows.iter().map(|(kind, id, _)| k.counter(kind, id, span)).collect::<Vec<_>>()).await?;
        let (mut summed_rows, mut hour_keys) = (Vec::new(), Vec::new());
        for (r, (kind, id, hs)) in rows.iter().enumerate().filter(|_| span.window != Window::Hour) {
            for h in hs {
                hour_keys.push(k.counter(kind, id, h));
                summed_rows.push(r);
            }
        }
        let parts: Vec<(Option<i64>, Option<u64>)> = self.read_fields(&hour_keys, &["spent", "requests"]).await?;
        let mut sums = vec![(0i64, 0u64); rows.len()];
        for (r, (spent, requests)) in summed_rows.into_iter().zip(parts) {
            if let Some(s) = sums.get_mut(r) {
                s.0 = s.0.saturating_add(spent.unwrap_or(0));
                s.1 = s.1.saturating_add(requests.unwrap_or(0));
            }
        }
        Ok(rows
            .into_iter()
            .zip(own)
            .zip(sums)
            .map(|(((kind, id, _), (spent, reserved, requests)), (summed_spent, summed_requests))| {
                let (spent, requests) = (spent.unwrap_or(0), requests.unwrap_or(0));
                pb::ScopeSpend {
                    limit_micros: self.inner.limits.get(&kind, &id, span.window).unwrap_or(0),
                    scope: Some(pb::Scope { kind, id }),
                    window: span.window.as_str().to_string(),
                    window_start_unix_ms: span.start_unix_ms,
                    spent_micros: spent.max(summed_spent),
                    reserved_micros: reserved.unwrap_or(0),
                    requests: requests.max(summed_requests),
                    revenue_micros: None,
                    margin_micros: None,
                }
            })
            .collect())
    }

    /// [`crate::Ledger::limits`] at an explicit time: one row per configured limit touching
    /// the scopes (global always included). Usage read within `ledger.signal_max_age` is
    /// served from memory (see `signals.rs`) while Redis answers; the rest is read in one
    /// round trip.
    pub async fn limits_at(&self, scopes: &[pb::Scope], now_unix_ms: i64) -> Result<pb::LimitsResponse> {
        if self.inner.limits.is_empty() {
            return Ok(pb::LimitsResponse::default());
        }
        let scopes = normalize_scopes(scopes)?;
        let plan: Vec<_> = self.plan(&scopes, now_unix_ms)?.into_iter().filter(|c| c.limit.is_some()).collect();
        let signals = &self.inner.signals;
        let cached = self.inner.redis_up();
        let mut used: Vec<Option<i64>> = plan.iter().map(|c| if cached { signals.get(&c.key) } else { None }).collect();
        let missing: Vec<String> =
            plan.iter().zip(&used).filter(|(_, u)| u.is_none()).map(|(c, _)| c.key.clone()).collect();
        if !missing.is_empty() {
            let values = self.read_counters(&missing).await?;
            let read: Vec<i64> = values
                .into_iter()
                .map(|(spent, reserved, _)| spent.unwrap_or(0).saturating_add(reserved.unwrap_or(0)))
                .collect();
            signals.put(missing.iter().map(String::as_str).zip(read.iter().copied()));
            let mut read = read.into_iter();
            for u in used.iter_mut().filter(|u| u.is_none()) {
                *u = read.next();
            }
        }
        let limits = plan
            .into_iter()
            .zip(used)
            .map(|(c, used)| {
                let limit = c.limit.unwrap_or(0);
                let used = used.unwrap_or(0);
                pb::LimitState {
                    scope: Some(c.scope),
                    window: c.span.window.as_str().to_string(),
                    limit_micros: limit,
                    used_micros: used,
                    remaining_fraction: remaining_fraction(limit, used),
                    resets_at_unix_ms: c.span.end_unix_ms,
                }
            })
            .collect();
        Ok(pb::LimitsResponse { limits })
    }

    /// Remaining fraction of every limit touching `scopes`, keyed `kind[:id]/window`
    /// (`global/day`, `tenant:acme/hour`): the policy's `system.budget`.
    pub async fn budget_remaining(&self, scopes: &[pb::Scope]) -> Result<BTreeMap<String, f64>> {
        let l = self.limits_at(scopes, self.now_unix_ms()).await?;
        Ok(l.limits
            .into_iter()
            .map(|s| {
                let scope = s.scope.unwrap_or_default();
                (format!("{}/{}", scope_label(&scope.kind, &scope.id), s.window), s.remaining_fraction)
            })
            .collect())
    }

    /// Committed cost per answering model in the `window` instance containing `now`
    /// (attributed to the model named at commit, which may differ from the reserved one
    /// after failover). Commits attribute to the hour; a day or month is the sum of its hours.
    pub async fn model_spend_at(&self, window: Window, now_unix_ms: i64) -> Result<BTreeMap<String, CostSummary>> {
        let hours = Span::at(window, now_unix_ms)?.hours_through(now_unix_ms)?;
        let mut pipe = redis::pipe();
        for h in &hours {
            pipe.hgetall(self.inner.keys.model_attribution(h));
        }
        let per_hour: Vec<HashMap<String, i64>> = self.inner.query(&pipe).await?;
        let mut out: BTreeMap<String, CostSummary> = BTreeMap::new();
        for (field, v) in per_hour.into_iter().flatten() {
            if let Some(model) = field.strip_prefix("spent:") {
                let c = out.entry(model.to_string()).or_default();
                c.spent = Micros(c.spent.0.saturating_add(v));
            } else if let Some(model) = field.strip_prefix("requests:") {
                let c = out.entry(model.to_string()).or_default();
                c.requests = c.requests.saturating_add(u64::try_from(v).unwrap_or(0));
            }
        }
        Ok(out)
    }

    /// [`RedisLedger::model_spend_at`] now.
    pub async fn model_spend(&self, window: Window) -> Result<BTreeMap<String, CostSummary>> {
        self.model_spend_at(window, self.now_unix_ms()).await
    }

    /// Committed cost of one conversation scope (`tenant:conversation`, as reserved), if any
    /// was committed within `ledger.conversation_retention` (90 days by default). Conversation
    /// ids are the callers', so only the scope, which carries the tenant, names one.
    pub async fn conversation_spend(&self, conversation_scope_id: &str) -> Result<Option<ConversationCost>> {
        let mut pipe = redis::pipe();
        pipe.hgetall(self.inner.keys.margin(conversation_scope_id));
        let (fields,): (HashMap<String, String>,) = self.inner.query(&pipe).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let num = |f: &str| fields.get(f).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        Ok(Some(ConversationCost {
            cost: CostSummary { spent: Micros(num("cost")), requests: u64::try_from(num("requests")).unwrap_or(0) },
            last_model: fields.get("model").cloned().unwrap_or_default(),
        }))
    }
}
