//! Decide in-process, on the built-in policy over the default config (target: p99 <= 50 µs).
//! Inputs cover the cheapest path (the first label rule fires), the longest (every rule
//! evaluated down to `default`), stickiness and failover.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use triage_core::Config;
use triage_policy::LocalPolicy;
use triage_proto::pb;

fn request(
    complexity: pb::Complexity,
    confidence: f32,
    turns: u32,
    conv_tier: pb::Tier,
    conv_model: &str,
) -> pb::DecideRequest {
    pb::DecideRequest {
        classification: Some(pb::Classification {
            complexity: complexity as i32,
            category: pb::Category::Transactional as i32,
            requires_context: true,
            confidence,
            language: "en".into(),
            model_version: "bench".into(),
        }),
        classifier_failure: String::new(),
        conversation: Some(pb::ConversationState {
            turns,
            tier: conv_tier as i32,
            model: conv_model.into(),
            model_version: String::new(),
            tokens: 1200,
            conversation_id: "c1".into(),
        }),
        user: Some(pb::UserContext {
            user_id: "u1".into(),
            plan: "free".into(),
            premium: false,
            revenue_per_conversation_micros: 800_000,
        }),
        tenant: "acme".into(),
        system: Some(pb::SystemSignals {
            load: 0.4,
            budget_remaining: [("global/day".to_owned(), 0.7), ("tenant:acme/hour".to_owned(), 0.9)]
                .into_iter()
                .collect(),
            breakers: [("claude-sonnet".to_owned(), pb::BreakerState::Closed as i32)].into_iter().collect(),
            unavailable: vec!["openai-gpt-4o".into()],
        }),
        requested_model: String::new(),
    }
}

fn bench(c: &mut Criterion) {
    let policy = match Config::embedded_default()
        .map_err(|e| e.to_string())
        .and_then(|cfg| LocalPolicy::from_config(&cfg).map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => panic!("default policy: {e}"),
    };
    let cases = [
        ("simple_fast", request(pb::Complexity::Simple, 0.95, 1, pb::Tier::Unspecified, "")),
        ("moderate_default", request(pb::Complexity::Moderate, 0.7, 3, pb::Tier::Unspecified, "")),
        ("sticky_frontier", request(pb::Complexity::Simple, 0.95, 4, pb::Tier::Frontier, "claude-sonnet")),
        ("complex_failover", {
            let mut r = request(pb::Complexity::Complex, 0.9, 2, pb::Tier::Middle, "groq-llama-70b");
            if let Some(s) = r.system.as_mut() {
                s.unavailable.push("claude-sonnet".into());
            }
            r
        }),
    ];
    // Criterion reports means and medians; the target is a p99, so time single calls too.
    for (name, req) in &cases {
        let mut ns: Vec<u128> = (0..50_000)
            .map(|_| {
                let t = std::time::Instant::now();
                let _ = black_box(policy.decide_now(black_box(req)));
                t.elapsed().as_nanos()
            })
            .collect();
        ns.sort_unstable();
        let pct = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)] as f64 / 1000.0;
        println!(
            "decide/{name}: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs (50k single calls)",
            pct(0.50),
            pct(0.99),
            pct(0.999)
        );
    }
    let mut g = c.benchmark_group("decide");
    for (name, req) in &cases {
        g.bench_function(*name, |b| b.iter(|| policy.decide_now(black_box(req))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
