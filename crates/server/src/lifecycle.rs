//! The only place that changes a job's status. Each change is computed by
//! `orchard-domain`'s transition function and written as a compare-and-set on the status
//! that was read, so concurrent requests (or servers) cannot both apply one.

use anyhow::Context;
use orchard_blend::{AnalyzeOptions, ZipProject};
use orchard_domain::{FrameSet, JobEvent, JobStatus, RenderConfig, RequestedConfig};
use orchard_store::{FailedReason, Job, JobPatch, StartRender};
use serde_json::{Value, json};
use tracing::{info, warn};
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::scheduler;
use crate::state::{AppState, now_ms};

fn invalid(status: JobStatus, message: &str) -> ApiError {
    ApiError::InvalidStatus { status: status.as_str(), message: message.to_string() }
}

async fn reload(state: &AppState, job_id: Uuid) -> Result<Job, ApiError> {
    state.store.get_job_internal(job_id).await?.ok_or(ApiError::NotFound("job"))
}

/// `POST /validate`: `created → validating → validated` (or `failed` for an unreadable file).
/// Analysis is native and takes milliseconds, so it runs inside the request.
pub async fn validate(state: &AppState, job: Job) -> Result<Job, ApiError> {
    let validating = job
        .status
        .apply(JobEvent::ValidationStarted)
        .map_err(|_| invalid(job.status, "validate is allowed only from created"))?;
    if !state.store.transition_job(job.id, job.status, validating, JobPatch::default(), now_ms()).await? {
        let current = reload(state, job.id).await?;
        return Err(invalid(current.status, "validate is allowed only from created"));
    }
    // The analysis finishes even if the client hangs up: a job must not stay `validating`.
    let task_state = state.clone();
    let task_job = job.clone();
    tokio::spawn(async move { finish_validation(&task_state, &task_job, validating).await })
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    reload(state, job.id).await
}

/// Analyses the scene of a `validating` job and moves it to `validated` or `failed`.
async fn finish_validation(state: &AppState, job: &Job, validating: JobStatus) -> Result<(), ApiError> {
    let outcome = analyze(state, job).await;
    let (to, patch) = match outcome {
        Ok(analysis) => {
            let id = Uuid::now_v7();
            let mut analysis = analysis;
            analysis["id"] = json!(id.to_string());
            (
                validating.apply(JobEvent::ValidationSucceeded),
                JobPatch { analysis: Some((id, analysis)), ..Default::default() },
            )
        }
        Err(AnalyzeFailure::Unreadable(message)) => {
            info!(job = %job.id, %message, "scene refused");
            let failed_reason = FailedReason { name: "unreadable_scene".into(), kind: "validation".into(), message };
            (validating.apply(JobEvent::Failed), JobPatch { failed_reason: Some(failed_reason), ..Default::default() })
        }
        Err(AnalyzeFailure::Internal(error)) => {
            // Put the job back so that the client can retry once storage works again.
            let _ =
                state.store.transition_job(job.id, validating, JobStatus::Created, JobPatch::default(), now_ms()).await;
            return Err(ApiError::Internal(error));
        }
    };
    let to = to.map_err(|e| ApiError::Internal(e.into()))?;
    state.store.transition_job(job.id, validating, to, patch, now_ms()).await?;
    Ok(())
}

enum AnalyzeFailure {
    /// The client's file: a clear message, and the job fails.
    Unreadable(String),
    /// Ours: storage or a worker thread failed.
    Internal(anyhow::Error),
}

async fn analyze(state: &AppState, job: &Job) -> Result<Value, AnalyzeFailure> {
    let tmp_dir = state.config.data_dir.join("tmp");
    tokio::fs::create_dir_all(&tmp_dir).await.map_err(|e| AnalyzeFailure::Internal(e.into()))?;
    let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|e| AnalyzeFailure::Internal(e.into()))?;
    state.blobs.get_to_file(&job.object_key, tmp.path()).await.map_err(AnalyzeFailure::Internal)?;
    let file_name = job.file_name.clone();
    let main_file = job.main_file.clone();
    let is_zip = job.file_type == "zip";
    let result = tokio::task::spawn_blocking(move || {
        let opts = AnalyzeOptions::default();
        let path = tmp.path();
        if is_zip {
            let project = ZipProject::open(path, main_file.as_deref(), &opts)?;
            let main = project.main_file().to_string();
            project.analyze(&file_name, &opts).map(|it| (it, Some(main)))
        } else {
            orchard_blend::analyze_path(path, &file_name, &opts).map(|it| (it, None))
        }
    })
    .await
    .map_err(|e| AnalyzeFailure::Internal(e.into()))?;
    let (analysis, main_file) = result.map_err(|e| AnalyzeFailure::Unreadable(e.to_string()))?;
    let mut value = serde_json::to_value(&analysis).map_err(|e| AnalyzeFailure::Internal(e.into()))?;
    if let Some(main) = main_file {
        value["mainFile"] = json!(main);
    }
    Ok(value)
}

