//! Errors of the classifier service.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while classifying.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed.
    #[error("invalid classify request: {0}")]
    InvalidRequest(String),
    /// A model file is missing or unreadable.
    #[error("classifier model: {0}")]
    Model(String),
    /// Inference failed.
    #[error("inference: {0}")]
    Inference(String),
    /// An LLM answer did not match the label schema.
    #[error("malformed classifier output: {0}")]
    MalformedOutput(String),
    /// The cache failed (classification itself may still succeed).
    #[error("classification cache: {0}")]
    Cache(String),
    /// A remote classifier answered with an error.
    #[error("remote classifier: {}", .0.message())]
    Remote(tonic::Status),
}

impl Error {
    /// True when trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Remote(s) => triage_core::StatusExt::is_retryable(s),
            Error::Cache(_) | Error::MalformedOutput(_) => true,
            Error::InvalidRequest(_) | Error::Model(_) | Error::Inference(_) => false,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidRequest(m) => tonic::Status::invalid_argument(m),
            Error::Remote(s) => s,
            Error::Model(_) => tonic::Status::failed_precondition(e.to_string()),
            Error::Cache(_) | Error::MalformedOutput(_) => tonic::Status::unavailable(e.to_string()),
            Error::Inference(_) => tonic::Status::internal(e.to_string()),
        }
    }
}
