//! Circuit breaker per model: closed → open after `failure_threshold` consecutive failures
//! → half-open once `cooldown` has passed, letting exactly one probe through → closed when
//! the probe succeeds, open again (a fresh cooldown) when it fails.
//!
//! The state machine takes the time as an argument (`*_at`) so tests drive it with a
//! made-up clock; [`Permit`] is the convenience used by the service, on the real clock.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use triage_core::config::BreakerConfig;
use triage_proto::pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// How a call let through the breaker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The model answered.
    Success,
    /// The model failed in a way that says it is unhealthy.
    Failure,
    /// Nothing learnt (the caller went away, the request itself was bad).
    Neutral,
}

/// A call admitted by the breaker; `probe` is the single half-open trial call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    probe: bool,
}

/// One model's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    model: String,
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
    opens: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(model: &str, cfg: &BreakerConfig) -> Self {
        Self {
            model: model.to_string(),
            threshold: cfg.failure_threshold.max(1),
            cooldown: cfg.cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
            opens: AtomicU64::new(0),
        }
    }

    /// Asks to make a call at `now`; `None` means fail fast.
    pub(crate) fn try_acquire_at(&self, now: Instant) -> Option<Ticket> {
        let mut st = self.state.lock();
        match *st {
            State::Closed { .. } => Some(Ticket { probe: false }),
            State::Open { until } if now >= until => {
                *st = State::HalfOpen { probing: true };
                Some(Ticket { probe: true })
            }
            State::Open { .. } | State::HalfOpen { probing: true } => None,
            State::HalfOpen { probing: false } => {
                *st = State::HalfOpen { probing: true };
                Some(Ticket { probe: true })
            }
        }
    }

    /// Records how an admitted call ended.
    pub(crate) fn record_at(&self, ticket: Ticket, outcome: Outcome, now: Instant) {
        let mut st = self.state.lock();
        match (*st, ticket.probe, outcome) {
            // Only the probe decides a half-open breaker; calls admitted before it opened
            // and finishing late say nothing about the model now.
            (State::HalfOpen { .. }, true, Outcome::Success) => {
                *st = State::Closed { failures: 0 };
                tracing::info!(model = %self.model, "circuit breaker closed: the probe succeeded");
            }
            (State::HalfOpen { .. }, true, Outcome::Failure) => self.open(&mut st, now),
            (State::HalfOpen { .. }, true, Outcome::Neutral) => *st = State::HalfOpen { probing: false },
            (State::Closed { .. }, false, Outcome::Success) => *st = State::Closed { failures: 0 },
            (State::Closed { failures }, false, Outcome::Failure) => {
                let failures = failures.saturating_add(1);
                if failures >= self.threshold {
                    self.open(&mut st, now);
                } else {
                    *st = State::Closed { failures };
                }
            }
            _ => {}
        }
    }

    fn open(&self, st: &mut State, now: Instant) {
        *st = State::Open { until: now + self.cooldown };
        self.opens.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(model = %self.model, cooldown = ?self.cooldown, "circuit breaker opened");
    }

    /// The state as the policy should see it: an open breaker whose cooldown has passed is
    /// half-open (the next call is the probe).
    pub(crate) fn state_at(&self, now: Instant) -> pb::BreakerState {
        match *self.state.lock() {
            State::Closed { .. } => pb::BreakerState::Closed,
            State::Open { until } if now >= until => pb::BreakerState::HalfOpen,
            State::Open { .. } => pb::BreakerState::Open,
            State::HalfOpen { .. } => pb::BreakerState::HalfOpen,
        }
    }

    /// Times the breaker has opened.
    pub(crate) fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }
}

/// An admitted call on the real clock. Dropping it unresolved counts as neutral, so a
/// cancelled probe frees the half-open slot instead of wedging the breaker.
#[derive(Debug)]
pub(crate) struct Permit {
    breaker: Arc<Breaker>,
    ticket: Option<Ticket>,
}

impl Permit {
    /// Admits a call now, or `None` to fail fast.
    pub(crate) fn acquire(breaker: &Arc<Breaker>) -> Option<Permit> {
        let ticket = breaker.try_acquire_at(Instant::now())?;
        Some(Permit { breaker: breaker.clone(), ticket: Some(ticket) })
    }

