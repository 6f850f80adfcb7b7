//! Errors in OpenAI's body shape (`{"error": {message, type, param, code}}`) with the HTTP
//! status an OpenAI client expects, so its retry and exception logic works unchanged.

use crate::Error;
use crate::auth::AuthError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer of the HTTP endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// OpenAI error type.
    pub kind: &'static str,
    /// Offending parameter, if one.
    pub param: Option<&'static str>,
    /// Machine-readable code.
    pub code: Option<&'static str>,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: Option<&'static str>, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), kind, param: None, code, retry_after: None }
    }

    /// 400 about `param`.
    pub fn invalid(param: Option<&'static str>, message: impl Into<String>) -> ApiError {
        ApiError { param, ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", None, message) }
    }

    /// 401; says nothing about why, so a guess learns nothing.
    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Invalid or missing API key.",
        )
    }

    /// 404 for an unknown model.
    pub fn model_not_found(model: &str) -> ApiError {
        ApiError {
            param: Some("model"),
            ..ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
                format!("The model `{model}` does not exist; use `triage/auto` or one listed by GET /v1/models."),
            )
        }
    }

    /// 413 for a body over the limit.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("request_too_large"),
            format!("The request body is over the limit of {limit} bytes."),
        )
    }

    /// 408 for a body that did not arrive in time.
    pub fn body_timeout() -> ApiError {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            Some("request_timeout"),
            "The request body was not received in time.",
        )
    }

    /// 404 for an unknown path.
    pub fn no_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", Some("unknown_url"), "Unknown request URL.")
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::RateLimited { retry_after, .. } => ApiError {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "requests", Some("rate_limit_exceeded"), e.to_string())
            },
            AuthError::Unauthenticated => ApiError::unauthenticated(),
            AuthError::KeysFile { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", None, "authentication is unavailable")
            }
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match e.code() {
            tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition | tonic::Code::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            tonic::Code::Aborted | tonic::Code::AlreadyExists => StatusCode::CONFLICT,
            tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
            tonic::Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        let (kind, code) = match (&e, status) {
            (Error::BudgetExhausted(_), _) => ("insufficient_quota", Some("insufficient_quota")),
            (_, StatusCode::NOT_FOUND) => ("invalid_request_error", Some("not_found")),
            (_, s) if s.is_client_error() => ("invalid_request_error", None),
            _ => ("server_error", None),
        };
        ApiError::new(status, kind, code, e.to_string())
    }
}

impl ApiError {
    /// The JSON body, also used as an SSE `data:` payload when a stream fails midway.
    pub fn body_json(&self) -> String {
        let body =
            Body { error: Inner { message: &self.message, kind: self.kind, param: self.param, code: self.code } };
        serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#.into()
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp =
            (self.status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], self.body_json())
                .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
