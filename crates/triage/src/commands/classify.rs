//! `triage classify --input FILE.jsonl [--output FILE]`: labels a log with the configured
//! classifier, one JSON line per input line, in input order. The output format is stable:
//! `{"id", "complexity", "category", "requires_context", "confidence", "language",
//! "latency_us", "model_version"}`.

use super::replay::input;
use anyhow::{Context as _, Result};
use futures::StreamExt;
use std::io::Write;
use std::path::Path;
use std::time::Instant;
use triage_core::Config;
use triage_proto::pb;

fn complexity(c: i32) -> &'static str {
    match pb::Complexity::try_from(c) {
        Ok(pb::Complexity::Simple) => "simple",
        Ok(pb::Complexity::Moderate) => "moderate",
        Ok(pb::Complexity::Complex) => "complex",
        _ => "unspecified",
    }
}

fn category(c: i32) -> &'static str {
    match pb::Category::try_from(c) {
        Ok(pb::Category::Transactional) => "transactional",
        Ok(pb::Category::Analytical) => "analytical",
        Ok(pb::Category::Creative) => "creative",
        _ => "unspecified",
    }
}

/// Classifies every line of `input` and writes the labels to `output` (stdout when absent).
pub async fn run(config: &Config, input_path: &Path, output: Option<&Path>) -> Result<()> {
    let entries = input::read(input_path)?;
    let ccfg = config.classifier_resolved();
    let classifier = triage_classifier::build(&ccfg, None).context("building the classifier")?;
    let keep = ccfg.history_turns as usize;
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let total = entries.len();
    let started = Instant::now();
    // Concurrent requests let the embedded classifier batch; `buffered` keeps input order.
    let mut labelled = futures::stream::iter(entries)
        .map(|e| {
            let c = classifier.clone();
            let skip = e.history.len().saturating_sub(keep);
            let req = pb::ClassifyRequest { query: e.query.clone(), history: e.history[skip..].to_vec() };
            async move { (e.id, c.classify(req).await) }
        })
        .buffered(16);
    let mut done = 0usize;
    while let Some((id, res)) = labelled.next().await {
        let r = res.with_context(|| format!("classifying `{id}`"))?;
        let c = r.classification.unwrap_or_default();
        let line = serde_json::json!({
            "id": id,
            "complexity": complexity(c.complexity),
            "category": category(c.category),
            "requires_context": c.requires_context,
            "confidence": c.confidence,
            "language": c.language,
            "latency_us": r.latency_us,
            "model_version": c.model_version,
        });
        writeln!(out, "{line}")?;
        done += 1;
        if total >= 500 && done.is_multiple_of(500) {
            eprintln!("classify: {done}/{total} ({:.0}/s)", done as f64 / started.elapsed().as_secs_f64().max(1e-9));
        }
    }
    out.flush()?;
    Ok(())
}
