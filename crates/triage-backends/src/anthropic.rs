//! Anthropic Messages API: `POST {base}/v1/messages` with `x-api-key` and
//! `anthropic-version`, the system prompt as a top-level field, and SSE events
//! `message_start`, `content_block_*`, `message_delta`, `message_stop`, `ping`, `error`.

use crate::provider::{
    Finish, Provider, ProviderCall, ProviderEvent, ProviderReply, ProviderStream, error_from_response, read_json,
    redact, role_name, send_error,
};
use crate::sse::{self, SseEvent};
use crate::{Error, Result};
use reqwest::header::{ACCEPT, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The Messages API requires `max_tokens`; used when the request leaves it at 0.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// An Anthropic endpoint serving one model.
pub(crate) struct Anthropic {
    model: String,
    url: String,
    model_id: String,
    key_header: Option<HeaderValue>,
    key: String,
    version: HeaderValue,
    http: reqwest::Client,
}

impl Anthropic {
    pub(crate) fn new(
        model: &str,
        base_url: &str,
        model_id: &str,
        key: String,
        api_version: &str,
        http: reqwest::Client,
    ) -> Self {
        let key_header = HeaderValue::from_str(&key).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        });
        Self {
            model: model.to_string(),
            url: format!("{}/v1/messages", base_url.trim_end_matches('/')),
            model_id: model_id.to_string(),
            key_header,
            key,
            version: HeaderValue::from_str(api_version).unwrap_or(HeaderValue::from_static("2023-06-01")),
            http,
        }
    }

    async fn send(&self, call: &ProviderCall<'_>, stream: bool) -> Result<reqwest::Response> {
        let system = system_prompt(call);
        let body = Body::new(&self.model_id, call, &system, stream);
        let mut rb = self.http.post(&self.url).header("anthropic-version", self.version.clone()).json(&body);
        if let Some(k) = &self.key_header {
            rb = rb.header("x-api-key", k.clone());
        }
        if stream {
            rb = rb.header(ACCEPT, "text/event-stream");
        }
        let resp = rb.send().await.map_err(|e| send_error(&self.model, &e))?;
        if !resp.status().is_success() {
            return Err(error_from_response(&self.model, resp, Some(&self.key)).await);
        }
        Ok(resp)
    }
}

#[async_trait::async_trait]
impl Provider for Anthropic {
    fn kind(&self) -> &'static str {
        "anthropic"
    }

    async fn generate(&self, call: &ProviderCall<'_>) -> Result<ProviderReply> {
        let resp = self.send(call, false).await?;
        let m: MessageResponse = read_json(&self.model, resp).await?;
        let text: String = m.content.iter().filter(|b| b.kind == "text").filter_map(|b| b.text.as_deref()).collect();
        let usage = m.usage.unwrap_or_default();
        Ok(ProviderReply {
            text,
            finish: Finish {
                input_tokens: usage.input_tokens.unwrap_or(0),
                output_tokens: usage.output_tokens.unwrap_or(0),
                stop_reason: stop_reason(m.stop_reason.as_deref()),
                reported_model: m.model,
            },
        })
    }

    async fn stream(&self, call: &ProviderCall<'_>) -> Result<ProviderStream> {
        let resp = self.send(call, true).await?;
        let dec = Decoder { model: self.model.clone(), key: self.key.clone(), finish: Finish::default() };
        Ok(sse::decode(Box::pin(resp.bytes_stream()), dec, self.model.clone()))
    }
}

/// The top-level system prompt: the request's, then any system messages of the
/// conversation (the Messages API accepts only user and assistant turns), then, when a
/// schema is asked for, the instruction to follow it (the API has no response_format).
fn system_prompt(call: &ProviderCall<'_>) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !call.system.is_empty() {
        parts.push(call.system.to_string());
    }
    for m in call.messages.iter().filter(|m| role_name(m.role) == "system") {
        parts.push(m.content.clone());
    }
    if let Some(schema) = call.json_schema {
        parts.push(format!("Reply with one JSON value that follows this JSON schema, and nothing else:\n{schema}"));
    }
    parts.join("\n\n")
}

fn stop_reason(r: Option<&str>) -> String {
    match r {
        None => "end_turn",
        Some("refusal") => "content_filter",
        Some(other) => other,
    }
    .to_string()
}

struct Decoder {
    model: String,
    key: String,
    finish: Finish,
}

