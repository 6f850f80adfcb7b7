//! Handlers of `/v1/chat/completions` and `/v1/models`.

use super::error::ApiError;
use super::openai::*;
use super::{AppState, CONVERSATION_HEADER, MODEL_HEADER, REQUEST_ID_HEADER, RULE_HEADER};
use crate::auth::Auth;
use crate::flow::OnEnd;
use crate::grpc::Tenant;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use triage_proto::pb;
use triage_proto::pb::route_chunk::Chunk;

/// `GET /v1/models`: `triage/auto` first, then every declared model that is not retired.
pub(super) async fn models(State(s): State<AppState>) -> Json<ModelList> {
    let mut data = vec![ModelObject { id: AUTO_MODEL.into(), object: "model", created: 0, owned_by: "triage".into() }];
    data.extend(s.gw.catalog().iter().filter(|m| !m.is_retired()).map(|m| ModelObject {
        id: m.name.clone(),
        object: "model",
        created: 0,
        owned_by: m.provider.to_string(),
    }));
    Json(ModelList { object: "list", data })
}

/// `POST /v1/chat/completions`.
pub(super) async fn completions(
    State(s): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match run(s, tenant, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// Reads the body within the size and time limits: a slow or oversized client is refused
/// before anything is parsed, called or charged.
async fn read_body(s: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let server = &s.gw.config.server;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > server.max_body_bytes as u64) {
        return Err(ApiError::too_large(server.max_body_bytes));
    }
    match tokio::time::timeout(server.body_read_timeout, axum::body::to_bytes(body, server.max_body_bytes)).await {
        Err(_) => Err(ApiError::body_timeout()),
        Ok(Err(_)) => Err(ApiError::too_large(server.max_body_bytes)),
        Ok(Ok(b)) => Ok(b),
    }
}

async fn run(s: AppState, tenant: String, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(&s, &headers, body).await?;
    let server = &s.gw.config.server;
    let chat = parse_chat(
        &bytes,
        ParseLimits { max_messages: server.max_messages, max_tokens_limit: server.max_tokens_limit },
    )?;
    let model = if chat.model == AUTO_MODEL {
        String::new()
    } else if s.gw.catalog().get(&chat.model).is_some() {
        chat.model.clone()
    } else {
        return Err(ApiError::model_not_found(&chat.model));
    };
    let header_str =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    // A caller continuing a conversation names it; otherwise the id is chosen here, so a
    // stream can return it in its headers before the answer exists.
    let (conversation_id, create_if_missing) = match header_str(CONVERSATION_HEADER) {
        Some(id) => (id.to_string(), false),
        None => (uuid::Uuid::new_v4().to_string(), true),
    };
    let request_id =
        header_str(REQUEST_ID_HEADER).map(str::to_string).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let req = pb::RouteRequest {
        request_id,
        conversation_id,
        turn: chat.turn.clone(),
        user: chat.user.clone().map(|user_id| pb::UserContext { user_id, ..Default::default() }),
        max_tokens: chat.max_tokens,
        temperature: chat.temperature,
        create_if_missing,
        model,
    };
    // Refuse a bad request before it takes from the tenant's rate.
    crate::validate::route_request(&req, server)?;
    let max_tokens = if chat.max_tokens == 0 { server.default_max_tokens } else { chat.max_tokens };
    // Rough prompt estimate (4 bytes a token) plus the whole reply; settled to actual usage.
    let estimate = (req.turn.len() / 4) as u64 + u64::from(max_tokens);
    s.auth.limiter().admit(&tenant, estimate)?;
    if chat.stream {
        return stream(s, tenant, req, chat, estimate, max_tokens).await;
    }
    // `create_if_missing` is set exactly when the id was made up above.
    let named_here = req.create_if_missing;
    let resp = s.gw.route_in(&tenant, req, named_here, Some(settle_on_end(&s.auth, &tenant, estimate))).await?;
    let usage = Usage::from_pb(resp.usage.as_ref());
    let body = ChatCompletion {
        id: format!("chatcmpl-{}", resp.request_id),
        object: "chat.completion",
        created: now_secs(),
        model: resp.model.clone(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage { role: "assistant", content: resp.reply.clone(), refusal: None },
            logprobs: None,
            finish_reason: finish_reason(usage, max_tokens),
        }],
        usage,
        system_fingerprint: Some(resp.model_version.clone()),
    };
    let mut out = Json(body).into_response();
    let h = out.headers_mut();
    set_header(h, REQUEST_ID_HEADER, &resp.request_id);
    set_header(h, CONVERSATION_HEADER, &resp.conversation_id);
    set_header(h, MODEL_HEADER, &resp.model);
    set_header(h, RULE_HEADER, &resp.rule_id);
    Ok(out)
}

