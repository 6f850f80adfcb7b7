//! Ledger service: exact cost accounting in Redis. Reserve the worst case before a call,
//! commit actuals after, release on failure; hard limits per scope and window.
//!
//! [`RedisLedger`] keeps integer micro-dollar counters per scope (global, tenant, user,
//! model, conversation) and UTC window (hour, day, month). Reserve, commit, release and the
//! reaper are each one Lua script, so every check-and-charge is atomic across any number of
//! gateways; all keys share one Cluster hash slot (see [`keys`]). Requests are idempotent by
//! id. When Redis is unreachable the configured fail mode applies: closed refuses, open
//! grants unaccounted and counts locally; either way spend that could not be committed is
//! kept in process and replayed through the same idempotent script once Redis answers.
//!
//! Hot-path cost: a counter's TTL and report-index entries are written once, when a script
//! creates it, not on every request; the budget signal ([`Ledger::limits`], read on every
//! Route) is served from readings at most `ledger.signal_max_age` old, refreshed by this
//! instance's own reserves and commits. Hard limits are always checked in Redis. A
//! reservation is held only by the counters that have a limit (it exists to keep concurrent
//! calls under one); the others are first written by the commit that charges them, so Spend
//! shows `reserved` (money in flight) on limited scopes only. Likewise only a limit keeps
//! a day or month counter: every scope is counted per hour, reports sum days and months
//! from hours, and a limited counter is seeded from its hours (on each gateway's first use,
//! then every `ledger.reseed_interval`), so a limit added mid-window counts the whole window.
//!
//! Commit may carry the conversation's revenue: the ledger keeps the latest per
//! conversation scope with the scope's whole cost, so Spend reports revenue and margin for
//! conversation rows. Budget threshold alerts (`ledger.alerts`, see [`ThresholdAlert`]) fire
//! once per scope, window instance and threshold across every gateway: log, metric, hook and
//! optional webhook.
//!
//! Not yet: a Redis Cluster client (the key layout is ready; the workspace's redis crate is
//! built without `cluster-async`).

mod alerts;
mod clock;
mod error;
mod grpc;
pub mod keys;
pub mod limits;
mod local;
mod maintenance;
mod ops;
mod redis_ledger;
mod reports;
mod settle;
mod signals;
pub mod window;

pub use alerts::{ThresholdAlert, threshold_micros};
pub use clock::{AlertHook, BudgetAlert, Clock, ManualClock, NoAlertHook, SystemClock};
pub use error::{Error, Result};
pub use grpc::{LedgerServer, RemoteLedger};
pub use local::LocalStats;
pub use ops::RECORD_RETENTION_MS;
pub use redis_ledger::{LedgerOptions, RedisLedger, RedisTarget};
pub use reports::{ConversationCost, CostSummary};

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
