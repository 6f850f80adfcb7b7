//! Live inputs of the policy: the load signal (in-flight requests over capacity) and the
//! models' breaker states and availability, refreshed from Backends at most every 250 ms so
//! a remote backends service is not asked on every request.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use triage_backends::Backends;
use triage_proto::pb;

/// Counts in-flight requests.
#[derive(Debug)]
pub struct LoadTracker {
    in_flight: Arc<AtomicU32>,
    capacity: u32,
}

/// Decrements the in-flight count when dropped.
pub struct InFlight(Arc<AtomicU32>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LoadTracker {
    /// A tracker for `capacity` concurrent requests.
    pub fn new(capacity: u32) -> Self {
        Self { in_flight: Arc::new(AtomicU32::new(0)), capacity: capacity.max(1) }
    }

    /// Counts a request in until the guard drops.
    pub fn enter(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.in_flight.clone())
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// 0..1: in-flight requests (not counting the asking one) over capacity.
    pub fn load(&self) -> f64 {
        let others = self.in_flight().saturating_sub(1);
        (f64::from(others) / f64::from(self.capacity)).min(1.0)
    }
}

/// Breaker states and unavailable models, as last seen.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub(crate) breakers: HashMap<String, i32>,
    pub(crate) unavailable: Vec<String>,
}

pub(crate) struct ModelSignals {
    backends: Arc<dyn Backends>,
    cached: Mutex<Option<(Instant, Arc<Snapshot>)>>,
}

const REFRESH: Duration = Duration::from_millis(250);

impl ModelSignals {
    pub(crate) fn new(backends: Arc<dyn Backends>) -> Self {
        Self { backends, cached: Mutex::new(None) }
    }

    /// The latest snapshot; on a Backends failure the last one (or an empty one) is used,
    /// and failover still protects the call.
    pub(crate) async fn get(&self) -> Arc<Snapshot> {
        if let Some((at, snap)) = self.cached.lock().as_ref()
            && at.elapsed() < REFRESH
        {
            return snap.clone();
        }
        match self.backends.list_models().await {
            Ok(list) => {
                let snap = Arc::new(snapshot(list));
                *self.cached.lock() = Some((Instant::now(), snap.clone()));
                snap
            }
            Err(e) => {
                tracing::warn!(error = %e, "model signals unavailable; using the last known");
                self.cached.lock().as_ref().map(|(_, s)| s.clone()).unwrap_or_default()
            }
        }
    }
}

fn snapshot(list: pb::ListModelsResponse) -> Snapshot {
    let mut s = Snapshot::default();
    for m in list.models {
        if !m.available {
            s.unavailable.push(m.name.clone());
        }
        s.breakers.insert(m.name, m.breaker);
    }
    s
}
