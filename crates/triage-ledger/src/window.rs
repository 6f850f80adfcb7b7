//! UTC calendar windows. Window ids, starts and resets are computed here, in Rust, and handed
//! to the Lua scripts as ARGV: scripts never read a clock, so they stay deterministic (Redis
//! replicates them verbatim) and tests can move time by injecting a [`crate::Clock`].

use crate::{Error, Result};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
pub use triage_core::config::Window;

/// One hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day, ms. Unix time has no leap seconds, so every UTC day is exactly this long.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// Latest instant accepted (9999-12-31T23:59:59.999Z): four-digit years keep window ids
/// sortable as strings and keep every ms value far below 2^53 (exact as a Lua number).
pub const MAX_UNIX_MS: i64 = 253_402_300_799_999;

/// One instance of a window: `day` 2025-03-14 from its first ms to the first ms of the next.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Window kind.
    pub window: Window,
    /// Instance id: `2025-03-14T09` (hour), `2025-03-14` (day), `2025-03` (month).
    pub id: String,
    /// First ms of the window (inclusive).
    pub start_unix_ms: i64,
    /// First ms of the next window (exclusive): when this window's limits reset.
    pub end_unix_ms: i64,
}

impl Span {
    /// The instance of `window` containing `now_unix_ms`.
    pub fn at(window: Window, now_unix_ms: i64) -> Result<Span> {
        if !(0..=MAX_UNIX_MS).contains(&now_unix_ms) {
            return Err(Error::InvalidRequest(format!("time {now_unix_ms} ms is outside years 1970..9999")));
        }
        let t = DateTime::<Utc>::from_timestamp_millis(now_unix_ms)
            .ok_or_else(|| Error::InvalidRequest(format!("time {now_unix_ms} ms is not representable")))?;
        let (start, end, id) = match window {
            Window::Hour => {
                let start = now_unix_ms - now_unix_ms.rem_euclid(HOUR_MS);
                (start, start + HOUR_MS, t.format("%Y-%m-%dT%H").to_string())
            }
            Window::Day => {
                let start = now_unix_ms - now_unix_ms.rem_euclid(DAY_MS);
                (start, start + DAY_MS, t.format("%Y-%m-%d").to_string())
            }
            Window::Month => {
                let (y, m) = (t.year(), t.month());
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (month_start_ms(y, m)?, month_start_ms(ny, nm)?, t.format("%Y-%m").to_string())
            }
        };
        Ok(Span { window, id, start_unix_ms: start, end_unix_ms: end })
    }

    /// Every window containing `now_unix_ms`, hour first.
    pub fn all_at(now_unix_ms: i64) -> Result<[Span; 3]> {
        // Every reserve and commit asks, and the answer only changes at an hour boundary (UTC
        // days and months start on one): formatting three dates each time showed in profiles.
        thread_local! {
            static LAST: std::cell::RefCell<Option<[Span; 3]>> = const { std::cell::RefCell::new(None) };
        }
        let cached = LAST.with_borrow(|last| {
            last.as_ref().filter(|s| (s[0].start_unix_ms..s[0].end_unix_ms).contains(&now_unix_ms)).cloned()
        });
        if let Some(spans) = cached {
            return Ok(spans);
        }
        let spans = [
            Span::at(Window::Hour, now_unix_ms)?,
            Span::at(Window::Day, now_unix_ms)?,
            Span::at(Window::Month, now_unix_ms)?,
        ];
        LAST.with_borrow_mut(|last| *last = Some(spans.clone()));
        Ok(spans)
    }

    /// [`Span::at`] from the per-hour memo of [`Span::all_at`]: for the hot path.
    pub fn current(window: Window, now_unix_ms: i64) -> Result<Span> {
        let [hour, day, month] = Span::all_at(now_unix_ms)?;
        Ok(match window {
            Window::Hour => hour,
            Window::Day => day,
            Window::Month => month,
        })
    }

