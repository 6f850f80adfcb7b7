//! Live inputs of the policy: the load signal (in-flight requests over capacity, or latency
//! pressure: a model's latency EWMA over its target) and the models' breaker states and
//! availability, refreshed from Backends at most every 250 ms so a remote backends service is
//! not asked on every request.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use triage_backends::Backends;
use triage_proto::pb;

/// Weight of the newest latency sample: about the last ten calls dominate, so one slow call
/// moves the average by a fifth of the gap and a sustained slowdown shows within seconds.
const LATENCY_ALPHA: f64 = 0.2;

/// A model's average older than this no longer counts: the pressure must describe now, and
/// a model that stopped being called (load itself may have routed traffic away) must not keep
/// the load high forever.
const LATENCY_STALE_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Ewma {
    secs: f64,
    target_secs: f64,
    at: Instant,
}

/// Counts in-flight requests and keeps a latency EWMA per model.
#[derive(Debug)]
pub struct LoadTracker {
    in_flight: Arc<AtomicU32>,
    capacity: u32,
    latency: Mutex<HashMap<String, Ewma>>,
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
        Self { in_flight: Arc::new(AtomicU32::new(0)), capacity: capacity.max(1), latency: Mutex::new(HashMap::new()) }
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

    /// 0..1: the larger of in-flight requests (not counting the asking one) over capacity
    /// and the latency pressure.
    pub fn load(&self) -> f64 {
        let others = self.in_flight().saturating_sub(1);
        let queue = (f64::from(others) / f64::from(self.capacity)).min(1.0);
        queue.max(self.latency_pressure())
    }

    /// Adds one call of `model` that took `latency`, against the latency `target` it is
    /// expected to meet (`server.latency_target`).
    pub fn record_latency(&self, model: &str, latency: Duration, target: Duration) {
        self.record_at(model, latency, target, Instant::now());
    }

    /// Records the latency of the attempt that answered `g` (the last successful attempt of
    /// the answering model): failed attempts say more about breakers than about speed.
    pub fn record_answer(&self, g: &pb::GenerateResponse, target: Duration) {
        let answered = g.attempts.iter().rev().find(|a| a.model == g.model && a.outcome == "ok");
        if let Some(a) = answered {
            self.record_latency(&g.model, Duration::from_micros(a.latency_us), target);
        }
    }

    fn record_at(&self, model: &str, latency: Duration, target: Duration, now: Instant) {
        let sample = latency.as_secs_f64();
        // A zero target would divide by zero; a millisecond is "as fast as possible".
        let target_secs = target.as_secs_f64().max(0.001);
        let mut map = self.latency.lock();
        match map.get_mut(model) {
            // A stale average restarts from the new sample rather than blending with old news.
            Some(e) if now.saturating_duration_since(e.at) < LATENCY_STALE_AFTER => {
                e.secs += LATENCY_ALPHA * (sample - e.secs);
                e.target_secs = target_secs;
                e.at = now;
            }
            _ => {
                map.insert(model.to_owned(), Ewma { secs: sample, target_secs, at: now });
            }
        }
    }

    /// 0..1: the highest latency EWMA over its target among models called recently.
    pub fn latency_pressure(&self) -> f64 {
        self.pressure_at(Instant::now())
    }

    fn pressure_at(&self, now: Instant) -> f64 {
        self.latency
            .lock()
            .values()
            .filter(|e| now.saturating_duration_since(e.at) < LATENCY_STALE_AFTER)
            .map(|e| e.secs / e.target_secs)
            .fold(0.0_f64, f64::max)
            .min(1.0)
    }

