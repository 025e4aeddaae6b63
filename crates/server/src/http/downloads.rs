//! `GET /jobs/{id}/downloads` and the signed file route behind its URLs.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use orchard_api::{Downloads, ErrorBody, OutputFile, Transforms};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::archives::Entry;
use crate::clock::now_ms;
use crate::error::Error;
use crate::http::extract::{ApiPath, BaseUrl, JobId, SignedQuery, check_signature};
use crate::keys::Caller;
use crate::ops::jobs::owned;
use crate::state::AppState;
use crate::urls::{archive_path, file_path, signed_archive_url, signed_file_url};
use crate::video::Packaged;

/// Download URLs of a job's outputs: signed, expiring; empty arrays until outputs exist.
///
/// Renderjuice: https://www.renderjuice.com/docs/api-reference/jobs/download-urls
#[utoipa::path(get, path = "/api/external/v1/jobs/{id}/downloads", tag = "downloads", params(("id" = String, Path)),
    responses((status = 200, description = "the result", body = Downloads), (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_downloads(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    JobId(id): JobId,
) -> Result<Json<Downloads>, Error> {
    let job = owned(&state, &caller, id).await?;
    let now = now_ms();
    let outputs = state.store.list_outputs(job.id).await?;
    let to_file = |output: &orchard_store::Output| OutputFile {
        url: signed_file_url(&state, &base, &output.object_key, now),
        file_name: output.file_name.clone(),
        view: String::new(),
        legacy: false,
        relative_path: output.file_name.clone(),
        composite_node_name: String::new(),
        flags: Vec::new(),
    };
    let flags =
        if crate::http::wire::frame_flags_matter(&job) { state.store.frame_flags(job.id).await? } else { Vec::new() };
    // Compositor files' nodes and paths, and the views of a multiview render's files.
    let details = if outputs.is_empty() { Vec::new() } else { state.store.output_details(job.id).await? };
    let details: std::collections::HashMap<&str, &orchard_store::OutputDetail> =
        details.iter().map(|it| (it.file_name.as_str(), it)).collect();
    let frame_outputs: Vec<OutputFile> = outputs
        .iter()
        .filter(|it| it.kind == "frame")
        .map(|output| {
            let flags = flags
                .iter()
                .filter(|(frame, _)| Some(*frame) == output.frame)
                .map(|(_, flag)| flag.as_str().to_string())
                .collect();
            let view = details.get(output.file_name.as_str()).map(|it| it.view.clone());
            OutputFile { flags, view: view.unwrap_or_default(), ..to_file(output) }
        })
        .collect();
    let composites: Vec<&orchard_store::Output> = outputs.iter().filter(|it| it.kind == "composite").collect();
    let composite_node_outputs: Vec<OutputFile> = composites
        .iter()
        .map(|output| {
            let file = to_file(output);
            match details.get(output.file_name.as_str()) {
                // Blender's own name, the path the node wrote it at, the node, the view.
                Some(detail) => OutputFile {
                    file_name: detail.relative_path.rsplit('/').next().unwrap_or(&detail.relative_path).to_string(),
                    relative_path: detail.relative_path.clone(),
                    composite_node_name: detail.node_name.clone(),
                    view: detail.view.clone(),
                    ..file
                },
                None => file,
            }
        })
        .collect();
    let contact_sheet = match job.status == orchard_domain::JobStatus::Completed {
        true => {
            let key = crate::blobs::keys::contact_sheet(job.id);
            state.blobs.size(&key).await?.map(|_| OutputFile {
                url: signed_file_url(&state, &base, &key, now),
                file_name: "contact-sheet.png".into(),
                relative_path: "contact-sheet.png".into(),
                ..Default::default()
            })
        }
        false => None,
    };
    // Zipped as they download, once the job completed.
    let completed = job.status == orchard_domain::JobStatus::Completed;
    let archive = |file: &str, any: bool| match completed && any {
        true => OutputFile {
            url: signed_archive_url(&state, &base, job.id, file, now),
            file_name: file.into(),
            relative_path: file.into(),
            ..Default::default()
        },
        false => OutputFile::default(),
    };
    let composite_nodes_zip_outputs = archive(COMPOSITES_ZIP, !composites.is_empty());
    let frames_zip_outputs = archive(FRAMES_ZIP, !frame_outputs.is_empty());
    let video = video(&state, &job, &base, now).await?;
    Ok(Json(Downloads {
        frames: frame_outputs.iter().map(|it| it.url.clone()).collect(),
        composite_nodes: composite_node_outputs.iter().map(|it| it.url.clone()).collect(),
        transforms: Transforms {
            frames_zip: frames_zip_outputs.url.clone(),
            composite_nodes_zip: composite_nodes_zip_outputs.url.clone(),
            video,
            frames_zip_outputs,
            composite_nodes_zip_outputs,
            contact_sheet,
        },
        frame_outputs,
        composite_node_outputs,
    }))
}

/// `transforms.video`: `{}` unless the job asked for one; once made, where it is and what it
/// is (`url`, `fileName`, `codec`, `width`, `height`, `fps`, `frames`, `durationSeconds`,
/// `audio`, `size`); `{"error"}` when no worker could make it.
async fn video(state: &AppState, job: &orchard_store::Job, base: &str, now: i64) -> Result<Value, Error> {
    let asked = job.final_config.as_ref().is_some_and(|it| it.video == Some(true));
    if !asked || job.status != orchard_domain::JobStatus::Completed || job.outputs_deleted_at.is_some() {
        return Ok(json!({}));
    }
    let Some(packaging) = state.store.packaging(job.id).await? else { return Ok(json!({})) };
    if let Some(made) = Packaged::read(packaging.result.as_deref()) {
        let mut described = serde_json::to_value(&made.video).map_err(anyhow::Error::from)?;
        described["url"] = json!(signed_file_url(state, base, &made.key, now));
        return Ok(described);
    }
    let error = packaging.error.unwrap_or_else(|| "the video was not made".into());
    Ok(json!({ "error": format!("the video could not be made: {error}") }))
}

/// The archives a completed job offers.
const FRAMES_ZIP: &str = "frames.zip";
const COMPOSITES_ZIP: &str = "composites.zip";

/// Serve one of a completed job's archives behind a signed URL: a stored zip of its frames
/// (`frames.zip`) or of its compositor files as `node/relative path` (`composites.zip`),
/// made as it downloads.
#[utoipa::path(get, path = "/blobs/archives/{job_id}/{file}", tag = "downloads",
    params(("job_id" = String, Path), ("file" = String, Path), ("expires" = i64, Query), ("signature" = String, Query)),
    responses((status = 200, description = "the zip, streamed", content_type = "application/zip"),
              (status = 403, description = "the signed URL is wrong, incomplete or expired", body = ErrorBody),
              (status = 404, description = "no such job or archive, or the job is not completed", body = ErrorBody)))]
