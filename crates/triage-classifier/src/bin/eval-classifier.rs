//! Benchmark of the classifiers on the held-out split: quality beside the keyword baseline,
//! latency, throughput, and cache-hit latency against a real redis-server.
//!
//! ```text
//! cargo run --release -p triage-classifier --bin eval-classifier -- \
//!     --data crates/triage-classifier/data/queries.jsonl
//! ```
//! `--redis-url` uses a running Redis; without it a private `redis-server` is started.

use clap::Parser;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use triage_classifier::dataset::{self, Example};
use triage_classifier::{BatchConfig, CachedClassifier, Classifier, EmbeddedClassifier, HeuristicClassifier};
use triage_proto::pb;

#[derive(Parser)]
#[command(about = "Evaluate and benchmark the classifiers")]
struct Args {
    /// Labelled data (JSONL with a `split` field).
    #[arg(long, default_value = "crates/triage-classifier/data/queries.jsonl")]
    data: PathBuf,
    /// Split to score.
    #[arg(long, default_value = "test")]
    split: String,
    /// Encoder directory.
    #[arg(long, default_value = "models/all-minilm-l6-v2")]
    encoder: PathBuf,
    /// Heads file (default: the compiled-in heads).
    #[arg(long)]
    heads: Option<PathBuf>,
    /// History turns read.
    #[arg(long, default_value_t = 4)]
    history_turns: usize,
    /// Requests in the throughput run.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrent clients in the throughput run.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Redis to use for the cache benchmark (default: start a private redis-server).
    #[arg(long)]
    redis_url: Option<String>,
    /// Print up to this many complexity errors of the embedded classifier.
    #[arg(long, default_value_t = 0)]
    show_errors: usize,
    /// Skip the latency, throughput and cache runs.
    #[arg(long)]
    quality_only: bool,
    /// Stop after the single-request latency run.
    #[arg(long)]
    latency_only: bool,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args = Args::parse();
    let all = dataset::load(&args.data)?;
    let ex: Vec<Example> = all.into_iter().filter(|e| e.split == args.split).collect();
    println!("{} examples in split {:?} of {}", ex.len(), args.split, args.data.display());
    let emb = Arc::new(EmbeddedClassifier::new(&args.encoder, args.heads.as_deref(), args.history_turns)?);
    let heur = HeuristicClassifier::new()?;

    // Quality. The first pass is also the cold single-request latency run: one request at a
    // time on this thread, history turns not yet in the in-process turn cache.
    let mut preds = Vec::with_capacity(ex.len());
    let mut lat_hist = Vec::new();
    let mut lat_plain = Vec::new();
    for e in &ex {
        let h = e.history_pb();
        let t = Instant::now();
        preds.push(emb.classify_blocking(&e.query, &h)?);
        let us = t.elapsed().as_secs_f64() * 1e3;
        if h.is_empty() { lat_plain.push(us) } else { lat_hist.push(us) }
    }
    let heur_preds: Vec<_> = ex.iter().map(|e| heur.label(&e.query, &e.history_pb())).collect();
    let re = dataset::report(&ex, &preds);
    let rh = dataset::report(&ex, &heur_preds);
    println!("\n== embedded {} ==\n{re}", emb.model_version());
    println!("\n== heuristic-v1 (keyword baseline) ==\n{rh}");
    println!(
        "\nmargin (embedded - heuristic): complexity accuracy {:+.1} pts, complex->confident-simple {:+.2} pts, ECE {:+.3}",
        100.0 * (re.complexity_acc - rh.complexity_acc),
        100.0 * (re.complex_as_confident_simple - rh.complex_as_confident_simple),
        re.ece - rh.ece
    );
    let wrong = ex.iter().zip(&preds).filter(|(e, p)| {
        e.targets().is_ok_and(|t| triage_classifier::labels::complexity_index(p.complexity) != t.complexity)
    });
    for (e, p) in wrong.take(args.show_errors) {
        let got = triage_classifier::labels::COMPLEXITY[triage_classifier::labels::complexity_index(p.complexity)];
        let q: String = e.query.chars().take(110).collect::<String>().replace('\n', " ");
        println!(
            "  [{}] want {} got {got} ({:.2}) hist={}: {q}",
            e.template,
            e.complexity,
            p.confidence,
            e.history.len()
        );
    }
    if args.quality_only {
        return Ok(());
    }

