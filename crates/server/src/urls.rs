//! The server's own URLs: the paths of its signed blob routes, and signed URLs for them (or
//! presigned ones at the bucket, when storage is one). `base` is how the caller reached us.

use std::time::Duration;

use uuid::Uuid;

use crate::blobs::Presign;
use crate::error::Result;
use crate::state::AppState;

/// The path of an upload's PUT target.
pub(crate) fn upload_path(slug: &str) -> String {
    format!("/blobs/uploads/{slug}")
}

/// The path of a part's PUT target in a multipart upload.
pub(crate) fn upload_part_path(slug: &str, part_number: u32) -> String {
    format!("/blobs/uploads/{slug}/parts/{part_number}")
}

/// The path that serves a stored object.
pub(crate) fn file_path(key: &str) -> String {
    format!("/blobs/files/{key}")
}

/// The path that takes a task's output file.
pub(crate) fn output_path(job_id: Uuid, task_id: Uuid, attempt: i64, file: &str) -> String {
    format!("/blobs/outputs/{job_id}/{task_id}/{attempt}/{file}")
}

/// The path that streams one of a job's archives (`frames.zip`, `composites.zip`).
pub(crate) fn archive_path(job_id: Uuid, file: &str) -> String {
    format!("/blobs/archives/{job_id}/{file}")
}

/// A signed GET URL for one of a job's archives, made as it downloads: always this server's
/// (a bucket cannot zip), valid for the configured time.
pub(crate) fn signed_archive_url(state: &AppState, base: &str, job_id: Uuid, file: &str, now_ms: i64) -> String {
    let expires = now_ms / 1000 + state.config.url_ttl.as_secs() as i64;
    signed(state, base, "GET", &archive_path(job_id, file), expires)
}

/// `base` + `path`, signed for `method` until `expires` (unix seconds).
pub(crate) fn signed(state: &AppState, base: &str, method: &str, path: &str, expires: i64) -> String {
    format!("{base}{path}?{}", state.signer.sign(method, path, expires))
}

/// A signed GET URL for a stored object, valid for the configured time: presigned at the
/// bucket when storage is one (the file does not pass through this server), else the
/// server's own route behind its own signature.
pub fn signed_file_url(state: &AppState, base: &str, key: &str, now_ms: i64) -> String {
    signed_file_url_for(state, base, key, now_ms, state.config.url_ttl)
}

/// As [`signed_file_url`], valid for `ttl`.
pub(crate) fn signed_file_url_for(state: &AppState, base: &str, key: &str, now_ms: i64, ttl: Duration) -> String {
    if let Some(url) = state.blobs.presigned_url_now(Presign::Get, key, ttl) {
        return url;
    }
    let expires = now_ms / 1000 + ttl.as_secs() as i64;
    signed(state, base, "GET", &file_path(key), expires)
}

/// A PUT URL for `key`: presigned at the bucket, or `path` on this server behind its own
/// signature, valid for `ttl` from `now_ms`.
pub(crate) async fn put_url(
    state: &AppState,
    base: &str,
    key: &str,
    path: &str,
    ttl: Duration,
    now_ms: i64,
) -> Result<String> {
    if let Some(url) = state.blobs.presigned_url(Presign::Put, key, ttl).await? {
        return Ok(url);
    }
    Ok(signed(state, base, "PUT", path, now_ms / 1000 + ttl.as_secs() as i64))
}
