//! Context service: owns conversations in Redis (turns, the model pin, escalation state,
//! commitments) and writes handoff summaries when a conversation moves up a tier.

mod error;
mod grpc;

pub use error::{Error, Result};
pub use grpc::{ContextServer, RemoteContext};

use triage_proto::pb;

/// The conversation store. Implemented in-process and by the gRPC client.
#[async_trait::async_trait]
pub trait ContextStore: Send + Sync + 'static {
    /// Reads a conversation; `NotFound` when missing and not created.
    async fn get(&self, req: pb::GetConversationRequest) -> Result<pb::Conversation>;
    /// Appends messages and updates the pin, atomically, in arrival order.
    async fn append(&self, req: pb::AppendRequest) -> Result<pb::AppendResponse>;
    /// Builds and stores the handoff summary for an escalation.
    async fn handoff(&self, req: pb::HandoffRequest) -> Result<pb::HandoffSummary>;
}
