//! `POST /uploads` and the upload target itself (`PUT /blobs/uploads/{slug}`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use futures::StreamExt;
use orchard_api::{
    CompleteUploadRequest, CompleteUploadResponse, CreateUploadRequest, CreateUploadResponse, ErrorBody,
};
use orchard_store::Upload;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::blobs::{Presign, WriteError, Written};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, Caller};
use crate::http::urls::{base_url, upload_part_path, upload_path};
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
    if let Some(parts) = body.parts
        && !(1..=MAX_PARTS).contains(&parts)
    {
        return Err(ApiError::bad_request("invalid_parts", format!("parts must be 1 to {MAX_PARTS}")));
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
    // A bucket takes the PUT itself (the bytes never pass through this server); a local
    // directory takes it through `put_upload`, behind the server's own signature.
    let upload_url = match state.blobs.presigned_url(Presign::Put, &upload.object_key, state.config.upload_ttl).await? {
        Some(url) => url,
        None => {
            let path = upload_path(&slug);
            let query = state.signer.sign("PUT", &path, expires_at / 1000);
            format!("{}{path}?{query}", base_url(&state, &headers))
        }
    };
    let (part_urls, upload_id) = match body.parts {
        Some(parts) => part_targets(&state, &base_url(&state, &headers), &upload, parts).await?,
        None => (Vec::new(), None),
    };
    Ok(Json(CreateUploadResponse { upload_url, slug, expires_at: iso8601(expires_at), part_urls, upload_id }))
}

/// Most parts of one upload (S3's limit).
const MAX_PARTS: u32 = 10_000;

/// Where the parts of a local upload wait until the upload completes.
fn part_key(slug: &str, part_number: u32) -> String {
    format!("uploads/{slug}.parts/{part_number:05}")
}

/// The PUT URL of every part: presigned `UploadPart`s of the bucket's own multipart upload,
/// or the server's signed part route for a local directory.
async fn part_targets(
    state: &AppState,
    base: &str,
    upload: &Upload,
    parts: u32,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let mut urls = Vec::with_capacity(parts as usize);
    if let Some(id) = state.blobs.start_multipart(&upload.object_key).await? {
        for part in 1..=parts {
            urls.push(state.blobs.presigned_part_url(&upload.object_key, &id, part, state.config.upload_ttl).await?);
        }
        return Ok((urls, Some(id)));
    }
    for part in 1..=parts {
        let path = upload_part_path(&upload.slug, part);
        urls.push(format!("{base}{path}?{}", state.signer.sign("PUT", &path, upload.expires_at / 1000)));
    }
    Ok((urls, None))
}

