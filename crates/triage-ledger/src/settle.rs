//! Commit and release: each one atomic Lua script. The counters to touch come from this
//! instance's copy of its own reservations, or else from the reservation record in Redis.

use crate::keys::{decode_key_list, encode_key_list};
use crate::local::{Charges, CounterIndex, CounterRef, PendingCommit};
use crate::ops::{CONVERSATION, RECORD_RETENTION_MS, check_amount, check_request_id};
use crate::redis_ledger::StoreFail;
use crate::window::{Span, Window};
use crate::{Error, RedisLedger, Result};
use redis::Script;
use std::sync::{Arc, LazyLock};
use triage_core::Micros;
use triage_core::config::FailMode;
use triage_proto::pb;

static COMMIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!(include_str!("lua/held.lua"), include_str!("lua/commit.lua"))));
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(include_str!("lua/held.lua"), include_str!("lua/free.lua"), include_str!("lua/release.lua")))
});

/// The counter keys as the record stores them (the scripts compare, never build, them).
fn encode_counters(counters: &[CounterRef]) -> String {
    encode_key_list(&counters.iter().map(|c| c.key.as_str()).collect::<Vec<_>>())
}

/// Result of the commit script, decoded.
pub(crate) enum Committed {
    /// `spent` pairs each charged counter key with its spent amount after the charge.
    Charged {
        charged: i64,
        late: bool,
        direct: bool,
        spent: Vec<(String, i64)>,
    },
    Already,
    Released,
    Missing,
}

impl RedisLedger {
    /// What a reservation record charges (its counter keys and conversation scopes); `None`
    /// when there is no record.
    pub(crate) async fn record_charges(&self, request_id: &str) -> std::result::Result<Option<Charges>, StoreFail> {
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(self.inner.keys.record(request_id)).arg("state").arg("keys").arg("convs");
        let ((state, keys, convs),): ((Option<String>, Option<String>, Option<String>),) =
            self.inner.query(&pipe).await?;
        if state.is_none() {
            return Ok(None);
        }
        // A committed record keeps only its state (commit.lua): nothing left to charge or
        // free, and the scripts answer from the state.
        let Some(keys) = keys else { return Ok(Some(Charges::default())) };
        let broken = |e: Error| StoreFail::Broken(e.to_string());
        let keys = decode_key_list(&keys).map_err(broken)?;
        // Records from before conversations were named apart have none: their conversation
        // counters name them (run_commit).
        let conversations = match convs {
            Some(c) => decode_key_list(&c).map_err(broken)?,
            None => Vec::new(),
        };
        // The TTL follows from the key's window, so a charge or a free that recreates a
        // counter Redis lost can still give it one.
        let counters = keys
            .into_iter()
            .map(|key| CounterRef { expire_at_unix_ms: self.counter_expire_at(&key), key, index: None })
            .collect();
        Ok(Some(Charges { counters, conversations }))
    }

