//! Errors of the ledger service.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong accounting for money.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed.
    #[error("invalid ledger request: {0}")]
    InvalidRequest(String),
    /// The ledger's configuration is unusable.
    #[error("invalid ledger configuration: {0}")]
    Config(String),
    /// Redis failed and the ledger fails closed.
    #[error("ledger store unavailable: {0}")]
    Store(String),
    /// A remote ledger answered with an error.
    #[error("remote ledger: {}", .0.message())]
    Remote(tonic::Status),
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Error::Store(e.to_string())
    }
}

impl Error {
    /// True when trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store(_) => true,
            Error::Remote(s) => triage_core::StatusExt::is_retryable(s),
            Error::InvalidRequest(_) | Error::Config(_) => false,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Remote(s) => s,
            Error::InvalidRequest(m) => tonic::Status::invalid_argument(m),
            Error::Store(_) => tonic::Status::unavailable(e.to_string()),
            Error::Config(_) => tonic::Status::failed_precondition(e.to_string()),
        }
    }
}