/// Finish a multipart upload: the parts become the upload's file, ready for `POST /jobs`.
#[utoipa::path(post, path = "/api/external/v1/uploads/{slug}/complete", tag = "uploads",
    params(("slug" = String, Path)), request_body = CompleteUploadRequest,
    responses((status = 200, body = CompleteUploadResponse),
              (status = 400, description = "parts missing, out of order, or not matching their ETags", body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn complete_upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<CompleteUploadRequest>,
) -> Result<Json<CompleteUploadResponse>, ApiError> {
    let upload = state
        .store
        .get_upload(&slug)
        .await?
        .filter(|it| it.workspace_id == caller.workspace_id)
        .ok_or(ApiError::NotFound("upload"))?;
    if state.store.upload_has_job(&slug).await? {
        return Err(in_use());
    }
    if now_ms() > upload.expires_at {
        return Err(ApiError::bad_request("upload_expired", "the upload's URLs expired; create a new upload"));
    }
    let numbered = body.parts.iter().enumerate().all(|(i, it)| it.part_number as usize == i + 1);
    if body.parts.is_empty() || body.parts.len() > MAX_PARTS as usize || !numbered {
        return Err(ApiError::bad_request("invalid_parts", "list every part once, part 1 first, numbered 1, 2, 3, …"));
    }
    let limit = state.config.max_upload_bytes;
    let etags: Vec<String> = body.parts.iter().map(|it| it.etag.clone()).collect();
    let (size, sha256) = match state.blobs.is_bucket() {
        true => {
            let id = body.upload_id.as_deref().ok_or_else(|| {
                ApiError::bad_request("missing_upload_id", "send the uploadId that POST /uploads answered")
            })?;
            state.blobs.complete_multipart(&upload.object_key, id, etags).await.map_err(|message| {
                ApiError::bad_request("parts_refused", format!("the bucket refused the parts: {message}"))
            })?;
            let size = state.blobs.size(&upload.object_key).await?.unwrap_or(0);
            if size > limit {
                state.blobs.delete(&upload.object_key).await?;
                return Err(ApiError::TooLarge(format!("uploads are limited to {limit} bytes")));
            }
            // Assembled in the bucket, unseen: the analysis reports the scene's hash.
            (size, String::new())
        }
        false => {
            let written = assemble(&state, &upload, &etags, limit).await?;
            for part in 1..=etags.len() as u32 {
                state.blobs.delete(&part_key(&slug, part)).await?;
            }
            (written.size, written.sha256)
        }
    };
    state.store.mark_uploaded(&slug, size as i64, &sha256, now_ms()).await?;
    Ok(Json(CompleteUploadResponse { slug, size }))
}

/// Streams the local parts, in order, into the upload's file, checking each against the
/// ETag its PUT answered (its sha256); a missing or changed part stores nothing.
async fn assemble(state: &AppState, upload: &Upload, etags: &[String], limit: u64) -> Result<Written, ApiError> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, String>>(4);
    let blobs = state.blobs.clone();
    let parts: Vec<(u32, String, String)> = etags
        .iter()
        .enumerate()
        .map(|(i, etag)| (i as u32 + 1, part_key(&upload.slug, i as u32 + 1), etag.trim_matches('"').to_string()))
        .collect();
    tokio::spawn(async move {
        for (number, key, etag) in parts {
            let stream = match blobs.get_stream(&key).await {
                Ok(Some((_, stream))) => stream,
                Ok(None) => {
                    let _ = sender.send(Err(format!("part {number} was not uploaded"))).await;
                    return;
                }
                Err(error) => {
                    let _ = sender.send(Err(format!("part {number} cannot be read: {error:#}"))).await;
                    return;
                }
            };
            let mut stream = std::pin::pin!(stream);
            let mut hasher = Sha256::new();
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        let _ = sender.send(Err(format!("part {number} cannot be read: {error}"))).await;
                        return;
                    }
                };
                hasher.update(&chunk);
                if sender.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
            if hex::encode(hasher.finalize()) != etag {
                let _ = sender.send(Err(format!("part {number} does not match its ETag"))).await;
                return;
            }
        }
    });
    let stream =
        futures::stream::unfold(
            receiver,
            |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
        );
    state.blobs.put_stream(&upload.object_key, Box::pin(stream), limit).await.map_err(|e| match e {
        WriteError::TooLarge { limit } => ApiError::TooLarge(format!("uploads are limited to {limit} bytes")),
        WriteError::Stream(message) => ApiError::bad_request("invalid_parts", message),
        WriteError::Storage(cause) => ApiError::Internal(cause),
    })
}

fn in_use() -> ApiError {
    ApiError::Conflict {
        code: "upload_in_use",
        message: "a job was created from this upload; its file can no longer change".into(),
    }
}