impl sse::Decoder for Decoder {
    fn on_event(&mut self, ev: SseEvent, out: &mut VecDeque<ProviderEvent>) -> Result<bool> {
        let e: StreamEvent = serde_json::from_str(&ev.data).map_err(|e| Error::Malformed {
            model: self.model.clone(),
            message: format!("invalid stream event: {e}"),
        })?;
        match e.kind.as_str() {
            "message_start" => {
                if let Some(m) = e.message {
                    self.finish.reported_model = m.model;
                    if let Some(u) = m.usage {
                        self.finish.input_tokens = u.input_tokens.unwrap_or(0);
                        self.finish.output_tokens = u.output_tokens.unwrap_or(0);
                    }
                }
            }
            "content_block_delta" => {
                if let Some(text) = e.delta.and_then(|d| d.text).filter(|t| !t.is_empty()) {
                    out.push_back(ProviderEvent::Delta(text));
                }
            }
            "message_delta" => {
                if let Some(r) = e.delta.and_then(|d| d.stop_reason) {
                    self.finish.stop_reason = stop_reason(Some(&r));
                }
                if let Some(u) = e.usage {
                    // message_delta usage is cumulative.
                    if let Some(o) = u.output_tokens {
                        self.finish.output_tokens = o;
                    }
                    if let Some(i) = u.input_tokens {
                        self.finish.input_tokens = i;
                    }
                }
            }
            "message_stop" => {
                if self.finish.stop_reason.is_empty() {
                    self.finish.stop_reason = stop_reason(None);
                }
                out.push_back(ProviderEvent::Done(std::mem::take(&mut self.finish)));
                return Ok(true);
            }
            "error" => {
                let err = e.error.unwrap_or_default();
                // The HTTP status was 200; recover the status the error type stands for.
                let status = match err.kind.as_str() {
                    "overloaded_error" => 529,
                    "rate_limit_error" => 429,
                    "invalid_request_error" => 400,
                    "authentication_error" => 401,
                    "permission_error" => 403,
                    "not_found_error" => 404,
                    "request_too_large" => 413,
                    _ => 500,
                };
                let message = redact(&format!("{}: {}", err.kind, err.message), Some(&self.key));
                return Err(Error::Provider { model: self.model.clone(), status, message });
            }
            _ => {} // content_block_start/stop, ping, and event types added later
        }
        Ok(false)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    system: &'a str,
    messages: Vec<Msg<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    stream: bool,
}

impl<'a> Body<'a> {
    fn new(model_id: &'a str, call: &ProviderCall<'a>, system: &'a str, stream: bool) -> Self {
        let messages = call
            .messages
            .iter()
            .filter(|m| role_name(m.role) != "system")
            .map(|m| Msg { role: role_name(m.role), content: &m.content })
            .collect();
        Body {
            model: model_id,
            max_tokens: if call.max_tokens == 0 { DEFAULT_MAX_TOKENS } else { call.max_tokens },
            system,
            messages,
            // Anthropic's range is 0..1 where OpenAI's is 0..2; clamp rather than be refused.
            temperature: call.temperature.map(|t| t.clamp(0.0, 1.0)),
            stream,
        }
    }
}

#[derive(Serialize)]
struct Msg<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Deserialize)]
struct MessageResponse {
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u32>,
    #[serde(default)]
    output_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct StreamEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<StartMessage>,
    #[serde(default)]
    delta: Option<AnyDelta>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: Option<Usage>,
}

/// `content_block_delta.delta` (`text_delta`) and `message_delta.delta` (`stop_reason`).
#[derive(Deserialize)]
struct AnyDelta {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::Decoder as _;
    use triage_proto::pb;

    fn feed(dec: &mut Decoder, event: &str, data: &str) -> Result<(Vec<ProviderEvent>, bool)> {
        let mut out = VecDeque::new();
        let done = dec.on_event(SseEvent { event: event.into(), data: data.into() }, &mut out)?;
        Ok((out.into_iter().collect(), done))
    }

    #[test]
    fn stream_events_decode() {
        let mut d = Decoder { model: "m".into(), key: "k3y-secret".into(), finish: Finish::default() };
        feed(&mut d, "message_start", r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#).unwrap();
        feed(
            &mut d,
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        )
        .unwrap();
        feed(&mut d, "ping", r#"{"type": "ping"}"#).unwrap();
        let (ev, _) = feed(
            &mut d,
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        )
        .unwrap();
        assert_eq!(ev, vec![ProviderEvent::Delta("Hello".into())]);
        feed(&mut d, "content_block_stop", r#"{"type":"content_block_stop","index":0}"#).unwrap();
        feed(&mut d, "message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":15}}"#).unwrap();
        let (ev, done) = feed(&mut d, "message_stop", r#"{"type":"message_stop"}"#).unwrap();
        assert!(done);
        assert_eq!(
            ev,
            vec![ProviderEvent::Done(Finish {
                input_tokens: 25,
                output_tokens: 15,
                stop_reason: "stop_sequence".into(),
                reported_model: "claude-x".into()
            })]
        );
    }

    #[test]
    fn error_event_maps_status_and_redacts() {
        let mut d = Decoder { model: "m".into(), key: "k3y-secret".into(), finish: Finish::default() };
        let e = feed(
            &mut d,
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded k3y-secret"}}"#,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Provider { status: 529, .. }));
        assert!(e.is_retryable());
        assert!(!e.to_string().contains("k3y-secret"));
    }

    #[test]
    fn request_body_shape() {
        let msgs = [
            pb::Message { role: pb::Role::System as i32, content: "ctx".into(), ..Default::default() },
            pb::Message { role: pb::Role::User as i32, content: "hi".into(), ..Default::default() },
        ];
        let schema = serde_json::json!({"type":"object"});
        let call = ProviderCall {
            request_id: "r",
            system: "sys",
            messages: &msgs,
            max_tokens: 0,
            temperature: Some(1.7),
            json_schema: Some(&schema),
        };
        let system = system_prompt(&call);
        let v = serde_json::to_value(Body::new("claude-x", &call, &system, false)).unwrap();
        assert_eq!(v["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(v["temperature"], 1.0);
        assert_eq!(v["messages"], serde_json::json!([{"role":"user","content":"hi"}]));
        let sys = v["system"].as_str().unwrap();
        assert!(sys.starts_with("sys\n\nctx\n\nReply with one JSON value"));
    }
}
