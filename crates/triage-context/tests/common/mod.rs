//! Shared test setup: a real redis-server per test and a scripted summarizer.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use triage_backends::{Backends, ChunkStream};
use triage_context::RedisContext;
use triage_core::config::ContextConfig;
use triage_proto::pb;
use triage_testkit::RedisServer;

pub const FAST: &str = "groq-mixtral";
pub const FAST_VERSION: &str = "mixtral-8x7b-32768";
pub const FRONTIER: &str = "claude-sonnet";
pub const FRONTIER_VERSION: &str = "claude-3-5-sonnet-20241022";
pub const SUMMARIZER: &str = "groq-llama-8b";

pub fn config() -> ContextConfig {
    ContextConfig { ttl: Duration::from_secs(3600), ..ContextConfig::default() }
}

pub async fn store(server: &RedisServer, backends: Option<Arc<dyn Backends>>, cfg: &ContextConfig) -> RedisContext {
    RedisContext::connect(&server.url(), cfg, "triage-test", backends).await.expect("connect")
}

pub fn user(text: &str) -> pb::Message {
    pb::Message { role: pb::Role::User as i32, content: text.into(), ..Default::default() }
}

pub fn assistant(text: &str, model: &str, version: &str) -> pb::Message {
    pb::Message {
        role: pb::Role::Assistant as i32,
        content: text.into(),
        model: model.into(),
        model_version: version.into(),
        ..Default::default()
    }
}

pub fn append(tenant: &str, id: &str, messages: Vec<pb::Message>) -> pb::AppendRequest {
    pb::AppendRequest { tenant: tenant.into(), conversation_id: id.into(), messages, ..Default::default() }
}

pub fn get(tenant: &str, id: &str) -> pb::GetConversationRequest {
    pb::GetConversationRequest { tenant: tenant.into(), conversation_id: id.into(), ..Default::default() }
}

/// What the scripted summarizer answers.
#[derive(Clone)]
pub enum Reply {
    /// A provider error.
    Fail,
    /// This text as the reply.
    Text(String),
    /// Never answers in time.
    Hang,
}

/// A test double of our own `Backends` trait that plays the summarizer model.
pub struct ScriptedSummarizer {
    pub reply: Reply,
    pub calls: AtomicUsize,
    pub last_request: std::sync::Mutex<Option<pb::GenerateRequest>>,
}

impl ScriptedSummarizer {
    pub fn new(reply: Reply) -> Arc<Self> {
        Arc::new(Self { reply, calls: AtomicUsize::new(0), last_request: std::sync::Mutex::new(None) })
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Backends for ScriptedSummarizer {
    async fn generate(&self, req: pb::GenerateRequest) -> triage_backends::Result<pb::GenerateResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let model = req.model.clone();
        *self.last_request.lock().expect("lock") = Some(req);
        match &self.reply {
            Reply::Fail => Err(triage_backends::Error::Provider { model, status: 503, message: "overloaded".into() }),
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(triage_backends::Error::InvalidRequest("unreachable".into()))
            }
            Reply::Text(t) => Ok(pb::GenerateResponse {
                text: t.clone(),
                model,
                model_version: "llama-3.1-8b-instant".into(),
                ..Default::default()
            }),
        }
    }

    async fn generate_stream(&self, _req: pb::GenerateRequest) -> triage_backends::Result<ChunkStream> {
        Err(triage_backends::Error::InvalidRequest("not used by the context service".into()))
    }

    async fn list_models(&self) -> triage_backends::Result<pb::ListModelsResponse> {
        Ok(pb::ListModelsResponse::default())
    }
}
