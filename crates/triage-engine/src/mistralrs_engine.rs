//! mistral.rs engine (feature `mistralrs`), for GPU nodes and for output that must match a
//! JSON schema: mistral.rs constrains decoding with llguidance, so the reply always parses.

use std::path::Path;
use std::time::Instant;

use mistralrs::{Constraint, GgufModelBuilder, Model, RequestBuilder, TextMessageRole, TokenSource};

use crate::error::{Error, Result};
use crate::llm::{ChatMessage, ChatRole, Generation, StopReason};

/// A GGUF model served by an in-process mistral.rs engine.
///
/// mistral.rs schedules and batches requests itself, so `chat` may be called concurrently.
pub struct MistralRsLlm {
    model: Model,
    model_id: String,
}

impl std::fmt::Debug for MistralRsLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MistralRsLlm").field("model_id", &self.model_id).finish_non_exhaustive()
    }
}

impl MistralRsLlm {
    /// Loads a local GGUF file; tokenizer and chat template come from its metadata.
    /// `force_cpu` skips CUDA even when it was compiled in and a GPU is present.
    pub async fn load(path: &Path, force_cpu: bool) -> Result<Self> {
        let started = Instant::now();
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .ok_or_else(|| Error::InvalidRequest(format!("{} is not a file", path.display())))?;
        // mistral.rs takes a "model id" (a local directory here) plus file names inside it.
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let model_id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| file_name.clone());

        // TokenSource::None: everything is local, and no Hugging Face token should be read.
        let mut builder =
            GgufModelBuilder::new(dir.to_string_lossy(), vec![file_name]).with_token_source(TokenSource::None);
        if force_cpu {
            builder = builder.with_force_cpu();
        }
        let model =
            builder.build().await.map_err(|e| Error::MistralRs(format!("loading {}: {e:#}", path.display())))?;
        tracing::info!(
            model_id,
            path = %path.display(),
            load_ms = started.elapsed().as_millis(),
            "loaded mistral.rs model"
        );
        Ok(Self { model, model_id })
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Greedy chat completion. With `json_schema`, decoding is constrained so the text is a
    /// JSON document valid against that schema (unless `max_tokens` cuts it short, which
    /// shows as [`StopReason::MaxTokens`]).
    pub async fn chat(
        &self,
        messages: &[ChatMessage],
        max_tokens: u32,
        json_schema: Option<serde_json::Value>,
    ) -> Result<Generation> {
        if messages.is_empty() {
            return Err(Error::InvalidRequest("no messages".into()));
        }
        // RequestBuilder::new() starts from deterministic (greedy) sampling.
        let mut request = RequestBuilder::new().set_sampler_max_len(max_tokens as usize);
        for m in messages {
            request = request.add_message(role(m.role), &m.content);
        }
        if let Some(schema) = json_schema {
            request = request.set_constraint(Constraint::JsonSchema(schema));
        }
        let response = self.model.send_chat_request(request).await.map_err(|e| Error::MistralRs(e.to_string()))?;
        let usage = response.usage;
        let choice =
            response.choices.into_iter().next().ok_or_else(|| Error::MistralRs("response has no choices".into()))?;
        let stop_reason = match choice.finish_reason.as_str() {
            "length" => StopReason::MaxTokens,
            "stop" | "tool_calls" => StopReason::EndTurn,
            other => {
                return Err(Error::MistralRs(format!("generation ended with `{other}`")));
            }
        };
        Ok(Generation {
            text: choice.message.content.unwrap_or_default(),
            input_tokens: u32::try_from(usage.prompt_tokens).unwrap_or(u32::MAX),
            output_tokens: u32::try_from(usage.completion_tokens).unwrap_or(u32::MAX),
            stop_reason,
        })
    }
}

fn role(role: ChatRole) -> TextMessageRole {
    match role {
        ChatRole::System => TextMessageRole::System,
        ChatRole::User => TextMessageRole::User,
        ChatRole::Assistant => TextMessageRole::Assistant,
    }
}
