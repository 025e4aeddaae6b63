//! The only place that changes a job's status (besides the store's task statements, which
//! move a job to `finalizing` or `failed` with its tasks). Each change is computed by
//! `orchard-domain`'s transition function and written as a compare-and-set on the status
//! that was read, so concurrent requests (or servers) cannot both apply one.

use std::sync::Arc;

use orchard_blend::{Analysis, AnalyzeOptions, SceneInfo, ZipProject};
use orchard_domain::{ConfigError, FrameSet, JobEvent, JobStatus, PackagingStatus, RenderConfig, RequestedConfig};
use orchard_store::{FailedReason, Job, JobPatch, Retry, StartRender};
use serde_json::{Value, json};
use tracing::{Instrument, info, warn};
use uuid::Uuid;

use crate::blobs::keys;
use crate::clock::now_ms;
use crate::error::{Chain, Error, Result};
use crate::policy::{CANCEL_TRIES, VALIDATION_LEASE};
use crate::scheduler::{Verdict, first_chunk_size};
use crate::state::AppState;
use crate::video::Packaged;

async fn reload(state: &AppState, job_id: Uuid) -> Result<Job> {
    state.store.get_job_internal(job_id).await?.ok_or(Error::NotFound("job"))
}

/// The status `event` moves `from` to; a refusal is the job's status, named.
fn next(from: JobStatus, event: JobEvent, refusal: &str) -> Result<JobStatus> {
    from.apply(event).map_err(|_| Error::status(from, refusal))
}

/// `POST /validate`: `created → validating → validated` (or `failed` for an unreadable file).
/// Analysis is native and takes milliseconds, so it runs inside the request.
pub(crate) async fn validate(state: &AppState, job: Job) -> Result<Job> {
    const ONLY_FROM: &str = "validate is allowed only from created";
    let validating = next(job.status, JobEvent::ValidationStarted, ONLY_FROM)?;
    let now = now_ms();
    // Owned until then: should this server die mid-way, another takes the validation over.
    let patch = JobPatch { validating_until: Some(now + VALIDATION_LEASE.as_millis() as i64), ..Default::default() };
    if !state.store.transition_job(job.id, job.status, validating, patch, now).await? {
        let current = reload(state, job.id).await?;
        return Err(Error::status(current.status, ONLY_FROM));
    }
    // The analysis finishes even if the client hangs up: a job must not stay `validating`.
    let task_state = state.clone();
    let task_job = job.clone();
    tokio::spawn(async move { finish_validation(&task_state, &task_job, validating).await }.in_current_span())
        .await
        .map_err(anyhow::Error::from)??;
    reload(state, job.id).await
}

/// Analyses the scene of a `validating` job and moves it to `validated` or `failed`: the end
/// of a validation this server started, or took over from a server that died.
pub(crate) async fn finish_validation(state: &AppState, job: &Job, validating: JobStatus) -> Result<()> {
    let (to, patch) = match analyze(state, job).await {
        Ok(mut analysis) => {
            let id = Uuid::now_v7();
            analysis.id = Some(id.to_string());
            match unrenderable(&analysis) {
                // Kept with its analysis, which says the rest of what the file holds.
                Some(failed_reason) => (
                    validating.apply(JobEvent::Failed),
                    JobPatch {
                        analysis: Some((id, analysis)),
                        failed_reason: Some(failed_reason),
                        ..Default::default()
                    },
                ),
                None => (
                    validating.apply(JobEvent::ValidationSucceeded),
                    JobPatch { analysis: Some((id, analysis)), ..Default::default() },
                ),
            }
        }
        Err(AnalyzeFailure::Unreadable(message)) => {
            info!(%message, "scene refused");
            let failed_reason = FailedReason { name: "unreadable_scene".into(), kind: "validation".into(), message };
            (validating.apply(JobEvent::Failed), JobPatch { failed_reason: Some(failed_reason), ..Default::default() })
        }
        Err(AnalyzeFailure::Internal(error)) => {
            // Put the job back so that the client can retry once storage works again.
            let back =
                state.store.transition_job(job.id, validating, JobStatus::Created, JobPatch::default(), now_ms());
            if let Err(rollback) = back.await {
                warn!(error = %Chain(&rollback), "the job stays validating: could not put it back to created");
            }
            return Err(Error::Internal(error));
        }
    };
    let to = to.map_err(anyhow::Error::from)?;
    state.store.transition_job(job.id, validating, to, patch, now_ms()).await?;
    state.notices.wake();
    Ok(())
}

