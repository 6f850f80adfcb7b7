//! Retry timing and the per-model retry budget.
//!
//! Backoff is capped exponential with full jitter (a uniformly random wait below the
//! exponential bound), so clients that failed together do not retry together. The budget
//! is a token bucket: every request deposits `budget_ratio` tokens, the clock deposits
//! `budget_min_per_sec` per second, every retry spends one. Retries therefore stay below
//! `budget_ratio × requests + budget_min_per_sec × seconds`, and a failing provider sees
//! at most that much extra load instead of a retry storm.

use parking_lot::Mutex;
use rand::Rng;
use std::time::{Duration, Instant};
use triage_core::config::RetryConfig;

/// Wait before retry number `retry` (0-based). A provider's Retry-After wins over the
/// computed backoff, capped by `max_delay`.
pub(crate) fn backoff(cfg: &RetryConfig, retry: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
    if let Some(ra) = retry_after {
        return ra.min(cfg.max_delay);
    }
    let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
    let bound = cfg.base_delay.saturating_mul(factor).min(cfg.max_delay);
    bound.mul_f64(rng.random::<f64>())
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Retry budget of one model.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    ratio: f64,
    per_sec: f64,
    cap: f64,
    bucket: Mutex<Bucket>,
}

impl RetryBudget {
    pub(crate) fn new(cfg: &RetryConfig, now: Instant) -> Self {
        let per_sec = f64::from(cfg.budget_min_per_sec);
        // At most ten seconds' worth of reserve: a burst after a quiet spell stays bounded.
        let cap = (per_sec * 10.0).max(10.0);
        Self {
            ratio: cfg.budget_ratio.clamp(0.0, 1.0),
            per_sec,
            cap,
            bucket: Mutex::new(Bucket { tokens: per_sec.min(cap), last: now }),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        if now > b.last {
            let secs = now.duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + secs * self.per_sec).min(self.cap);
            b.last = now;
        }
    }

    /// A request was made: it earns `budget_ratio` of a retry.
    pub(crate) fn on_request(&self, now: Instant) {
        let mut b = self.bucket.lock();
        self.refill(&mut b, now);
        b.tokens = (b.tokens + self.ratio).min(self.cap);
    }

    /// Spends one retry; `false` when the budget is spent and the call must fail over.
    pub(crate) fn try_withdraw(&self, now: Instant) -> bool {
        let mut b = self.bucket.lock();
        self.refill(&mut b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn cfg(ratio: f64, per_sec: u32) -> RetryConfig {
        RetryConfig {
            max_retries: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            budget_ratio: ratio,
            budget_min_per_sec: per_sec,
        }
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let c = cfg(0.2, 5);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for retry in 0..30 {
            let bound = (Duration::from_millis(100) * 2u32.saturating_pow(retry.min(20))).min(c.max_delay);
            for _ in 0..50 {
                let d = backoff(&c, retry, None, &mut rng);
                assert!(d <= bound, "retry {retry}: {d:?} > {bound:?}");
            }
        }
        // Jitter spreads the waits out.
        let waits: Vec<_> = (0..20).map(|_| backoff(&c, 3, None, &mut rng)).collect();
        assert!(waits.iter().any(|w| *w != waits[0]));
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let c = cfg(0.2, 5);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(backoff(&c, 0, Some(Duration::from_millis(300)), &mut rng), Duration::from_millis(300));
        assert_eq!(backoff(&c, 0, Some(Duration::from_secs(30)), &mut rng), Duration::from_secs(1));
    }

    #[test]
    fn budget_bounds_retries_by_ratio_of_requests() {
        let t0 = Instant::now();
        let b = RetryBudget::new(&cfg(0.2, 0), t0);
        let mut granted = 0;
        for _ in 0..1000 {
            b.on_request(t0);
            if b.try_withdraw(t0) {
                granted += 1;
            }
        }
        // 1000 requests at ratio 0.2: 200 retries, not 1000.
        assert!((199..=200).contains(&granted), "{granted}");
    }

    #[test]
    fn budget_min_per_sec_refills_with_time_and_is_capped() {
        let t0 = Instant::now();
        let b = RetryBudget::new(&cfg(0.0, 5), t0);
        let drain = |now| (0..1000).filter(|_| b.try_withdraw(now)).count();
        assert_eq!(drain(t0), 5);
        assert_eq!(drain(t0 + Duration::from_secs(1)), 5);
        // A long quiet spell earns at most the cap (ten seconds' worth).
        assert_eq!(drain(t0 + Duration::from_secs(3600)), 50);
    }
}
