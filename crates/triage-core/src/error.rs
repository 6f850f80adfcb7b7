//! Errors of configuration and shared plumbing, and the one place a Triage error becomes a
//! gRPC status.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in shared plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read.
    #[error("{path}: cannot read: {source}")]
    ConfigRead {
        /// File that failed.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The config file is not valid YAML for the schema (unknown key, wrong type, ...).
    #[error("{path}: {message}")]
    ConfigParse {
        /// File that failed.
        path: PathBuf,
        /// serde's message, including the key path and line.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("{path}: {field}: {reason}")]
    ConfigInvalid {
        /// File that failed.
        path: PathBuf,
        /// Key path of the bad value (`models.claude.fallbacks[0]`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A network address could not be bound or parsed.
    #[error("address {addr}: {reason}")]
    Address {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// gRPC transport failure.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Telemetry could not start.
    #[error("telemetry: {0}")]
    Telemetry(String),
}

impl Error {
    /// True when trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Transport(_))
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match &e {
            Error::ConfigRead { .. } | Error::ConfigParse { .. } | Error::ConfigInvalid { .. } => {
                tonic::Status::failed_precondition(e.to_string())
            }
            Error::Address { .. } | Error::Telemetry(_) => tonic::Status::internal(e.to_string()),
            Error::Transport(_) => tonic::Status::unavailable(e.to_string()),
        }
    }
}

/// Helpers every service error uses to classify a remote `tonic::Status`.
pub trait StatusExt {
    /// True when the status means "try again later" (unavailable, deadline, aborted,
    /// resource exhausted by rate limit).
    fn is_retryable(&self) -> bool;
}

impl StatusExt for tonic::Status {
    fn is_retryable(&self) -> bool {
        matches!(self.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Aborted)
    }
}