/// Why a readable scene cannot render at all, found before any worker tries (and fails on
/// every one of them): the active scene has no camera.
fn unrenderable(analysis: &Analysis) -> Option<FailedReason> {
    let scene = active_scene(analysis)?;
    if scene.camera.is_some() {
        return None;
    }
    Some(FailedReason {
        name: "no_camera".into(),
        kind: "validation".into(),
        message: format!(
            "the scene {:?} has no active camera, so Blender would render nothing: set one (Scene properties › Camera), save, and upload again",
            scene.name
        ),
    })
}

enum AnalyzeFailure {
    /// The client's file: a clear message, and the job fails.
    Unreadable(String),
    /// Ours: storage or a worker thread failed.
    Internal(anyhow::Error),
}

async fn analyze(state: &AppState, job: &Job) -> Result<Analysis, AnalyzeFailure> {
    let internal = |e: anyhow::Error| AnalyzeFailure::Internal(e);
    let tmp_dir = state.config.tmp_dir();
    tokio::fs::create_dir_all(&tmp_dir).await.map_err(|e| internal(e.into()))?;
    let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|e| internal(e.into()))?;
    state.blobs.get_to_file(&job.object_key, tmp.path()).await.map_err(internal)?;
    let file_name = job.file_name.clone();
    let main_file = job.main_file.clone();
    let is_zip = job.file_type == "zip";
    let max_decompressed_bytes = state.config.max_analysis_bytes;
    // One of a few at once: each may hold up to max_decompressed_bytes in memory.
    let _turn = state.validations.acquire().await.map_err(|e| internal(e.into()))?;
    let result = tokio::task::spawn_blocking(move || {
        let opts = AnalyzeOptions { max_decompressed_bytes };
        if is_zip {
            ZipProject::open(tmp.path(), main_file.as_deref(), &opts)?.analyze(&file_name, &opts)
        } else {
            orchard_blend::analyze_path(tmp.path(), &file_name, &opts)
        }
    })
    .await
    .map_err(|e| internal(e.into()))?;
    result.map_err(|e| AnalyzeFailure::Unreadable(e.to_string()))
}

