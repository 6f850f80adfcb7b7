//! Benchmark of the classifiers on the held-out split: quality beside the keyword baseline,
//! latency, throughput, and cache-hit latency against a real redis-server (Redis hits, and
//! hits of the in-process layer the service runs in front of it).
//!
//! ```text
//! cargo run --release -p triage-classifier --bin eval-classifier -- \
//!     --data crates/triage-classifier/data/queries.jsonl
//! ```
//! `--redis-url` uses a running Redis; without it a private `redis-server` is started.
//!
//! `--bench` skips the quality report and the cache: single-request latency, then
//! throughput with `--concurrency` clients and latency at a fixed `--rate` of arrivals, each
//! with the CPU time per query (the whole process's, from /proc/self/stat), which stays
//! meaningful when other jobs share the machine and wall-clock figures do not.

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
    /// Latency and throughput only (no quality report, no cache run).
    #[arg(long)]
    bench: bool,
    /// Arrival rate (queries/s) of the fixed-rate latency run.
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args = Args::parse();
    let all = dataset::load(&args.data)?;
    let ex: Vec<Example> = all.into_iter().filter(|e| e.split == args.split).collect();
    println!("{} examples in split {:?} of {}", ex.len(), args.split, args.data.display());
    let emb = Arc::new(EmbeddedClassifier::new(&args.encoder, args.heads.as_deref(), args.history_turns)?);
    let heur = HeuristicClassifier::new()?;
    if args.bench {
        return bench(&args, &ex, emb);
    }

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

/// `--bench`: latency one request at a time, then the async runs.
fn bench(args: &Args, ex: &[Example], emb: Arc<EmbeddedClassifier>) -> Res<()> {
    // Warm-up: every earlier turn embedded once, as in a conversation (see `throughput`).
    for e in ex {
        emb.classify_blocking(&e.query, &e.history_pb())?;
    }
    println!("\n== latency, one request at a time, on this thread (ms) ==");
    let mut lat = Vec::with_capacity(ex.len());
    let cpu = cpu_ms();
    for e in ex {
        let t = Instant::now();
        emb.classify_blocking(&e.query, &e.history_pb())?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = (cpu_ms() - cpu) / ex.len() as f64;
    print_lat("all test queries (history cached)", &mut lat);
    println!("  CPU per query                        {cpu:.2} ms (whole process)");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async_runs(args, ex, emb)).map(drop)
}

