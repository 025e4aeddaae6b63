//! Extractors that fail with the core's [`Error`], so that every refusal has the error body:
//! the caller's key, a worker's token, JSON bodies, queries, job ids in paths, server-signed
//! URLs; and the base URL a caller reached us at.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::clock::now_ms;
use crate::error::Error;
use crate::keys::{Caller, key_hash};
use crate::ops;
use crate::signing::SignatureError;
use crate::state::AppState;

/// The `Bearer` credential of a request.
fn bearer<'a>(parts: &'a Parts, missing: &'static str) -> Result<&'a str, Error> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(Error::Unauthorized(missing))?;
    let value = header.to_str().map_err(|_| Error::Unauthorized("malformed Authorization header"))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or(Error::Unauthorized("the Authorization header must be `Bearer <key>`"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Error> {
        let key = bearer(parts, "missing Authorization header: send `Authorization: Bearer RJ-…`")?;
        if !key.starts_with("RJ-") {
            return Err(Error::Unauthorized("API keys start with RJ-"));
        }
        let owner = state
            .keys
            .owner(state.store.as_ref(), &key_hash(key))
            .await?
            .ok_or(Error::Unauthorized("unknown or revoked API key"))?;
        Ok(Caller { workspace_id: owner.workspace_id, user_id: owner.user_id })
    }
}

/// The worker token of the request (its id).
pub(crate) struct WorkerToken(pub(crate) Uuid);

impl FromRequestParts<AppState> for WorkerToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<WorkerToken, Error> {
        let token = bearer(parts, "worker calls need `Authorization: Bearer OW-…`")?;
        if !token.starts_with("OW-") {
            return Err(Error::Unauthorized(
                "worker tokens start with OW- (create one with `orchard workers token create`)",
            ));
        }
        Ok(WorkerToken(ops::workers::token_owner(state, token).await?))
    }
}

/// A JSON body; a bad one is a 400 in the API's error shape.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<ApiJson<T>, Error> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return Error::TooLarge("the body is larger than 1 MiB".into());
    }
    let code = match &rejection {
        JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
        JsonRejection::JsonSyntaxError(_) => "invalid_json",
        _ => "invalid_body",
    };
    Error::invalid(code, rejection.body_text())
}

/// A query string; a bad one is a 400 in the API's error shape.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiQuery<T>, Error> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> Error {
    Error::invalid("invalid_query", rejection.body_text())
}

/// A job id from the path. Anything that is not a uuid names no job: 404, as for unknown ids.
pub(crate) struct JobId(pub(crate) Uuid);

impl<S: Send + Sync> FromRequestParts<S> for JobId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<JobId, Error> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::NotFound("job"))?;
        Uuid::parse_str(&raw).map(JobId).map_err(|_| Error::NotFound("job"))
    }
}

/// The signature query of a server-signed URL.
#[derive(Debug, Deserialize)]
pub(crate) struct SignedQuery {
    expires: i64,
    signature: String,
}

/// Checks a signed URL; a wrong or expired one is a 403.
pub(crate) fn check_signature(state: &AppState, method: &str, path: &str, query: &SignedQuery) -> Result<(), Error> {
    state.signer.verify(method, path, query.expires, &query.signature, now_ms() / 1000).map_err(|e| match e {
        SignatureError::Invalid => Error::Forbidden { code: "invalid_signature", message: e.to_string() },
        SignatureError::Expired => Error::Forbidden { code: "url_expired", message: e.to_string() },
    })
}

/// The base URL a client used to reach us: `--public-url` if set, else the request's `Host`.
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|it| it.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| state.local_addr.to_string());
    let scheme = headers.get("x-forwarded-proto").and_then(|it| it.to_str().ok()).unwrap_or("http");
    format!("{scheme}://{host}")
}