/// `POST /render`: `validated → booting`, with the final config and the tasks.
/// Returns the job and whether this was an idempotent replay.
pub(crate) async fn start_render(state: &AppState, job: Job, body: &Value) -> Result<(Job, bool)> {
    const ONLY_FROM: &str = "render is allowed only once the job is validated";
    let requested_value = match body {
        Value::Object(object) => object.get("requestedRenderConfig").cloned().unwrap_or(Value::Null),
        _ => return Err(Error::invalid("invalid_body", "the body must be {\"requestedRenderConfig\": {...}}")),
    };
    // The request is checked even when the render started: a replay answers only a request
    // that could have started it (a missing, empty or invalid config is refused either way).
    let requested = RequestedConfig::parse(&requested_value).map_err(config_error)?;
    if job.final_config.is_some() {
        return Ok((job, true));
    }
    if job.status != JobStatus::Validated {
        return Err(Error::status(job.status, ONLY_FROM));
    }
    let analysis = job.analysis.clone().ok_or_else(no_scene)?;
    let (detected, scene_frames) = detected_config(&analysis)?;
    let mut config = RenderConfig::overlay(&detected, &requested, &scene_frames).map_err(config_error)?;
    config.output_name = scene_output_name(&analysis);
    let frames = config
        .frames()
        .map_err(|e| config_error(ConfigError { field: "frameRanges".into(), reason: e.to_string() }))?;
    let limits = &state.config;
    let (width, height) = config.output_size();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels_per_frame {
        let what = format!("a frame of {width} × {height} ({pixels} pixels)");
        return Err(over_limit("maxPixelsPerFrame", limits.max_pixels_per_frame, &what, "resolutionPercentage"));
    }
    if frames.len() > limits.max_frames_per_job {
        let what = format!("{} frames", frames.len());
        return Err(over_limit("maxFramesPerJob", limits.max_frames_per_job as u64, &what, "frameRanges"));
    }
    let chunk_size = config.chunk_size.map_or_else(|| first_chunk_size(frames.len()), |it| it as usize);
    let chunks = frames.chunks(chunk_size);
    if chunks.len() > limits.max_tasks_per_job {
        let what = format!("{} tasks of {chunk_size} frames", chunks.len());
        return Err(over_limit("maxTasksPerJob", limits.max_tasks_per_job as u64, &what, "chunkSize"));
    }
    let priority = requested.priority.map(i64::from);
    let start = StartRender { requested_config: requested, final_config: config, chunks, priority };
    if state.store.start_render(job.id, start, now_ms()).await? {
        state.notices.wake();
        info!(frames = frames.len(), "render started");
        state.scheduler.work_arrived();
        // Say at once when no connected worker can take it.
        review(state, job.id).await?;
        return Ok((reload(state, job.id).await?, false));
    }
    // Another request started it meanwhile: that is a replay, anything else a refusal.
    let current = reload(state, job.id).await?;
    if current.final_config.is_some() {
        return Ok((current, true));
    }
    Err(Error::status(current.status, ONLY_FROM))
}

/// `POST /retry`: renders frames of a completed, failed or canceled job again, as new tasks
/// after the old ones (which keep their history): the frames named, or by default every frame
/// without an output. A new `requestedRenderConfig` may change the render (a fix for what
/// failed); frames already rendered are kept unless named.
pub(crate) async fn retry(
    state: &AppState,
    job: Job,
    frames: Option<&[String]>,
    requested: Option<&Value>,
) -> Result<Job> {
    const ONLY_FROM: &str = "retry is allowed only once a render completed, failed or was canceled";
    next(job.status, JobEvent::Retried, ONLY_FROM)?;
    if job.outputs_deleted_at.is_some() {
        let reason = "the job's files (its scene and frames) were deleted by retention: upload the scene again";
        return Err(Error::invalid("files_deleted", reason));
    }
    let Some(last) = job.final_config.clone() else {
        return Err(Error::status(job.status, "nothing was rendered: the job failed before its render started"));
    };
    let all = last.frames().map_err(|e| Error::Internal(anyhow::anyhow!("the job's own frames: {e}")))?;
    let configs = match requested {
        Some(value) => {
            let requested = RequestedConfig::parse(value).map_err(config_error)?;
            let analysis = job.analysis.clone().ok_or_else(no_scene)?;
            let (detected, _) = detected_config(&analysis)?;
            let mut config = RenderConfig::overlay(&detected, &requested, &all).map_err(config_error)?;
            config.output_name = scene_output_name(&analysis);
            Some((requested, config))
        }
        None => None,
    };
    let rendered: std::collections::BTreeSet<i32> = state
        .store
        .list_outputs(job.id)
        .await?
        .iter()
        .filter(|it| it.kind == "frame")
        .filter_map(|it| it.frame)
        .collect();
    let (to_render, redo) = match frames {
        Some(ranges) => {
            let asked = FrameSet::parse(ranges).map_err(|e| Error::field("invalid_frames", "frames", e.to_string()))?;
            // Both ascending: a binary search per frame asked.
            if let Some(stray) = asked.frames().iter().find(|it| all.frames().binary_search(it).is_err()) {
                return Err(Error::field(
                    "invalid_frames",
                    "frames",
                    format!("frame {stray} is not a frame of this job"),
                ));
            }
            let redo = asked.frames().iter().copied().filter(|it| rendered.contains(it)).collect();
            (asked.frames().to_vec(), redo)
        }
        None => (all.frames().iter().copied().filter(|it| !rendered.contains(it)).collect(), Vec::new()),
    };
    let Ok(to_render) = FrameSet::from_frames(to_render) else {
        return Err(Error::field(
            "nothing_to_retry",
            "frames",
            "every frame is rendered: name the frames to render again",
        ));
    };
    let chunk_size = configs
        .as_ref()
        .map_or(last.chunk_size, |(_, config)| config.chunk_size)
        .map_or_else(|| first_chunk_size(to_render.len()), |it| it as usize);
    let retry = Retry { chunks: to_render.chunks(chunk_size), redo, configs };
    let Some(dropped) = state.store.retry_render(job.id, job.status, retry, now_ms()).await? else {
        let current = reload(state, job.id).await?;
        return Err(Error::status(current.status, ONLY_FROM));
    };
    state.notices.wake();
    // Frames rendered again make another video.
    let old_video = state.store.packaging(job.id).await?.and_then(|it| Packaged::read(it.result.as_deref()));
    state.store.forget_packaging(job.id).await?;
    for key in dropped.into_iter().chain(old_video.map(|it| it.key)) {
        if let Err(error) = state.blobs.delete(&key).await {
            warn!(error = %Chain(error.as_ref()), key, "a replaced frame's file stays");
        }
    }
    info!(frames = to_render.len(), "job retried");
    state.scheduler.forget_job(job.id);
    state.scheduler.work_arrived();
    review(state, job.id).await?;
    reload(state, job.id).await
}

