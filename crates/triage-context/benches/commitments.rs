//! `extract_commitments`, which runs on every assistant reply in the Route path: replies
//! with no commitment cue (the common case) and replies that make decisions.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use triage_context::extract_commitments;

const CASES: &[(&str, &str)] = &[
    ("short_no_cue", "Sure — here is a quick answer."),
    (
        "paragraph_no_cue",
        "Great question! The main difference is that a list keeps its order while a set does not. \
         If you need to look things up quickly, a set or a dictionary is usually the better choice. \
         Let me know if you would like an example.",
    ),
    ("refund_approved", "Thanks for waiting! Your refund of $40 has been approved."),
    (
        "mixed_promise",
        "I checked order #A-1234 for you. The replacement will ship by Friday, and you will \
         receive a credit of $10 within 5 business days. Anything else I can help with?",
    ),
    ("es_cancel", "Su pedido 778 será cancelado y el reembolso de 40 dólares llegará en 3 días hábiles."),
];

fn bench(c: &mut Criterion) {
    for (name, text) in CASES {
        c.bench_function(&format!("extract_commitments/{name}"), |b| {
            b.iter(|| extract_commitments(black_box(text), "fast", "v1", 4))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
