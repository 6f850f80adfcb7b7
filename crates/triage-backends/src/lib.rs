//! Backends service: calls models through provider adapters (OpenAI-compatible, Anthropic,
//! in-process GGUF), with pinned versions, retries, circuit breakers and failover along
//! declared fallbacks only.
//!
//! - [`provider`]: the adapter trait, dispatched from the config's provider enum
//!   (`openai`, `anthropic`, `local`); `sse` parses provider streams.
//! - [`LocalBackends`]: one adapter, circuit breaker (`breaker`) and retry budget (`retry`)
//!   per declared model. A call walks the request's model then its `fallbacks`, in order
//!   and nothing else; unavailable models and open breakers are skipped, every attempt is
//!   recorded. Deadlines: each provider call gets the model's `timeout` (streams: the
//!   first token within `ttft_timeout`, the rest within `timeout`), and the whole walk
//!   `server.deadlines.generate`. Retries (429 with Retry-After, 5xx, connect errors,
//!   timeouts, cut streams) use capped exponential backoff with full jitter, within the
//!   budget, and never after a streamed token reached the caller.

mod anthropic;
mod breaker;
mod error;
mod failover;
mod grpc;
mod local;
#[cfg(feature = "mistralrs")]
mod mistralrs;
mod openai;
pub mod provider;
mod registry;
mod retry;
mod service;
mod sse;
mod stream;

pub use error::{Error, Result};
pub use grpc::{BackendsServer, RemoteBackends};
pub use service::{LocalBackends, ModelStats};

use futures::stream::BoxStream;
use triage_proto::pb;

/// A stream of generated pieces; the last item is the `done` chunk with the metadata.
pub type ChunkStream = BoxStream<'static, Result<pb::GenerateChunk>>;

/// Calls models. Implemented in-process and by the gRPC client.
#[async_trait::async_trait]
pub trait Backends: Send + Sync + 'static {
    /// Generates a reply, failing over along the request's fallbacks.
    async fn generate(&self, req: pb::GenerateRequest) -> Result<pb::GenerateResponse>;
    /// Streams a reply; never retried after the first token.
    async fn generate_stream(&self, req: pb::GenerateRequest) -> Result<ChunkStream>;
    /// Declared models with availability, breaker state and lifecycle.
    async fn list_models(&self) -> Result<pb::ListModelsResponse>;
}
