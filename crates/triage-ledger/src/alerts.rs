//! Budget threshold alerts (`ledger.alerts`). After each charged commit, every counter the
//! commit touched in the *current* window is checked against each configured fraction of its
//! limit: the alert fires when the commit carries committed spend from below
//! `threshold x limit` to at least it. Reservations are not counted: they may never be
//! charged, and counting them would alert on money that was not spent.
//!
//! Once per scope, window instance and threshold across every gateway: spend only grows, so
//! one commit at most crosses a given amount, and a `SET NX` key (same hash tag as the
//! counters, expiring with the window) makes retries and replays quiet too. Each alert is a
//! warning log line, `triage_budget_alerts_total{scope_kind, window, threshold}`, the
//! [`crate::AlertHook`], and a JSON POST to the optional webhook, sent from a spawned task so
//! a slow or dead webhook never delays or fails a commit.

use crate::limits::scope_label;
use crate::window::{Span, Window, format_utc, parse_window};
use crate::{Error, RedisLedger, Result};
use serde::Serialize;
use triage_core::Micros;
use triage_core::config::BudgetAlertsConfig;
use triage_core::metrics::BudgetAlertLabels;
use triage_proto::pb;

/// Parts per million: thresholds are kept as integers so the crossing amount is exact.
const PPM: i64 = 1_000_000;
/// The dedupe key outlives its window by this much, covering clock skew between gateways.
const SENT_KEY_SLACK_MS: i64 = 60_000;

/// Committed spend of a scope crossed a configured fraction of its limit.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdAlert {
    /// Scope.
    pub scope: pb::Scope,
    /// Window.
    pub window: Window,
    /// Window instance (`2025-03-14`).
    pub window_id: String,
    /// The configured fraction crossed (`0.8`).
    pub threshold: f64,
    /// The limit.
    pub limit: Micros,
    /// Committed spend in the window after the commit that crossed it.
    pub used: Micros,
    /// When the window resets, ms since the Unix epoch.
    pub resets_at_unix_ms: i64,
}

/// What the webhook receives.
#[derive(Debug, Serialize)]
struct WebhookBody {
    scope: String,
    window: &'static str,
    threshold: f64,
    limit_micros: i64,
    used_micros: i64,
    /// RFC 3339, UTC: `2025-03-15T00:00:00Z`.
    resets_at: String,
}

#[derive(Debug, Clone, Copy)]
struct Threshold {
    ppm: i64,
    fraction: f64,
}

struct Webhook {
    client: reqwest::Client,
    url: String,
}

/// The configured thresholds and webhook.
pub(crate) struct Alerting {
    thresholds: Vec<Threshold>,
    webhook: Option<Webhook>,
}

impl Alerting {
    pub fn new(cfg: &BudgetAlertsConfig) -> Result<Self> {
        let mut thresholds = Vec::with_capacity(cfg.thresholds.len());
        for &t in &cfg.thresholds {
            if !(t.is_finite() && t > 0.0 && t <= 1.0) {
                return Err(Error::Config(format!("ledger.alerts.thresholds: {t} is not within (0, 1]")));
            }
            // In range by the check above: 0 < t * 1e6 <= 1e6.
            #[allow(clippy::cast_possible_truncation)]
            let ppm = ((t * PPM as f64).round() as i64).clamp(1, PPM);
            thresholds.push(Threshold { ppm, fraction: t });
        }
        thresholds.sort_by_key(|t| t.ppm);
        thresholds.dedup_by_key(|t| t.ppm);
        let webhook = match &cfg.webhook {
            None => None,
            Some(w) => Some(Webhook {
                client: reqwest::Client::builder()
                    .timeout(w.timeout)
                    .build()
                    .map_err(|e| Error::Config(format!("ledger.alerts.webhook: {e}")))?,
                url: w.url.clone(),
            }),
        };
        Ok(Self { thresholds, webhook })
    }
}

/// The smallest whole amount at or above `ppm / 1e6 x limit`. Spend crosses the threshold
/// when a commit takes it from below this amount to at least it (`before < t x limit <=
/// after` over integers).
pub fn threshold_micros(limit: i64, ppm: i64) -> i64 {
    let x = i128::from(limit.max(0)) * i128::from(ppm.max(0));
    i64::try_from((x + i128::from(PPM) - 1) / i128::from(PPM)).unwrap_or(i64::MAX)
}

