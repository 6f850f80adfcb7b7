//! UTC calendar windows. Window ids, starts and resets are computed here, in Rust, and handed
//! to the Lua scripts as ARGV: scripts never read a clock, so they stay deterministic (Redis
//! replicates them verbatim) and tests can move time by injecting a [`crate::Clock`].

use crate::{Error, Result};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
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
        Ok([
            Span::at(Window::Hour, now_unix_ms)?,
            Span::at(Window::Day, now_unix_ms)?,
            Span::at(Window::Month, now_unix_ms)?,
        ])
    }

    /// When the window's counters may be deleted: kept well past the reset so spend reports
    /// can still show recent windows, and so a late commit never lands on a vanished counter.
    pub fn expire_at_unix_ms(&self) -> i64 {
        self.end_unix_ms + retention_ms(self.window)
    }
}

/// How long counters outlive their window.
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