async fn async_part(args: &Args, ex: &[Example], emb: Arc<EmbeddedClassifier>) -> Res<()> {
    let reqs = async_runs(args, ex, emb.clone()).await?;

    let _ = ex;
    println!("\n== cache (real redis-server; ms unless marked) ==");
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
    let cache = || CachedClassifier::new(emb.clone(), &url, ver.clone(), args.history_turns, Duration::from_secs(600));
    let cached = cache()?;
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

    // What the service runs: the in-process layer in front of Redis. The first pass fills
    // it from Redis; the second is answered without a Redis call.
    let layered = cache()?.with_local_entries(triage_classifier::DEFAULT_LOCAL_ENTRIES);
    for r in &sample {
        layered.classify(r.clone()).await?;
    }
    let before = layered.stats().local_hits;
    let mut local_hit = Vec::new();
    for r in &sample {
        let t = Instant::now();
        layered.classify(r.clone()).await?;
        // Microseconds: in milliseconds it rounds to zero.
        local_hit.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let local_hits = layered.stats().local_hits - before;
    print_lat("hit (in process, no Redis call), us", &mut local_hit);
    println!("  {local_hits} of {} answered in process; counters: {:?}", sample.len(), layered.stats());
    drop(server);
    Ok(())
}

/// Throughput with `--concurrency` clients and latency at `--rate` arrivals per second, for
/// the production set-up (micro-batched, one worker per core, as `triage_classifier::build`
/// makes it) and for plain `spawn_blocking` per request. Returns the requests used.
async fn async_runs(args: &Args, ex: &[Example], emb: Arc<EmbeddedClassifier>) -> Res<Vec<pb::ClassifyRequest>> {
    let reqs: Vec<pb::ClassifyRequest> = ex
        .iter()
        .cycle()
        .take(args.requests)
        .enumerate()
        // A suffix makes each request distinct, so no layer can answer from memory.
        .map(|(i, e)| pb::ClassifyRequest { query: format!("{} {}", e.query, i % 7), history: e.history_pb() })
        .collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("\n== throughput, {} requests, {} concurrent clients ({workers} cores) ==", reqs.len(), args.concurrency);
    println!("  {:<34} {:>9} {:>13} {:>9} {:>9}", "", "queries/s", "CPU ms/query", "p50 ms", "p99 ms");
    let mut variants: Vec<(String, Arc<dyn Classifier>)> = vec![("spawn_blocking per request".into(), emb.clone())];
    for max_batch in [8usize, 32] {
        let cfg = BatchConfig { max_batch, max_wait: Duration::from_millis(2), workers };
        let batched: Arc<dyn Classifier> = Arc::new(
            EmbeddedClassifier::new(&args.encoder, args.heads.as_deref(), args.history_turns)?.with_batching(cfg)?,
        );
        let name = if max_batch == BatchConfig::default().max_batch {
            format!("micro-batched max {max_batch} (production)")
        } else {
            format!("micro-batched max {max_batch}")
        };
        variants.push((name, batched));
    }
    for (name, c) in &variants {
        let r = throughput(c.clone(), &reqs, args.concurrency).await?;
        let mut lat = r.latencies;
        let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
        println!("  {name:<34} {:>9.0} {:>13.2} {p50:>9.2} {p99:>9.2}", r.qps, r.cpu_ms);
    }
    println!("\n== latency at a fixed arrival rate of {:.0} queries/s, {} requests ==", args.rate, reqs.len());
    println!("  {:<34} {:>9} {:>13} {:>9} {:>9}", "", "queries/s", "CPU ms/query", "p50 ms", "p99 ms");
    for (name, c) in &variants {
        let r = open_loop(c.clone(), &reqs, args.rate).await?;
        let mut lat = r.latencies;
        let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
        println!("  {name:<34} {:>9.0} {:>13.2} {p50:>9.2} {p99:>9.2}", r.qps, r.cpu_ms);
    }
    Ok(reqs)
}

/// What a load run measured.
struct Run {
    qps: f64,
    cpu_ms: f64,
    latencies: Vec<f64>,
}

/// CPU time of this whole process so far, in ms (utime + stime of /proc/self/stat, in
/// USER_HZ = 100 ticks; 0 where there is no /proc).
fn cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) * 10.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn throughput(c: Arc<dyn Classifier>, reqs: &[pb::ClassifyRequest], concurrency: usize) -> Res<Run> {
    // Warm-up: one untimed pass, so every variant starts with the same warm in-process
    // history-turn cache (in production earlier turns were embedded as queries already).
    run_clients(&c, reqs, concurrency).await?;
    let cpu = cpu_ms();
    let start = Instant::now();
    let latencies = run_clients(&c, reqs, concurrency).await?;
    let secs = start.elapsed().as_secs_f64();
    Ok(Run { qps: reqs.len() as f64 / secs, cpu_ms: (cpu_ms() - cpu) / reqs.len() as f64, latencies })
}

async fn run_clients(c: &Arc<dyn Classifier>, reqs: &[pb::ClassifyRequest], concurrency: usize) -> Res<Vec<f64>> {
    let queue = Arc::new(parking_lot::Mutex::new(reqs.to_vec()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (c, q) = (c.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let Some(r) = q.lock().pop() else {
                    return Ok::<_, triage_classifier::Error>(lat);
                };
                let t = Instant::now();
                c.classify(r).await?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }));
    }
    let mut all = Vec::with_capacity(reqs.len());
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// Open loop: request i is sent at i / rate seconds whatever happened to the others;
/// latency counts from that moment, so queueing behind a slow request is included.
async fn open_loop(c: Arc<dyn Classifier>, reqs: &[pb::ClassifyRequest], rate: f64) -> Res<Run> {
    let cpu = cpu_ms();
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(reqs.len());
    for (i, r) in reqs.iter().enumerate() {
        let at = start + Duration::from_secs_f64(i as f64 / rate.max(1.0));
        tokio::time::sleep_until(at).await;
        let (c, r) = (c.clone(), r.clone());
        tasks.push(tokio::spawn(async move {
            c.classify(r).await?;
            Ok::<_, triage_classifier::Error>(at.elapsed().as_secs_f64() * 1e3)
        }));
    }
    let mut latencies = Vec::with_capacity(reqs.len());
    for t in tasks {
        latencies.push(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Run { qps: reqs.len() as f64 / secs, cpu_ms: (cpu_ms() - cpu) / reqs.len() as f64, latencies })
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
