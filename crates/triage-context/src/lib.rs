//! Context service: owns conversations in Redis (turns, the model pin, escalation state,
//! commitments) and writes handoff summaries when a conversation moves up a tier.

mod commitments;
mod error;
mod facts;
mod grpc;
mod handoff;
mod language;
mod prompt;
mod store;
mod summarizer;
mod text;

pub use commitments::extract_commitments;
pub use error::{Error, Result};
pub use grpc::{ContextServer, RemoteContext};
pub use handoff::{EXTRACTIVE, extractive_summary, render_commitment};
pub use language::{MIXED, UNDETERMINED, detect_language, languages_in};
pub use prompt::{MESSAGE_OVERHEAD_TOKENS, build_prompt, render_summary};
pub use store::{ConversationKeys, MAX_COMMITMENTS_PER_APPEND, MAX_ID_BYTES, MAX_MESSAGES_PER_APPEND, RedisContext};

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