    println!("\n== latency, one request at a time (ms) ==");
    print_lat("query only (no history)", &mut lat_plain);
    print_lat("with history, turns not cached", &mut lat_hist);
    let mut warm = Vec::new();
    for e in ex.iter().filter(|e| !e.history.is_empty()) {
        let t = Instant::now();
        emb.classify_blocking(&e.query, &e.history_pb())?;
        warm.push(t.elapsed().as_secs_f64() * 1e3);
    }
    print_lat("with history, turns cached", &mut warm);
    let mut all_lat: Vec<f64> = lat_plain.iter().chain(&warm).copied().collect();
    print_lat("all test queries (history cached)", &mut all_lat);

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.latency_only {
        return Ok(());
    }
    rt.block_on(async_part(&args, &ex, emb.clone()))
}

async fn async_part(args: &Args, ex: &[Example], emb: Arc<EmbeddedClassifier>) -> Res<()> {
    let reqs: Vec<pb::ClassifyRequest> = ex
        .iter()
        .cycle()
        .take(args.requests)
        .enumerate()
        // A suffix makes each request distinct, so no layer can answer from memory.
        .map(|(i, e)| pb::ClassifyRequest { query: format!("{} {}", e.query, i % 7), history: e.history_pb() })
        .collect();
    println!("\n== throughput, {} requests, {} concurrent clients ==", reqs.len(), args.concurrency);
    let plain: Arc<dyn Classifier> = emb.clone();
    let qps = throughput(plain, &reqs, args.concurrency).await?;
    println!("  spawn_blocking per request      {qps:>7.0} queries/s");
    for max_batch in [8usize, 16, 32] {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let cfg = BatchConfig { max_batch, max_wait: Duration::from_millis(2), workers };
        let batched: Arc<dyn Classifier> = Arc::new(
            EmbeddedClassifier::new(&args.encoder, args.heads.as_deref(), args.history_turns)?.with_batching(cfg)?,
        );
        let qps = throughput(batched, &reqs, args.concurrency).await?;
        println!("  micro-batched (max {max_batch:>2}, 2 ms)   {qps:>7.0} queries/s");
    }

    println!("\n== cache (real redis-server) ==");
    let mut server = None;
    let url = match &args.redis_url {
        Some(u) => u.clone(),
        None => {
            let (child, url) = start_redis()?;
            server = Some(child);
            url
        }
    };
    let ver = emb.model_version().to_string();
    let cached = CachedClassifier::new(emb.clone(), &url, ver, args.history_turns, Duration::from_secs(600))?;
    let sample: Vec<_> = reqs.iter().take(500).cloned().collect();
    let mut miss = Vec::new();
    for r in &sample {
        let t = Instant::now();
        cached.classify(r.clone()).await?;
        miss.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut hit = Vec::new();
    for r in &sample {
        let t = Instant::now();
        let res = cached.classify(r.clone()).await?;
        if res.cache_hit {
            hit.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    print_lat("miss (classify + GET + SET)", &mut miss);
    print_lat("hit (GET)", &mut hit);
    println!("  counters: {:?}", cached.stats());
    drop(server);
    Ok(())
}

async fn throughput(c: Arc<dyn Classifier>, reqs: &[pb::ClassifyRequest], concurrency: usize) -> Res<f64> {
    // Warm-up: one untimed pass, so every variant starts with the same warm in-process
    // history-turn cache (in production earlier turns were embedded as queries already).
    run_clients(&c, reqs, concurrency).await?;
    let start = Instant::now();
    run_clients(&c, reqs, concurrency).await?;
    Ok(reqs.len() as f64 / start.elapsed().as_secs_f64())
}

async fn run_clients(c: &Arc<dyn Classifier>, reqs: &[pb::ClassifyRequest], concurrency: usize) -> Res<()> {
    let queue = Arc::new(parking_lot::Mutex::new(reqs.to_vec()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (c, q) = (c.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(r) = q.lock().pop() else {
                    return Ok::<(), triage_classifier::Error>(());
                };
                c.classify(r).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn print_lat(name: &str, v: &mut [f64]) {
    if v.is_empty() {
        println!("  {name:<36} (none)");
        return;
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    println!("  {name:<36} n={:<5} p50 {:>6.2}  p99 {:>6.2}  mean {:>6.2}", v.len(), q(0.5), q(0.99), mean);
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a throw-away redis-server on a free loopback port and waits until it answers.
fn start_redis() -> Res<(KillOnDrop, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let child = KillOnDrop(child);
    for _ in 0..250 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((child, format!("redis://127.0.0.1:{port}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("redis-server did not start".into())
}
