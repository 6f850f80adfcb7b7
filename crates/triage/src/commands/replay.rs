//! `triage replay`: what-if routing of a query log under a policy, without calling any
//! model: share per model and tier, cost per 1,000 queries against an all-frontier
//! baseline, escalation rate; `--sweep` moves the fast-tier confidence gate.

mod feedback;
pub(crate) mod input;
mod report;
mod sim;
mod sweep;

use anyhow::{Context as _, Result, bail};
use futures::StreamExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use triage_core::Config;
use triage_policy::LocalPolicy;
use triage_proto::pb;

/// Lines between progress reports on stderr.
const PROGRESS_EVERY: usize = 500;

/// Classifications in flight at once: enough for the embedded classifier's batcher to fill
/// its batches, small enough to keep memory flat on long logs.
const CLASSIFY_CONCURRENCY: usize = 32;

/// The options of `triage replay`.
#[derive(Debug)]
pub struct Args {
    pub input: PathBuf,
    pub policy: Option<PathBuf>,
    pub json: bool,
    pub sweep: Option<String>,
    pub plot: Option<PathBuf>,
}

pub async fn run(config: &Config, args: Args) -> Result<ExitCode> {
    if args.plot.is_some() && args.sweep.is_none() {
        bail!("--plot draws a sweep: add --sweep confidence=LO:HI:STEP");
    }
    // Validate the sweep before the (possibly long) classification.
    let thresholds = args.sweep.as_deref().map(sweep::parse).transpose()?;
    let mut entries = input::read(&args.input)?;
    let raw = entries.iter().filter(|e| e.classification.is_none()).count();
    if raw > 0 {
        classify(config, &mut entries).await?;
    }
    let (text, origin) = policy_text(config, args.policy.as_deref())?;
    let conversations =
        entries.iter().filter_map(|e| e.conversation_id.as_deref()).collect::<std::collections::HashSet<_>>().len();
    let policy = LocalPolicy::from_yaml(config, &text, &origin)?;
    let header = format!(
        "replay of {}: {} queries ({raw} classified now with classifier `{:?}`, {} pre-classified), {conversations} conversations\npolicy {} (version {})",
        args.input.display(),
        entries.len(),
        config.classifier.kind,
        entries.len() - raw,
        origin.display(),
        policy.policy_version(),
    );
    match thresholds {
        None => {
            let outcome = sim::replay(&policy, &entries)?;
            let fb = feedback::by_model(&entries);
            if args.json {
                let mut v = report::json(&outcome);
                v["feedback_by_model"] = feedback::json(&fb);
                println!("{}", serde_json::to_string(&v)?);
            } else {
                print!("{}{}", report::text(&outcome, &header), feedback::text(&fb));
            }
        }
        Some(values) => {
            if !entries.iter().any(|e| e.expected.is_some()) {
                eprintln!(
                    "replay: no `expected_complexity`/`label` in the log; the classifier's own complexity stands in for the truth"
                );
            }
            let points = run_sweep(config, &text, &origin, &entries, &values)?;
            if args.json {
                let v: Vec<_> = points.iter().map(sweep::Point::json).collect();
                println!("{}", serde_json::to_string(&serde_json::json!({ "sweep": v }))?);
            } else {
                println!(
                    "{header}\nsweep of rule `{}` (classification.confidence > threshold)\n",
                    triage_policy::CONFIDENCE_GATE_RULE
                );
                for row in sweep::table(&points) {
                    println!("{row}");
                }
            }
            if let Some(plot) = &args.plot {
                let title = format!("fast-tier confidence gate: {} ({} queries)", args.input.display(), entries.len());
                std::fs::write(plot, sweep::svg(&points, &title))
                    .with_context(|| format!("writing {}", plot.display()))?;
                eprintln!("replay: plot written to {}", plot.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--policy`, else `policy.file`, else the built-in policy.
fn policy_text(config: &Config, flag: Option<&Path>) -> Result<(String, PathBuf)> {
    let file = flag.map(Path::to_path_buf).or_else(|| config.policy.file.as_ref().map(|p| config.resolve_path(p)));
    match file {
        Some(p) => Ok((std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?, p)),
        None => {
            Ok((triage_policy::DEFAULT_POLICY_YAML.to_owned(), PathBuf::from(triage_policy::DEFAULT_POLICY_ORIGIN)))
        }
    }
}

fn run_sweep(
    config: &Config,
    text: &str,
    origin: &Path,
    entries: &[input::Entry],
    values: &[f64],
) -> Result<Vec<sweep::Point>> {
    let started = Instant::now();
    let long = values.len() * entries.len() >= 20 * PROGRESS_EVERY;
    let mut points = Vec::with_capacity(values.len());
    for (i, &t) in values.iter().enumerate() {
        let policy = LocalPolicy::with_confidence_gate(config, text, origin, t)?;
        let outcome = sim::replay(&policy, entries)?;
        points.push(sweep::Point::of(t, &outcome));
        if long && ((i + 1) % 10 == 0 || i + 1 == values.len()) {
            let done = (i + 1) * entries.len();
            eprintln!(
                "replay: sweep {}/{} thresholds, {done} decisions ({:.0}/s)",
                i + 1,
                values.len(),
                done as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    Ok(points)
}

/// Labels the lines that carry none with the configured classifier (no Redis cache: a
/// replay must not fill the production cache with its labels). A failed classification is
/// left unlabelled, so the policy's classifier-failure rule decides it, as in production.
async fn classify(config: &Config, entries: &mut [input::Entry]) -> Result<()> {
    let ccfg = config.classifier_resolved();
    let classifier = triage_classifier::build(&ccfg, None).context("building the classifier")?;
    let keep = ccfg.history_turns as usize;
    let todo: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].classification.is_none()).collect();
    let total = todo.len();
    let started = Instant::now();
    let requests: Vec<(usize, pb::ClassifyRequest)> = todo
        .iter()
        .map(|&i| {
            let e = &entries[i];
            let skip = e.history.len().saturating_sub(keep);
            (i, pb::ClassifyRequest { query: e.query.clone(), history: e.history[skip..].to_vec() })
        })
        .collect();
    let mut results = futures::stream::iter(requests)
        .map(|(i, req)| {
            let c = classifier.clone();
            async move { (i, c.classify(req).await) }
        })
        .buffer_unordered(CLASSIFY_CONCURRENCY);
    let (mut done, mut failed) = (0usize, 0usize);
    while let Some((i, res)) = results.next().await {
        done += 1;
        match res {
            Ok(r) if r.classification.is_some() => entries[i].classification = r.classification,
            Ok(_) => failed += 1,
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("replay: classifying {}: {e}", entries[i].id);
                }
            }
        }
        if total >= PROGRESS_EVERY && (done % PROGRESS_EVERY == 0 || done == total) {
            eprintln!(
                "replay: classified {done}/{total} ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    if failed > 0 {
        eprintln!(
            "replay: {failed} of {total} queries could not be classified; the policy's classifier-failure rule decides them"
        );
    }
    Ok(())
}