    /// The latency EWMA of `model`, when it has a recent one.
    pub fn latency_ewma(&self, model: &str) -> Option<Duration> {
        let map = self.latency.lock();
        let e = map.get(model).filter(|e| e.at.elapsed() < LATENCY_STALE_AFTER)?;
        Some(Duration::from_secs_f64(e.secs))
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
        // Mid-swap, each version's breaker too, for the policy to serve around a failing one.
        for (version, state) in m.version_breakers {
            s.breakers.insert(triage_core::catalog::version_key(&m.name, &version), state);
        }
        s.breakers.insert(m.name, m.breaker);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_secs(2);

    #[test]
    fn load_is_in_flight_over_capacity_without_latency() {
        let t = LoadTracker::new(4);
        let _a = t.enter();
        assert_eq!(t.load(), 0.0, "the asking request does not count");
        let _b = t.enter();
        let _c = t.enter();
        assert_eq!(t.load(), 0.5);
        drop((_b, _c));
        assert_eq!(t.in_flight(), 1);
    }

    #[test]
    fn ewma_follows_samples_and_pressure_is_over_target() {
        let t = LoadTracker::new(100);
        let now = Instant::now();
        t.record_at("m", Duration::from_secs(1), TARGET, now);
        assert!((t.pressure_at(now) - 0.5).abs() < 1e-9);
        // One 3 s call moves a 1 s average by a fifth of the gap: 1.4 s, pressure 0.7.
        t.record_at("m", Duration::from_secs(3), TARGET, now);
        assert!((t.pressure_at(now) - 0.7).abs() < 1e-9);
        // Sustained slowness saturates at 1.0, and load follows the worst model.
        for _ in 0..30 {
            t.record_at("slow", Duration::from_secs(10), TARGET, now);
        }
        assert_eq!(t.pressure_at(now), 1.0);
        assert_eq!(t.load(), 1.0);
        assert!(t.latency_ewma("slow").is_some_and(|d| d > Duration::from_secs(9)));
    }

    #[test]
    fn load_is_the_larger_of_queue_and_latency() {
        let t = LoadTracker::new(10);
        let _g: Vec<_> = (0..4).map(|_| t.enter()).collect();
        assert!((t.load() - 0.3).abs() < 1e-9);
        t.record_latency("m", Duration::from_millis(1600), TARGET);
        assert!((t.load() - 0.8).abs() < 1e-9);
        t.record_latency("fast", Duration::from_millis(10), TARGET);
        assert!((t.load() - 0.8).abs() < 1e-9, "a fast model does not hide a slow one");
    }

    #[test]
    fn stale_averages_stop_counting_and_restart() {
        let t = LoadTracker::new(10);
        let then = Instant::now();
        t.record_at("m", Duration::from_secs(4), TARGET, then);
        let later = then + LATENCY_STALE_AFTER + Duration::from_secs(1);
        assert_eq!(t.pressure_at(later), 0.0);
        t.record_at("m", Duration::from_millis(200), TARGET, later);
        assert!((t.pressure_at(later) - 0.1).abs() < 1e-9, "restarted, not blended with the stale 4 s");
    }

    #[test]
    fn records_the_answering_attempt_only() {
        let t = LoadTracker::new(10);
        let attempt = |model: &str, outcome: &str, ms: u64| pb::Attempt {
            model: model.into(),
            outcome: outcome.into(),
            latency_us: ms * 1000,
            ..Default::default()
        };
        let g = pb::GenerateResponse {
            model: "b".into(),
            attempts: vec![attempt("a", "timeout", 60_000), attempt("b", "ok", 1000)],
            ..Default::default()
        };
        t.record_answer(&g, TARGET);
        assert_eq!(t.latency_ewma("a"), None);
        assert_eq!(t.latency_ewma("b"), Some(Duration::from_secs(1)));
        assert!((t.latency_pressure() - 0.5).abs() < 1e-9);
        // A zero target does not divide by zero.
        t.record_latency("z", Duration::from_millis(5), Duration::ZERO);
        assert_eq!(t.latency_pressure(), 1.0);
    }

    #[test]
    fn a_swapping_model_signals_each_versions_breaker_beside_its_own() {
        let open = pb::BreakerState::Open as i32;
        let closed = pb::BreakerState::Closed as i32;
        let list = pb::ListModelsResponse {
            models: vec![
                pb::ModelInfo {
                    name: "chat".into(),
                    available: true,
                    breaker: closed,
                    version_breakers: [("v2".to_string(), open), ("v1".to_string(), closed)].into(),
                    ..Default::default()
                },
                pb::ModelInfo { name: "other".into(), available: false, breaker: open, ..Default::default() },
            ],
        };
        let s = snapshot(list);
        let want: HashMap<String, i32> = [("chat", closed), ("chat@v2", open), ("chat@v1", closed), ("other", open)]
            .map(|(k, v)| (k.into(), v))
            .into();
        assert_eq!(s.breakers, want);
        assert_eq!(s.unavailable, vec!["other".to_string()]);
    }
}
