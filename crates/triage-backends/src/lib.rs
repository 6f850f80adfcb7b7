//! Backends service: calls models through provider adapters (OpenAI-compatible, Anthropic,
//! in-process GGUF), with pinned versions, retries, circuit breakers and failover along
//! declared fallbacks only.

mod error;
mod grpc;

pub use error::{Error, Result};
pub use grpc::{BackendsServer, RemoteBackends};

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