impl RedisLedger {
    /// Fires the alerts a commit's charge of `charged` crossed; `spent` pairs each counter
    /// key it charged with its spent amount after the charge. Never fails the commit.
    pub(crate) async fn check_thresholds(&self, spent: &[(String, i64)], charged: i64, now_unix_ms: i64) {
        let alerting = &self.inner.alerting;
        if charged <= 0 || alerting.thresholds.is_empty() {
            return;
        }
        let k = &self.inner.keys;
        let mut due: Vec<(ThresholdAlert, String, i64)> = Vec::new();
        for (key, after) in spent {
            let Some(p) = k.parse_counter(key) else { continue };
            let Ok(window) = parse_window(p.window) else { continue };
            let Some(limit) = self.inner.limits.get(p.kind, p.id, window).filter(|l| *l > 0) else { continue };
            // Only the current window: a late commit into a past one alerts nobody.
            let Ok(span) = Span::current(window, now_unix_ms) else { continue };
            if span.id != p.window_id {
                continue;
            }
            let before = after.saturating_sub(charged);
            for t in &alerting.thresholds {
                let at = threshold_micros(limit, t.ppm);
                if before < at && at <= *after {
                    let ttl = span.end_unix_ms.saturating_sub(now_unix_ms).max(1).saturating_add(SENT_KEY_SLACK_MS);
                    let sent_key = k.alert_sent(p.kind, p.id, p.window, p.window_id, t.ppm);
                    let alert = ThresholdAlert {
                        scope: pb::Scope { kind: p.kind.to_string(), id: p.id.to_string() },
                        window,
                        window_id: span.id.clone(),
                        threshold: t.fraction,
                        limit: Micros(limit),
                        used: Micros(*after),
                        resets_at_unix_ms: span.end_unix_ms,
                    };
                    due.push((alert, sent_key, ttl));
                }
            }
        }
        if due.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (_, key, ttl) in &due {
            pipe.cmd("SET").arg(key).arg(1).arg("NX").arg("PX").arg(*ttl);
        }
        let first: Vec<Option<String>> = match self.inner.query(&pipe).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = ?e, alerts = due.len(), "budget alerts not sent: could not record them in Redis");
                return;
            }
        };
        for ((alert, _, _), fresh) in due.into_iter().zip(first) {
            if fresh.is_some() {
                self.fire(&alert);
            }
        }
    }

    /// Logs, counts, hands to the hook and posts one alert.
    fn fire(&self, a: &ThresholdAlert) {
        let scope = scope_label(&a.scope.kind, &a.scope.id);
        let resets_at = format_utc(a.resets_at_unix_ms);
        tracing::warn!(
            scope = %scope, window = a.window.as_str(), limit = %a.limit, used = %a.used,
            threshold = a.threshold, resets_at = %resets_at, "budget alert: spend crossed a threshold of its limit"
        );
        triage_core::metrics::global()
            .budget_alerts
            .get_or_create(&BudgetAlertLabels {
                scope_kind: a.scope.kind.clone(),
                window: a.window.as_str().to_string(),
                threshold: a.threshold.to_string(),
            })
            .inc();
        self.inner.opts.alert_hook.threshold_crossed(a);
        let Some(w) = &self.inner.alerting.webhook else { return };
        let body = WebhookBody {
            scope,
            window: a.window.as_str(),
            threshold: a.threshold,
            limit_micros: a.limit.0,
            used_micros: a.used.0,
            resets_at,
        };
        let (client, url) = (w.client.clone(), w.url.clone());
        tokio::spawn(async move {
            let res = client.post(&url).json(&body).send().await.and_then(reqwest::Response::error_for_status);
            if let Err(e) = res {
                triage_core::metrics::global().budget_alert_webhook_failures.inc();
                tracing::warn!(error = %e, scope = %body.scope, window = body.window, "budget alert webhook failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_amounts_are_exact_ceilings() {
        assert_eq!(threshold_micros(1_000, 500_000), 500);
        assert_eq!(threshold_micros(1_001, 500_000), 501);
        assert_eq!(threshold_micros(1_000, 800_000), 800);
        assert_eq!(threshold_micros(7, 1_000_000), 7);
        assert_eq!(threshold_micros(3, 1), 1);
        assert_eq!(threshold_micros(crate::limits::MAX_MICROS, PPM), crate::limits::MAX_MICROS);
    }

    #[test]
    fn thresholds_are_checked_sorted_and_deduplicated() {
        let cfg = |t: Vec<f64>| BudgetAlertsConfig { thresholds: t, webhook: None };
        let a = Alerting::new(&cfg(vec![1.0, 0.5, 0.5, 0.8])).map_err(|e| e.to_string());
        let ppm: Vec<i64> = a.map(|a| a.thresholds.iter().map(|t| t.ppm).collect()).unwrap_or_default();
        assert_eq!(ppm, vec![500_000, 800_000, 1_000_000]);
        for bad in [0.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert!(Alerting::new(&cfg(vec![bad])).is_err(), "{bad}");
        }
    }
}
