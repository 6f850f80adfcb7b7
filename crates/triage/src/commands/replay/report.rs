//! The replay's report: a table for people, one JSON object for tools.

use super::sim::Outcome;
use serde_json::json;
use std::fmt::Write as _;

/// The `--json` object: `queries`, `share_by_tier`, `share_by_model`, `cost_per_1k_usd`,
/// `cost_vs_all_frontier`, `escalation_rate`.
pub fn json(o: &Outcome) -> serde_json::Value {
    let queries: Vec<_> = o
        .queries
        .iter()
        .map(|q| json!({"id": q.id, "model": q.model, "tier": q.tier.as_str(), "rule": q.rule}))
        .collect();
    json!({
        "queries": queries,
        "share_by_tier": o.share_by_tier().into_iter().map(|(k, v)| (k, round(v, 4))).collect::<std::collections::BTreeMap<_, _>>(),
        "share_by_model": o.share_by_model().into_iter().map(|(k, v)| (k, round(v, 4))).collect::<std::collections::BTreeMap<_, _>>(),
        "cost_per_1k_usd": round(o.cost_per_1k_usd(), 6),
        "cost_vs_all_frontier": round(o.cost_vs_all_frontier(), 4),
        "escalation_rate": round(o.escalation_rate(), 4),
    })
}

/// Rounds for output: shares to 4 digits are exact enough to read and stable to diff.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The human report.
pub fn text(o: &Outcome, header: &str) -> String {
    let mut s = String::new();
    let n = o.len();
    let _ = writeln!(s, "{header}");
    let _ = writeln!(s, "\n{:<10} {:>8} {:>8}", "tier", "queries", "share");
    let shares = o.share_by_tier();
    // Cheapest tier first, the order people read a routing split in.
    for tier in ["fast", "middle", "frontier"] {
        let share = shares.get(tier).copied().unwrap_or(0.0);
        let count = o.queries.iter().filter(|q| q.tier.as_str() == tier).count();
        let _ = writeln!(s, "{tier:<10} {count:>8} {:>8}", pct(share));
    }
    let _ = writeln!(s, "\n{:<22} {:<9} {:>8} {:>8} {:>12}", "model", "tier", "queries", "share", "cost");
    for (model, (tier, count)) in o.count_by_model() {
        let cost = o
            .queries
            .iter()
            .filter(|q| q.model == model)
            .fold(triage_core::Micros::ZERO, |a, q| a.saturating_add(q.cost));
        let _ = writeln!(
            s,
            "{model:<22} {:<9} {count:>8} {:>8} {:>12}",
            tier.as_str(),
            pct(count as f64 / n.max(1) as f64),
            cost.to_string()
        );
    }
    let _ = writeln!(
        s,
        "\nrules: {}",
        o.count_by_rule().iter().map(|(r, c)| format!("{r} {c}")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(
        s,
        "cost per 1,000 queries   ${:.4}  (all-frontier `{}`: ${:.4})",
        o.cost_per_1k_usd(),
        o.baseline_model,
        o.frontier_per_1k_usd()
    );
    let _ = writeln!(s, "cost vs all-frontier     {} ({:.3})", pct(o.cost_vs_all_frontier()), o.cost_vs_all_frontier());
    let _ = writeln!(
        s,
        "escalation rate          {} ({} of {n} turns moved a conversation up a tier)",
        pct(o.escalation_rate()),
        o.escalations()
    );
    let (complex, kept) = o.complex_kept_off_fast();
    if complex > 0 {
        let _ = writeln!(s, "complex kept off fast    {} ({kept} of {complex})", pct(o.complex_kept_share()));
    }
    s
}