fn config_error(e: ConfigError) -> Error {
    Error::field("invalid_render_config", &e.field, e.reason)
}

/// A render over one of the server's limits: which (its flag's name), what was asked, and
/// the field of the request that would bring it within.
fn over_limit(limit: &str, max: u64, asked: &str, field: &str) -> Error {
    Error::Invalid {
        code: "limit_exceeded",
        message: format!("{asked} is over this farm's {limit} ({max}); change {field} or ask the operator"),
        details: Some(json!({ "limit": limit, "max": max, "field": field })),
    }
}

fn no_scene() -> Error {
    Error::invalid("no_scene", "the scene file has no scene to render")
}

/// The scene a job renders: the file's active one, else its first.
pub(crate) fn active_scene(analysis: &Analysis) -> Option<&SceneInfo> {
    let active = analysis.active_scene.as_deref();
    analysis.scenes.iter().find(|it| active == Some(it.name.as_str())).or_else(|| analysis.scenes.first())
}

/// The active scene's own name for its frames (`shot_####`), from its output path.
fn scene_output_name(analysis: &Analysis) -> Option<String> {
    orchard_domain::config::output_name(&active_scene(analysis)?.output_path)
}

/// The active scene's settings as a request, and its frame range.
fn detected_config(analysis: &Arc<Analysis>) -> Result<(RequestedConfig, FrameSet)> {
    let scene = active_scene(analysis).ok_or_else(no_scene)?;
    let mut detected = RequestedConfig::from(&scene.render_config);
    detected.fps = Some(scene.fps);
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
    let frames = FrameSet::from_scene_range(scene.frame_start, scene.frame_end, scene.frame_step)
        .map_err(|e| Error::invalid("invalid_scene_range", format!("the scene's frame range: {e}; set frameRanges")))?;
    Ok((detected, frames))
}