/// The upload as a job may use it, with a copy of the scene of its own: a later PUT to the
/// same upload URL (allowed until a job exists, and possibly already streaming) can never
/// change what a job validated and renders. For a bucket, where the client PUT straight to
/// the bucket and this server saw nothing, it also looks for the object and records its
/// arrival. An upload whose bytes have not arrived comes back unchanged (no `uploaded_at`).
pub async fn received_upload(state: &AppState, mut upload: Upload) -> Result<Upload, ApiError> {
    if state.store.upload_has_job(&upload.slug).await? {
        // Creating the job again replays the one that exists, with its own copy.
        return Ok(upload);
    }
    let Some(size) = state.blobs.size(&upload.object_key).await? else {
        return Ok(upload);
    };
    if upload.uploaded_at.is_none() {
        if !state.blobs.is_bucket() {
            // A PUT through this server records itself when it finishes.
            return Ok(upload);
        }
        let limit = state.config.max_upload_bytes;
        if size > limit {
            return Err(ApiError::TooLarge(format!("uploads are limited to {limit} bytes")));
        }
        // The bytes went to the bucket unseen: their sha256 is not known here (the analysis
        // reports the scene's own hash).
        let now = now_ms();
        state.store.mark_uploaded(&upload.slug, size as i64, "", now).await?;
        upload.uploaded_at = Some(now);
    }
    // A key per attempt: concurrent requests for one slug each copy, and the job that wins
    // keeps its own copy (the others' copies are left over).
    let frozen = format!("scenes/{}/{}", upload.slug, uuid::Uuid::now_v7().simple());
    if let Err(error) = state.blobs.copy(&upload.object_key, &frozen).await {
        // A concurrent request made the job (and removed the upload's file) meanwhile: it
        // is replayed.
        if state.store.upload_has_job(&upload.slug).await? {
            return Ok(upload);
        }
        return Err(error.into());
    }
    upload.size = Some(size as i64);
    upload.object_key = frozen;
    Ok(upload)
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
    let written = receive(&state, &upload, &upload.object_key, &headers, body).await?;
    state.store.mark_uploaded(&slug, written.size as i64, &written.sha256, now_ms()).await?;
    Ok((StatusCode::OK, [(header::ETAG, format!("\"{}\"", written.sha256))]))
}

/// Receive one part of a multipart upload (local storage; a bucket takes parts itself). The
/// answer's `ETag` is the part's sha256, checked again when the upload completes.
#[utoipa::path(put, path = "/blobs/uploads/{slug}/parts/{part_number}", tag = "uploads",
    params(("slug" = String, Path), ("part_number" = u32, Path), ("expires" = i64, Query), ("signature" = String, Query)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "stored"),
              (status = 403, description = "wrong or expired signature", body = ErrorBody),
              (status = 413, description = "larger than the upload limit", body = ErrorBody)))]
pub async fn put_upload_part(
    State(state): State<AppState>,
    Path((slug, part_number)): Path<(String, u32)>,
    ApiQuery(query): ApiQuery<SignedQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    check_signature(&state, "PUT", &upload_part_path(&slug, part_number), &query)?;
    let upload = state.store.get_upload(&slug).await?.ok_or(ApiError::NotFound("upload"))?;
    let written = receive(&state, &upload, &part_key(&slug, part_number), &headers, body).await?;
    Ok((StatusCode::OK, [(header::ETAG, format!("\"{}\"", written.sha256))]))
}

/// Streams a PUT's body to `key` for `upload`, within the upload limit, while no job uses it.
async fn receive(
    state: &AppState,
    upload: &Upload,
    key: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Written, ApiError> {
    if state.store.upload_has_job(&upload.slug).await? {
        return Err(in_use());
    }
    let limit = state.config.max_upload_bytes;
    let too_large = || ApiError::TooLarge(format!("uploads are limited to {limit} bytes"));
    if let Some(length) = headers.get(header::CONTENT_LENGTH).and_then(|it| it.to_str().ok()?.parse::<u64>().ok())
        && length > limit
    {
        return Err(too_large());
    }
    state.blobs.put_stream(key, body.into_data_stream(), limit).await.map_err(|e| match e {
        WriteError::TooLarge { .. } => too_large(),
        WriteError::Stream(message) => ApiError::bad_request("upload_interrupted", message),
        WriteError::Storage(cause) => ApiError::Internal(cause),
    })
}
