//! `POST /uploads` and the upload target itself (`PUT /blobs/uploads/{slug}`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use orchard_api::{CreateUploadRequest, CreateUploadResponse, ErrorBody};
use orchard_store::Upload;
use rand::RngCore;
use serde::Deserialize;

use crate::blobs::WriteError;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, Caller};
use crate::http::urls::{base_url, upload_path};
use crate::signing::SignatureError;
use crate::state::{AppState, iso8601, now_ms};

/// Create a presigned upload target.
///
/// Renderjuice: https://www.renderjuice.com/docs/api-reference/uploads/create-upload-target
#[utoipa::path(post, path = "/api/external/v1/uploads", tag = "uploads",
    request_body = CreateUploadRequest,
    responses((status = 200, body = CreateUploadResponse),
              (status = 400, description = "bad file name or type", body = ErrorBody),
              (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_upload(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateUploadRequest>,
) -> Result<Json<CreateUploadResponse>, ApiError> {
    let file_name = body.file_name.trim();
    if file_name.is_empty() {
        return Err(ApiError::bad_request("invalid_file_name", "fileName must not be empty"));
    }
    if file_name.len() > 255 || file_name.contains(['/', '\\', '\0']) {
        return Err(ApiError::bad_request(
            "invalid_file_name",
            "fileName must be a plain file name of at most 255 bytes, without / or \\",
        ));
    }
    if !matches!(body.file_type.as_str(), "blend" | "zip") {
        return Err(ApiError::bad_request("invalid_file_type", "fileType must be \"blend\" or \"zip\""));
    }
    let extension = file_name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    if extension.as_deref() != Some(body.file_type.as_str()) {
        return Err(ApiError::bad_request(
            "file_type_mismatch",
            format!("fileType is {:?} but {file_name:?} does not end in .{}", body.file_type, body.file_type),
        ));
    }
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let slug = hex::encode(bytes);
    let now = now_ms();
    let expires_at = now + state.config.upload_ttl.as_millis() as i64;
    let upload = Upload {
        slug: slug.clone(),
        workspace_id: caller.workspace_id,
        user_id: caller.user_id,
        file_name: file_name.to_string(),
        file_type: body.file_type.clone(),
        object_key: format!("uploads/{slug}"),
        expires_at,
        created_at: now,
        uploaded_at: None,
        size: None,
        sha256: None,
    };
    state.store.insert_upload(&upload).await?;
    let path = upload_path(&slug);
    let query = state.signer.sign("PUT", &path, expires_at / 1000);
    Ok(Json(CreateUploadResponse {
        upload_url: format!("{}{path}?{query}", base_url(&state, &headers)),
        slug,
        expires_at: iso8601(expires_at),
    }))
}

/// The signature query of a server-signed URL.
#[derive(Debug, Deserialize)]
pub struct SignedQuery {
    expires: i64,
    signature: String,
}

/// Checks a signed URL; a wrong or expired one is a 403.
pub fn check_signature(state: &AppState, method: &str, path: &str, query: &SignedQuery) -> Result<(), ApiError> {
    state.signer.verify(method, path, query.expires, &query.signature, now_ms() / 1000).map_err(|e| match e {
        SignatureError::Invalid => ApiError::Forbidden { code: "invalid_signature", message: e.to_string() },
        SignatureError::Expired => ApiError::Forbidden { code: "url_expired", message: e.to_string() },
    })
}

/// Receive an upload's bytes: one `PUT`, streamed to storage, never whole in memory.
#[utoipa::path(put, path = "/blobs/uploads/{slug}", tag = "uploads",
    params(("slug" = String, Path), ("expires" = i64, Query), ("signature" = String, Query)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "stored"),
              (status = 403, description = "wrong or expired signature", body = ErrorBody),
              (status = 413, description = "larger than the upload limit", body = ErrorBody)))]
pub async fn put_upload(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ApiQuery(query): ApiQuery<SignedQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    check_signature(&state, "PUT", &upload_path(&slug), &query)?;
    let upload = state.store.get_upload(&slug).await?.ok_or(ApiError::NotFound("upload"))?;
    if state.store.upload_has_job(&slug).await? {
        return Err(ApiError::Conflict {
            code: "upload_in_use",
            message: "a job was created from this upload; its file can no longer change".into(),
        });
    }
    let limit = state.config.max_upload_bytes;
    let too_large = || ApiError::TooLarge(format!("uploads are limited to {limit} bytes"));
    if let Some(length) = headers.get(header::CONTENT_LENGTH).and_then(|it| it.to_str().ok()?.parse::<u64>().ok())
        && length > limit
    {
        return Err(too_large());
    }
    let written =
        state.blobs.put_stream(&upload.object_key, body.into_data_stream(), limit).await.map_err(|e| match e {
            WriteError::TooLarge { .. } => too_large(),
            WriteError::Stream(message) => ApiError::bad_request("upload_interrupted", message),
            WriteError::Storage(cause) => ApiError::Internal(cause),
        })?;
    state.store.mark_uploaded(&slug, written.size as i64, &written.sha256, now_ms()).await?;
    Ok((StatusCode::OK, [(header::ETAG, format!("\"{}\"", written.sha256))]))
}
