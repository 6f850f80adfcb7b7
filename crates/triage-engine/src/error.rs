use std::path::PathBuf;

/// Everything that can go wrong loading or running an in-process model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid GGUF metadata `{key}`: {reason}")]
    Metadata { key: String, reason: String },

    #[error("unsupported model architecture `{0}` (only `llama` GGUF files are supported)")]
    UnsupportedArchitecture(String),

    #[error("unsupported tokenizer: {0}")]
    UnsupportedTokenizer(String),

    #[error("unsupported chat template: {0}")]
    UnsupportedChatTemplate(String),

    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    #[error("inference error: {0}")]
    Candle(#[from] candle_core::Error),

    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// Even after dropping every droppable message the prompt leaves no room to generate.
    #[error("prompt of {prompt_tokens} tokens does not fit the context window of {context_window} tokens")]
    ContextOverflow { prompt_tokens: u32, context_window: u32 },

    /// The `on_token` callback asked to stop. Token counts are carried so callers can still
    /// account for the work that was done.
    #[error("generation cancelled after {output_tokens} tokens")]
    Cancelled { input_tokens: u32, output_tokens: u32 },

    #[cfg(feature = "mistralrs")]
    #[error("mistral.rs: {0}")]
    MistralRs(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn metadata(key: &str, reason: impl std::fmt::Display) -> Self {
        Self::Metadata { key: key.to_owned(), reason: reason.to_string() }
    }
}

impl From<tokenizers::Error> for Error {
    fn from(e: tokenizers::Error) -> Self {
        Self::Tokenizer(e.to_string())
    }
}
