//! In-process state: this instance's open reservations, spend that could not reach Redis
//! (fail-open, or any commit during an outage), and which alerts already fired.
//!
//! Reconciliation is exact because every deferred commit is replayed through the same
//! idempotent commit script: a commit that did land before its reply was lost is simply
//! "already committed" the second time.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use triage_core::Micros;
use triage_proto::pb;

/// A counter a reservation touches, with when it may expire and, when this instance
/// planned it, what rebuilds the report indexes if Redis lost them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CounterRef {
    pub key: String,
    /// 0 when unknown (read back from a record).
    pub expire_at_unix_ms: i64,
    pub index: Option<CounterIndex>,
}

/// The id-index entry of a counter: set key, scope kind and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CounterIndex {
    pub ids_key: String,
    pub kind: String,
    pub id: String,
}

/// What a reservation charges at its commit: its counters, and the conversation scopes
/// (`tenant:conversation` ids) whose whole-life cost, requests and margin a commit adds to
/// the scope's hash. A conversation has counters only under a per-window limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Charges {
    pub counters: Vec<CounterRef>,
    pub conversations: Vec<String>,
}

/// A reservation made by this instance and not yet settled.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub charges: Arc<Charges>,
    pub model: String,
    pub amount: i64,
    pub deadline_unix_ms: i64,
    /// False when fail-open granted it without Redis.
    pub accounted: bool,
}

/// A commit that has not reached Redis yet.
#[derive(Debug, Clone)]
pub(crate) struct PendingCommit {
    pub req: pb::CommitRequest,
    /// What it charges, when this instance made the reservation.
    pub charges: Option<Arc<Charges>>,
    /// When the commit was attempted (attribution windows use it, not the replay time).
    pub at_unix_ms: i64,
}

/// Counters of what this instance holds outside Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalStats {
    /// Outstanding fail-open reservations (granted while Redis was unreachable).
    pub unaccounted_reserved: Micros,
    /// Committed spend waiting to be written to Redis by `reconcile`.
    pub unaccounted_spend: Micros,
    /// Deferred commits waiting for `reconcile`.
    pub pending_commits: usize,
    /// Spend that could not be reconciled (no record and unknown scopes); logged as errors.
    pub lost: Micros,
    /// Reservations of this instance not yet committed or released.
    pub inflight: usize,
}

/// Keys remembered until a moment (the end of the window instance they stand for, or
/// sooner), then forgotten.
#[derive(Default)]
pub(crate) struct WindowMarks(Mutex<Marks>);

#[derive(Default)]
struct Marks {
    until: HashMap<String, i64>,
    /// Size at which passed marks are next dropped: twice what was left the last time, so
    /// many live marks (a limit per user) cost a sweep now and then, not one per mark.
    prune_at: usize,
}

impl WindowMarks {
    /// Marks `key` until `until_unix_ms`; true when it was not marked (or no longer).
    pub fn mark(&self, key: &str, until_unix_ms: i64, now_unix_ms: i64) -> bool {
        let mut m = lock(&self.0);
        if m.until.len() >= m.prune_at.max(MIN_PRUNE) {
            m.until.retain(|_, until| *until > now_unix_ms);
            m.prune_at = 2 * m.until.len();
        }
        m.until.insert(key.to_string(), until_unix_ms).is_none_or(|until| until <= now_unix_ms)
    }

    /// True while `key` is marked.
    pub fn contains(&self, key: &str, now_unix_ms: i64) -> bool {
        lock(&self.0).until.get(key).is_some_and(|until| *until > now_unix_ms)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.0).until.len()
    }
}

const MIN_PRUNE: usize = 10_000;

#[derive(Default)]
pub(crate) struct Local {
    inflight: Mutex<HashMap<String, Inflight>>,
    pending: Mutex<VecDeque<PendingCommit>>,
    has_pending: AtomicBool,
    unaccounted_reserved: AtomicI64,
    unaccounted_spend: AtomicI64,
    lost: AtomicI64,
    /// Low-budget alerts sent, by `scope/window/window_id`.
    pub alerted: WindowMarks,
    /// Day and month counters this instance has lately seen set from their hours (ops.rs).
    pub seeded: WindowMarks,
    /// One reconciliation at a time; others skip rather than queue behind it.
    pub reconcile_lock: tokio::sync::Mutex<()>,
}