/// `POST /cancel`: any non-terminal status → `canceled`. Running tasks learn it at their
/// next heartbeat and stop Blender.
pub(crate) async fn cancel(state: &AppState, job: Job) -> Result<Job> {
    const ONLY_BEFORE: &str = "cancel is allowed only before a job completes, fails or is canceled";
    let mut current = job;
    // A status can change between the read and the write (a task starts); retry on the fresh one.
    for _ in 0..CANCEL_TRIES {
        next(current.status, JobEvent::Canceled, ONLY_BEFORE)?;
        if state.store.cancel_job(current.id, current.status, now_ms()).await? {
            state.notices.wake();
            info!("job canceled");
            return reload(state, current.id).await;
        }
        current = reload(state, current.id).await?;
    }
    Err(Error::Conflict { code: "busy", message: "the job kept changing; try again".into() })
}

/// `POST /suspend`: `booting | rendering → suspended`. No new task starts; running ones
/// finish, or with `requeue_running` go back to the queue at once (their workers learn it at
/// their next heartbeat).
pub(crate) async fn suspend(state: &AppState, job: Job, requeue_running: bool) -> Result<Job> {
    const ONLY_FROM: &str = "suspend is allowed only while the job is booting or rendering";
    let suspended = next(job.status, JobEvent::Suspended, ONLY_FROM)?;
    if !state.store.transition_job(job.id, job.status, suspended, JobPatch::default(), now_ms()).await? {
        let current = reload(state, job.id).await?;
        return Err(Error::status(current.status, ONLY_FROM));
    }
    state.notices.wake();
    state.scheduler.work_arrived();
    if requeue_running {
        let requeued = state.store.requeue_running(job.id).await?;
        info!(requeued, "job suspended, running tasks requeued");
    } else {
        info!("job suspended");
    }
    reload(state, job.id).await
}

/// `POST /resume`: `suspended → booting | rendering` where it was, or `finalizing` when its
/// running tasks finished every frame meanwhile.
pub(crate) async fn resume(state: &AppState, job: Job) -> Result<Job> {
    const ONLY_FROM: &str = "resume is allowed only for a suspended job";
    let event = if job.frames_done >= job.frames_total {
        JobEvent::AllTasksDone
    } else {
        JobEvent::Resumed { started: job.render_started_at.is_some() }
    };
    let resumed = next(job.status, event, ONLY_FROM)?;
    if !state.store.transition_job(job.id, job.status, resumed, JobPatch::default(), now_ms()).await? {
        let current = reload(state, job.id).await?;
        return Err(Error::status(current.status, ONLY_FROM));
    }
    state.notices.wake();
    info!(status = %resumed, "job resumed");
    if resumed == JobStatus::Finalizing {
        state.finalize_wakeup.notify_one();
    } else {
        state.scheduler.work_arrived();
    }
    reload(state, job.id).await
}

/// `PATCH /jobs/{id}` `{"priority"}`: claims read it from the next list of runnable jobs.
pub(crate) async fn set_priority(state: &AppState, job: Job, priority: u32) -> Result<Job> {
    if !state.store.set_priority(job.id, i64::from(priority), now_ms()).await? {
        return Err(Error::NotFound("job"));
    }
    info!(priority, "priority set");
    state.scheduler.work_arrived();
    reload(state, job.id).await
}

/// `DELETE /jobs/{id}`: cancels the job if it is not finished, then removes its files and
/// records. Files go first: a failure there leaves the job, to delete again.
pub(crate) async fn delete(state: &AppState, job: Job) -> Result<()> {
    let job = if job.status.is_terminal() { job } else { cancel(state, job).await? };
    state.blobs.delete_prefix(&keys::job_folder(job.id)).await?;
    state.blobs.delete(&job.object_key).await?;
    if !state.store.delete_job(job.id).await? {
        let current = reload(state, job.id).await?;
        return Err(Error::status(current.status, "the job changed while it was being deleted; try again"));
    }
    // A preview made meanwhile (previews are made in the background) goes too.
    state.blobs.delete_prefix(&keys::job_folder(job.id)).await?;
    info!("job deleted");
    Ok(())
}

