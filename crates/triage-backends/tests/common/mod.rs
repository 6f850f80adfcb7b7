//! Shared helpers: configs around the fake providers, requests, stream collection.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use std::io::Write;
use triage_backends::{Backends, ChunkStream, Error, LocalBackends};
use triage_core::Config;
use triage_proto::pb;
use triage_proto::pb::generate_chunk::Chunk;

/// Retry, breaker and deadline settings, as YAML under `backends:` plus the generate
/// deadline.
pub struct Knobs {
    pub timeout: &'static str,
    pub ttft: &'static str,
    pub max_retries: u32,
    pub base_delay: &'static str,
    pub max_delay: &'static str,
    pub budget_ratio: f64,
    pub budget_min_per_sec: u32,
    pub threshold: u32,
    pub cooldown: &'static str,
    pub generate_deadline: &'static str,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            timeout: "2s",
            ttft: "1s",
            max_retries: 2,
            base_delay: "10ms",
            max_delay: "200ms",
            budget_ratio: 0.5,
            budget_min_per_sec: 10,
            threshold: 5,
            cooldown: "300ms",
            generate_deadline: "10s",
        }
    }
}

/// A model entry; `provider` is the YAML of the provider block (one line, flow style).
pub struct M {
    pub name: &'static str,
    pub tier: &'static str,
    pub provider: String,
    pub version: String,
    pub fallbacks: Vec<&'static str>,
    pub extra: String,
}

pub fn openai(name: &'static str, base_url: &str, model_id: &str, key_file: Option<&std::path::Path>) -> M {
    let key = key_file.map(|p| format!(", api_key: {{ file: {} }}", p.display())).unwrap_or_default();
    M {
        name,
        tier: "middle",
        provider: format!("{{ kind: openai, base_url: \"{base_url}\", model_id: {model_id}{key} }}"),
        version: model_id.to_string(),
        fallbacks: vec![],
        extra: String::new(),
    }
}

pub fn anthropic(name: &'static str, base_url: &str, model_id: &str, key_file: &std::path::Path) -> M {
    M {
        name,
        tier: "frontier",
        provider: format!(
            "{{ kind: anthropic, base_url: \"{base_url}\", model_id: {model_id}, api_key: {{ file: {} }} }}",
            key_file.display()
        ),
        version: model_id.to_string(),
        fallbacks: vec![],
        extra: String::new(),
    }
}

impl M {
    pub fn fallbacks(mut self, f: &[&'static str]) -> M {
        self.fallbacks = f.to_vec();
        self
    }
    pub fn extra(mut self, yaml_lines: &str) -> M {
        self.extra = yaml_lines.to_string();
        self
    }
}

/// A config with the given models, plus three anchors so every tier names a model.
pub fn config(models: &[M], k: &Knobs) -> Config {
    let mut y = format!(
        "tiers: {{ fast: anchor-fast, middle: anchor-middle, frontier: anchor-frontier }}\n\
         server:\n  deadlines: {{ generate: {} }}\n\
         backends:\n  timeout: {}\n  ttft_timeout: {}\n  \
         retry: {{ max_retries: {}, base_delay: {}, max_delay: {}, budget_ratio: {}, budget_min_per_sec: {} }}\n  \
         breaker: {{ failure_threshold: {}, cooldown: {} }}\nmodels:\n",
        k.generate_deadline,
        k.timeout,
        k.ttft,
        k.max_retries,
        k.base_delay,
        k.max_delay,
        k.budget_ratio,
        k.budget_min_per_sec,
        k.threshold,
        k.cooldown
    );
    for tier in ["fast", "middle", "frontier"] {
        y.push_str(&format!(
            "  anchor-{tier}:\n    tier: {tier}\n    provider: {{ kind: openai, base_url: \"http://127.0.0.1:9/v1\", model_id: anchor }}\n    version: anchor\n    context_window: 1000\n"
        ));
    }
    for m in models {
        y.push_str(&format!(
            "  {}:\n    tier: {}\n    provider: {}\n    version: {}\n    context_window: 8192\n    price: {{ input_per_mtok: 150000, output_per_mtok: 600000 }}\n    fallbacks: [{}]\n",
            m.name,
            m.tier,
            m.provider,
            m.version,
            m.fallbacks.join(", ")
        ));
        for line in m.extra.lines() {
            y.push_str(&format!("    {line}\n"));
        }
    }
    Config::from_yaml(&y, std::path::Path::new("<test>")).unwrap_or_else(|e| panic!("{e}\n{y}"))
}

pub async fn backends(models: &[M], k: &Knobs) -> LocalBackends {
    LocalBackends::new(&config(models, k)).await.unwrap()
}

/// A key in a file, as a mounted Kubernetes Secret would hold it.
pub fn key_file(key: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "{key}").unwrap();
    f
}

pub fn req(model: &str, fallbacks: &[&str]) -> pb::GenerateRequest {
    pb::GenerateRequest {
        request_id: "req-1".into(),
        model: model.into(),
        fallbacks: fallbacks.iter().map(|s| s.to_string()).collect(),
        system: "Be brief.".into(),
        messages: vec![pb::Message {
            role: pb::Role::User as i32,
            content: "Where is my order?".into(),
            ..Default::default()
        }],
        max_tokens: 64,
        temperature: None,
        json_schema: String::new(),
        model_version: String::new(),
    }
}

/// What a stream produced: its text pieces, the final metadata, or the error that ended it.
#[derive(Debug, Default)]
pub struct Collected {
    pub deltas: Vec<String>,
    pub done: Option<pb::GenerateResponse>,
    pub error: Option<Error>,
}

pub async fn collect(mut s: ChunkStream) -> Collected {
    let mut c = Collected::default();
    while let Some(item) = s.next().await {
        match item {
            Ok(pb::GenerateChunk { chunk: Some(Chunk::Delta(d)) }) => c.deltas.push(d),
            Ok(pb::GenerateChunk { chunk: Some(Chunk::Done(d)) }) => c.done = Some(d),
            Ok(_) => {}
            Err(e) => c.error = Some(e),
        }
    }
    c
}

pub async fn stream(b: &LocalBackends, r: pb::GenerateRequest) -> Collected {
    collect(b.generate_stream(r).await.unwrap()).await
}

pub fn outcomes(r: &pb::GenerateResponse) -> Vec<(String, String)> {
    r.attempts.iter().map(|a| (a.model.clone(), a.outcome.clone())).collect()
}
