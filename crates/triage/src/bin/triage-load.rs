//! `triage-load`: an open-loop gRPC load generator for `Router.Route` (used by
//! `scripts/bench.sh`; `oha` drives the HTTP endpoint, it does not speak gRPC).
//!
//! With `--rate R` it sends R requests per second in total, whatever the latency: each of the
//! `--concurrency C` workers has a request due every C/R seconds (starts staggered). A worker
//! whose call outlives its period sends the late requests back to back as soon as it is
//! free, and their latency counts from when they were due, not from when they went out, so a
//! slow server shows up as latency instead of as a lower offered rate (no coordinated
//! omission). A request whose worker was idle counts from when it went out: tokio's timer
//! wakes a sleeper up to a millisecond after its deadline, and that lateness is this
//! generator's, not the server's (counting it added ~1 ms to every latency here). With
//! `--rate 0` every worker sends back to back, without sleeping (saturation: the maximum
//! throughput).
//!
//! Latencies go into HDR histograms (microseconds, 3 significant digits): `latency_ms` of the
//! successful calls, `latency_all_ms` of every call, failures (timeouts included) counted
//! until they failed, so a server that fails fast cannot look quick and one that fails slowly
//! cannot hide its tail. The result is one JSON object on stdout:
//! `{"requests", "ok", "errors", "error_kinds", "throughput_rps", "latency_ms": {"p50", "p90",
//! "p99", "p99.9", "max", "mean"}, "latency_all_ms": {...}, ...}`; progress goes to stderr.
//!
//! `--warm` first sends each distinct query once (retrying until the gateway answers, up to
//! `--warm-timeout`), so the classifier's Redis cache holds every label before measuring;
//! with `--duration 0` it only warms.

// mimalloc's per-thread free lists: a Route allocates and frees many small strings and
// protobuf messages across tokio worker threads, where glibc malloc spent ~20 % of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use triage_proto::pb;
use triage_proto::pb::router_client::RouterClient;

/// Queries sent when no `--queries` file is given: short support turns of different kinds.
const DEFAULT_QUERIES: &[&str] = &[
    "Where is my order?",
    "How do I reset my password?",
    "What are your opening hours?",
    "Can I change the delivery address of my order?",
    "Do you ship to Canada?",
    "How do I cancel my subscription?",
    "¿Cuánto cuesta el envío a México?",
    "What is your return policy for opened items?",
];

#[derive(Debug, Parser)]
#[command(name = "triage-load", about = "Open-loop gRPC load generator for Router.Route")]
struct Args {
    /// Gateway gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Requests per second in total; 0 sends back to back (saturation).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Workers (the most requests in flight).
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// HTTP/2 connections the workers share (round robin).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds to send for; 0 with --warm only warms.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Per-request deadline, seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// File with one query per line (blank lines skipped); built-in support queries otherwise.
    #[arg(long)]
    queries: Option<PathBuf>,
    /// `max_tokens` of every request.
    #[arg(long, default_value_t = 8)]
    max_tokens: u32,
    /// Send each distinct query once before measuring (warms the classifier cache).
    #[arg(long)]
    warm: bool,
    /// How long --warm keeps retrying while the gateway is not answering yet, seconds.
    #[arg(long, default_value_t = 120.0)]
    warm_timeout: f64,
    /// Bearer key sent as `authorization` (only when authentication is on).
    #[arg(long, env = "TRIAGE_API_KEY")]
    api_key: Option<String>,
    /// Free-form label copied into the JSON result.
    #[arg(long, default_value = "")]
    label: String,
}

/// What one worker saw.
struct WorkerResult {
    /// Successful calls.
    hist: Histogram<u64>,
    /// Every call, failed ones until they failed.
    all: Histogram<u64>,
    requests: u64,
    errors: BTreeMap<String, u64>,
}