    async fn run_commit(
        &self,
        req: &pb::CommitRequest,
        charges: &Charges,
        direct: bool,
        now_unix_ms: i64,
    ) -> std::result::Result<Vec<i64>, StoreFail> {
        let k = &self.inner.keys;
        let counters = &charges.counters;
        let hour = Span::current(Window::Hour, now_unix_ms).map_err(|e| StoreFail::Broken(e.to_string()))?;
        let mut inv = COMMIT.prepare_invoke();
        inv.key(k.record(&req.request_id)).key(k.deadlines()).key(k.model_attribution(&hour));
        for c in counters {
            inv.key(&c.key);
        }
        // Every counter's index entry goes along: a counter this charge creates (one without
        // a limit, which no reservation touched) is entered in the report indexes then, and
        // charging without a record (direct) rebuilds entries Redis may have lost with it.
        let index = counters
            .iter()
            .map(|c| self.counter_index(c))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| StoreFail::Broken("a counter key outside this ledger's layout".into()))?;
        inv.key(k.kinds());
        for i in &index {
            inv.key(&i.ids_key);
        }
        inv.arg(&req.request_id)
            .arg(req.actual_micros)
            .arg(now_unix_ms)
            .arg(RECORD_RETENTION_MS)
            .arg(&req.model)
            .arg(self.inner.conversation_retention_ms)
            .arg(self.ttl_until(hour.expire_at_unix_ms()));
        inv.arg(counters.len()).arg(if direct { "1" } else { "0" });
        for c in counters {
            inv.arg(self.counter_ttl(c));
        }
        for i in &index {
            inv.arg(&i.kind).arg(&i.id);
        }
        // Last: the hash of every conversation scope charged, revenue, their count. A
        // record from before conversations were named apart names them by their counters.
        let mut conversations: Vec<&str> = counters
            .iter()
            .filter_map(|c| k.parse_counter(&c.key))
            .filter(|p| p.kind == CONVERSATION)
            .map(|p| p.id)
            .chain(charges.conversations.iter().map(String::as_str))
            .collect();
        conversations.sort_unstable();
        conversations.dedup();
        for id in &conversations {
            inv.key(k.margin(id));
        }
        inv.arg(encode_counters(counters));
        match req.revenue_micros {
            Some(r) => inv.arg(r),
            None => inv.arg(""),
        };
        inv.arg(conversations.len());
        self.inner.eval(&inv).await
    }

    /// Commits through the script: with the counters this instance knows (it reserved them),
    /// else with those the record names.
    pub(crate) async fn settle_commit(
        &self,
        req: &pb::CommitRequest,
        known: Option<Arc<Charges>>,
        now_unix_ms: i64,
    ) -> std::result::Result<Committed, StoreFail> {
        let mut used: Vec<String> = Vec::new();
        let mut reply = match &known {
            Some(c) => {
                used = c.counters.iter().map(|c| c.key.clone()).collect();
                self.run_commit(req, c, true, now_unix_ms).await?
            }
            None => vec![5, 0, 0],
        };
        if reply.first() == Some(&5) {
            // Not ours, or ours differs from the record: the record is the truth.
            reply = match self.record_charges(&req.request_id).await? {
                Some(c) => {
                    used = c.counters.iter().map(|c| c.key.clone()).collect();
                    self.run_commit(req, &c, false, now_unix_ms).await?
                }
                None => vec![4, 0, 0],
            };
        }
        let spent = |after: &[i64]| used.iter().cloned().zip(after.iter().copied()).collect::<Vec<_>>();
        self.refresh_signals(&reply, &used);
        match reply.as_slice() {
            [1, charged, late, after @ ..] => {
                Ok(Committed::Charged { charged: *charged, late: *late == 1, direct: false, spent: spent(after) })
            }
            [6, charged, _, after @ ..] => {
                Ok(Committed::Charged { charged: *charged, late: false, direct: true, spent: spent(after) })
            }
            [2, ..] => Ok(Committed::Already),
            [3, ..] => Ok(Committed::Released),
            [4, ..] => Ok(Committed::Missing),
            other => Err(StoreFail::Broken(format!("unexpected commit script reply {other:?}"))),
        }
    }

    /// Budget signals after a commit reply: a charge that freed a reservation returns every
    /// counter's spent and reserved (refreshing the readings); any other charge drops them.
    fn refresh_signals(&self, reply: &[i64], keys: &[String]) {
        let signals = &self.inner.signals;
        match reply {
            [1 | 6, _, _, values @ ..] if values.len() == 2 * keys.len() => {
                let (spent, reserved) = values.split_at(keys.len());
                signals.refresh(
                    keys.iter().zip(spent.iter().zip(reserved)).map(|(k, (s, r))| (k.as_str(), s.saturating_add(*r))),
                );
            }
            [1 | 6, ..] => signals.forget(keys.iter().map(String::as_str)),
            _ => {}
        }
    }

    /// A counter's report-index entry: as planned, or else read from its key (counters named
    /// by a record); `None` for a key outside this ledger's layout.
    fn counter_index<'c>(&self, c: &'c CounterRef) -> Option<std::borrow::Cow<'c, CounterIndex>> {
        if let Some(i) = &c.index {
            return Some(std::borrow::Cow::Borrowed(i));
        }
        let p = self.inner.keys.parse_counter(&c.key)?;
        Some(std::borrow::Cow::Owned(CounterIndex {
            ids_key: self.inner.keys.ids_in(p.kind, p.window, p.window_id),
            kind: p.kind.to_string(),
            id: p.id.to_string(),
        }))
    }

    /// A counter's TTL for the scripts; 0 when unknown (the script leaves its TTL alone).
    fn counter_ttl(&self, c: &CounterRef) -> i64 {
        if c.expire_at_unix_ms == 0 { 0 } else { self.ttl_until(c.expire_at_unix_ms) }
    }

    /// [`crate::Ledger::commit`] at an explicit time.
    pub async fn commit_at(&self, mut req: pb::CommitRequest, now_unix_ms: i64) -> Result<pb::CommitResponse> {
        check_request_id(&req.request_id)?;
        check_amount("actual", req.actual_micros)?;
        if let Some(r) = req.revenue_micros.filter(|r| check_amount("revenue", *r).is_err()) {
            // A report field never costs a commit: the money was spent either way.
            tracing::warn!(request_id = %req.request_id, revenue = r, "revenue out of range ignored");
            req.revenue_micros = None;
        }
        let local = &self.inner.local;
        let inflight = local.inflight(&req.request_id);
        if req.model.is_empty()
            && let Some(e) = &inflight
        {
            req.model = e.model.clone();
        }
        if let Some(e) = inflight.as_ref().filter(|e| req.actual_micros > e.amount) {
            // Charged in full anyway (the money is spent); the price table or token estimate
            // that sized the reservation is wrong, and limits can be overshot by the gap.
            tracing::warn!(
                request_id = %req.request_id, reserved = %Micros(e.amount), actual = %Micros(req.actual_micros),
                "actual cost above the reservation"
            );
        }
        let known = inflight.as_ref().map(|e| e.charges.clone());
        match self.settle_commit(&req, known.clone(), now_unix_ms).await {
            Ok(outcome) => {
                local.take_inflight(&req.request_id);
                if let Committed::Charged { charged, spent, .. } = &outcome {
                    self.check_thresholds(spent, *charged, now_unix_ms).await;
                }
                self.commit_response(&req, outcome)
            }
            Err(StoreFail::Down(m)) => {
                // The call happened: keep its cost and replay it when Redis answers. Replays
                // go through the idempotent script, so a commit that did land is not doubled.
                local.take_inflight(&req.request_id);
                // Spend this instance cannot see in Redis yet: no reading stands for it.
                match &known {
                    Some(c) => self.inner.signals.forget(c.counters.iter().map(|c| c.key.as_str())),
                    None => self.inner.signals.clear(),
                }
                let actual = req.actual_micros;
                tracing::warn!(
                    request_id = %req.request_id, actual = %Micros(actual), error = %m,
                    "ledger unreachable: commit deferred until Redis answers"
                );
                local.push_pending(PendingCommit { req, charges: known, at_unix_ms: now_unix_ms });
                match self.inner.fail_mode {
                    FailMode::Open => Ok(pb::CommitResponse { charged_micros: actual, already_committed: false }),
                    FailMode::Closed => Err(Error::Store(format!("{m} (commit kept for reconciliation)"))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    fn commit_response(&self, req: &pb::CommitRequest, outcome: Committed) -> Result<pb::CommitResponse> {
        let id = &req.request_id;
        match outcome {
            Committed::Charged { charged, late, direct, .. } => {
                if late {
                    tracing::warn!(request_id = %id, "commit after the reservation expired: charged anyway");
                }
                if direct {
                    tracing::info!(request_id = %id, "charged without a Redis reservation (fail-open or lost record)");
                }
                Ok(pb::CommitResponse { charged_micros: charged, already_committed: false })
            }
            Committed::Already => Ok(pb::CommitResponse { charged_micros: 0, already_committed: true }),
            Committed::Released => {
                tracing::warn!(request_id = %id, "commit after release: the release stands, nothing charged");
                Ok(pb::CommitResponse { charged_micros: 0, already_committed: false })
            }
            Committed::Missing => Err(Error::InvalidRequest(format!("no reservation for request id `{id}`"))),
        }
    }

    /// [`crate::Ledger::release`] at an explicit time.
    pub async fn release_at(&self, req: pb::ReleaseRequest, now_unix_ms: i64) -> Result<pb::ReleaseResponse> {
        check_request_id(&req.request_id)?;
        let inflight = self.inner.local.take_inflight(&req.request_id);
        let unaccounted = inflight.as_ref().is_some_and(|e| !e.accounted);
        let res = async {
            let mut code = match &inflight {
                Some(e) => self.run_release(&req.request_id, &e.charges.counters, now_unix_ms).await?,
                None => 5,
            };
            if code == 5 {
                code = match self.record_charges(&req.request_id).await? {
                    Some(c) => self.run_release(&req.request_id, &c.counters, now_unix_ms).await?,
                    None => 0,
                };
            }
            Ok::<i64, StoreFail>(code)
        }
        .await;
        match res {
            // A fail-open reservation has nothing in Redis to free: releasing it locally is it.
            Ok(code) => Ok(pb::ReleaseResponse { released: code == 1 || (code == 0 && unaccounted) }),
            Err(StoreFail::Down(m)) if self.inner.fail_mode == FailMode::Open || unaccounted => {
                tracing::warn!(request_id = %req.request_id, error = %m, "ledger unreachable: the reaper frees this reservation");
                Ok(pb::ReleaseResponse { released: unaccounted })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn run_release(&self, id: &str, counters: &[CounterRef], now: i64) -> std::result::Result<i64, StoreFail> {
        self.run_free(&RELEASE, id, counters, now).await
    }

    pub(crate) async fn run_free(
        &self,
        script: &Script,
        id: &str,
        counters: &[CounterRef],
        now: i64,
    ) -> std::result::Result<i64, StoreFail> {
        let k = &self.inner.keys;
        let mut inv = script.prepare_invoke();
        inv.key(k.record(id)).key(k.deadlines());
        for c in counters {
            inv.key(&c.key);
        }
        inv.arg(id).arg(now).arg(RECORD_RETENTION_MS).arg(counters.len());
        for c in counters {
            inv.arg(self.counter_ttl(c));
        }
        inv.arg(encode_counters(counters));
        let out = self.inner.eval(&inv).await;
        // A freed reservation changes these counters' usage: their readings are stale.
        self.inner.signals.forget(counters.iter().map(|c| c.key.as_str()));
        out
    }
}
