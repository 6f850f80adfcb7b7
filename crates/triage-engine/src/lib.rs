//! In-process LLM engines.
//!
//! [`LocalLlm`] runs a quantized llama-architecture GGUF model (e.g. SmolLM2) on the CPU with
//! candle, with the tokenizer and chat template rebuilt from the GGUF metadata alone.
//! With the `mistralrs` feature, [`MistralRsLlm`] adds mistral.rs with JSON-schema-constrained
//! decoding, for GPU nodes.

mod chat_template;
mod error;
mod gguf_tokenizer;
mod llm;
#[cfg(feature = "mistralrs")]
mod mistralrs_engine;
mod stop;

pub use error::{Error, Result};
pub use gguf_tokenizer::GgufTokenizer;
pub use llm::{ChatMessage, ChatRole, GenerateParams, Generation, LocalLlm, StopReason};
#[cfg(feature = "mistralrs")]
pub use mistralrs_engine::MistralRsLlm;
