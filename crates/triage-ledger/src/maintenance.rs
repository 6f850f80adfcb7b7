//! Upkeep: the reaper frees reservations of crashed gateways, reconciliation writes spend
//! deferred during Redis outages.

use crate::redis_ledger::StoreFail;
use crate::settle::Committed;
use crate::{Error, RedisLedger, Result};
use redis::Script;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use triage_core::Micros;

static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(include_str!("lua/held.lua"), include_str!("lua/free.lua"), include_str!("lua/reap.lua")))
});
const REAP_BATCH: usize = 256;

impl RedisLedger {
    /// Frees every reservation whose deadline has passed (gateways that crashed between
    /// reserve and commit). Exact: each is freed by one script that re-checks its state and
    /// deadline, so a commit racing the reaper wins or loses atomically.
    pub async fn reap_expired(&self) -> Result<usize> {
        self.reap_at(self.now_unix_ms()).await
    }

    /// [`RedisLedger::reap_expired`] at an explicit time.
    pub async fn reap_at(&self, now_unix_ms: i64) -> Result<usize> {
        let mut reaped = 0;
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("ZRANGEBYSCORE")
                .arg(self.inner.keys.deadlines())
                .arg("-inf")
                .arg(now_unix_ms)
                .arg("LIMIT")
                .arg(0)
                .arg(REAP_BATCH);
            let (due,): (Vec<String>,) = self.inner.query(&pipe).await?;
            let mut progressed = false;
            for id in &due {
                let counters = self.record_charges(id).await?.unwrap_or_default().counters;
                match self.run_free(&REAP, id, &counters, now_unix_ms).await? {
                    1 => {
                        reaped += 1;
                        progressed = true;
                        tracing::info!(request_id = %id, "expired reservation reaped");
                    }
                    5 => {
                        tracing::error!(request_id = %id, "reservation record names other counters; left in place")
                    }
                    _ => progressed = true,
                }
            }
            if due.len() < REAP_BATCH || !progressed {
                break;
            }
        }
        self.inner.local.prune_inflight(now_unix_ms, self.inner.ttl_ms);
        Ok(reaped)
    }

    /// Writes deferred commits (Redis outages) into Redis, oldest first; returns how many
    /// reached it. Runs automatically after the next call that finds Redis answering, and
    /// from the reaper task. A commit whose reservation is unknown both here and in Redis
    /// cannot be attributed: it is logged and counted in [`crate::LocalStats::lost`].
    pub async fn reconcile(&self) -> Result<usize> {
        let local = &self.inner.local;
        let Ok(_one_at_a_time) = local.reconcile_lock.try_lock() else {
            return Ok(0);
        };
        let mut done = 0;
        while let Some(p) = local.front_pending() {
            match self.settle_commit(&p.req, p.charges.clone(), p.at_unix_ms).await {
                Ok(Committed::Missing) => {
                    tracing::error!(
                        request_id = %p.req.request_id, actual = %Micros(p.req.actual_micros),
                        "deferred commit has no reservation anywhere: spend lost"
                    );
                    local.pop_pending(true);
                }
                Ok(outcome) => {
                    local.pop_pending(false);
                    done += 1;
                    if let Committed::Charged { charged, spent, .. } = &outcome {
                        self.check_thresholds(spent, *charged, self.now_unix_ms()).await;
                    }
                }
                Err(StoreFail::Down(m)) => return Err(Error::Store(m)),
                Err(StoreFail::Broken(m)) => {
                    // Never retry a commit Redis rejects outright: it would block the rest.
                    tracing::error!(request_id = %p.req.request_id, error = %m, "deferred commit rejected: spend lost");
                    local.pop_pending(true);
                }
            }
        }
        if done > 0 {
            tracing::info!(commits = done, "reconciled deferred spend into the ledger");
        }
        Ok(done)
    }

    /// Replays deferred commits once Redis answers again.
    pub(crate) async fn after_call(&self, ok: bool) {
        if ok
            && self.inner.local.has_pending()
            && self.inner.redis_up()
            && let Err(e) = self.reconcile().await
        {
            tracing::debug!(error = %e, "reconciliation postponed");
        }
    }

    /// Runs [`RedisLedger::reap_expired`] and [`RedisLedger::reconcile`] every `every`
    /// until the ledger is dropped (the task holds no strong reference) or aborted.
    pub fn spawn_reaper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let ledger = RedisLedger { inner };
                if let Err(e) = ledger.reap_expired().await {
                    tracing::debug!(error = %e, "reaper pass failed");
                }
                if ledger.inner.local.has_pending()
                    && let Err(e) = ledger.reconcile().await
                {
                    tracing::debug!(error = %e, "reconciliation postponed");
                }
            }
        })
    }
}
