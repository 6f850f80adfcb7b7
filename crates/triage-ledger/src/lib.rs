//! Ledger service: exact cost accounting in Redis. Reserve the worst case before a call,
//! commit actuals after, release on failure; hard limits per scope and window.

mod error;
mod grpc;

pub use error::{Error, Result};
pub use grpc::{LedgerServer, RemoteLedger};

use triage_proto::pb;

/// Cost accounting. Implemented in-process and by the gRPC client.
#[async_trait::async_trait]
pub trait Ledger: Send + Sync + 'static {
    /// Reserves the worst case against every scope; `granted: false` past a hard limit.
    async fn reserve(&self, req: pb::ReserveRequest) -> Result<pb::ReserveResponse>;
    /// Commits actual cost and frees the rest; idempotent by request id.
    async fn commit(&self, req: pb::CommitRequest) -> Result<pb::CommitResponse>;
    /// Frees a reservation without charging; idempotent.
    async fn release(&self, req: pb::ReleaseRequest) -> Result<pb::ReleaseResponse>;
    /// Spend per scope and window.
    async fn spend(&self, req: pb::SpendRequest) -> Result<pb::SpendResponse>;
    /// Limits and what remains of them.
    async fn limits(&self, req: pb::LimitsRequest) -> Result<pb::LimitsResponse>;
}
