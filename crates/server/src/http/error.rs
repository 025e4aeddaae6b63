//! The one mapping from failures to HTTP: status, and the body
//! `{"error": {"code", "message", "details"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchard_api::{ErrorBody, ErrorDetail};
use serde_json::Value;
use tracing::error;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or query is wrong.
    #[error("{message}")]
    BadRequest {
        /// snake_case code.
        code: &'static str,
        /// For a person.
        message: String,
        /// Structure, such as the refused field.
        details: Option<Value>,
    },
    /// 400: the action is not allowed in the job's status (as Renderjuice answers).
    #[error("the job is {status}: {message}")]
    InvalidStatus {
        /// The job's status.
        status: &'static str,
        /// What is not allowed.
        message: String,
    },
    /// 401: no key, an unknown key or a revoked one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: a signed URL that is not valid or has expired.
    #[error("{message}")]
    Forbidden {
        /// snake_case code.
        code: &'static str,
        /// For a person.
        message: String,
    },
    /// 404: unknown, or another workspace's.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the resource is in a state that forbids this.
    #[error("{message}")]
    Conflict {
        /// snake_case code.
        code: &'static str,
        /// For a person.
        message: String,
    },
    /// 413: too large.
    #[error("{0}")]
    TooLarge(String),
    /// 500: a bug or an infrastructure failure. Logged with its cause; never echoed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<orchard_store::StoreError> for ApiError {
    fn from(e: orchard_store::StoreError) -> ApiError {
        ApiError::Internal(e.into())
    }
}

impl ApiError {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { code, message: message.into(), details: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, details) = match &self {
            ApiError::BadRequest { code, details, .. } => (StatusCode::BAD_REQUEST, *code, details.clone()),
            ApiError::InvalidStatus { status, .. } => {
                (StatusCode::BAD_REQUEST, "invalid_status", Some(serde_json::json!({ "status": status })))
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, *code, None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, *code, None),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", None),
            ApiError::Internal(cause) => {
                error!(error.cause_chain = ?cause, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
            }
        };
        let message = match &self {
            ApiError::Internal(_) => "internal error; the server log has the details".to_string(),
            other => other.to_string(),
        };
        let body = ErrorBody { error: ErrorDetail { code: code.to_string(), message, details } };
        (status, Json(body)).into_response()
    }
}