/// `POST /render`: `validated → booting`, with the final config and the tasks.
/// Returns the job and whether this was an idempotent replay.
pub async fn start_render(state: &AppState, job: Job, body: &Value) -> Result<(Job, bool), ApiError> {
    if job.final_config.is_some() {
        return Ok((job, true));
    }
    if job.status != JobStatus::Validated {
        return Err(invalid(job.status, "render is allowed only once the job is validated"));
    }
    let requested_value = match body {
        Value::Object(object) => object.get("requestedRenderConfig").cloned().unwrap_or(Value::Null),
        _ => return Err(ApiError::bad_request("invalid_body", "the body must be {\"requestedRenderConfig\": {...}}")),
    };
    let requested = RequestedConfig::parse(&requested_value).map_err(config_error)?;
    let analysis = job.analysis.clone().unwrap_or(Value::Null);
    let (detected, scene_frames) = detected_config(&analysis)?;
    let config = RenderConfig::overlay(&detected, &requested, &scene_frames).map_err(config_error)?;
    let frames = config.frames().map_err(|e| {
        config_error(orchard_domain::ConfigError { field: "frameRanges".into(), reason: e.to_string() })
    })?;
    let chunk_size = config.chunk_size.map_or_else(|| scheduler::chunk_size(frames.len()), |it| it as usize);
    let chunks = frames.chunks(chunk_size);
    let start = StartRender {
        requested_config: serde_json::to_value(&requested)
            .context("encoding the request")
            .map_err(ApiError::Internal)?,
        final_config: serde_json::to_value(&config).context("encoding the config").map_err(ApiError::Internal)?,
        chunks,
    };
    if state.store.start_render(job.id, start, now_ms()).await? {
        info!(job = %job.id, frames = frames.len(), "render started");
        state.work_arrived();
        // Say at once when no connected worker can take it.
        crate::scheduler::review_job(state, job.id).await?;
        return Ok((reload(state, job.id).await?, false));
    }
    // Another request started it meanwhile: that is a replay, anything else a refusal.
    let current = reload(state, job.id).await?;
    if current.final_config.is_some() {
        return Ok((current, true));
    }
    Err(invalid(current.status, "render is allowed only once the job is validated"))
}

fn config_error(e: orchard_domain::ConfigError) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_render_config",
        message: e.to_string(),
        details: Some(json!({ "field": e.field, "reason": e.reason })),
    }
}

/// The active scene's settings as a request, and its frame range.
fn detected_config(analysis: &Value) -> Result<(RequestedConfig, FrameSet), ApiError> {
    let missing = || ApiError::bad_request("no_scene", "the scene file has no scene to render");
    let scenes = analysis["scenes"].as_array().ok_or_else(missing)?;
    let active = analysis["activeScene"].as_str();
    let scene = scenes
        .iter()
        .find(|it| active.is_some() && it["name"].as_str() == active)
        .or_else(|| scenes.first())
        .ok_or_else(missing)?;
    let mut detected: RequestedConfig = serde_json::from_value(scene["renderConfig"].clone()).unwrap_or_default();
    detected.fps = scene["fps"].as_f64();
    // Detected values outside what a request may ask (an add-on engine, a video format) stay
    // out of the final config unless the request names a replacement; overlay reports that.
    if let Some(engine) = &detected.render_engine
        && !orchard_domain::config::RENDER_ENGINES.contains(&engine.as_str())
    {
        detected.render_engine = None;
    }
    if let Some(format) = &detected.output_format
        && !orchard_domain::config::OUTPUT_FORMATS.contains(&format.as_str())
    {
        detected.output_format = None;
    }
    let int = |key: &str| scene[key].as_i64().map(|it| it as i32);
    let frames = FrameSet::from_scene_range(
        int("frameStart").unwrap_or(1),
        int("frameEnd").unwrap_or(1),
        int("frameStep").unwrap_or(1),
    )
    .map_err(|e| {
        ApiError::bad_request("invalid_scene_range", format!("the scene's frame range: {e}; set frameRanges"))
    })?;
    Ok((detected, frames))
}

