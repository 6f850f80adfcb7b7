//! A fake OpenAI chat-completions server (`POST /v1/chat/completions`): real HTTP, the real
//! JSON and SSE shapes, scripted faults. See [`FakeServer`] for the controls.

use crate::fake::{FakeServer, Reply, Wire, pieces};
use axum::http::HeaderMap;
use serde_json::{Value, json};

/// A running fake OpenAI-compatible provider; derefs to [`FakeServer`] for the controls.
#[derive(Debug)]
pub struct FakeOpenAi(FakeServer);

impl FakeOpenAi {
    /// Starts on 127.0.0.1 on a free port. `base_url()` ends in `/v1`.
    pub async fn start() -> std::io::Result<FakeOpenAi> {
        Ok(FakeOpenAi(FakeServer::start(OpenAiWire, "/v1/chat/completions", "/v1").await?))
    }

    /// Starts on `listen` (`host:port`, e.g. `127.0.0.1:9000`; port 0 picks a free one).
    pub async fn start_on(listen: &str) -> std::io::Result<FakeOpenAi> {
        Ok(FakeOpenAi(FakeServer::start_on(OpenAiWire, "/v1/chat/completions", "/v1", listen).await?))
    }
}

impl std::ops::Deref for FakeOpenAi {
    type Target = FakeServer;
    fn deref(&self) -> &FakeServer {
        &self.0
    }
}

struct OpenAiWire;

fn chunk(id: &str, model: &str, choices: Value, usage: Option<Value>) -> String {
    let mut v = json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": choices});
    if let Some(u) = usage {
        v["usage"] = u;
    }
    format!("data: {v}\n\n")
}

impl Wire for OpenAiWire {
    fn key_matches(&self, headers: &HeaderMap, key: &str) -> bool {
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(format!("Bearer {key}").as_str())
    }

    fn sent_key(&self, headers: &HeaderMap) -> String {
        let v = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        v.strip_prefix("Bearer ").unwrap_or(v).to_string()
    }

    fn error_body(&self, status: u16, message: &str) -> Value {
        let (kind, code) = match status {
            401 => ("invalid_request_error", Value::from("invalid_api_key")),
            404 => ("invalid_request_error", Value::from("model_not_found")),
            429 => ("requests", Value::from("rate_limit_exceeded")),
            400..=499 => ("invalid_request_error", Value::Null),
            _ => ("server_error", Value::Null),
        };
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
    }

    fn unary(&self, r: &Reply, model: &str, n: usize) -> Value {
        json!({
            "id": format!("chatcmpl-fake{n}"),
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": r.text, "refusal": null},
                "logprobs": null,
                "finish_reason": r.stop_reason.clone().unwrap_or_else(|| "stop".into()),
            }],
            "usage": {"prompt_tokens": r.input_tokens, "completion_tokens": r.output_tokens, "total_tokens": r.input_tokens + r.output_tokens},
            "system_fingerprint": "fp_fake",
        })
    }

    fn frames(&self, r: &Reply, model: &str, n: usize, request: &Value) -> Vec<(String, bool)> {
        let id = format!("chatcmpl-fake{n}");
        // With include_usage every chunk carries `"usage": null` and an extra last chunk
        // with empty choices carries the totals.
        let include_usage = request["stream_options"]["include_usage"].as_bool().unwrap_or(false);
        let null_usage = include_usage.then_some(Value::Null);
        let mut out = vec![(
            chunk(
                &id,
                model,
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
                null_usage.clone(),
            ),
            false,
        )];
        for p in pieces(&r.text) {
            let c = json!([{"index": 0, "delta": {"content": p}, "logprobs": null, "finish_reason": null}]);
            out.push((chunk(&id, model, c, null_usage.clone()), true));
        }
        let fin = r.stop_reason.clone().unwrap_or_else(|| "stop".into());
        out.push((
            chunk(&id, model, json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": fin}]), null_usage),
            false,
        ));
        if include_usage {
            let u = json!({"prompt_tokens": r.input_tokens, "completion_tokens": r.output_tokens, "total_tokens": r.input_tokens + r.output_tokens});
            out.push((chunk(&id, model, json!([]), Some(u)), false));
        }
        out.push(("data: [DONE]\n\n".to_string(), false));
        out
    }

    fn malformed_frame(&self) -> String {
        "data: {\"id\": \"chatcmpl-broken\", \"choices\": [{\"delta\": \n\n".to_string()
    }
}
