//! One trait for every way of calling a model, dispatched from the config's
//! [`ProviderConfig`] enum, plus the HTTP plumbing the HTTP adapters share (client, error
//! bodies, Retry-After, secret redaction).

use crate::{Error, Result};
use futures::stream::BoxStream;
use reqwest::header::HeaderMap;
use std::sync::Arc;
use std::time::Duration;
use triage_core::config::{BackendsConfig, Config, ModelConfig, ProviderConfig};
use triage_proto::pb;

/// What one provider call needs, borrowed from the request.
#[derive(Debug, Clone, Copy)]
pub struct ProviderCall<'a> {
    /// Request id, forwarded where the provider accepts one.
    pub request_id: &'a str,
    /// System prompt (may be empty).
    pub system: &'a str,
    /// Messages, oldest first; roles already validated.
    pub messages: &'a [pb::Message],
    /// Most completion tokens; 0 means the adapter's default.
    pub max_tokens: u32,
    /// Sampling temperature; `None` is the provider's default.
    pub temperature: Option<f32>,
    /// JSON schema the reply must follow, parsed.
    pub json_schema: Option<&'a serde_json::Value>,
}

/// How a reply ended, as the provider told it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finish {
    /// Prompt tokens billed.
    pub input_tokens: u32,
    /// Completion tokens billed.
    pub output_tokens: u32,
    /// Normalised stop reason: `end_turn`, `max_tokens`, `stop_sequence`, `content_filter`,
    /// `tool_use`.
    pub stop_reason: String,
    /// Model id the provider says answered (empty when it said none).
    pub reported_model: String,
}

/// A whole reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderReply {
    /// Generated text.
    pub text: String,
    /// Usage, stop reason, model.
    pub finish: Finish,
}

/// One item of a streamed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEvent {
    /// The next piece of text.
    Delta(String),
    /// The reply is complete; always the last item of a well-formed stream.
    Done(Finish),
}

/// A streamed reply. A stream that ends without [`ProviderEvent::Done`] is cut.
pub type ProviderStream = BoxStream<'static, Result<ProviderEvent>>;

/// An adapter: one per provider kind.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Short provider kind name (`openai`, `anthropic`, `local`).
    fn kind(&self) -> &'static str;
    /// Generates a whole reply.
    async fn generate(&self, call: &ProviderCall<'_>) -> Result<ProviderReply>;
    /// Starts a streamed reply; returns once the provider accepted the call.
    async fn stream(&self, call: &ProviderCall<'_>) -> Result<ProviderStream>;
}

/// Builds the adapter of one declared model. `Err` is why the model is unavailable (no key,
/// missing file); it never carries a secret.
pub async fn build(
    name: &str,
    model: &ModelConfig,
    cfg: &Config,
    http: &reqwest::Client,
) -> std::result::Result<Arc<dyn Provider>, String> {
    match &model.provider {
        ProviderConfig::Openai { base_url, model_id, api_key } => {
            let key = match api_key {
                Some(k) => Some(k.resolve()?),
                None => None,
            };
            Ok(Arc::new(crate::openai::OpenAi::new(name, base_url, model_id, key, http.clone())))
        }
        ProviderConfig::Anthropic { base_url, model_id, api_key, api_version } => {
            let key = api_key.resolve()?;
            Ok(Arc::new(crate::anthropic::Anthropic::new(name, base_url, model_id, key, api_version, http.clone())))
        }
        ProviderConfig::Local { gguf, seed } => {
            let path = cfg.resolve_path(gguf);
            let p = crate::local::Local::load(name, &path, *seed).await?;
            Ok(Arc::new(p))
        }
        #[cfg(feature = "mistralrs")]
        ProviderConfig::Mistralrs { model_path } => {
            let p = crate::mistralrs::MistralRs::load(name, &cfg.resolve_path(model_path)).await?;
            Ok(Arc::new(p))
        }
        #[cfg(not(feature = "mistralrs"))]
        ProviderConfig::Mistralrs { model_path } => Err(format!(
            "the mistral.rs engine is not built into this binary (cargo feature `mistralrs`); model path {}",
            model_path.display()
        )),
    }
}

/// The HTTP client every HTTP adapter shares: one connection pool per host, Nagle off so a
/// small request is not held back waiting for an ACK.
pub fn http_client(cfg: &BackendsConfig) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .pool_idle_timeout(Duration::from_secs(90))
        .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("triage/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Unavailable {
            model: "*".into(),
            reason: format!("cannot build the HTTP client: {}", describe(&e)),
        })
}