/// Locks ignoring poison: the maps stay consistent between statements, so a panic elsewhere
/// must not wedge accounting.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Local {
    pub fn add_inflight(&self, request_id: &str, entry: Inflight) {
        if !entry.accounted {
            self.unaccounted_reserved.fetch_add(entry.amount, Ordering::SeqCst);
        }
        if let Some(old) = lock(&self.inflight).insert(request_id.to_string(), entry) {
            self.forget_unaccounted(&old);
        }
    }

    pub fn inflight(&self, request_id: &str) -> Option<Inflight> {
        lock(&self.inflight).get(request_id).cloned()
    }

    pub fn take_inflight(&self, request_id: &str) -> Option<Inflight> {
        let e = lock(&self.inflight).remove(request_id);
        if let Some(e) = &e {
            self.forget_unaccounted(e);
        }
        e
    }

    fn forget_unaccounted(&self, e: &Inflight) {
        if !e.accounted {
            self.unaccounted_reserved.fetch_sub(e.amount, Ordering::SeqCst);
        }
    }

    /// Drops entries whose deadline passed `grace_ms` ago: Redis reaps accounted ones, and an
    /// unaccounted one whose call never committed cost nothing we know of.
    pub fn prune_inflight(&self, now_unix_ms: i64, grace_ms: i64) -> usize {
        let mut map = lock(&self.inflight);
        let stale: Vec<String> = map
            .iter()
            .filter(|(_, e)| e.deadline_unix_ms.saturating_add(grace_ms) < now_unix_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &stale {
            if let Some(e) = map.remove(k) {
                self.forget_unaccounted(&e);
            }
        }
        stale.len()
    }

    pub fn push_pending(&self, p: PendingCommit) {
        self.unaccounted_spend.fetch_add(p.req.actual_micros, Ordering::SeqCst);
        lock(&self.pending).push_back(p);
        self.has_pending.store(true, Ordering::SeqCst);
    }

    pub fn has_pending(&self) -> bool {
        self.has_pending.load(Ordering::SeqCst)
    }

    pub fn front_pending(&self) -> Option<PendingCommit> {
        lock(&self.pending).front().cloned()
    }

    /// Removes the front entry once it reached Redis (or was given up as `lost`).
    pub fn pop_pending(&self, lost: bool) {
        let mut q = lock(&self.pending);
        if let Some(p) = q.pop_front() {
            self.unaccounted_spend.fetch_sub(p.req.actual_micros, Ordering::SeqCst);
            if lost {
                self.lost.fetch_add(p.req.actual_micros, Ordering::SeqCst);
            }
        }
        self.has_pending.store(!q.is_empty(), Ordering::SeqCst);
    }

    pub fn stats(&self) -> LocalStats {
        LocalStats {
            unaccounted_reserved: Micros(self.unaccounted_reserved.load(Ordering::SeqCst)),
            unaccounted_spend: Micros(self.unaccounted_spend.load(Ordering::SeqCst)),
            pending_commits: lock(&self.pending).len(),
            lost: Micros(self.lost.load(Ordering::SeqCst)),
            inflight: lock(&self.inflight).len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_expire_and_many_live_ones_are_not_swept_on_every_mark() {
        let m = WindowMarks::default();
        assert!(m.mark("a", 100, 0));
        assert!(!m.mark("a", 100, 50), "still marked");
        assert!(m.contains("a", 99) && !m.contains("a", 100));
        assert!(m.mark("a", 300, 150), "expired marks count as new");
        // 30,000 live marks: sweeps happen at 10,000 and 20,000 (nothing to drop), then
        // the threshold doubles; the passed ones go at the next sweep.
        for i in 0..30_000 {
            m.mark(&format!("k{i}"), 1_000, 200);
        }
        assert_eq!(m.len(), 30_001);
        for i in 0..20_000 {
            m.mark(&format!("late{i}"), 5_000, 2_000);
        }
        assert!(m.len() < 30_000, "the 30,001 passed marks were dropped: {}", m.len());
        assert!(m.contains("late0", 2_000) && !m.contains("k0", 2_000));
    }
}