    /// The instance of `window` named `id` (as in counter keys), if `id` names one.
    pub fn from_id(window: Window, id: &str) -> Option<Span> {
        let start = match window {
            Window::Hour => NaiveDateTime::parse_from_str(&format!("{id}:00"), "%Y-%m-%dT%H:%M").ok()?,
            Window::Day => NaiveDate::parse_from_str(id, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0)?,
            Window::Month => NaiveDate::parse_from_str(&format!("{id}-01"), "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0)?,
        };
        Span::at(window, start.and_utc().timestamp_millis()).ok().filter(|s| s.id == id)
    }

    /// When the window's counters may be deleted: kept well past the reset so spend reports
    /// can still show recent windows, and so a late commit never lands on a vanished counter.
    /// Hour counters are the day and month reports of every scope without a day or month
    /// limit (see `ops.rs`), so they live until their month is over, and then as long.
    pub fn expire_at_unix_ms(&self) -> i64 {
        let end = match self.window {
            Window::Hour => Span::at(Window::Month, self.start_unix_ms).map_or(self.end_unix_ms, |m| m.end_unix_ms),
            Window::Day | Window::Month => self.end_unix_ms,
        };
        end + retention_ms(self.window)
    }

    /// The hours of this window from its start through the one containing `until` (all of
    /// them once the window is over): what a day or month total is summed from.
    pub fn hours_through(&self, until_unix_ms: i64) -> Result<Vec<Span>> {
        if self.window == Window::Hour {
            return Ok(vec![self.clone()]);
        }
        let last = until_unix_ms.min(self.end_unix_ms - 1);
        (self.start_unix_ms..=last)
            .step_by(usize::try_from(HOUR_MS).unwrap_or(usize::MAX))
            .map(|t| Span::at(Window::Hour, t))
            .collect()
    }
}

/// How long counters outlive their window (hours: their month).
pub fn retention_ms(window: Window) -> i64 {
    match window {
        Window::Hour => 2 * DAY_MS,
        Window::Day => 35 * DAY_MS,
        Window::Month => 400 * DAY_MS,
    }
}

/// Parses `hour`, `day` or `month`.
pub fn parse_window(s: &str) -> Result<Window> {
    Window::ALL
        .into_iter()
        .find(|w| w.as_str() == s)
        .ok_or_else(|| Error::InvalidRequest(format!("unknown window `{s}` (hour, day or month)")))
}

/// Formats a reset time for refusal messages: `2025-03-14T10:00:00Z`.
pub fn format_utc(unix_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(unix_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("{unix_ms} ms"))
}

fn month_start_ms(year: i32, month: u32) -> Result<i64> {
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| Error::InvalidRequest(format!("no month {year}-{month:02}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The per-hour memo never answers for another hour: any sequence of times (in order
        /// or jumping around, across hour, day, month and year ends) gets what computing
        /// each window afresh gives.
        #[test]
        fn all_at_matches_fresh_spans(times in proptest::collection::vec(0i64..=MAX_UNIX_MS, 1..40), near in 0i64..4_000_000) {
            for t in times.iter().flat_map(|t| [*t, (t + near).min(MAX_UNIX_MS), t - t.rem_euclid(HOUR_MS)]) {
                let fresh = [Span::at(Window::Hour, t), Span::at(Window::Day, t), Span::at(Window::Month, t)]
                    .map(|s| s.map_err(|e| e.to_string()));
                let memo = Span::all_at(t).map_err(|e| e.to_string());
                proptest::prop_assert_eq!(memo.map(|m| m.map(Ok)), Ok(fresh.clone()));
                for (w, f) in Window::ALL.into_iter().zip(fresh) {
                    proptest::prop_assert_eq!(Span::current(w, t).map_err(|e| e.to_string()), f);
                }
            }
        }
    }

    #[test]
    fn a_window_is_summed_from_its_hours_so_far() {
        let t = 1_741_944_600_000; // 2025-03-14T09:30Z
        let day = Span::at(Window::Day, t).unwrap();
        let hours = day.hours_through(t).unwrap();
        assert_eq!(hours.len(), 10);
        assert_eq!(hours[0].id, "2025-03-14T00");
        assert_eq!(hours[9].id, "2025-03-14T09");
        assert_eq!(day.hours_through(day.end_unix_ms + 5 * HOUR_MS).unwrap().len(), 24);
        let march = Span::at(Window::Month, t).unwrap();
        assert_eq!(march.hours_through(i64::MAX).unwrap().len(), 31 * 24);
        assert_eq!(march.hours_through(t).unwrap().len(), 13 * 24 + 10);
        let hour = Span::at(Window::Hour, t).unwrap();
        assert_eq!(hour.hours_through(t).unwrap(), vec![hour.clone()]);
        // An hour counter outlives its month: the month's report reads it until the end.
        let march_end = march.end_unix_ms;
        assert_eq!(hours[0].expire_at_unix_ms(), march_end + retention_ms(Window::Hour));
        assert_eq!(day.expire_at_unix_ms(), day.end_unix_ms + retention_ms(Window::Day));
    }

    #[test]
    fn spans_round_trip_through_their_ids() {
        // 2025-03-14T09:30Z, a leap-year February end and the last month of a year.
        for now in [1_741_944_600_000, 1_709_251_199_999, 1_735_689_599_999, 0] {
            for w in Window::ALL {
                let s = Span::at(w, now).map_err(|e| e.to_string());
                let back = s.clone().ok().and_then(|s| Span::from_id(w, &s.id));
                assert_eq!(back.map(Ok), Some(s), "{w:?} at {now}");
            }
        }
        assert_eq!(Span::from_id(Window::Hour, "2025-03-14T24"), None);
        assert_eq!(Span::from_id(Window::Day, "2025-3-14"), None, "not the canonical id");
        assert_eq!(Span::from_id(Window::Month, "2025-03-14"), None);
        assert_eq!(Span::from_id(Window::Day, "x"), None);
    }
}
