//! Extractors that fail with [`ApiError`], so that every refusal has the same body: the
//! caller's key, JSON bodies, queries, and job ids in paths.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::state::AppState;

/// The owner of the request's API key.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// The key's workspace.
    pub workspace_id: Uuid,
    /// The key's user.
    pub user_id: Uuid,
}

/// The sha256 hex under which a key is stored.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized("missing Authorization header: send `Authorization: Bearer RJ-…`"))?;
        let value = header.to_str().map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthorized("the Authorization header must be `Bearer RJ-…`"))?
            .trim();
        if !key.starts_with("RJ-") {
            return Err(ApiError::Unauthorized("API keys start with RJ-"));
        }
        let owner =
            state.store.find_key(&key_hash(key)).await?.ok_or(ApiError::Unauthorized("unknown or revoked API key"))?;
        Ok(Caller { workspace_id: owner.workspace_id, user_id: owner.user_id })
    }
}

/// A JSON body; a bad one is a 400 in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<ApiJson<T>, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge("the body is larger than 1 MiB".into());
    }
    let code = match &rejection {
        JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
        JsonRejection::JsonSyntaxError(_) => "invalid_json",
        _ => "invalid_body",
    };
    ApiError::bad_request(code, rejection.body_text())
}

/// A query string; a bad one is a 400 in the API's error shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiQuery<T>, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", rejection.body_text())
}

/// A job id from the path. Anything that is not a uuid names no job: 404, as for unknown ids.
pub struct JobId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for JobId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<JobId, ApiError> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("job"))?;
        Uuid::parse_str(&raw).map(JobId).map_err(|_| ApiError::NotFound("job"))
    }
}
