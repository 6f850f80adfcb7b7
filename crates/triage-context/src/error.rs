//! Errors of the context service.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with conversations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed.
    #[error("invalid context request: {0}")]
    InvalidRequest(String),
    /// The conversation does not exist for this tenant.
    #[error("conversation `{0}` not found")]
    NotFound(String),
    /// Redis failed.
    #[error("conversation store: {0}")]
    Store(String),
    /// Stored data could not be decoded.
    #[error("corrupt conversation record: {0}")]
    Corrupt(String),
    /// A remote context service answered with an error.
    #[error("remote context: {}", .0.message())]
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
            _ => false,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Remote(s) => s,
            Error::InvalidRequest(m) => tonic::Status::invalid_argument(m),
            Error::NotFound(_) => tonic::Status::not_found(e.to_string()),
            Error::Store(_) => tonic::Status::unavailable(e.to_string()),
            Error::Corrupt(_) => tonic::Status::data_loss(e.to_string()),
        }
    }
}