fn new_hist() -> Result<Histogram<u64>> {
    // 1 µs .. 10 min, 3 significant digits.
    Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

fn load_queries(path: Option<&PathBuf>) -> Result<Vec<String>> {
    let queries: Vec<String> = match path {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => DEFAULT_QUERIES.iter().map(|q| q.to_string()).collect(),
    };
    if queries.is_empty() {
        bail!("no queries");
    }
    Ok(queries)
}

fn request(args: &Args, turn: &str) -> Result<tonic::Request<pb::RouteRequest>> {
    let msg = pb::RouteRequest {
        turn: turn.to_string(),
        max_tokens: args.max_tokens,
        temperature: Some(0.0),
        ..Default::default()
    };
    let mut req = tonic::Request::new(msg);
    req.set_timeout(Duration::from_secs_f64(args.timeout));
    if let Some(key) = &args.api_key {
        let v = format!("Bearer {key}").parse().context("--api-key is not a valid header value")?;
        req.metadata_mut().insert("authorization", v);
    }
    Ok(req)
}

/// One call; `Err` is the error kind to count.
async fn call(
    client: &mut RouterClient<Channel>,
    req: tonic::Request<pb::RouteRequest>,
    timeout: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, client.route(req)).await {
        Err(_) => Err("client_timeout".into()),
        Ok(Err(status)) => Err(format!("{:?}", status.code())),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Lazy connections when only warming (the gateway may still be starting while --warm
/// retries); otherwise every connection is made before the clock starts, so no measured
/// request waits for a TCP and HTTP/2 handshake that a long-lived client pays once.
async fn connect(args: &Args) -> Result<Vec<RouterClient<Channel>>> {
    let ep = Endpoint::from_shared(args.addr.clone())
        .with_context(|| format!("bad --addr {}", args.addr))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let lazy = args.warm;
    let mut clients = Vec::new();
    for _ in 0..args.connections.max(1) {
        let channel = match lazy {
            true => ep.connect_lazy(),
            false => ep.connect().await.with_context(|| format!("connecting to {}", args.addr))?,
        };
        clients.push(RouterClient::new(channel));
    }
    Ok(clients)
}

/// Sends each query once, retrying each until it succeeds or the warm deadline passes.
async fn warm(args: &Args, client: &mut RouterClient<Channel>, queries: &[String]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs_f64(args.warm_timeout);
    for q in queries {
        loop {
            match call(client, request(args, q)?, Duration::from_secs_f64(args.timeout)).await {
                Ok(()) => break,
                Err(kind) if Instant::now() < deadline => {
                    note(&format!("warm: {kind}; retrying"));
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(kind) => bail!("warm-up of {:?} failed: {kind}", q),
            }
        }
    }
    Ok(())
}

fn note(msg: &str) {
    eprintln!("triage-load: {msg}");
}

async fn worker(
    args: std::sync::Arc<Args>,
    mut client: RouterClient<Channel>,
    queries: std::sync::Arc<Vec<String>>,
    index: usize,
    start: Instant,
    end: Instant,
) -> Result<WorkerResult> {
    let mut out = WorkerResult { hist: new_hist()?, all: new_hist()?, requests: 0, errors: BTreeMap::new() };
    let timeout = Duration::from_secs_f64(args.timeout);
    let workers = args.concurrency.max(1);
    let mut n = index;
    // Open loop: request k of this worker is due at first + k·period, whenever the previous
    // one finished; one that is already late goes at once (and its lateness counts).
    let schedule = (args.rate > 0.0).then(|| {
        let period = Duration::from_secs_f64(workers as f64 / args.rate);
        (start + period.mul_f64(index as f64 / workers as f64), period)
    });
    // When this worker's previous call came back: a request due before that was held up by
    // the server (its latency counts from when it was due).
    let mut free_at = start;
    for k in 0u32.. {
        let due = match schedule {
            Some((first, period)) => first + period * k,
            None => Instant::now(),
        };
        if due >= end {
            break;
        }
        let from = if schedule.is_some() && due > free_at {
            tokio::time::sleep_until(due).await;
            Instant::now()
        } else {
            due
        };
        let req = request(&args, &queries[n % queries.len()])?;
        n += workers;
        out.requests += 1;
        let res = call(&mut client, req, timeout).await;
        let us = u64::try_from(from.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        out.all.saturating_record(us);
        match res {
            Ok(()) => out.hist.saturating_record(us),
            Err(kind) => *out.errors.entry(kind).or_default() += 1,
        }
        free_at = Instant::now();
    }
    Ok(out)
}

/// Microseconds as milliseconds.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The reported percentiles of a histogram, in milliseconds (all zero when it is empty).
fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    serde_json::json!({
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p99.9": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": h.mean().round() / 1000.0,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.rate < 0.0 || !args.rate.is_finite() {
        bail!("--rate must be 0 (unlimited) or positive");
    }
    let queries = load_queries(args.queries.as_ref())?;
    let mut clients = connect(&args).await?;
    if args.warm {
        let Some(first) = clients.first_mut() else { bail!("no connection") };
        warm(&args, first, &queries).await?;
        note(&format!("warmed {} distinct queries", queries.len()));
        if args.duration <= 0.0 {
            println!("{}", serde_json::json!({"label": args.label, "warmed": queries.len()}));
            return Ok(());
        }
    }
    if args.duration <= 0.0 {
        bail!("--duration must be positive (0 only with --warm)");
    }
    let rate_text = if args.rate > 0.0 { format!("{} req/s", args.rate) } else { "unlimited".into() };
    note(&format!(
        "{} for {}s at {rate_text}, {} workers over {} connections",
        args.addr, args.duration, args.concurrency, args.connections
    ));

    let args = std::sync::Arc::new(args);
    let queries = std::sync::Arc::new(queries);
    let start = Instant::now() + Duration::from_millis(20);
    let end = start + Duration::from_secs_f64(args.duration);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.concurrency.max(1) {
        let client = clients[i % clients.len()].clone();
        tasks.spawn(worker(args.clone(), client, queries.clone(), i, start, end));
    }
    let (mut hist, mut all) = (new_hist()?, new_hist()?);
    let (mut requests, mut errors) = (0u64, BTreeMap::<String, u64>::new());
    while let Some(res) = tasks.join_next().await {
        let r = res.context("worker panicked")??;
        hist.add(&r.hist).context("merging histograms")?;
        all.add(&r.all).context("merging histograms")?;
        requests += r.requests;
        for (k, v) in r.errors {
            *errors.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ok = hist.len();
    let error_count: u64 = errors.values().sum();
    let result = serde_json::json!({
        "label": args.label,
        "target": args.addr,
        "rate": if args.rate > 0.0 { serde_json::json!(args.rate) } else { serde_json::Value::Null },
        "concurrency": args.concurrency,
        "connections": args.connections,
        "duration_s": elapsed,
        "requests": requests,
        "ok": ok,
        "errors": error_count,
        "error_kinds": errors,
        "throughput_rps": ok as f64 / elapsed,
        "latency_ms": percentiles(&hist),
        "latency_all_ms": percentiles(&all),
    });
    println!("{result}");
    Ok(())
}
