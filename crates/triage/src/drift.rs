//! `triage drift`: sends a fixed suite of queries to each declared model through the
//! backends (in process, the configured adapters, no failover), keeps the answers, and
//! compares them with the model's baseline: refusals, length, meaning (MiniLM embeddings).
//! A model whose score passes `--threshold` has moved: a provider swapped or retuned the
//! model behind a pinned name. Exit 3 when any model moved (unless `--accept`).

mod compare;
mod report;
mod store;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use store::{Answer, LastRun, ModelRun, Store};
use triage_backends::Backends as _;
use triage_core::{Config, now_unix_ms};
use triage_proto::pb;

/// Exit status when a model moved past the threshold.
pub const EXIT_MOVED: u8 = 3;

/// Runs a fixed query suite against each model and reports which answers moved from the
/// baseline.
#[derive(Debug, Subcommand)]
pub enum DriftCommand {
    /// Runs the suite against each model, compares with the baselines, prints what moved;
    /// exit 3 when any model's drift score passes the threshold.
    Run {
        /// Suite YAML: `queries: [{id, query}]` (e.g. config/drift-suite.yaml).
        #[arg(long)]
        suite: PathBuf,
        /// Only these models (comma list; default: every declared model that is available).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Keep baselines and runs in this directory (default: Redis when configured, else
        /// ~/.cache/triage/drift).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Drift score (0..1) above which a model counts as moved.
        #[arg(long, default_value_t = 0.25)]
        threshold: f64,
        /// Make this run the new baseline of every model (and exit 0).
        #[arg(long)]
        accept: bool,
        /// Max tokens of each answer.
        #[arg(long, default_value_t = 160)]
        max_tokens: u32,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Prints the last run.
    Report {
        /// The store `drift run` used.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also list each query's scores.
        #[arg(long)]
        verbose: bool,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Suite {
    queries: Vec<SuiteQuery>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteQuery {
    id: String,
    query: String,
    /// Informational (`en`, `es`, `pt`).
    #[serde(default)]
    #[allow(dead_code)]
    language: Option<String>,
}

fn read_suite(path: &Path) -> Result<Suite> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let suite: Suite = serde_yaml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    if suite.queries.is_empty() {
        bail!("{}: no queries", path.display());
    }
    let mut seen = std::collections::HashSet::new();
    for q in &suite.queries {
        if q.id.trim().is_empty() || q.query.trim().is_empty() {
            bail!("{}: every query needs an id and a query", path.display());
        }
        if !seen.insert(q.id.as_str()) {
            bail!("{}: query id `{}` appears twice", path.display(), q.id);
        }
    }
    Ok(suite)
}

fn redis_url(config: &Config) -> Option<String> {
    std::env::var("TRIAGE_REDIS_URL").ok().filter(|s| !s.is_empty()).or_else(|| config.redis.url.clone())
}

/// Runs a drift subcommand.
pub async fn run(config: &Config, cmd: DriftCommand) -> Result<ExitCode> {
    match cmd {
        DriftCommand::Run { suite, models, store, threshold, accept, max_tokens, json } => {
            if !(0.0..=1.0).contains(&threshold) {
                bail!("--threshold {threshold} is outside 0..1");
            }
            let suite_def = read_suite(&suite)?;
            let store = Store::open(store.as_deref(), redis_url(config).as_deref(), &config.redis.key_prefix).await?;
            let last = run_suite(config, &suite, &suite_def, &models, &store, threshold, accept, max_tokens).await?;
            if json {
                println!("{}", serde_json::to_string(&report::json(&last))?);
            } else {
                print!("{}", report::text(&last, false));
            }
            let moved = last.models.iter().any(|m| m.moved);
            Ok(if moved && !accept { ExitCode::from(EXIT_MOVED) } else { ExitCode::SUCCESS })
        }
        DriftCommand::Report { store, json, verbose } => {
            let store = Store::open(store.as_deref(), redis_url(config).as_deref(), &config.redis.key_prefix).await?;
            let Some(last) = store.last().await? else {
                bail!("no drift run in {} yet: run `triage drift run --suite FILE` first", store.describe());
            };
            if json {
                println!("{}", serde_json::to_string(&report::json(&last))?);
            } else {
                print!("{}", report::text(&last, verbose));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The models to test: `--models`, else every declared model that is available and not
/// retired.
fn pick_models(backends: &triage_backends::LocalBackends, config: &Config, wanted: &[String]) -> Result<Vec<String>> {
    let unavailable = backends.unavailable();
    if wanted.is_empty() {
        let all: Vec<String> = config.models.keys().filter(|m| !unavailable.contains(m)).cloned().collect();
        if all.is_empty() {
            bail!("no declared model is available (missing API keys or model files?)");
        }
        return Ok(all);
    }
    for m in wanted {
        if !config.models.contains_key(m) {
            bail!("--models: `{m}` is not a declared model");
        }
        if unavailable.contains(m) {
            let why = backends.unavailable_reason(m).unwrap_or_default();
            bail!("--models: `{m}` is unavailable: {why}");
        }
    }
    Ok(wanted.to_vec())
}

#[allow(clippy::too_many_arguments)]
async fn run_suite(
    config: &Config,
    suite_path: &Path,
    suite: &Suite,
    wanted: &[String],
    store: &Store,
    threshold: f64,
    accept: bool,
    max_tokens: u32,
) -> Result<LastRun> {
    let backends = triage_backends::LocalBackends::new(config).await.context("starting the backends")?;
    let models = pick_models(&backends, config, wanted)?;
    let total = models.len() * suite.queries.len();
    let started = Instant::now();
    let mut runs = Vec::new();
    let mut done = 0usize;
    for (mi, model) in models.iter().enumerate() {
        let version = config.models.get(model).map(|m| m.version.clone()).unwrap_or_default();
        let mut answers = Vec::with_capacity(suite.queries.len());
        for q in &suite.queries {
            answers.push(ask(&backends, config, model, &q.id, &q.query, max_tokens).await);
            done += 1;
            eprint!(
                "\rdrift: model {}/{} {model}: {}/{} queries ({done}/{total}, {:.0}s)   ",
                mi + 1,
                models.len(),
                answers.len(),
                suite.queries.len(),
                started.elapsed().as_secs_f64()
            );
        }
        let failed = answers.iter().filter(|a| a.error.is_some()).count();
        eprintln!();
        if failed > 0 {
            eprintln!("drift: {model}: {failed} of {} queries failed", answers.len());
        }
        runs.push(ModelRun { model: model.clone(), version, at_unix_ms: now_unix_ms(), answers });
    }
    let encoder = load_encoder(config);
    let mut compared = Vec::new();
    for run in &runs {
        let baseline = store.baseline(&run.model).await?;
        let emb = match (&encoder, &baseline) {
            (Some(enc), Some(base)) => embed_pairs(enc, base, run)?,
            _ => HashMap::new(),
        };
        let lookup = |id: &str| emb.get(id).cloned();
        let d = compare::model_drift(run, baseline.as_ref(), &lookup, threshold);
        if baseline.is_none() || accept {
            store.save_baseline(run).await?;
        }
        compared.push(d);
    }
    let last = LastRun {
        at_unix_ms: now_unix_ms(),
        suite: suite_path.display().to_string(),
        threshold,
        embeddings: encoder.is_some(),
        models: compared,
        runs,
    };
    store.save_last(&last).await?;
    eprintln!("drift: stored in {}", store.describe());
    Ok(last)
}

/// One suite query to one model, alone (no fallbacks: the model itself is under test).
async fn ask(
    backends: &triage_backends::LocalBackends,
    config: &Config,
    model: &str,
    id: &str,
    query: &str,
    max_tokens: u32,
) -> Answer {
    let req = pb::GenerateRequest {
        request_id: format!("drift-{}-{model}-{id}", uuid::Uuid::new_v4()),
        model: model.to_string(),
        system: config.context.system_prompt.clone(),
        messages: vec![pb::Message { role: pb::Role::User as i32, content: query.to_string(), ..Default::default() }],
        max_tokens,
        temperature: Some(0.0),
        ..Default::default()
    };
    match backends.generate(req).await {
        Ok(r) => Answer {
            id: id.to_string(),
            refusal: compare::is_refusal(&r.text),
            text: r.text,
            error: None,
            output_tokens: r.usage.map(|u| u.output_tokens).unwrap_or(0),
        },
        Err(e) => Answer {
            id: id.to_string(),
            text: String::new(),
            error: Some(e.to_string()),
            output_tokens: 0,
            refusal: false,
        },
    }
}

/// The MiniLM encoder of the classifier, when its files are present.
fn load_encoder(config: &Config) -> Option<triage_classifier::encoder::Encoder> {
    let dir = config.classifier_resolved().encoder_dir;
    if !triage_classifier::encoder::Encoder::files_present(&dir) {
        eprintln!(
            "drift: no encoder at {} (scripts/fetch-models.sh): scoring by refusals and length only",
            dir.display()
        );
        return None;
    }
    match triage_classifier::encoder::Encoder::load(&dir, None, None) {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("drift: encoder not loaded ({e}): scoring by refusals and length only");
            None
        }
    }
}

/// (baseline, new) embeddings of every query both runs answered.
fn embed_pairs(
    enc: &triage_classifier::encoder::Encoder,
    base: &ModelRun,
    run: &ModelRun,
) -> Result<HashMap<String, compare::EmbeddingPair>> {
    let pairs: Vec<(&str, &str, &str)> = run
        .answers
        .iter()
        .filter_map(|a| {
            base.answers.iter().find(|b| b.id == a.id).map(|b| (a.id.as_str(), b.text.as_str(), a.text.as_str()))
        })
        .collect();
    let texts: Vec<&str> = pairs.iter().flat_map(|(_, old, new)| [*old, *new]).collect();
    let embs = enc.embed(&texts).context("embedding the answers")?;
    let mut out = HashMap::new();
    for (i, (id, _, _)) in pairs.iter().enumerate() {
        if let (Some(a), Some(b)) = (embs.get(2 * i), embs.get(2 * i + 1)) {
            out.insert(id.to_string(), (a.0.clone(), b.0.clone()));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_suite_parses_with_three_languages() {
        let p = triage_testkit::repo_root().join("config/drift-suite.yaml");
        let s = read_suite(&p).unwrap();
        assert!(s.queries.len() >= 18, "{}", s.queries.len());
        let text = std::fs::read_to_string(&p).unwrap();
        for lang in ["language: en", "language: es", "language: pt"] {
            assert!(text.contains(lang), "{lang}");
        }
    }

    #[test]
    fn bad_suites_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |body: &str| {
            let p = dir.path().join("s.yaml");
            std::fs::write(&p, body).unwrap();
            read_suite(&p)
        };
        assert!(write("queries: []").is_err());
        assert!(write("queries: [{id: a, query: x}, {id: a, query: y}]").is_err());
        assert!(write("queries: [{id: a, query: x, colour: blue}]").is_err());
        assert_eq!(write("queries: [{id: a, query: x}]").unwrap().queries.len(), 1);
    }
}
