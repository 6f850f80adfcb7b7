//! The in-process model (triage-engine, candle on CPU). Inference blocks a thread for
//! seconds, so it runs on tokio's blocking pool; streamed tokens cross back through a
//! channel, and a dropped receiver (caller gone, deadline passed) stops generation at the
//! next token instead of burning CPU for nobody.

use crate::provider::{Finish, Provider, ProviderCall, ProviderEvent, ProviderReply, ProviderStream, role_name};
use crate::{Error, Result};
use futures::StreamExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use triage_engine::{ChatMessage, ChatRole, GenerateParams, LocalLlm, StopReason};

/// Used when the request leaves `max_tokens` at 0.
const DEFAULT_MAX_TOKENS: u32 = 256;

/// A GGUF model loaded in this process.
pub(crate) struct Local {
    model: String,
    llm: Arc<LocalLlm>,
    seed: u64,
}

impl Local {
    /// Loads the model on the blocking pool. `Err` is the reason the model is unavailable.
    pub(crate) async fn load(model: &str, path: &Path, seed: u64) -> std::result::Result<Local, String> {
        if !path.is_file() {
            return Err(format!("model file {} not found (scripts/fetch-models.sh downloads it)", path.display()));
        }
        let p = path.to_path_buf();
        let llm = tokio::task::spawn_blocking(move || LocalLlm::load(&p))
            .await
            .map_err(|e| format!("loading {} panicked: {e}", path.display()))?
            .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
        tracing::info!(model, model_id = llm.model_id(), context_window = llm.context_window(), "local model loaded");
        Ok(Local { model: model.to_string(), llm: Arc::new(llm), seed })
    }

    fn messages(call: &ProviderCall<'_>) -> Vec<ChatMessage> {
        let mut system = call.system.to_string();
        if let Some(schema) = call.json_schema {
            // The candle engine has no constrained decoding; ask in words instead.
            if !system.is_empty() {
                system.push_str("\n\n");
            }
            system.push_str(&format!(
                "Reply with one JSON value that follows this JSON schema, and nothing else:\n{schema}"
            ));
        }
        let mut out = Vec::with_capacity(call.messages.len() + 1);
        if !system.is_empty() {
            out.push(ChatMessage::system(system));
        }
        out.extend(call.messages.iter().map(engine_message));
        out
    }

    fn params(&self, call: &ProviderCall<'_>) -> GenerateParams {
        GenerateParams {
            max_tokens: if call.max_tokens == 0 { DEFAULT_MAX_TOKENS } else { call.max_tokens },
            temperature: call.temperature,
            seed: self.seed,
            stop: Vec::new(),
        }
    }
}

/// A wire message as the in-process engines (candle, mistral.rs) take it.
pub(crate) fn engine_message(m: &triage_proto::pb::Message) -> ChatMessage {
    let role = match role_name(m.role) {
        "assistant" => ChatRole::Assistant,
        "system" => ChatRole::System,
        _ => ChatRole::User,
    };
    ChatMessage::new(role, m.content.clone())
}

pub(crate) fn stop_reason(r: StopReason) -> String {
    match r {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
    }
    .to_string()
}

fn engine_error(model: &str, e: triage_engine::Error) -> Error {
    match e {
        // The request cannot fit this model: like a provider's 400, it is not retried and
        // does not count against the breaker, but a fallback with a larger window may answer.
        triage_engine::Error::ContextOverflow { .. } | triage_engine::Error::InvalidRequest(_) => {
            Error::Provider { model: model.to_string(), status: 400, message: e.to_string() }
        }
        other => Error::Inference { model: model.to_string(), message: other.to_string() },
    }
}

/// Sets the flag when dropped: the async side went away, so generation should stop.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl Provider for Local {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn generate(&self, call: &ProviderCall<'_>) -> Result<ProviderReply> {
        let llm = self.llm.clone();
        let msgs = Self::messages(call);
        let params = self.params(call);
        let cancel = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancel.clone());
        let g = tokio::task::spawn_blocking(move || {
            llm.generate(&msgs, &params, &mut |_piece| !cancel.load(Ordering::Relaxed))
        })
        .await
        .map_err(|e| Error::Inference { model: self.model.clone(), message: format!("inference task failed: {e}") })?
        .map_err(|e| engine_error(&self.model, e))?;
        Ok(ProviderReply {
            text: g.text,
            finish: Finish {
                input_tokens: g.input_tokens,
                output_tokens: g.output_tokens,
                stop_reason: stop_reason(g.stop_reason),
                reported_model: String::new(),
            },
        })
    }

    async fn stream(&self, call: &ProviderCall<'_>) -> Result<ProviderStream> {
        let llm = self.llm.clone();
        let msgs = Self::messages(call);
        let params = self.params(call);
        let model = self.model.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ProviderEvent>>(64);
        tokio::task::spawn_blocking(move || {
            let mut on_token =
                |piece: &str| piece.is_empty() || tx.blocking_send(Ok(ProviderEvent::Delta(piece.to_string()))).is_ok();
            let item = match llm.generate(&msgs, &params, &mut on_token) {
                Ok(g) => Ok(ProviderEvent::Done(Finish {
                    input_tokens: g.input_tokens,
                    output_tokens: g.output_tokens,
                    stop_reason: stop_reason(g.stop_reason),
                    reported_model: String::new(),
                })),
                Err(triage_engine::Error::Cancelled { .. }) => return,
                Err(e) => Err(engine_error(&model, e)),
            };
            let _ = tx.blocking_send(item);
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed())
    }
}
