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
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Error::Store(e.to_string())
    }
}

impl Error {
    /// True when trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::InProgress(_) | Error::Store(_) | Error::Deadline(_) | Error::ModelsExhausted(_)
        ) || matches!(self, Error::Dependency { code, .. } if matches!(code, tonic::Code::Unavailable | tonic::Code::DeadlineExceeded))
    }

    /// Maps a service error into a dependency failure, keeping client errors as they are.
    pub(crate) fn dependency(service: &'static str, status: tonic::Status) -> Error {
        match status.code() {
            tonic::Code::InvalidArgument => Error::InvalidArgument(status.message().to_string()),
            tonic::Code::NotFound => Error::NotFound(status.message().to_string()),
            code => Error::Dependency { service, message: status.message().to_string(), code },
        }
    }

    /// gRPC code name for the decision record.
    pub fn code(&self) -> tonic::Code {
        tonic::Status::from(self.clone_for_status()).code()
    }

    fn clone_for_status(&self) -> Error {
        match self {
            Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
            Error::NotFound(m) => Error::NotFound(m.clone()),
            Error::BudgetExhausted(m) => Error::BudgetExhausted(m.clone()),
            Error::InProgress(m) => Error::InProgress(m.clone()),
            Error::Dependency { service, message, code } => {
                Error::Dependency { service, message: message.clone(), code: *code }
            }
            Error::ModelsExhausted(m) => Error::ModelsExhausted(m.clone()),
            Error::Store(m) => Error::Store(m.clone()),
            Error::Deadline(s) => Error::Deadline(s),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::InvalidArgument(_) => tonic::Status::invalid_argument(msg),
            Error::NotFound(_) => tonic::Status::not_found(msg),
            Error::BudgetExhausted(_) => tonic::Status::resource_exhausted(msg),
            Error::InProgress(_) => tonic::Status::aborted(msg),
            Error::Dependency { code, .. } => tonic::Status::new(code, msg),
            Error::ModelsExhausted(_) | Error::Store(_) => tonic::Status::unavailable(msg),
            Error::Deadline(_) => tonic::Status::deadline_exceeded(msg),
        }
    }
}
