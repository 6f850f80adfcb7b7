//! A fake Anthropic Messages server (`POST /v1/messages`): real HTTP, the real JSON and
//! SSE event shapes, scripted faults. See [`FakeServer`] for the controls.

use crate::fake::{FakeServer, Reply, Wire, pieces};
use axum::http::HeaderMap;
use serde_json::{Value, json};

/// A running fake Anthropic provider; derefs to [`FakeServer`] for the controls.
#[derive(Debug)]
pub struct FakeAnthropic(FakeServer);

impl FakeAnthropic {
    /// Starts on 127.0.0.1 on a free port. `base_url()` has no path (the adapter adds
    /// `/v1/messages`), like `https://api.anthropic.com`.
    pub async fn start() -> std::io::Result<FakeAnthropic> {
        Ok(FakeAnthropic(FakeServer::start(AnthropicWire, "/v1/messages", "").await?))
    }
}

impl std::ops::Deref for FakeAnthropic {
    type Target = FakeServer;
    fn deref(&self) -> &FakeServer {
        &self.0
    }
}

struct AnthropicWire;

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

impl Wire for AnthropicWire {
    fn key_matches(&self, headers: &HeaderMap, key: &str) -> bool {
        headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(key)
    }

    fn sent_key(&self, headers: &HeaderMap) -> String {
        headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }

    fn error_body(&self, status: u16, message: &str) -> Value {
        let kind = match status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        json!({"type": "error", "error": {"type": kind, "message": message}})
    }

    fn unary(&self, r: &Reply, model: &str, n: usize) -> Value {
        json!({
            "id": format!("msg_fake{n}"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": r.text}],
            "stop_reason": r.stop_reason.clone().unwrap_or_else(|| "end_turn".into()),
            "stop_sequence": null,
            "usage": {"input_tokens": r.input_tokens, "output_tokens": r.output_tokens},
        })
    }

    fn frames(&self, r: &Reply, model: &str, n: usize, _request: &Value) -> Vec<(String, bool)> {
        let start = json!({"type": "message_start", "message": {
            "id": format!("msg_fake{n}"), "type": "message", "role": "assistant", "content": [],
            "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": r.input_tokens, "output_tokens": 1},
        }});
        let mut out = vec![
            (event("message_start", &start), false),
            (
                event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
                false,
            ),
            (event("ping", &json!({"type": "ping"})), false),
        ];
        for p in pieces(&r.text) {
            let d = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}});
            out.push((event("content_block_delta", &d), true));
        }
        out.push((event("content_block_stop", &json!({"type": "content_block_stop", "index": 0})), false));
        let stop = r.stop_reason.clone().unwrap_or_else(|| "end_turn".into());
        let delta = json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": r.output_tokens}});
        out.push((event("message_delta", &delta), false));
        out.push((event("message_stop", &json!({"type": "message_stop"})), false));
        out
    }

    fn malformed_frame(&self) -> String {
        "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"delta\": {\n\n".to_string()
    }
}