/// Applies what the scheduler finds of `job_id`: clears or sets its waiting reason, or fails
/// it when every capable worker is blocklisted from it.
pub(crate) async fn review(state: &AppState, job_id: Uuid) -> Result<()> {
    let Some(job) = state.store.get_job_internal(job_id).await? else { return Ok(()) };
    match state.scheduler.review(&job).await? {
        Verdict::Idle => {}
        Verdict::Progressing => state.store.set_waiting_reason(job.id, None).await?,
        Verdict::Waiting(reason) => state.store.set_waiting_reason(job.id, Some(&reason)).await?,
        Verdict::Fail(message) => {
            let failed = job.status.apply(JobEvent::Failed).map_err(anyhow::Error::from)?;
            let patch = JobPatch {
                failed_reason: Some(FailedReason { name: "task_failed".into(), kind: "render".into(), message }),
                ..Default::default()
            };
            if state.store.transition_job(job.id, job.status, failed, patch, now_ms()).await? {
                state.notices.wake();
                state.store.cancel_tasks(job.id).await?;
                info!("job failed: no worker left to try");
            }
        }
    }
    Ok(())
}

/// Packages a `finalizing` job's outputs and completes it. Safe to run on several servers:
/// the archive key is fixed and the final transition is a compare-and-set. A job that asked
/// for a video waits for its packaging task first (a worker with ffmpeg makes it).
pub(crate) async fn finalize(state: &AppState, job: &Job) -> anyhow::Result<()> {
    if job.final_config.as_ref().is_some_and(|it| it.video == Some(true)) && !video_settled(state, job).await? {
        // A worker makes it; the finalizer asks again (woken when it is done).
        return Ok(());
    }
    if job.waiting_reason.is_some() {
        state.store.set_waiting_reason(job.id, None).await?;
    }
    let outputs = state.store.list_outputs(job.id).await?;
    // The archives are made as they download (`archives`): nothing to copy here. The contact
    // sheet reads the frames it shows one at a time.
    let listed = one_file_per_frame(&outputs);
    let tmp_dir = state.config.tmp_dir();
    tokio::fs::create_dir_all(&tmp_dir).await?;
    let work = tempfile::tempdir_in(&tmp_dir)?;
    let names: Vec<(i32, String)> = listed.iter().map(|(frame, it)| (*frame, it.file_name.clone())).collect();
    let keys: Vec<String> = listed.iter().map(|(_, it)| it.object_key.clone()).collect();
    let sheet_path = work.path().join("contact-sheet.png");
    let (target, blobs, handle) = (sheet_path.clone(), state.blobs.clone(), tokio::runtime::Handle::current());
    let made = tokio::task::spawn_blocking(move || {
        let names: Vec<(i32, &str)> = names.iter().map(|(frame, name)| (*frame, name.as_str())).collect();
        let load =
            |index: usize| -> anyhow::Result<Vec<u8>> { Ok(handle.block_on(blobs.get_bytes(&keys[index]))?.to_vec()) };
        crate::contact_sheet::write(&names, load, &target)
    })
    .await?;
    match made {
        Ok(Some(_)) => {
            state.blobs.put_file(&keys::contact_sheet(job.id), &sheet_path).await?;
        }
        Ok(None) => {}
        Err(error) => warn!(error = %Chain(error.as_ref()), "no contact sheet"),
    }
    // The representative preview is the middle frame.
    let mut preview_key = None;
    if let Some((_, middle)) = listed.get(listed.len() / 2) {
        let local = work.path().join(&middle.file_name);
        state.blobs.get_to_file(&middle.object_key, &local).await?;
        match state.previews.make(job.id, &local).await {
            Ok(key) => preview_key = key,
            Err(error) => warn!(error = %Chain(error.as_ref()), "no final preview"),
        }
    }
    let completed = JobStatus::Finalizing.apply(JobEvent::Finalized)?;
    // Which Blenders rendered it, from its completed tasks (a retry's included).
    let tasks = state.store.list_tasks(job.id).await?;
    let versions: std::collections::BTreeSet<String> =
        tasks.iter().filter_map(|it| it.blender_version.clone()).collect();
    let patch = JobPatch { preview_key, blender_versions: Some(versions.into_iter().collect()), ..Default::default() };
    if state.store.transition_job(job.id, JobStatus::Finalizing, completed, patch, now_ms()).await? {
        state.notices.wake();
        info!(frames = listed.len(), "job completed");
        // Once per job: the server that completed it.
        if let Err(error) = crate::speeds::refine(state, &tasks).await {
            warn!(error = %Chain(&error), "speed factors not refined");
        }
    }
    Ok(())
}

