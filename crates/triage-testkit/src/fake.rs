//! What the fake providers share: the scripted reply, the fault queue and modes, request
//! recording, and an HTTP server on 127.0.0.1:0 that plays one provider's wire format.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::serve::ListenerExt;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The reply a fake gives when no fault applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Generated text; streams send it word by word.
    pub text: String,
    /// Prompt tokens reported.
    pub input_tokens: u32,
    /// Completion tokens reported.
    pub output_tokens: u32,
    /// Model id reported; `None` echoes the requested model.
    pub model: Option<String>,
    /// Stop reason in the provider's own words (`stop`, `length` / `end_turn`,
    /// `max_tokens`); `None` is the provider's normal end.
    pub stop_reason: Option<String>,
}

impl Default for Reply {
    fn default() -> Self {
        Self {
            text: "Your order shipped yesterday.".into(),
            input_tokens: 12,
            output_tokens: 6,
            model: None,
            stop_reason: None,
        }
    }
}

/// A scripted misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally, after this delay (before any header).
    Latency(Duration),
    /// Answer with this HTTP status and the provider's error body; `retry_after` (seconds,
    /// as sent) adds a `Retry-After` header.
    Status {
        /// HTTP status.
        status: u16,
        /// Error message in the body.
        message: String,
        /// `Retry-After` header value.
        retry_after: Option<String>,
    },
    /// Accept the request and never answer.
    Hang,
    /// 200 with a body (unary) or an SSE event (stream) that is not JSON.
    MalformedJson,
    /// Send this many text pieces, then break the connection mid-body.
    CutStream {
        /// Text pieces sent before the cut.
        after_chunks: usize,
    },
    /// Answer normally but report this model id.
    WrongModel(String),
    /// Streams: headers and preamble at once, the first text piece after this delay.
    /// Unary: answer after this delay.
    FirstTokenDelay(Duration),
}

impl Fault {
    /// An error status with a generic message.
    pub fn status(status: u16) -> Fault {
        Fault::Status { status, message: format!("fake provider error {status}"), retry_after: None }
    }

    /// 429 with `Retry-After: secs`.
    pub fn rate_limited(retry_after_secs: &str) -> Fault {
        Fault::Status {
            status: 429,
            message: "Rate limit reached for requests".into(),
            retry_after: Some(retry_after_secs.to_string()),
        }
    }
}

/// A request as the fake received it.
#[derive(Debug, Clone, Default)]
pub struct RecordedRequest {
    /// Request path.
    pub path: String,
    /// Headers, lower-case names (last value wins).
    pub headers: BTreeMap<String, String>,
    /// JSON body (`Null` when it was not JSON).
    pub body: Value,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    reply: Mutex<Reply>,
    queue: Mutex<VecDeque<Fault>>,
    mode: Mutex<Option<Fault>>,
    ratio: Mutex<Option<(f64, Fault)>>,
    requests: AtomicUsize,
    last: Mutex<Option<RecordedRequest>>,
    chunk_delay: Mutex<Duration>,
    required_key: Mutex<Option<String>>,
    /// Every model id requested, in first-seen order.
    model_ids: Mutex<Vec<String>>,
    /// Requests per model id.
    per_model: Mutex<BTreeMap<String, usize>>,
    /// A fault for every request of a model id, before the queue and the mode.
    model_faults: Mutex<BTreeMap<String, Fault>>,
}

/// One wire format: bodies and SSE frames.
pub(crate) trait Wire: Send + Sync + 'static {
    /// Header that carries the key, and the key's form in it.
    fn key_matches(&self, headers: &HeaderMap, key: &str) -> bool;
    /// The key as sent, for the 401 message (real providers quote part of it back).
    fn sent_key(&self, headers: &HeaderMap) -> String;
    /// Error body for a status.
    fn error_body(&self, status: u16, message: &str) -> Value;
    /// Whole reply.
    fn unary(&self, reply: &Reply, model: &str, n: usize) -> Value;
    /// SSE frames of a streamed reply; `true` marks a text-piece frame.
    fn frames(&self, reply: &Reply, model: &str, n: usize, request: &Value) -> Vec<(String, bool)>;
    /// A frame whose data is not JSON.
    fn malformed_frame(&self) -> String;
}