    /// Records the outcome.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        if let Some(t) = self.ticket.take() {
            self.breaker.record_at(t, outcome, Instant::now());
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.breaker.record_at(t, Outcome::Neutral, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A made-up clock: milliseconds after a fixed origin.
    struct Clock(Instant);
    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    fn breaker(threshold: u32, cooldown_ms: u64) -> Breaker {
        Breaker::new("m", &BreakerConfig { failure_threshold: threshold, cooldown: Duration::from_millis(cooldown_ms) })
    }

    fn fail(b: &Breaker, now: Instant) {
        let t = b.try_acquire_at(now).expect("admitted");
        b.record_at(t, Outcome::Failure, now);
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let c = Clock(Instant::now());
        let b = breaker(3, 1000);
        fail(&b, c.at(0));
        fail(&b, c.at(1));
        // A success resets the count: failures must be consecutive.
        let t = b.try_acquire_at(c.at(2)).unwrap();
        b.record_at(t, Outcome::Success, c.at(2));
        fail(&b, c.at(3));
        fail(&b, c.at(4));
        assert_eq!(b.state_at(c.at(4)), pb::BreakerState::Closed);
        fail(&b, c.at(5));
        assert_eq!(b.state_at(c.at(5)), pb::BreakerState::Open);
        assert_eq!(b.opens(), 1);
    }

    #[test]
    fn fails_fast_while_open_then_one_probe() {
        let c = Clock(Instant::now());
        let b = breaker(1, 1000);
        fail(&b, c.at(0));
        assert!(b.try_acquire_at(c.at(10)).is_none());
        assert!(b.try_acquire_at(c.at(999)).is_none());
        assert_eq!(b.state_at(c.at(1000)), pb::BreakerState::HalfOpen);
        let probe = b.try_acquire_at(c.at(1000)).expect("probe");
        assert!(probe.probe);
        // Only one probe at a time.
        assert!(b.try_acquire_at(c.at(1001)).is_none());
        b.record_at(probe, Outcome::Success, c.at(1002));
        assert_eq!(b.state_at(c.at(1002)), pb::BreakerState::Closed);
        assert!(b.try_acquire_at(c.at(1003)).is_some());
    }

    #[test]
    fn failed_probe_reopens_with_fresh_cooldown() {
        let c = Clock(Instant::now());
        let b = breaker(2, 500);
        fail(&b, c.at(0));
        fail(&b, c.at(0));
        let probe = b.try_acquire_at(c.at(600)).unwrap();
        b.record_at(probe, Outcome::Failure, c.at(700));
        assert_eq!(b.state_at(c.at(1100)), pb::BreakerState::Open);
        assert_eq!(b.state_at(c.at(1200)), pb::BreakerState::HalfOpen);
        assert_eq!(b.opens(), 2);
    }

    #[test]
    fn neutral_probe_frees_the_slot_and_late_calls_do_not_close() {
        let c = Clock(Instant::now());
        let b = breaker(1, 100);
        let early = b.try_acquire_at(c.at(0)).unwrap();
        fail(&b, c.at(0));
        // A call admitted while closed succeeds late: the breaker stays open.
        b.record_at(early, Outcome::Success, c.at(50));
        assert_eq!(b.state_at(c.at(50)), pb::BreakerState::Open);
        let probe = b.try_acquire_at(c.at(100)).unwrap();
        b.record_at(probe, Outcome::Neutral, c.at(110));
        let probe2 = b.try_acquire_at(c.at(111)).expect("slot freed");
        assert!(probe2.probe);
    }

    #[test]
    fn dropped_permit_frees_the_probe() {
        let b = Arc::new(breaker(1, 0));
        let t = b.try_acquire_at(Instant::now()).unwrap();
        b.record_at(t, Outcome::Failure, Instant::now());
        let p = Permit::acquire(&b).expect("probe after zero cooldown");
        assert!(Permit::acquire(&b).is_none());
        drop(p);
        assert!(Permit::acquire(&b).is_some());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Acquire,
        Resolve(usize, u8),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Acquire),
            3 => (0usize..8, 0u8..3).prop_map(|(i, o)| Op::Resolve(i, o)),
            1 => (0u64..400).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Whatever happens: at most one probe is out; a closed breaker admits; a refusal
        /// only happens open or mid-probe; it opens only after `threshold` consecutive
        /// failures while closed or a failed probe; it closes only on a probe's success.
        #[test]
        fn state_machine_invariants(threshold in 1u32..5, cooldown in 1u64..300, ops in prop::collection::vec(op(), 1..200)) {
            let c = Clock(Instant::now());
            let b = breaker(threshold, cooldown);
            let mut t = 0u64;
            let mut out: Vec<Ticket> = Vec::new();
            let mut consecutive = 0u32;
            for o in ops {
                let now = c.at(t);
                let before = b.state_at(now);
                match o {
                    Op::Advance(ms) => t += ms,
                    Op::Acquire => match b.try_acquire_at(now) {
                        Some(tk) => {
                            prop_assert!(before != pb::BreakerState::Open);
                            out.push(tk);
                        }
                        None => {
                            prop_assert!(before != pb::BreakerState::Closed);
                        }
                    },
                    Op::Resolve(i, oc) if !out.is_empty() => {
                        let tk = out.remove(i % out.len());
                        let outcome = [Outcome::Success, Outcome::Failure, Outcome::Neutral][usize::from(oc)];
                        b.record_at(tk, outcome, now);
                        let after = b.state_at(now);
                        if before == pb::BreakerState::Closed && !tk.probe {
                            match outcome {
                                Outcome::Success => consecutive = 0,
                                Outcome::Failure => consecutive += 1,
                                Outcome::Neutral => {}
                            }
                        }
                        if before == pb::BreakerState::Closed && after != pb::BreakerState::Closed {
                            prop_assert!(consecutive >= threshold);
                            prop_assert_eq!(outcome, Outcome::Failure);
                        }
                        if before != pb::BreakerState::Closed && after == pb::BreakerState::Closed {
                            prop_assert!(tk.probe && outcome == Outcome::Success);
                        }
                        if after != pb::BreakerState::Closed {
                            consecutive = 0;
                        }
                    }
                    Op::Resolve(..) => {}
                }
                prop_assert!(out.iter().filter(|tk| tk.probe).count() <= 1);
            }
        }
    }
}