/// A job's frames by number, one file each: a multiview render's first view (outputs are
/// listed by frame, then name: `_L` before `_R`).
pub(crate) fn one_file_per_frame(outputs: &[orchard_store::Output]) -> Vec<(i32, &orchard_store::Output)> {
    let mut frames: Vec<(i32, &orchard_store::Output)> =
        outputs.iter().filter(|it| it.kind == "frame").filter_map(|it| Some((it.frame?, it))).collect();
    frames.sort_by_key(|(frame, _)| *frame);
    frames.dedup_by_key(|(frame, _)| *frame);
    frames
}

/// Whether a job's video is made, or failed for good (the job completes without it). Queues
/// its packaging the first time; says on the job when no worker connected can make it.
async fn video_settled(state: &AppState, job: &Job) -> anyhow::Result<bool> {
    let packaging = match state.store.packaging(job.id).await? {
        Some(packaging) => packaging,
        None => {
            let queued = state.store.queue_packaging(job.id, now_ms()).await?;
            info!(packaging = %queued.id, "video queued");
            state.scheduler.packaging_queued();
            queued
        }
    };
    if matches!(packaging.status, PackagingStatus::Done | PackagingStatus::Failed) {
        return Ok(true);
    }
    let workers = state.scheduler.connected_workers().await?;
    let reason = (!workers.iter().any(|it| it.capabilities.ffmpeg.is_some() && !it.draining))
        .then_some("waiting for a worker with ffmpeg to make the video");
    if job.waiting_reason.as_deref() != reason {
        state.store.set_waiting_reason(job.id, reason).await?;
    }
    Ok(false)
}

/// Fails a job whose outputs could not be packaged.
pub(crate) async fn fail_finalizing(state: &AppState, job: &Job, error: &str) {
    let Ok(failed) = JobStatus::Finalizing.apply(JobEvent::Failed) else { return };
    let message = format!("packaging the outputs failed: {error}");
    let patch = JobPatch {
        failed_reason: Some(FailedReason { name: "finalize_failed".into(), kind: "internal".into(), message }),
        ..Default::default()
    };
    if let Err(error) = state.store.transition_job(job.id, JobStatus::Finalizing, failed, patch, now_ms()).await {
        warn!(error = %Chain(&error), "could not fail the job");
    }
    state.notices.wake();
}

/// Deletes the files of a finished job past its retention: first the record says they are gone
/// (clients see `isDeletedForClient` and empty downloads at once), then the files go (a crash
/// in between leaves files nothing refers to, never a link to nothing).
pub(crate) async fn expire(state: &AppState, job_id: Uuid) -> Result<()> {
    let Some(job) = state.store.get_job_internal(job_id).await? else { return Ok(()) };
    if !state.store.forget_outputs(job.id, now_ms()).await? {
        return Ok(());
    }
    state.blobs.delete_prefix(&keys::job_folder(job.id)).await?;
    state.blobs.delete(&job.object_key).await?;
    info!("files deleted: retention");
    Ok(())
}
