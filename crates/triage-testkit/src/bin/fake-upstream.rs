//! A fast fake OpenAI-compatible upstream for benchmarks (`scripts/bench.sh`): the testkit's
//! [`FakeOpenAi`] on a given address, fixed reply, no delay, TCP_NODELAY on, multi-threaded.
//!
//! ```text
//! fake-upstream --listen 127.0.0.1:9000 [--threads N] [--key KEY]
//! ```
//!
//! Prints `listening on ADDR` once it accepts connections; stops on SIGTERM or Ctrl-C.

use std::error::Error;
use triage_testkit::FakeOpenAi;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

struct Args {
    listen: String,
    threads: Option<usize>,
    key: Option<String>,
}

const USAGE: &str = "usage: fake-upstream [--listen HOST:PORT] [--threads N] [--key KEY]";

fn parse_args() -> Res<Args> {
    let mut out = Args { listen: "127.0.0.1:0".into(), threads: None, key: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "--listen" => out.listen = value("--listen")?,
            "--threads" => out.threads = Some(value("--threads")?.parse()?),
            "--key" => out.key = Some(value("--key")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}").into()),
        }
    }
    Ok(out)
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    rt.build()?.block_on(run(args))
}

async fn run(args: Args) -> Res<()> {
    let fake = FakeOpenAi::start_on(&args.listen).await?;
    if let Some(key) = &args.key {
        fake.require_key(key);
    }
    println!("listening on {}", fake.addr());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("fake-upstream: {} requests served", fake.requests());
    Ok(())
}