/// A reqwest error with its causes ("... tcp connect error: Connection refused"). Keys travel
/// only in headers, never in URLs, so the URL reqwest includes is safe to show.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Maps a failure to send a request or read its body.
pub(crate) fn send_error(model: &str, e: &reqwest::Error) -> Error {
    Error::Connect { model: model.to_string(), message: describe(e) }
}

/// Provider error messages are echoed to callers and logs: strip the key (some providers
/// quote a wrong key back) and bound the length.
pub(crate) fn redact(text: &str, secret: Option<&str>) -> String {
    let mut s = match secret {
        Some(k) if k.len() >= 4 => text.replace(k, "[redacted]"),
        _ => text.to_string(),
    };
    if s.len() > 400 {
        let mut cut = 400;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Retry-After as sent by OpenAI (`retry-after-ms`, `retry-after`) and Anthropic
/// (`retry-after`, seconds). The HTTP-date form is ignored: backoff applies instead.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let num = |name: &str| -> Option<f64> {
        let v = headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok()?;
        (v.is_finite() && v >= 0.0).then_some(v)
    };
    if let Some(ms) = num("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms.min(86_400_000.0) / 1000.0));
    }
    num("retry-after").map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// Turns a non-2xx response into an error. Both providers put the message at
/// `error.message` and the kind at `error.type`; OpenAI adds `error.code`.
pub(crate) async fn error_from_response(model: &str, resp: reqwest::Response, secret: Option<&str>) -> Error {
    let status = resp.status().as_u16();
    let retry = retry_after(resp.headers());
    if status == 429 {
        return Error::RateLimited { model: model.to_string(), retry_after: retry };
    }
    let body = resp.bytes().await.unwrap_or_default();
    let message = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => {
            let err = &v["error"];
            let msg = err["message"].as_str().unwrap_or("");
            let kind = err["type"].as_str().or_else(|| err["code"].as_str()).unwrap_or("");
            match (kind.is_empty(), msg.is_empty()) {
                (false, false) => format!("{kind}: {msg}"),
                (true, false) => msg.to_string(),
                (false, true) => kind.to_string(),
                (true, true) => String::from_utf8_lossy(&body).into_owned(),
            }
        }
        Err(_) => String::from_utf8_lossy(&body).into_owned(),
    };
    Error::Provider { model: model.to_string(), status, message: redact(&message, secret) }
}

/// Reads a unary body and parses it.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(model: &str, resp: reqwest::Response) -> Result<T> {
    let body = resp.bytes().await.map_err(|e| send_error(model, &e))?;
    serde_json::from_slice(&body)
        .map_err(|e| Error::Malformed { model: model.to_string(), message: format!("invalid JSON body: {e}") })
}

/// Wire name of a validated role.
pub(crate) fn role_name(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Assistant) => "assistant",
        Ok(pb::Role::System) => "system",
        _ => "user",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after", HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(500)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut d = HeaderMap::new();
        d.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&d), None);
        d.insert("retry-after", HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&d), None);
    }

    #[test]
    fn redaction_removes_key_and_bounds_length() {
        let s = redact("Incorrect API key provided: sk-secret-123. Try again", Some("sk-secret-123"));
        assert!(!s.contains("sk-secret-123"));
        assert!(s.contains("[redacted]"));
        let long = "é".repeat(500);
        assert!(redact(&long, None).len() <= 404);
    }
}
