//! `POST /uploads`, multipart completion, and the upload targets themselves
//! (`PUT /blobs/uploads/{slug}`, and its parts).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use orchard_api::{
    CompleteUploadRequest, CompleteUploadResponse, CreateUploadRequest, CreateUploadResponse, ErrorBody,
};

use crate::error::Error;
use crate::http::extract::{ApiJson, ApiPath, BaseUrl, SignedQuery, check_signature};
use crate::keys::Caller;
use crate::ops::uploads::{self, Target};
use crate::state::AppState;
use crate::urls::{upload_part_path, upload_path};

/// Create a presigned upload target.
///
/// Renderjuice: https://www.renderjuice.com/docs/api-reference/uploads/create-upload-target
#[utoipa::path(post, path = "/api/external/v1/uploads", tag = "uploads",
    request_body = CreateUploadRequest,
    responses((status = 200, description = "the result", body = CreateUploadResponse),
              (status = 400, description = "bad file name or type", body = ErrorBody),
              (status = 401, description = "no API key, or an unknown or revoked one", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_upload(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    ApiJson(body): ApiJson<CreateUploadRequest>,
) -> Result<Json<CreateUploadResponse>, Error> {
    Ok(Json(uploads::create(&state, &caller, &base, body).await?))
}

/// Finish a multipart upload: the parts become the upload's file, ready for `POST /jobs`.
#[utoipa::path(post, path = "/api/external/v1/uploads/{slug}/complete", tag = "uploads",
    params(("slug" = String, Path)), request_body = CompleteUploadRequest,
    responses((status = 200, description = "the result", body = CompleteUploadResponse),
              (status = 400, description = "parts missing, out of order, or not matching their ETags", body = ErrorBody),
              (status = 404, description = "unknown, or another workspace's", body = ErrorBody), (status = 409, description = "in a state that forbids this", body = ErrorBody), (status = 413, description = "too large", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn complete_upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<CompleteUploadRequest>,
) -> Result<Json<CompleteUploadResponse>, Error> {
    let size = uploads::complete(&state, &caller, &slug, body.parts, body.upload_id.as_deref()).await?;
    Ok(Json(CompleteUploadResponse { slug, size }))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|it| it.to_str().ok()?.parse().ok())
}

/// Receive an upload's bytes: one `PUT`, streamed to storage, never whole in memory.
#[utoipa::path(put, path = "/blobs/uploads/{slug}", tag = "uploads",
    params(("slug" = String, Path), ("expires" = i64, Query), ("signature" = String, Query)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "stored"),
              (status = 400, description = "the body broke off", body = ErrorBody),
              (status = 403, description = "wrong, incomplete or expired signature", body = ErrorBody),
              (status = 404, description = "no such upload, or a part number that is not one", body = ErrorBody),
              (status = 409, description = "a job was made from the upload: its file can no longer change", body = ErrorBody),
              (status = 413, description = "larger than the upload limit", body = ErrorBody)))]
pub(crate) async fn put_upload(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
    query: SignedQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, Error> {
    check_signature(&state, "PUT", &upload_path(&slug), &query)?;
    let written =
        uploads::receive(&state, &slug, Target::File, content_length(&headers), body.into_data_stream()).await?;
    Ok((StatusCode::OK, [(header::ETAG, format!("\"{}\"", written.sha256))]))
}

/// Receive one part of a multipart upload (local storage; a bucket takes parts itself). The
/// answer's `ETag` is the part's sha256, checked again when the upload completes.
#[utoipa::path(put, path = "/blobs/uploads/{slug}/parts/{part_number}", tag = "uploads",
    params(("slug" = String, Path), ("part_number" = u32, Path), ("expires" = i64, Query), ("signature" = String, Query)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "stored"),
              (status = 400, description = "the body broke off", body = ErrorBody),
              (status = 403, description = "wrong, incomplete or expired signature", body = ErrorBody),
              (status = 404, description = "no such upload, or a part number that is not one", body = ErrorBody),
              (status = 409, description = "a job was made from the upload: its file can no longer change", body = ErrorBody),
              (status = 413, description = "larger than the upload limit", body = ErrorBody)))]
pub(crate) async fn put_upload_part(
    State(state): State<AppState>,
    ApiPath((slug, part_number)): ApiPath<(String, u32)>,
    query: SignedQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, Error> {
    check_signature(&state, "PUT", &upload_part_path(&slug, part_number), &query)?;
    let target = Target::Part(part_number);
    let written = uploads::receive(&state, &slug, target, content_length(&headers), body.into_data_stream()).await?;
    Ok((StatusCode::OK, [(header::ETAG, format!("\"{}\"", written.sha256))]))
}
