//! Shared types of every Triage service: configuration (strict parse, then validation),
//! the model catalog, money, errors mapped to gRPC status, gRPC serving with health and
//! reflection, and telemetry.

pub mod catalog;
pub mod config;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod money;
pub mod telemetry;
pub mod tier;

pub use catalog::{Catalog, ModelSpec};
pub use config::Config;
pub use error::{Error, Result, StatusExt};
pub use money::Micros;
pub use tier::Tier;

/// Milliseconds since the Unix epoch, for stored timestamps.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
