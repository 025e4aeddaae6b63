//! Uploads: targets, the bytes (streamed, never whole in memory), multipart completion, and
//! the scene as a job may use it.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use orchard_api::{CreateUploadRequest, CreateUploadResponse, UploadedPart};
use orchard_store::Upload;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::write_error;
use crate::blobs::{Written, keys};
use crate::clock::{iso8601, now_ms};
use crate::error::{Error, Result};
use crate::keys::Caller;
use crate::policy::{MAX_FILE_NAME, MAX_UPLOAD_PARTS};
use crate::state::AppState;
use crate::urls::{self, upload_part_path, upload_path};

/// Creates an upload target for `caller`; URLs are made for `base`.
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    base: &str,
    body: CreateUploadRequest,
) -> Result<CreateUploadResponse> {
    // Taken as sent (not trimmed): the OpenAPI document states this rule exactly.
    let file_name = body.file_name.as_str();
    if file_name.is_empty() {
        return Err(Error::invalid("invalid_file_name", "fileName must not be empty"));
    }
    if file_name.chars().count() > MAX_FILE_NAME || file_name.contains(['/', '\\']) {
        return Err(Error::invalid(
            "invalid_file_name",
            format!("fileName must be a plain file name of at most {MAX_FILE_NAME} characters, without / or \\"),
        ));
    }
    if let Some(bad) = file_name.chars().find(|it| it.is_control() || is_bidi_control(*it)) {
        return Err(Error::invalid(
            "invalid_file_name",
            format!("fileName must not contain control or text-direction characters (it has U+{:04X})", bad as u32),
        ));
    }
    if !matches!(body.file_type.as_str(), "blend" | "zip") {
        return Err(Error::invalid("invalid_file_type", "fileType must be \"blend\" or \"zip\""));
    }
    if let Some(parts) = body.parts
        && !(1..=MAX_UPLOAD_PARTS).contains(&parts)
    {
        return Err(Error::invalid("invalid_parts", format!("parts must be 1 to {MAX_UPLOAD_PARTS}")));
    }
    let extension = file_name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    if extension.as_deref() != Some(body.file_type.as_str()) {
        return Err(Error::invalid(
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
        object_key: keys::upload(&slug),
        expires_at,
        created_at: now,
        uploaded_at: None,
        size: None,
        sha256: None,
        parts: body.parts,
    };
    state.store.insert_upload(&upload).await?;
    // A bucket takes the PUT itself (the bytes never pass through this server); a local
    // directory takes it through `receive`, behind the server's own signature.
    let upload_url =
        urls::put_url(state, base, &upload.object_key, &upload_path(&slug), state.config.upload_ttl, now).await?;
    let (part_urls, upload_id) = match body.parts {
        Some(parts) => part_targets(state, base, &upload, parts).await?,
        None => (Vec::new(), None),
    };
    Ok(CreateUploadResponse { upload_url, slug, expires_at: iso8601(expires_at), part_urls, upload_id })
}

/// Characters that reorder how text is shown: a name with them can display as something it
/// is not (`shot\u{202E}dnelb.zip` shows as `shotpiz.blend`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The PUT URL of every part: presigned `UploadPart`s of the bucket's own multipart upload,
/// or the server's signed part route for a local directory.
async fn part_targets(
    state: &AppState,
    base: &str,
    upload: &Upload,
    parts: u32,
) -> Result<(Vec<String>, Option<String>)> {
    let mut urls = Vec::with_capacity(parts as usize);
    if let Some(id) = state.blobs.start_multipart(&upload.object_key).await? {
        for part in 1..=parts {
            urls.push(state.blobs.presigned_part_url(&upload.object_key, &id, part, state.config.upload_ttl).await?);
        }
        return Ok((urls, Some(id)));
    }
    for part in 1..=parts {
        urls.push(urls::signed(state, base, "PUT", &upload_part_path(&upload.slug, part), upload.expires_at / 1000));
    }
    Ok((urls, None))
}

/// Whether `text` can be a slug this server made (32 lowercase hex digits). Anything else is
/// unknown without asking the database (which may refuse it: PostgreSQL text holds no NUL).
pub(crate) fn is_slug(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An upload by slug, if the slug can be one.
pub(crate) async fn find(state: &AppState, slug: &str) -> Result<Option<Upload>> {
    if !is_slug(slug) {
        return Ok(None);
    }
    Ok(state.store.get_upload(slug).await?)
}

/// A workspace's upload by slug; another workspace's is unknown.
async fn owned(state: &AppState, caller: &Caller, slug: &str) -> Result<Upload> {
    find(state, slug).await?.filter(|it| it.workspace_id == caller.workspace_id).ok_or(Error::NotFound("upload"))
}

fn in_use() -> Error {
    Error::Conflict {
        code: "upload_in_use",
        message: "a job was created from this upload; its file can no longer change".into(),
    }
}

/// Completes a multipart upload: the parts (every one, in order) become the upload's file.
/// Returns its size.
pub(crate) async fn complete(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    parts: Vec<UploadedPart>,
    upload_id: Option<&str>,
) -> Result<u64> {
    let upload = owned(state, caller, slug).await?;
    if state.store.upload_has_job(slug).await? {
        return Err(in_use());
    }
    if now_ms() > upload.expires_at {
        return Err(Error::invalid("upload_expired", "the upload's URLs expired; create a new upload"));
    }
    let Some(declared) = upload.parts else {
        return Err(Error::invalid(
            "not_multipart",
            "this upload was created without parts: PUT the whole file to its uploadUrl",
        ));
    };
    let numbered = parts.iter().enumerate().all(|(i, it)| it.part_number as usize == i + 1);
    if parts.is_empty() || parts.len() > MAX_UPLOAD_PARTS as usize || !numbered {
        return Err(Error::invalid("invalid_parts", "list every part once, part 1 first, numbered 1, 2, 3, …"));
    }
    if parts.len() != declared as usize {
        return Err(Error::Invalid {
            code: "invalid_parts",
            message: format!("this upload was created with {declared} parts; list every one ({} listed)", parts.len()),
            details: Some(serde_json::json!({ "field": "parts", "declared": declared, "listed": parts.len() })),
        });
    }
    let etags: Vec<String> = parts.into_iter().map(|it| it.etag).collect();
    let limit = state.config.max_upload_bytes;
    let (size, sha256) = match state.blobs.is_bucket() {
        true => {
            let id = upload_id
                .ok_or_else(|| Error::invalid("missing_upload_id", "send the uploadId that POST /uploads answered"))?;
            state.blobs.complete_multipart(&upload.object_key, id, etags).await.map_err(|message| {
                Error::invalid("parts_refused", format!("the bucket refused the parts: {message}"))
            })?;
            let size = state.blobs.size(&upload.object_key).await?.unwrap_or(0);
            if size > limit {
                state.blobs.delete(&upload.object_key).await?;
                return Err(Error::TooLarge(format!("uploads are limited to {limit} bytes")));
            }
            // Assembled in the bucket, unseen: the analysis reports the scene's hash.
            (size, String::new())
        }
        false => {
            let written = assemble(state, &upload, &etags, limit).await?;
            for part in 1..=etags.len() as u32 {
                state.blobs.delete(&keys::upload_part(slug, part)).await?;
            }
            (written.size, written.sha256)
        }
    };
    state.store.mark_uploaded(slug, size as i64, &sha256, now_ms()).await?;
    Ok(size)
}

/// Streams the local parts, in order, into the upload's file, checking each against the
/// ETag its PUT answered (its sha256); a missing or changed part stores nothing.
async fn assemble(state: &AppState, upload: &Upload, etags: &[String], limit: u64) -> Result<Written> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(4);
    let blobs = state.blobs.clone();
    let parts: Vec<(u32, String, String)> = etags
        .iter()
        .enumerate()
        .map(|(i, etag)| {
            (i as u32 + 1, keys::upload_part(&upload.slug, i as u32 + 1), etag.trim_matches('"').to_string())
        })
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
        crate::blobs::WriteError::Stream(message) => Error::invalid("invalid_parts", message),
        other => write_error(other, "uploads"),
    })
}

