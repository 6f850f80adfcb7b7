//! The drift table for people and one JSON object for tools.

use super::store::LastRun;
use serde_json::json;
use std::fmt::Write as _;

fn r4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// `{at_unix_ms, suite, threshold, embeddings, moved: [...], models: [...]}`; answers are
/// left out (they are in the store).
pub fn json(last: &LastRun) -> serde_json::Value {
    let models: Vec<_> = last
        .models
        .iter()
        .map(|m| {
            json!({
                "model": m.model,
                "version": m.version,
                "status": m.status,
                "queries": m.queries,
                "compared": m.compared,
                "errors": m.errors,
                "refusals_before": m.refusals_before,
                "refusals_now": m.refusals_now,
                "length_ratio": m.length_ratio.map(r4),
                "similarity": m.similarity.map(r4),
                "score": r4(m.score),
                "moved": m.moved,
                "per_query": m.per_query,
            })
        })
        .collect();
    let moved: Vec<&str> = last.models.iter().filter(|m| m.moved).map(|m| m.model.as_str()).collect();
    json!({
        "at_unix_ms": last.at_unix_ms,
        "suite": last.suite,
        "threshold": last.threshold,
        "embeddings": last.embeddings,
        "moved": moved,
        "models": models,
    })
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

/// The table; with `verbose`, each query's scores under its model.
pub fn text(last: &LastRun, verbose: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "drift of {} models on {} (threshold {:.2}{})",
        last.models.len(),
        last.suite,
        last.threshold,
        if last.embeddings { "" } else { "; no encoder: refusals and length only" }
    );
    let _ = writeln!(
        s,
        "\n{:<24} {:<28} {:>7} {:>6} {:>9} {:>8} {:>10} {:>6}  status",
        "model", "version", "queries", "errors", "refusals", "length", "similarity", "score"
    );
    for m in &last.models {
        let status = match (m.status.as_str(), m.moved) {
            ("baseline", _) => "new baseline",
            (_, true) => "MOVED",
            _ => "stable",
        };
        let _ = writeln!(
            s,
            "{:<24} {:<28} {:>7} {:>6} {:>9} {:>8} {:>10} {:>6}  {status}",
            m.model,
            m.version,
            m.queries,
            m.errors,
            format!("{}→{}", m.refusals_before, m.refusals_now),
            opt(m.length_ratio, 2),
            opt(m.similarity, 3),
            format!("{:.3}", m.score),
        );
        if verbose {
            for q in &m.per_query {
                let _ = writeln!(
                    s,
                    "    {:<20} length {:>5.2} similarity {:>6} refusal {}→{}{} score {:.3}",
                    q.id,
                    q.length_ratio,
                    opt(q.similarity, 3),
                    q.refusal_before,
                    q.refusal_now,
                    if q.error_changed { " ERROR CHANGED" } else { "" },
                    q.score
                );
            }
        }
    }
    let moved: Vec<&str> = last.models.iter().filter(|m| m.moved).map(|m| m.model.as_str()).collect();
    if moved.is_empty() {
        let _ = writeln!(s, "\nno model moved");
    } else {
        let _ = writeln!(s, "\nmoved: {}", moved.join(", "));
    }
    s
}
