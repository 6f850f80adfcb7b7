//! OpenAI chat completions, and the servers that speak it (Groq, Together, vLLM, Ollama,
//! mistral.rs server): `POST {base}/chat/completions`, unary or SSE `data:` lines ending in
//! `data: [DONE]`, usage in the last chunk when `stream_options.include_usage` is set.

use crate::provider::{
    Finish, Provider, ProviderCall, ProviderEvent, ProviderReply, ProviderStream, error_from_response, read_json,
    role_name, send_error,
};
use crate::sse::{self, SseEvent};
use crate::{Error, Result};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// An OpenAI-compatible endpoint serving one model.
pub(crate) struct OpenAi {
    model: String,
    url: String,
    model_id: String,
    auth: Option<HeaderValue>,
    key: Option<String>,
    http: reqwest::Client,
}

impl OpenAi {
    pub(crate) fn new(model: &str, base_url: &str, model_id: &str, key: Option<String>, http: reqwest::Client) -> Self {
        // Marked sensitive so reqwest's and hyper's Debug output never prints it.
        let auth = key.as_deref().and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok()).map(|mut v| {
            v.set_sensitive(true);
            v
        });
        Self {
            model: model.to_string(),
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            model_id: model_id.to_string(),
            auth,
            key,
            http,
        }
    }

    async fn send(&self, call: &ProviderCall<'_>, stream: bool) -> Result<reqwest::Response> {
        let body = Body::new(&self.model_id, call, stream);
        let mut rb = self.http.post(&self.url).json(&body);
        if let Some(auth) = &self.auth {
            rb = rb.header(AUTHORIZATION, auth.clone());
        }
        if stream {
            rb = rb.header(ACCEPT, "text/event-stream");
        }
        if !call.request_id.is_empty()
            && let Ok(id) = HeaderValue::from_str(call.request_id)
        {
            rb = rb.header("x-client-request-id", id);
        }
        let resp = rb.send().await.map_err(|e| send_error(&self.model, &e))?;
        if !resp.status().is_success() {
            return Err(error_from_response(&self.model, resp, self.key.as_deref()).await);
        }
        Ok(resp)
    }
}

#[async_trait::async_trait]
impl Provider for OpenAi {
    fn kind(&self) -> &'static str {
        "openai"
    }

    async fn generate(&self, call: &ProviderCall<'_>) -> Result<ProviderReply> {
        let resp = self.send(call, false).await?;
        let c: Completion = read_json(&self.model, resp).await?;
        let Some(choice) = c.choices.into_iter().next() else {
            return Err(Error::Malformed { model: self.model.clone(), message: "no choices in the completion".into() });
        };
        let refused = choice.message.refusal.is_some();
        let text = choice.message.content.or(choice.message.refusal).unwrap_or_default();
        let usage = c.usage.unwrap_or_default();
        let mut stop_reason = stop_reason(choice.finish_reason.as_deref());
        if refused {
            stop_reason = "content_filter".into();
        }
        Ok(ProviderReply {
            text,
            finish: Finish {
                input_tokens: usage.prompt_tokens,
                output_tokens: usage.completion_tokens,
                stop_reason,
                reported_model: c.model,
            },
        })
    }

    async fn stream(&self, call: &ProviderCall<'_>) -> Result<ProviderStream> {
        let resp = self.send(call, true).await?;
        let dec = Decoder { model: self.model.clone(), finish: Finish::default() };
        Ok(sse::decode(Box::pin(resp.bytes_stream()), dec, self.model.clone()))
    }
}

/// OpenAI's finish reasons in Triage's vocabulary (Anthropic's words).
fn stop_reason(finish_reason: Option<&str>) -> String {
    match finish_reason {
        None | Some("stop") => "end_turn",
        Some("length") => "max_tokens",
        Some("content_filter") => "content_filter",
        Some("tool_calls" | "function_call") => "tool_use",
        Some(other) => other,
    }
    .to_string()
}

struct Decoder {
    model: String,
    finish: Finish,
}

impl sse::Decoder for Decoder {
    fn on_event(&mut self, ev: SseEvent, out: &mut VecDeque<ProviderEvent>) -> Result<bool> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            if self.finish.stop_reason.is_empty() {
                self.finish.stop_reason = stop_reason(None);
            }
            out.push_back(ProviderEvent::Done(std::mem::take(&mut self.finish)));
            return Ok(true);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| Error::Malformed {
            model: self.model.clone(),
            message: format!("invalid stream chunk: {e}"),
        })?;
        if let Some(err) = chunk.error {
            // Some servers report failures inside a 200 stream; the status is long gone.
            let msg = err["message"].as_str().unwrap_or("error event in stream");
            return Err(Error::Provider {
                model: self.model.clone(),
                status: 502,
                message: msg.chars().take(400).collect(),
            });
        }
        if !chunk.model.is_empty() {
            self.finish.reported_model = chunk.model;
        }
        if let Some(choice) = chunk.choices.unwrap_or_default().into_iter().next() {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                out.push_back(ProviderEvent::Delta(text));
            }
            if choice.finish_reason.is_some() {
                self.finish.stop_reason = stop_reason(choice.finish_reason.as_deref());
            }
        }
        if let Some(u) = chunk.usage {
            self.finish.input_tokens = u.prompt_tokens;
            self.finish.output_tokens = u.completion_tokens;
        }
        Ok(false)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<Msg<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
}

