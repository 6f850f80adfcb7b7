//! Adapter overhead: `LocalBackends::generate` (validation, breaker, budget, request
//! building, JSON decoding, drift check, response building) against a direct reqwest call
//! with the same body to the same fake OpenAI server. Target: ≤ 100 µs at p50.
//!
//! Prints interleaved percentiles first (the number the README quotes), then criterion's
//! own measurements of both.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use triage_backends::{Backends, LocalBackends};
use triage_core::Config;
use triage_proto::pb;
use triage_testkit::FakeOpenAi;

fn must<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("bench setup failed: {e:?}"),
    }
}

fn config(base_url: &str) -> Config {
    let yaml = format!(
        "tiers: {{ fast: m, middle: m2, frontier: m3 }}\nmodels:\n\
         \x20 m:\n    tier: fast\n    provider: {{ kind: openai, base_url: \"{base_url}\", model_id: gpt-x }}\n    version: gpt-x\n    context_window: 8192\n\
         \x20 m2:\n    tier: middle\n    provider: {{ kind: openai, base_url: \"{base_url}\", model_id: gpt-x }}\n    version: gpt-x\n    context_window: 8192\n\
         \x20 m3:\n    tier: frontier\n    provider: {{ kind: openai, base_url: \"{base_url}\", model_id: gpt-x }}\n    version: gpt-x\n    context_window: 8192\n"
    );
    must(Config::from_yaml(&yaml, std::path::Path::new("<bench>")))
}

fn request() -> pb::GenerateRequest {
    pb::GenerateRequest {
        request_id: "bench".into(),
        model: "m".into(),
        fallbacks: vec![],
        system: "Be brief.".into(),
        messages: vec![pb::Message {
            role: pb::Role::User as i32,
            content: "Where is my order #4411? It was due yesterday.".into(),
            ..Default::default()
        }],
        max_tokens: 64,
        temperature: None,
        json_schema: String::new(),
        model_version: String::new(),
    }
}

struct Setup {
    _fake: FakeOpenAi,
    be: LocalBackends,
    client: reqwest::Client,
    url: String,
    body: serde_json::Value,
}

async fn direct(s: &Setup) {
    let resp = must(s.client.post(&s.url).json(&s.body).send().await);
    let v: serde_json::Value = must(resp.json().await);
    black_box(v);
}

async fn adapter(s: &Setup) {
    black_box(must(s.be.generate(request()).await));
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

fn bench(c: &mut Criterion) {
    let rt = must(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build());
    let setup = rt.block_on(async {
        let fake = must(FakeOpenAi::start().await);
        let be = must(LocalBackends::new(&config(&fake.base_url())).await);
        let client = must(reqwest::Client::builder().tcp_nodelay(true).build());
        let url = format!("{}/chat/completions", fake.base_url());
        let body = serde_json::json!({
            "model": "gpt-x",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is my order #4411? It was due yesterday."}],
            "max_tokens": 64,
            "stream": false,
        });
        Setup { _fake: fake, be, client, url, body }
    });

    // Interleaved so both sides see the same machine load (the CPUs are shared).
    let (mut d, mut a) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..300 {
            direct(&setup).await;
            adapter(&setup).await;
        }
        for _ in 0..3000 {
            let t = Instant::now();
            direct(&setup).await;
            d.push(t.elapsed());
            let t = Instant::now();
            adapter(&setup).await;
            a.push(t.elapsed());
        }
    });
    let (d50, a50) = (pct(&mut d, 0.5), pct(&mut a, 0.5));
    let (d99, a99) = (pct(&mut d, 0.99), pct(&mut a, 0.99));
    println!(
        "adapter overhead: p50 {:?} (direct {d50:?}, adapter {a50:?}); p99 direct {d99:?}, adapter {a99:?}",
        a50.saturating_sub(d50)
    );

    let mut g = c.benchmark_group("openai_unary");
    g.bench_function("direct_reqwest", |b| b.iter(|| rt.block_on(direct(&setup))));
    g.bench_function("local_backends_generate", |b| b.iter(|| rt.block_on(adapter(&setup))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
