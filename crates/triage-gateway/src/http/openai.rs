//! OpenAI chat completion wire types, and the parser that turns a request body into a
//! Route request. Unknown request fields are ignored (clients send many optional ones);
//! every refusal names the parameter, as OpenAI does.

use super::error::ApiError;
use serde::{Deserialize, Serialize};

/// The model name that routes by policy instead of pinning a model.
pub const AUTO_MODEL: &str = "triage/auto";

/// `POST /v1/chat/completions` body (the fields Triage uses).
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// `triage/auto` or a declared model name.
    pub model: String,
    /// The conversation so far; the last user message is the turn.
    pub messages: Vec<Message>,
    /// Server-sent events instead of one JSON body.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Legacy name of `max_completion_tokens`.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Most completion tokens.
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature 0..2.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// End-user id, for per-user spend scopes.
    #[serde(default)]
    pub user: Option<String>,
    /// Number of choices; only 1 is supported.
    #[serde(default)]
    pub n: Option<u32>,
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with usage and no choices.
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// One chat message.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// `system`, `developer`, `user`, `assistant`, `tool`.
    pub role: String,
    /// Text, or a list of content parts.
    #[serde(default)]
    pub content: Option<Content>,
}

/// Message content.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts; only `text` parts are accepted.
    Parts(Vec<Part>),
}

/// One content part.
#[derive(Debug, Deserialize)]
pub struct Part {
    /// `text`, `image_url`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

/// Limits the parser enforces before anything is called.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Most messages.
    pub max_messages: usize,
    /// Largest max_tokens.
    pub max_tokens_limit: u32,
}

/// What the endpoint needs from a parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedChat {
    /// Requested model (`triage/auto` or a name).
    pub model: String,
    /// The turn: text of the last user message.
    pub turn: String,
    /// 0 means the configured default.
    pub max_tokens: u32,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// End-user id.
    pub user: Option<String>,
    /// Stream the answer.
    pub stream: bool,
    /// Final usage chunk when streaming.
    pub include_usage: bool,
}

fn bad(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(Some(param), message)
}

/// Parses and checks a request body. Never panics, whatever the bytes.
pub fn parse_chat(body: &[u8], limits: ParseLimits) -> Result<ParsedChat, ApiError> {
    let req: ChatRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(None, format!("We could not parse the JSON body of your request: {e}")))?;
    if req.model.trim().is_empty() {
        return Err(bad("model", "you must provide a model parameter"));
    }
    if req.messages.is_empty() {
        return Err(bad("messages", "messages must contain at least one message"));
    }
    if req.messages.len() > limits.max_messages {
        return Err(bad(
            "messages",
            format!("{} messages is over the limit of {}", req.messages.len(), limits.max_messages),
        ));
    }
    if req.n.is_some_and(|n| n != 1) {
        return Err(bad("n", "only n=1 is supported"));
    }
    let max_tokens = req.max_completion_tokens.or(req.max_tokens).unwrap_or(0);
    if max_tokens > limits.max_tokens_limit {
        return Err(bad(
            "max_tokens",
            format!("max_tokens {max_tokens} is over the limit of {}", limits.max_tokens_limit),
        ));
    }
    let last_user = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .ok_or_else(|| bad("messages", "messages must contain a user message"))?;
    let turn = match &last_user.content {
        Some(Content::Text(t)) => t.clone(),
        Some(Content::Parts(parts)) => {
            let mut text = Vec::with_capacity(parts.len());
            for p in parts {
                match (p.kind.as_str(), &p.text) {
                    ("text", Some(t)) => text.push(t.as_str()),
                    _ => {
                        return Err(bad(
                            "messages",
                            format!("content part type `{}` is not supported; send text", p.kind),
                        ));
                    }
                }
            }
            text.join("\n")
        }
        None => String::new(),
    };
    if turn.trim().is_empty() {
        return Err(bad("messages", "the last user message must have text content"));
    }
    let stream = req.stream.unwrap_or(false);
    let include_usage = stream && req.stream_options.and_then(|o| o.include_usage).unwrap_or(false);
    Ok(ParsedChat {
        model: req.model,
        turn,
        max_tokens,
        temperature: req.temperature,
        user: req.user.filter(|u| !u.is_empty()),
        stream,
        include_usage,
    })
}

/// Token usage.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
    /// Sum.
    pub total_tokens: u32,
}

impl Usage {
    /// From the Route usage.
    pub fn from_pb(u: Option<&triage_proto::pb::Usage>) -> Usage {
        let (i, o) = u.map(|u| (u.input_tokens, u.output_tokens)).unwrap_or((0, 0));
        Usage { prompt_tokens: i, completion_tokens: o, total_tokens: i.saturating_add(o) }
    }
}

/// `chat.completion`.
#[derive(Debug, Serialize)]
pub struct ChatCompletion {
    /// `chatcmpl-...`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// Declared name of the model that answered.
    pub model: String,
    /// One choice.
    pub choices: Vec<Choice>,
    /// Tokens used.
    pub usage: Usage,
    /// The answering model's pinned version.
    pub system_fingerprint: Option<String>,
}

/// A non-streamed choice.
#[derive(Debug, Serialize)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The reply.
    pub message: AssistantMessage,
    /// Always null.
    pub logprobs: Option<()>,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
}

/// The assistant's reply.
#[derive(Debug, Serialize)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// Reply text.
    pub content: String,
    /// Always null.
    pub refusal: Option<String>,
}

/// `chat.completion.chunk`.
#[derive(Debug, Serialize)]
pub struct ChatChunk {
    /// Same id on every chunk.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: &'static str,
    /// Same on every chunk.
    pub created: u64,
    /// Requested model until the answer is done, then the one that answered.
    pub model: String,
    /// Pinned version once known.
    pub system_fingerprint: Option<String>,
    /// One choice, or none on the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Present (null) on every chunk when usage was asked for; set on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

/// A streamed choice.
#[derive(Debug, Serialize)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What this chunk adds.
    pub delta: Delta,
    /// Always null.
    pub logprobs: Option<()>,
    /// Null until the last content chunk.
    pub finish_reason: Option<&'static str>,
}

/// A streamed piece of the reply.
#[derive(Debug, Default, Serialize)]
pub struct Delta {
    /// `assistant` on the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// Text added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `GET /v1/models` entry.
#[derive(Debug, Serialize)]
pub struct ModelObject {
    /// Model name to send as `model`.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Unix seconds (unknown: 0).
    pub created: u64,
    /// Provider kind (`triage` for the routing model).
    pub owned_by: String,
}

/// `GET /v1/models` body.
#[derive(Debug, Serialize)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<ModelObject>,
}
