//! Errors of the backends service.

use std::time::Duration;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong calling a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed.
    #[error("invalid generate request: {0}")]
    InvalidRequest(String),
    /// The model is not declared.
    #[error("unknown model `{0}`")]
    UnknownModel(String),
    /// The model cannot be called (no key, failed to load, retired).
    #[error("model `{model}` unavailable: {reason}")]
    Unavailable {
        /// Model name.
        model: String,
        /// Why.
        reason: String,
    },
    /// The model's circuit breaker is open.
    #[error("model `{0}`: circuit breaker open")]
    BreakerOpen(String),
    /// The provider rate-limited the call.
    #[error("model `{model}`: rate limited")]
    RateLimited {
        /// Model name.
        model: String,
        /// Provider's Retry-After, when sent.
        retry_after: Option<Duration>,
    },
    /// The provider answered with an error status.
    #[error("model `{model}`: provider returned {status}: {message}")]
    Provider {
        /// Model name.
        model: String,
        /// HTTP status.
        status: u16,
        /// Provider's error message (never contains the key).
        message: String,
    },
    /// The provider could not be reached.
    #[error("model `{model}`: connection failed: {message}")]
    Connect {
        /// Model name.
        model: String,
        /// Cause.
        message: String,
    },
    /// The call passed its deadline.
    #[error("model `{model}`: {what} deadline of {after:?} passed")]
    Timeout {
        /// Model name.
        model: String,
        /// Which deadline ("request", "first token").
        what: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// The provider's answer could not be understood.
    #[error("model `{model}`: malformed response: {message}")]
    Malformed {
        /// Model name.
        model: String,
        /// What was wrong.
        message: String,
    },
    /// A stream ended or broke before the provider said it was complete.
    #[error("model `{model}`: stream cut: {message}")]
    StreamCut {
        /// Model name.
        model: String,
        /// What was seen.
        message: String,
    },
    /// Local inference failed.
    #[error("model `{model}`: inference failed: {message}")]
    Inference {
        /// Model name.
        model: String,
        /// Cause.
        message: String,
    },
    /// Every model of the chain failed; `attempts` says how.
    #[error("all models failed: {summary}")]
    Exhausted {
        /// One line per attempt.
        summary: String,
        /// The attempts, for the decision record.
        attempts: Vec<triage_proto::pb::Attempt>,
    },
    /// A remote backends service answered with an error.
    #[error("remote backends: {}", .0.message())]
    Remote(tonic::Status),
}

impl Error {
    /// True when trying the same model again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Connect { .. } | Error::Timeout { .. } | Error::StreamCut { .. } => true,
            Error::Provider { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            Error::Remote(s) => triage_core::StatusExt::is_retryable(s),
            _ => false,
        }
    }

    /// True when the failure says something about the model's health and so counts towards
    /// its circuit breaker. A request the provider rejects as malformed (400, 404, 413, 422)
    /// is the caller's fault: opening the breaker on it would punish every other request.
    pub fn counts_for_breaker(&self) -> bool {
        match self {
            Error::Provider { status, .. } => !matches!(status, 400 | 404 | 413 | 422),
            Error::RateLimited { .. }
            | Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::StreamCut { .. }
            | Error::Malformed { .. }
            | Error::Inference { .. } => true,
            _ => false,
        }
    }

    /// Short outcome name for attempt records and metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "invalid_request",
            Error::UnknownModel(_) => "unknown_model",
            Error::Unavailable { .. } => "unavailable",
            Error::BreakerOpen(_) => "breaker_open",
            Error::RateLimited { .. } => "rate_limited",
            Error::Provider { .. } => "provider_error",
            Error::Connect { .. } => "connect_error",
            Error::Timeout { .. } => "timeout",
            Error::Malformed { .. } => "malformed",
            Error::StreamCut { .. } => "stream_cut",
            Error::Inference { .. } => "inference_error",
            Error::Exhausted { .. } => "exhausted",
            Error::Remote(_) => "remote_error",
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Remote(s) => s,
            Error::InvalidRequest(m) => tonic::Status::invalid_argument(m),
            Error::UnknownModel(_) => tonic::Status::not_found(e.to_string()),
            Error::RateLimited { .. } => tonic::Status::resource_exhausted(e.to_string()),
            Error::Timeout { .. } => tonic::Status::deadline_exceeded(e.to_string()),
            Error::Unavailable { .. }
            | Error::BreakerOpen(_)
            | Error::Provider { .. }
            | Error::Connect { .. }
            | Error::StreamCut { .. }
            | Error::Exhausted { .. } => tonic::Status::unavailable(e.to_string()),
            Error::Malformed { .. } | Error::Inference { .. } => tonic::Status::internal(e.to_string()),
        }
    }
}
