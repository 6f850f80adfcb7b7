//! Policy service: decides the model for each turn from ordered YAML rules with CEL
//! conditions, compiled once at load and hot-reloaded.

mod error;
mod grpc;

pub use error::{Error, Result};
pub use grpc::{PolicyServer, RemotePolicy};

use triage_proto::pb;

/// Decides the model for a turn. Implemented in-process and by the gRPC client.
#[async_trait::async_trait]
pub trait Policy: Send + Sync + 'static {
    /// Decides one turn.
    async fn decide(&self, req: pb::DecideRequest) -> Result<pb::DecideResponse>;
}