/// `POST /cancel`: any non-terminal status → `canceled`. Running tasks learn it at their
/// next heartbeat and stop Blender.
pub async fn cancel(state: &AppState, job: Job) -> Result<Job, ApiError> {
    let mut current = job;
    // A status can change between the read and the write (a task starts); retry on the fresh one.
    for _ in 0..5 {
        if current.status.apply(JobEvent::Canceled).is_err() {
            return Err(invalid(current.status, "cancel is allowed only before a job completes, fails or is canceled"));
        }
        if state.store.cancel_job(current.id, current.status, now_ms()).await? {
            info!(job = %current.id, "job canceled");
            return reload(state, current.id).await;
        }
        current = reload(state, current.id).await?;
    }
    Err(ApiError::Conflict { code: "busy", message: "the job kept changing; try again".into() })
}

/// Packages a `finalizing` job's outputs and completes it. Safe to run on several servers:
/// the archive key is fixed and the final transition is a compare-and-set.
pub async fn finalize(state: &AppState, job: &Job) -> anyhow::Result<()> {
    let outputs = state.store.list_outputs(job.id).await?;
    let frames: Vec<_> = outputs.into_iter().filter(|it| it.kind == "frame").collect();
    let zip_key = format!("jobs/{}/frames.zip", job.id);
    let tmp_dir = state.config.data_dir.join("tmp");
    tokio::fs::create_dir_all(&tmp_dir).await?;
    let work = tempfile::tempdir_in(&tmp_dir)?;
    let mut files = Vec::with_capacity(frames.len());
    for output in &frames {
        let local = work.path().join(&output.file_name);
        state.blobs.get_to_file(&output.object_key, &local).await?;
        files.push((output.file_name.clone(), local));
    }
    let zip_path = work.path().join("frames.zip");
    let zip_target = zip_path.clone();
    tokio::task::spawn_blocking(move || write_zip(&zip_target, &files)).await??;
    state.blobs.put_file(&zip_key, &zip_path).await?;
    // The representative preview is the middle frame.
    let mut preview_key = None;
    if let Some(middle) = frames.get(frames.len() / 2) {
        match crate::previews::make_preview(state, job.id, &work.path().join(&middle.file_name)).await {
            Ok(key) => preview_key = key,
            Err(error) => warn!(job = %job.id, error = format!("{error:#}"), "no final preview"),
        }
    }
    let completed = JobStatus::Finalizing.apply(JobEvent::Finalized)?;
    let patch = JobPatch { frames_zip_key: Some(zip_key), preview_key, ..Default::default() };
    if state.store.transition_job(job.id, JobStatus::Finalizing, completed, patch, now_ms()).await? {
        info!(job = %job.id, frames = frames.len(), "job completed");
    }
    Ok(())
}

fn write_zip(path: &std::path::Path, files: &[(String, std::path::PathBuf)]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut zip = zip::ZipWriter::new(file);
    // Frames are already compressed images: store them, don't deflate them again.
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(true);
    for (name, local) in files {
        zip.start_file(name.as_str(), options)?;
        let mut input = std::fs::File::open(local)?;
        std::io::copy(&mut input, &mut zip)?;
    }
    zip.finish()?;
    Ok(())
}

/// Fails a job whose outputs could not be packaged.
pub async fn fail_finalizing(state: &AppState, job: &Job, error: &str) {
    let Ok(failed) = JobStatus::Finalizing.apply(JobEvent::Failed) else { return };
    let message = format!("packaging the outputs failed: {error}");
    let patch = JobPatch {
        failed_reason: Some(FailedReason { name: "finalize_failed".into(), kind: "internal".into(), message }),
        ..Default::default()
    };
    if let Err(error) = state.store.transition_job(job.id, JobStatus::Finalizing, failed, patch, now_ms()).await {
        warn!(job = %job.id, %error, "could not fail the job");
    }
}