/// Splits text into word pieces that keep their leading space, as providers stream it.
pub(crate) fn pieces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, w) in text.split(' ').enumerate() {
        out.push(if i == 0 { w.to_string() } else { format!(" {w}") });
    }
    out.retain(|p| !p.is_empty());
    out
}

/// A running fake provider. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeServer {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    pub(crate) async fn start<W: Wire>(wire: W, path: &'static str, base_suffix: &str) -> std::io::Result<FakeServer> {
        Self::start_on(wire, path, base_suffix, "127.0.0.1:0").await
    }

    /// Like `start`, on a given address (`host:port`; port 0 picks a free one).
    pub(crate) async fn start_on<W: Wire>(
        wire: W,
        path: &'static str,
        base_suffix: &str,
        listen: &str,
    ) -> std::io::Result<FakeServer> {
        let shared = Arc::new(Shared::default());
        let wire = Arc::new(wire);
        let st = (shared.clone(), wire);
        let app = axum::Router::new().route(path, axum::routing::post(handle::<W>)).with_state(st);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        // Nagle off, as on real provider front-ends: SSE pieces leave when written.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeServer { shared, addr, base_url: format!("http://{addr}{base_suffix}"), task })
    }

    /// Base URL to put in the model's config.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the normal reply.
    pub fn set_reply(&self, reply: Reply) {
        *self.shared.reply.lock() = reply;
    }

    /// Queues faults: each request takes the next one, before any mode applies.
    pub fn push_fault(&self, fault: Fault) {
        self.shared.queue.lock().push_back(fault);
    }

    /// A fault for every request (after the queue); `None` heals the provider.
    pub fn set_mode(&self, fault: Option<Fault>) {
        *self.shared.mode.lock() = fault;
    }

    /// A fault for a deterministic, evenly spread `ratio` of requests (0..1); `None` stops.
    pub fn set_failure_ratio(&self, ratio: Option<(f64, Fault)>) {
        *self.shared.ratio.lock() = ratio;
    }

    /// A fault for every request of `model_id` (one version of a model, say), ahead of the
    /// queue and the mode; `None` heals it.
    pub fn set_model_fault(&self, model_id: &str, fault: Option<Fault>) {
        let mut faults = self.shared.model_faults.lock();
        match fault {
            Some(f) => faults.insert(model_id.to_string(), f),
            None => faults.remove(model_id),
        };
    }

    /// Clears queue, mode, ratio and model faults.
    pub fn clear_faults(&self) {
        self.shared.model_faults.lock().clear();
        self.shared.queue.lock().clear();
        *self.shared.mode.lock() = None;
        *self.shared.ratio.lock() = None;
    }

    /// Delay between streamed text pieces.
    pub fn set_chunk_delay(&self, d: Duration) {
        *self.shared.chunk_delay.lock() = d;
    }

    /// Requires this API key (401 with the provider's error body otherwise).
    pub fn require_key(&self, key: &str) {
        *self.shared.required_key.lock() = Some(key.to_string());
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Every model id requested so far, in first-seen order.
    pub fn model_ids(&self) -> Vec<String> {
        self.shared.model_ids.lock().clone()
    }

    /// Requests received so far for `model_id`.
    pub fn requests_for(&self, model_id: &str) -> usize {
        self.shared.per_model.lock().get(model_id).copied().unwrap_or(0)
    }

    /// The last request received.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.last.lock().clone()
    }
}

impl Shared {
    fn next_fault(&self, n: usize) -> Option<Fault> {
        if let Some(f) = self.queue.lock().pop_front() {
            return Some(f);
        }
        if let Some(f) = self.mode.lock().clone() {
            return Some(f);
        }
        let ratio = self.ratio.lock().clone();
        if let Some((r, f)) = ratio {
            // Weyl sequence: fractional parts of n·φ are evenly spread, so any window of
            // requests sees close to `r` of them fail, reproducibly.
            let x = (n as f64 * 0.618_033_988_749_894_9).fract();
            if x < r {
                return Some(f);
            }
        }
        None
    }
}

type AppState<W> = (Arc<Shared>, Arc<W>);

