//! Budget signals: a short-lived in-process copy of the limited counters' usage, so the
//! gateway's [`crate::Ledger::limits`] call on every Route does not read Redis each time.
//!
//! Only the signal is cached: reserve still checks every hard limit inside its script. A
//! reading is served for at most `ledger.signal_max_age` (default 250 ms, 0 disables the
//! cache) after it was taken, and only while Redis answers. Reserve and commit replies
//! refresh readings with what their scripts saw; release, the reaper and failed commits drop
//! the readings of the counters they touch, so this instance's own changes show at once and
//! other instances' changes show within the max age.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Readings kept before expired ones are pruned.
const PRUNE_AT: usize = 10_000;

/// Counter key -> (when read, spent + reserved).
pub(crate) struct SignalCache {
    max_age: Duration,
    readings: Mutex<HashMap<String, (Instant, i64)>>,
}

impl SignalCache {
    pub fn new(max_age: Duration) -> Self {
        Self { max_age, readings: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Instant, i64)>> {
        self.readings.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn enabled(&self) -> bool {
        !self.max_age.is_zero()
    }

    /// The usage of `key` read within the max age, if any.
    pub fn get(&self, key: &str) -> Option<i64> {
        if !self.enabled() {
            return None;
        }
        let r = self.lock();
        r.get(key).filter(|(at, _)| at.elapsed() <= self.max_age).map(|(_, used)| *used)
    }

    /// Records readings taken now.
    pub fn put<'a>(&self, readings: impl IntoIterator<Item = (&'a str, i64)>) {
        if !self.enabled() {
            return;
        }
        let now = Instant::now();
        let mut r = self.lock();
        for (key, used) in readings {
            r.insert(key.to_string(), (now, used));
        }
        if r.len() > PRUNE_AT {
            let max_age = self.max_age;
            r.retain(|_, (at, _)| now.saturating_duration_since(*at) <= max_age);
        }
    }

    /// Refreshes the readings of keys already cached (those read as signals), taken now.
    pub fn refresh<'a>(&self, readings: impl IntoIterator<Item = (&'a str, i64)>) {
        if !self.enabled() {
            return;
        }
        let now = Instant::now();
        let mut r = self.lock();
        for (key, used) in readings {
            if let Some(e) = r.get_mut(key) {
                *e = (now, used);
            }
        }
    }

    /// Drops the readings of `keys`.
    pub fn forget<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        if !self.enabled() {
            return;
        }
        let mut r = self.lock();
        for k in keys {
            r.remove(k);
        }
    }

    /// Drops every reading.
    pub fn clear(&self) {
        if self.enabled() {
            self.lock().clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_expire_refresh_and_are_forgotten() {
        let c = SignalCache::new(Duration::from_millis(50));
        assert_eq!(c.get("a"), None);
        c.put([("a", 5), ("b", 7)]);
        assert_eq!((c.get("a"), c.get("b")), (Some(5), Some(7)));
        c.refresh([("a", 6), ("z", 1)]);
        assert_eq!((c.get("a"), c.get("z")), (Some(6), None), "refresh only touches cached keys");
        c.forget(["b"]);
        assert_eq!(c.get("b"), None);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(c.get("a"), None, "older than the max age");
        c.put([("a", 1)]);
        c.clear();
        assert_eq!(c.get("a"), None);
    }

    #[test]
    fn zero_max_age_disables_the_cache() {
        let c = SignalCache::new(Duration::ZERO);
        c.put([("a", 5)]);
        assert_eq!(c.get("a"), None);
    }
}