impl<'a> Body<'a> {
    fn new(model_id: &'a str, call: &ProviderCall<'a>, stream: bool) -> Self {
        let mut messages = Vec::with_capacity(call.messages.len() + 1);
        if !call.system.is_empty() {
            messages.push(Msg { role: "system", content: call.system });
        }
        messages.extend(call.messages.iter().map(|m| Msg { role: role_name(m.role), content: &m.content }));
        Body {
            model: model_id,
            messages,
            // `max_tokens`, not `max_completion_tokens`: every compatible server knows it.
            max_tokens: (call.max_tokens > 0).then_some(call.max_tokens),
            temperature: call.temperature,
            stream,
            stream_options: stream.then_some(StreamOptions { include_usage: true }),
            response_format: call.json_schema.map(|schema| ResponseFormat {
                kind: "json_schema",
                json_schema: JsonSchema { name: "reply", schema, strict: true },
            }),
        }
    }
}

#[derive(Serialize)]
struct Msg<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    json_schema: JsonSchema<'a>,
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    name: &'static str,
    schema: &'a serde_json::Value,
    strict: bool,
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    model: String,
    // vLLM sends `"choices": null` on the usage chunk; OpenAI sends `[]`.
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::Decoder as _;

    fn feed(dec: &mut Decoder, data: &str) -> (Vec<ProviderEvent>, bool) {
        let mut out = VecDeque::new();
        let done = dec.on_event(SseEvent { event: "message".into(), data: data.into() }, &mut out).unwrap();
        (out.into_iter().collect(), done)
    }

    #[test]
    fn stream_chunks_decode_to_deltas_usage_and_stop() {
        let mut d = Decoder { model: "m".into(), finish: Finish::default() };
        let (ev, _) = feed(
            &mut d,
            r#"{"model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
        );
        assert!(ev.is_empty());
        let (ev, _) =
            feed(&mut d, r#"{"model":"gpt-x","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#);
        assert_eq!(ev, vec![ProviderEvent::Delta("Hi".into())]);
        feed(&mut d, r#"{"model":"gpt-x","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#);
        feed(
            &mut d,
            r#"{"model":"gpt-x","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#,
        );
        let (ev, done) = feed(&mut d, "[DONE]");
        assert!(done);
        assert_eq!(
            ev,
            vec![ProviderEvent::Done(Finish {
                input_tokens: 7,
                output_tokens: 3,
                stop_reason: "max_tokens".into(),
                reported_model: "gpt-x".into()
            })]
        );
    }

    #[test]
    fn null_choices_and_error_chunks() {
        let mut d = Decoder { model: "m".into(), finish: Finish::default() };
        let (ev, _) = feed(&mut d, r#"{"choices":null,"usage":{"prompt_tokens":1,"completion_tokens":2}}"#);
        assert!(ev.is_empty());
        let mut out = VecDeque::new();
        let err = d
            .on_event(
                SseEvent {
                    event: "message".into(),
                    data: r#"{"error":{"message":"boom","type":"server_error"}}"#.into(),
                },
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.outcome(), "provider_error");
        let err = d.on_event(SseEvent { event: "message".into(), data: "{oops".into() }, &mut out).unwrap_err();
        assert_eq!(err.outcome(), "malformed");
    }

    #[test]
    fn request_body_shape() {
        let msgs = [triage_proto::pb::Message { role: 1, content: "hello".into(), ..Default::default() }];
        let schema = serde_json::json!({"type":"object"});
        let call = ProviderCall {
            request_id: "r",
            system: "be brief",
            messages: &msgs,
            max_tokens: 64,
            temperature: Some(0.5),
            json_schema: Some(&schema),
        };
        let v = serde_json::to_value(Body::new("gpt-x", &call, true)).unwrap();
        assert_eq!(v["model"], "gpt-x");
        assert_eq!(v["messages"][0], serde_json::json!({"role":"system","content":"be brief"}));
        assert_eq!(v["messages"][1], serde_json::json!({"role":"user","content":"hello"}));
        assert_eq!(v["max_tokens"], 64);
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["response_format"]["type"], "json_schema");
        assert_eq!(v["response_format"]["json_schema"]["schema"], schema);
        let unary =
            serde_json::to_value(Body::new("gpt-x", &ProviderCall { json_schema: None, ..call }, false)).unwrap();
        assert!(unary.get("stream_options").is_none());
        assert!(unary.get("response_format").is_none());
    }
}