/// What a PUT to an upload's URL targets.
pub(crate) enum Target {
    /// The whole file.
    File,
    /// One part of a multipart upload.
    Part(u32),
}

/// Receives a PUT's body for the upload `slug` (its signature already checked), within the
/// upload limit, while no job uses it. A whole file is recorded as uploaded.
pub(crate) async fn receive<S, E>(
    state: &AppState,
    slug: &str,
    target: Target,
    content_length: Option<u64>,
    body: S,
) -> Result<Written>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let upload = find(state, slug).await?.ok_or(Error::NotFound("upload"))?;
    if state.store.upload_has_job(&upload.slug).await? {
        return Err(in_use());
    }
    let limit = state.config.max_upload_bytes;
    if content_length.is_some_and(|it| it > limit) {
        return Err(Error::TooLarge(format!("uploads are limited to {limit} bytes")));
    }
    let key = match target {
        Target::File => upload.object_key.clone(),
        Target::Part(number) => keys::upload_part(slug, number),
    };
    let body = super::non_empty(body).await?;
    let written = state.blobs.put_stream(&key, body, limit).await.map_err(|e| write_error(e, "uploads"))?;
    if let Target::File = target {
        state.store.mark_uploaded(slug, written.size as i64, &written.sha256, now_ms()).await?;
    }
    Ok(written)
}

/// The upload as a job may use it, with a copy of the scene of its own: a later PUT to the
/// same upload URL (allowed until a job exists, and possibly already streaming) can never
/// change what a job validated and renders. For a bucket, where the client PUT straight to
/// the bucket and this server saw nothing, it also looks for the object and records its
/// arrival. An upload whose bytes have not arrived comes back unchanged (no `uploaded_at`).
pub async fn received_upload(state: &AppState, mut upload: Upload) -> Result<Upload> {
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
            return Err(Error::TooLarge(format!("uploads are limited to {limit} bytes")));
        }
        // The bytes went to the bucket unseen: their sha256 is not known here (the analysis
        // reports the scene's own hash).
        let now = now_ms();
        state.store.mark_uploaded(&upload.slug, size as i64, "", now).await?;
        upload.uploaded_at = Some(now);
    }
    let frozen = keys::scene_copy(&upload.slug);
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
