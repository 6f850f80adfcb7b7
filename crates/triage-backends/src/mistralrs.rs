//! The in-process mistral.rs engine (feature `mistralrs`): GGUF models on GPU nodes (or CPU),
//! with JSON-schema constrained decoding when a request carries a schema. mistral.rs batches
//! concurrent requests itself, so calls go straight to it.

use crate::provider::{Finish, Provider, ProviderCall, ProviderEvent, ProviderReply, ProviderStream};
use crate::{Error, Result};
use futures::StreamExt;
use std::path::Path;
use triage_engine::{ChatMessage, MistralRsLlm};

/// Used when the request leaves `max_tokens` at 0.
const DEFAULT_MAX_TOKENS: u32 = 256;

pub(crate) struct MistralRs {
    model: String,
    llm: MistralRsLlm,
}

impl MistralRs {
    /// Loads the model. `Err` is the reason the model is unavailable.
    pub(crate) async fn load(model: &str, path: &Path) -> std::result::Result<MistralRs, String> {
        if !path.exists() {
            return Err(format!("model {} not found", path.display()));
        }
        let force_cpu = std::env::var("TRIAGE_FORCE_CPU").is_ok_and(|v| v == "1");
        let llm =
            MistralRsLlm::load(path, force_cpu).await.map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        tracing::info!(model, model_id = llm.model_id(), "mistral.rs model loaded");
        Ok(MistralRs { model: model.to_string(), llm })
    }

    fn messages(call: &ProviderCall<'_>) -> Vec<ChatMessage> {
        let mut out = Vec::with_capacity(call.messages.len() + 1);
        if !call.system.is_empty() {
            out.push(ChatMessage::system(call.system.to_string()));
        }
        out.extend(call.messages.iter().map(crate::local::engine_message));
        out
    }
}

#[async_trait::async_trait]
impl Provider for MistralRs {
    fn kind(&self) -> &'static str {
        "mistralrs"
    }

    async fn generate(&self, call: &ProviderCall<'_>) -> Result<ProviderReply> {
        let max_tokens = if call.max_tokens == 0 { DEFAULT_MAX_TOKENS } else { call.max_tokens };
        let g = self
            .llm
            .chat(&Self::messages(call), max_tokens, call.json_schema.cloned())
            .await
            .map_err(|e| Error::Inference { model: self.model.clone(), message: e.to_string() })?;
        Ok(ProviderReply {
            text: g.text,
            finish: Finish {
                input_tokens: g.input_tokens,
                output_tokens: g.output_tokens,
                stop_reason: crate::local::stop_reason(g.stop_reason),
                reported_model: String::new(),
            },
        })
    }

    /// The in-process engine answers whole; the reply goes out as one delta and the finish.
    /// (Token streaming from mistral.rs is served by its OpenAI-compatible server, which the
    /// `openai` adapter streams.)
    async fn stream(&self, call: &ProviderCall<'_>) -> Result<ProviderStream> {
        let reply = self.generate(call).await?;
        let events = vec![Ok(ProviderEvent::Delta(reply.text)), Ok(ProviderEvent::Done(reply.finish))];
        Ok(futures::stream::iter(events).boxed())
    }
}
