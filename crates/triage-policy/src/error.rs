//! Errors of the policy service.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while loading or applying a policy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy file could not be read or parsed.
    #[error("{path}: {message}")]
    Load {
        /// Policy file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A rule is invalid (CEL does not compile, unknown model, ...).
    #[error("{path}: rule `{rule}`: {reason}")]
    InvalidRule {
        /// Policy file.
        path: PathBuf,
        /// Rule id.
        rule: String,
        /// Why.
        reason: String,
    },
    /// The request is malformed (unknown pinned model, ...).
    #[error("invalid decide request: {0}")]
    InvalidRequest(String),
    /// Evaluating a condition failed at run time.
    #[error("rule `{rule}`: {reason}")]
    Evaluation {
        /// Rule id.
        rule: String,
        /// Why.
        reason: String,
    },
    /// No model can serve the request (every candidate unavailable or over budget).
    #[error("no model available: {0}")]
    NoModel(String),
    /// A remote policy service answered with an error.
    #[error("remote policy: {}", .0.message())]
    Remote(tonic::Status),
}

impl Error {
    /// True when trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Remote(s) => triage_core::StatusExt::is_retryable(s),
            Error::NoModel(_) => true,
            _ => false,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Remote(s) => s,
            Error::InvalidRequest(m) => tonic::Status::invalid_argument(m),
            Error::NoModel(_) => tonic::Status::unavailable(e.to_string()),
            Error::Load { .. } | Error::InvalidRule { .. } => tonic::Status::failed_precondition(e.to_string()),
            Error::Evaluation { .. } => tonic::Status::internal(e.to_string()),
        }
    }
}
