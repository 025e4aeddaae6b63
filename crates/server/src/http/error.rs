//! The one mapping from the core's errors to HTTP: status, and the body
//! `{"error": {"code", "message", "details"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchard_api::{ErrorBody, ErrorDetail};
use tracing::error;

use crate::error::{Chain, Error};

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code, details) = match &self {
            Error::Invalid { code, details, .. } => (StatusCode::BAD_REQUEST, *code, details.clone()),
            Error::InvalidStatus { status, .. } => {
                (StatusCode::BAD_REQUEST, "invalid_status", Some(serde_json::json!({ "status": status })))
            }
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            Error::Forbidden { code, .. } => (StatusCode::FORBIDDEN, *code, None),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            Error::Absent { code, details, .. } => (StatusCode::NOT_FOUND, *code, details.clone()),
            Error::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None),
            Error::Conflict { code, .. } => (StatusCode::CONFLICT, *code, None),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", None),
            Error::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "uri_too_long", None),
            Error::TooManyRequests { retry_after, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some(serde_json::json!({ "retryAfter": retry_after })))
            }
            Error::Store(_) | Error::Internal(_) if self.is_disk_full() => {
                error!(error = %Chain(&self), "a disk is full");
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage", None)
            }
            Error::Store(_) | Error::Internal(_) => {
                error!(error = %Chain(&self), "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
            }
        };
        let message = match &self {
            Error::Store(_) | Error::Internal(_) if status == StatusCode::INSUFFICIENT_STORAGE => {
                "the server's disk is full: nothing was stored; try again once an operator has freed space".to_string()
            }
            Error::Store(_) | Error::Internal(_) => "internal error; the server log has the details".to_string(),
            other => other.to_string(),
        };
        let retry_after = match &self {
            Error::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code: code.to_string(), message, details } };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