/// Settles the tenant's token rate to what the Route used, once it ends: in the Route's own
/// task, so a caller that left (a closed connection) does not keep its whole estimate held.
/// A replayed answer used no tokens this time.
fn settle_on_end(auth: &Arc<Auth>, tenant: &str, estimate: u64) -> OnEnd {
    let (auth, tenant) = (auth.clone(), tenant.to_string());
    Box::new(move |res| {
        let used = match res {
            Ok(r) if !r.replayed => Usage::from_pb(r.usage.as_ref()).total_tokens,
            _ => 0,
        };
        auth.limiter().settle(&tenant, estimate, u64::from(used));
    })
}

fn finish_reason(usage: Usage, max_tokens: u32) -> &'static str {
    if usage.completion_tokens >= max_tokens { "length" } else { "stop" }
}

struct ChunkWriter {
    id: String,
    created: u64,
    model: String,
    fingerprint: Option<String>,
    include_usage: bool,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    /// The client went away: keep draining the flow (to settle usage) but stop writing.
    gone: bool,
}

impl ChunkWriter {
    async fn send_raw(&mut self, data: String) {
        if !self.gone && self.tx.send(Ok(Bytes::from(format!("data: {data}\n\n")))).await.is_err() {
            self.gone = true;
        }
    }

    async fn send(&mut self, choices: Vec<ChunkChoice>, usage: Option<Usage>) {
        let chunk = ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: self.fingerprint.clone(),
            choices,
            usage: self.include_usage.then_some(usage),
        };
        let json = serde_json::to_string(&chunk).unwrap_or_default();
        self.send_raw(json).await;
    }

    async fn delta(&mut self, delta: Delta, finish_reason: Option<&'static str>) {
        self.send(vec![ChunkChoice { index: 0, delta, logprobs: None, finish_reason }], None).await;
    }
}

/// Streams the answer as SSE. The first item of the flow is awaited before answering, so a
/// request refused up front (unknown conversation, budget) gets its real HTTP status.
async fn stream(
    s: AppState,
    tenant: String,
    req: pb::RouteRequest,
    chat: ParsedChat,
    estimate: u64,
    max_tokens: u32,
) -> Result<Response, ApiError> {
    let (request_id, conversation_id) = (req.request_id.clone(), req.conversation_id.clone());
    let named_here = req.create_if_missing; // set exactly when the id was made up
    let settle = settle_on_end(&s.auth, &tenant, estimate);
    let mut rx = s.gw.route_stream_in(tenant, req, named_here, Some(settle));
    let first = match rx.recv().await {
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(c)) => c,
        None => return Err(crate::Error::Store("the answer stream ended early".into()).into()),
    };
    let (tx, body_rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let mut w = ChunkWriter {
        id: format!("chatcmpl-{request_id}"),
        created: now_secs(),
        model: chat.model.clone(),
        fingerprint: None,
        include_usage: chat.include_usage,
        tx,
        gone: false,
    };
    tokio::spawn(async move {
        w.delta(Delta { role: Some("assistant"), content: Some(String::new()) }, None).await;
        let mut next = Some(Ok(first));
        loop {
            let item = match next.take() {
                Some(i) => i,
                None => match rx.recv().await {
                    Some(i) => i,
                    None => break,
                },
            };
            match item {
                Ok(pb::RouteChunk { chunk: Some(Chunk::Delta(d)) }) => {
                    w.delta(Delta { role: None, content: Some(d) }, None).await;
                }
                Ok(pb::RouteChunk { chunk: Some(Chunk::Done(resp)) }) => {
                    let usage = Usage::from_pb(resp.usage.as_ref());
                    w.model = resp.model.clone();
                    w.fingerprint = Some(resp.model_version.clone());
                    w.delta(Delta::default(), Some(finish_reason(usage, max_tokens))).await;
                    if w.include_usage {
                        w.send(Vec::new(), Some(usage)).await;
                    }
                    w.send_raw("[DONE]".into()).await;
                    return;
                }
                Ok(pb::RouteChunk { chunk: None }) => {}
                Err(e) => {
                    // OpenAI reports a failure mid-stream as an `error` event; clients raise it.
                    w.send_raw(ApiError::from(e).body_json()).await;
                    return;
                }
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body_rx));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    set_header(h, REQUEST_ID_HEADER, &request_id);
    set_header(h, CONVERSATION_HEADER, &conversation_id);
    Ok(resp)
}
