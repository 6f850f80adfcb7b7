//! Errors of the request flow, and their one mapping to gRPC status.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can end a Route with an error. Every variant leaves nothing charged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the message says which field and why.
    #[error("{0}")]
    InvalidArgument(String),
    /// The conversation or request id does not exist for this tenant.
    #[error("{0}")]
    NotFound(String),
    /// A hard spend limit refused the call and no free model could take it.
    #[error("{0}")]
    BudgetExhausted(String),
    /// The same request id is being answered right now.
    #[error("request `{0}` is already in progress; retry later for its stored answer")]
    InProgress(String),
    /// A service the flow depends on failed.
    #[error("{service}: {message}")]
    Dependency {
        /// Which service.
        service: &'static str,
        /// What it said.
        message: String,
        /// Its gRPC status code, to pass through.
        code: tonic::Code,
    },
    /// Every model of the chain failed.
    #[error("no model could answer: {0}")]
    ModelsExhausted(String),
    /// Redis (idempotency, locks, decision log) failed.
    #[error("gateway store: {0}")]
    Store(String),
    /// A step passed its deadline.
    #[error("{0} deadline passed")]
    Deadline(&'static str),
    /// The caller went away before a model was called; nothing was generated or charged.
    #[error("the caller went away before a model was called")]
    CallerGone,
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Error::Store(e.to_string())
    }
}

impl Error {
    /// True when trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Aborted)
    }

    /// Maps a service error into a dependency failure, keeping client errors as they are.
    pub(crate) fn dependency(service: &'static str, status: tonic::Status) -> Error {
        match status.code() {
            tonic::Code::InvalidArgument => Error::InvalidArgument(status.message().to_string()),
            tonic::Code::NotFound => Error::NotFound(status.message().to_string()),
            code => Error::Dependency { service, message: status.message().to_string(), code },
        }
    }

    /// The gRPC code a caller receives for this error.
    pub fn code(&self) -> tonic::Code {
        match self {
            Error::InvalidArgument(_) => tonic::Code::InvalidArgument,
            Error::NotFound(_) => tonic::Code::NotFound,
            Error::BudgetExhausted(_) => tonic::Code::ResourceExhausted,
            Error::InProgress(_) => tonic::Code::Aborted,
            Error::Dependency { code, .. } => *code,
            Error::ModelsExhausted(_) | Error::Store(_) => tonic::Code::Unavailable,
            Error::Deadline(_) => tonic::Code::DeadlineExceeded,
            Error::CallerGone => tonic::Code::Cancelled,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}