pub(crate) async fn get_archive(
    State(state): State<AppState>,
    ApiPath((job_id, file)): ApiPath<(Uuid, String)>,
    query: SignedQuery,
) -> Result<Response, Error> {
    check_signature(&state, "GET", &archive_path(job_id, &file), &query)?;
    let job = state.store.get_job_internal(job_id).await?.ok_or(Error::NotFound("job"))?;
    if job.status != orchard_domain::JobStatus::Completed {
        return Err(Error::NotFound("archive"));
    }
    let outputs = state.store.list_outputs(job.id).await?;
    let mut entries: Vec<Entry> = match file.as_str() {
        FRAMES_ZIP => outputs
            .iter()
            .filter(|it| it.kind == "frame")
            .map(|it| Entry { name: it.file_name.clone(), key: it.object_key.clone(), size: it.size.max(0) as u64 })
            .collect(),
        COMPOSITES_ZIP => {
            // The nodes' tree kept: `node/relative path`, as the scene would have written it.
            let details = state.store.output_details(job.id).await?;
            let details: std::collections::HashMap<&str, &orchard_store::OutputDetail> =
                details.iter().map(|it| (it.file_name.as_str(), it)).collect();
            outputs
                .iter()
                .filter(|it| it.kind == "composite")
                .filter_map(|it| {
                    let detail = details.get(it.file_name.as_str())?;
                    let node = detail.node_name.replace(['/', '\\'], "_");
                    let name = format!("{node}/{}", detail.relative_path);
                    Some(Entry { name, key: it.object_key.clone(), size: it.size.max(0) as u64 })
                })
                .collect()
        }
        _ => return Err(Error::NotFound("archive")),
    };
    if entries.is_empty() {
        return Err(Error::NotFound("archive"));
    }
    crate::archives::unique_names(&mut entries);
    let mut response = Body::from_stream(crate::archives::stream(state.blobs.clone(), entries)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    let name = format!("attachment; filename=\"{}-{file}\"", job.id);
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Serve a stored file behind a signed URL, streamed.
#[utoipa::path(get, path = "/blobs/files/{key}", tag = "downloads",
    params(("key" = String, Path), ("expires" = i64, Query), ("signature" = String, Query)),
    responses((status = 200, description = "the file"), (status = 403, description = "the signed URL is wrong, incomplete or expired", body = ErrorBody), (status = 404, description = "unknown, or another workspace's", body = ErrorBody)))]
pub(crate) async fn get_file(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    query: SignedQuery,
) -> Result<Response, Error> {
    check_signature(&state, "GET", &file_path(&key), &query)?;
    let (size, stream) = state.blobs.get_stream(&key).await?.ok_or(Error::NotFound("file"))?;
    let name = key.rsplit('/').next().unwrap_or("file");
    let content_type = match name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("zip") => "application/zip",
        Some("exr") => "image/x-exr",
        Some("tif" | "tiff") => "image/tiff",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    };
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(value) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
