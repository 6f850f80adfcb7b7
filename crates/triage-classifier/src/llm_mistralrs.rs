//! [`JsonChat`] on mistral.rs (feature `mistralrs`): the seed's LLM classifier, with decoding
//! constrained to the label schema so the answer always parses (the strict parse and one
//! retry in [`crate::llm`] still guard against a model cut short by `max_tokens`).

use crate::llm::JsonChat;
use crate::{Error, Result};
use std::path::Path;
use triage_engine::{ChatMessage, ChatRole, MistralRsLlm};

/// An instruct model loaded in-process by mistral.rs.
pub struct MistralRsChat {
    llm: MistralRsLlm,
}

impl MistralRsChat {
    /// Loads a GGUF model (Mistral-7B-Instruct on GPU nodes, SmolLM2 in CI); `force_cpu`
    /// keeps it off a GPU even when CUDA is compiled in.
    pub async fn load(path: &Path, force_cpu: bool) -> Result<Self> {
        let llm = MistralRsLlm::load(path, force_cpu).await.map_err(|e| Error::Model(e.to_string()))?;
        Ok(Self { llm })
    }
}

#[async_trait::async_trait]
impl JsonChat for MistralRsChat {
    async fn complete_json(
        &self,
        messages: &[(String, String)],
        schema: &serde_json::Value,
        max_tokens: u32,
    ) -> Result<String> {
        let msgs: Vec<ChatMessage> = messages
            .iter()
            .map(|(role, content)| {
                let role = match role.as_str() {
                    "system" => ChatRole::System,
                    "assistant" => ChatRole::Assistant,
                    _ => ChatRole::User,
                };
                ChatMessage::new(role, content.clone())
            })
            .collect();
        let g = self
            .llm
            .chat(&msgs, max_tokens, Some(schema.clone()))
            .await
            .map_err(|e| Error::Inference(e.to_string()))?;
        Ok(g.text)
    }

    fn model_id(&self) -> String {
        self.llm.model_id().to_string()
    }
}
