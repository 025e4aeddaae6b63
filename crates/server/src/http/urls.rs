//! Building the server's own signed URLs: uploads and file downloads.

use axum::http::HeaderMap;

use crate::blobs::Presign;
use crate::state::AppState;

/// The base URL a client used to reach us: `--public-url` if set, else the request's `Host`.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
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

/// The path of an upload's PUT target.
pub fn upload_path(slug: &str) -> String {
    format!("/blobs/uploads/{slug}")
}

/// The path of a part's PUT target in a multipart upload.
pub fn upload_part_path(slug: &str, part_number: u32) -> String {
    format!("/blobs/uploads/{slug}/parts/{part_number}")
}

/// The path that serves a stored object.
pub fn file_path(key: &str) -> String {
    format!("/blobs/files/{key}")
}

/// A signed GET URL for a stored object, valid for the configured time: presigned at the
/// bucket when storage is one (the file does not pass through this server), else the
/// server's own route behind its own signature.
pub fn signed_file_url(state: &AppState, base: &str, key: &str, now_ms: i64) -> String {
    if let Some(url) = state.blobs.presigned_url_now(Presign::Get, key, state.config.url_ttl) {
        return url;
    }
    let expires = now_ms / 1000 + state.config.url_ttl.as_secs() as i64;
    let path = file_path(key);
    format!("{base}{path}?{}", state.signer.sign("GET", &path, expires))
}