fn json(status: u16, v: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

fn sse(
    frames: Vec<(String, bool)>,
    first_delay: Duration,
    chunk_delay: Duration,
    cut_after: Option<usize>,
) -> Response {
    let state = (frames.into_iter(), 0usize, false);
    let body = futures::stream::unfold(Some(state), move |st| async move {
        let (mut it, mut sent, mut cut) = st?;
        if cut {
            return None;
        }
        let (frame, is_piece) = it.next()?;
        if is_piece {
            if cut_after == Some(sent) {
                cut = true;
                // Let the client read what was sent before the connection breaks: an abort
                // can discard bytes still unread in the client's socket buffer.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let err = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fake stream cut");
                return Some((Err(err), Some((it, sent, cut))));
            }
            let wait = if sent == 0 { first_delay.max(chunk_delay) } else { chunk_delay };
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            sent += 1;
        }
        Some((Ok::<_, std::io::Error>(Bytes::from(frame)), Some((it, sent, cut))))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

async fn handle<W: Wire>(
    State((shared, wire)): State<AppState<W>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = shared.requests.fetch_add(1, Ordering::SeqCst);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let recorded = RecordedRequest {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: parsed.clone(),
    };
    *shared.last.lock() = Some(recorded);
    if parsed.is_null() {
        return json(400, &wire.error_body(400, "We could not parse the JSON body of your request."));
    }
    let required = shared.required_key.lock().clone();
    if let Some(key) = required
        && !wire.key_matches(&headers, &key)
    {
        let msg = format!("Incorrect API key provided: {}.", wire.sent_key(&headers));
        return json(401, &wire.error_body(401, &msg));
    }
    let stream = parsed["stream"].as_bool().unwrap_or(false);
    let requested = parsed["model"].as_str().unwrap_or("").to_string();
    {
        let mut ids = shared.model_ids.lock();
        if !ids.contains(&requested) {
            ids.push(requested.clone());
        }
        *shared.per_model.lock().entry(requested.clone()).or_default() += 1;
    }
    let model_fault = shared.model_faults.lock().get(&requested).cloned();
    let reply = shared.reply.lock().clone();
    let mut model = reply.model.clone().unwrap_or(requested);
    let chunk_delay = *shared.chunk_delay.lock();
    let mut first_delay = Duration::ZERO;
    let mut cut_after = None;
    match model_fault.or_else(|| shared.next_fault(n)) {
        None => {}
        Some(Fault::Latency(d)) => tokio::time::sleep(d).await,
        Some(Fault::Status { status, message, retry_after }) => {
            let mut resp = json(status, &wire.error_body(status, &message));
            if let Some(ra) = retry_after.and_then(|r| axum::http::HeaderValue::from_str(&r).ok()) {
                resp.headers_mut().insert("retry-after", ra);
            }
            return resp;
        }
        Some(Fault::Hang) => {
            // Held until the client gives up and the connection closes.
            futures::future::pending::<()>().await;
        }
        Some(Fault::MalformedJson) => {
            if stream {
                let mut frames = wire.frames(&reply, &model, n, &parsed);
                frames.retain(|(_, piece)| !piece);
                frames.truncate(1);
                frames.push((wire.malformed_frame(), false));
                return sse(frames, Duration::ZERO, Duration::ZERO, None);
            }
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from("{\"id\": \"oops\", \"choices\": [ {\"message\": "))
                .unwrap_or_default();
        }
        Some(Fault::CutStream { after_chunks }) => cut_after = Some(after_chunks),
        Some(Fault::WrongModel(m)) => model = m,
        Some(Fault::FirstTokenDelay(d)) => first_delay = d,
    }
    if stream {
        return sse(wire.frames(&reply, &model, n, &parsed), first_delay, chunk_delay, cut_after);
    }
    if !first_delay.is_zero() {
        tokio::time::sleep(first_delay).await;
    }
    let body = wire.unary(&reply, &model, n).to_string();
    if cut_after.is_some() {
        // Unary cut: half the body, then the connection breaks.
        let half = Bytes::from(body.as_bytes()[..body.len() / 2].to_vec());
        let parts: Vec<Result<Bytes, std::io::Error>> =
            vec![Ok(half), Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fake cut"))];
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from_stream(futures::stream::iter(parts)))
            .unwrap_or_default();
    }
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}
