//! The worker protocol's packaging tasks: a `finalizing` job's video, made by a worker that
//! reports `ffmpeg` (servers never do heavy CPU work). Claimed before render tasks — a job
//! waiting for its video is a job nearly done —, leased and fenced by its attempt like a
//! task; the worker uploads the MP4 through a signed URL, then says what it made.

use orchard_api::{Assignment, FailRequest, FrameSource, HeartbeatRequest, PackagingAssignment, PackagingDone};
use orchard_domain::PackagingStatus;
use orchard_store::{Packaging, WorkerRecord};
use tracing::{Span, info, warn};
use uuid::Uuid;

use super::workers::{Scene, check_file_name, printable_lines, scene_of};
use crate::blobs::keys;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::policy::{ASSIGNED_URL_TTL, FAILURE_REPORT_CHARS, MAX_WORKER_TEXT, PACKAGING_ATTEMPTS};
use crate::scheduler::{blender_to_open, scene_ref};
use crate::state::AppState;
use crate::urls;
use crate::video::Packaged;

/// Whether `worker` should ask for a packaging task now: it can make videos, takes work, and
/// one may be due (the scheduler's hint spares other claims a write on the store).
pub(crate) fn may_claim(state: &AppState, worker: &WorkerRecord) -> bool {
    worker.capabilities.ffmpeg.is_some() && !worker.draining && state.scheduler.packaging_may_be_due()
}

/// The packaging task due for `worker` (one that [`may_claim`]), if there is one.
pub(crate) async fn claim_due(state: &AppState, worker: &WorkerRecord, base: &str) -> Result<Option<Assignment>> {
    let now = now_ms();
    let lease_until = now + state.config.lease_ttl.as_millis() as i64;
    let Some(packaging) = state.store.claim_packaging(&worker.id, now, lease_until).await? else {
        return Ok(None);
    };
    Span::current().record("job", tracing::field::display(packaging.job_id));
    // There may be more: the next claim looks again.
    state.scheduler.packaging_queued();
    let Some(job) = state.store.get_job_internal(packaging.job_id).await? else {
        return Ok(None);
    };
    let outputs = state.store.list_outputs(job.id).await?;
    let frames = crate::lifecycle::one_file_per_frame(&outputs);
    let config = job.final_config.as_ref();
    let fps = config.and_then(|it| it.fps).or_else(|| scene_fps(&job)).unwrap_or(24.0);
    let file_name = crate::video::file_name(config, &job.file_name);
    let key = keys::output(job.id, packaging.id, packaging.attempt, &file_name);
    let path = urls::output_path(job.id, packaging.id, packaging.attempt, &file_name);
    let upload_url = urls::put_url(state, base, &key, &path, ASSIGNED_URL_TTL, now).await?;
    let sources = frames
        .iter()
        .map(|(frame, output)| FrameSource {
            frame: *frame,
            file_name: output.file_name.clone(),
            url: urls::signed_file_url_for(state, base, &output.object_key, now, ASSIGNED_URL_TTL),
        })
        .collect();
    info!(packaging = %packaging.id, attempt = packaging.attempt, "video claimed");
    Ok(Some(Assignment {
        task_id: packaging.id.to_string(),
        attempt: packaging.attempt,
        job_id: job.id.to_string(),
        frames: frames.iter().map(|(frame, _)| *frame).collect(),
        scene: scene_ref(&job),
        config: serde_json::to_value(config).map_err(anyhow::Error::from)?,
        blender_version: blender_to_open(&job, &worker.capabilities),
        output_urls: Default::default(),
        packaging: Some(PackagingAssignment { frames: sources, fps, file_name, upload_url, sound: has_sound(&job) }),
    }))
}

/// Whether the job's file holds sounds (a sound strip's, a speaker's): only then does the
/// worker open the scene to mix them down.
fn has_sound(job: &orchard_store::Job) -> bool {
    job.analysis.as_deref().is_none_or(|it| {
        it.dependencies.iter().any(|dependency| dependency.kind == orchard_blend::DependencyKind::Sound)
    })
}

/// The frame rate of the job's active scene, from its analysis.
fn scene_fps(job: &orchard_store::Job) -> Option<f64> {
    let fps = crate::lifecycle::active_scene(job.analysis.as_deref()?)?.fps;
    Some(fps).filter(|it| it.is_finite() && *it > 0.0)
}

/// The packaging task `worker_id` holds with `attempt`; `lease_lost` otherwise.
async fn held(state: &AppState, worker_id: &str, id: &str, attempt: i64) -> Result<Packaging> {
    let id = Uuid::parse_str(id).map_err(|_| Error::NotFound("packaging task"))?;
    let packaging = state.store.packaging_by_id(id).await?.ok_or(Error::NotFound("packaging task"))?;
    let holds = packaging.attempt == attempt
        && packaging.status == PackagingStatus::Running
        && packaging.worker_id.as_deref() == Some(worker_id);
    if !holds {
        return Err(Error::lease_lost());
    }
    Span::current().record("job", tracing::field::display(packaging.job_id));
    Ok(packaging)
}

/// Extends the lease of the packaging task the worker holds.
pub(crate) async fn heartbeat(state: &AppState, worker_id: &str, id: &str, body: &HeartbeatRequest) -> Result<()> {
    let id = Uuid::parse_str(id).map_err(|_| Error::NotFound("packaging task"))?;
    let lease_until = now_ms() + state.config.lease_ttl.as_millis() as i64;
    if state.store.renew_packaging(id, body.attempt, worker_id, lease_until).await? {
        Ok(())
    } else {
        Err(Error::lease_lost())
    }
}

/// The scene of the job whose video the worker makes (Blender mixes its sound down).
pub(crate) async fn scene(state: &AppState, worker_id: &str, id: &str, attempt: i64) -> Result<Scene> {
    let packaging = held(state, worker_id, id, attempt).await?;
    scene_of(state, packaging.job_id).await
}

/// Records the video the worker uploaded, once checked: its file is there, with the size
/// and description the worker gives.
pub(crate) async fn complete(state: &AppState, worker_id: &str, id: &str, body: &PackagingDone) -> Result<()> {
    let video = &body.video;
    check_file_name(&video.file_name)?;
    let text_ok = |it: &str| !it.is_empty() && it.len() <= MAX_WORKER_TEXT && it.chars().all(|c| !c.is_control());
    if !text_ok(&video.codec) {
        return Err(Error::field("invalid_video", "video.codec", "must be 1 to 100 printable characters"));
    }
    if !(video.fps.is_finite() && video.fps > 0.0 && video.fps <= 1000.0) {
        return Err(Error::field("invalid_video", "video.fps", "must be a number above 0, at most 1000"));
    }
    if !(video.duration_seconds.is_finite() && video.duration_seconds >= 0.0) {
        return Err(Error::field("invalid_video", "video.durationSeconds", "must be a number of 0 or more"));
    }
    if video.width == 0 || video.height == 0 || video.width > 65_536 || video.height > 65_536 {
        return Err(Error::field("invalid_video", "video.width", "width and height must be 1 to 65536"));
    }
    let packaging = held(state, worker_id, id, body.attempt).await?;
    let key = keys::output(packaging.job_id, packaging.id, body.attempt, &video.file_name);
    let size =
        state.blobs.size(&key).await?.ok_or_else(|| {
            Error::invalid("output_missing", format!("the video {} was not uploaded", video.file_name))
        })?;
    if size != video.size {
        let reason = format!("the uploaded video has {size} bytes, the worker says {}", video.size);
        return Err(Error::invalid("output_mismatch", reason));
    }
    let result = serde_json::to_string(&Packaged { key, video: video.clone() }).map_err(anyhow::Error::from)?;
    if !state.store.finish_packaging(packaging.id, body.attempt, worker_id, &result, now_ms()).await? {
        return Err(Error::lease_lost());
    }
    info!(frames = video.frames, audio = video.audio, bytes = size, "video made");
    state.finalize_wakeup.notify_one();
    Ok(())
}

/// A failed attempt: another worker tries, until the job completes without its video.
pub(crate) async fn fail(state: &AppState, worker_id: &str, id: &str, body: &FailRequest) -> Result<()> {
    let packaging = held(state, worker_id, id, body.attempt).await?;
    let error: String = printable_lines(&body.error).chars().take(FAILURE_REPORT_CHARS).collect();
    let recorded =
        state.store.fail_packaging(packaging.id, body.attempt, worker_id, &error, PACKAGING_ATTEMPTS, now_ms()).await?;
    if !recorded {
        return Err(Error::lease_lost());
    }
    warn!(attempt = body.attempt, error = %error, "video attempt failed");
    state.scheduler.packaging_queued();
    // The finalizer decides whether the job goes on without it.
    state.finalize_wakeup.notify_one();
    Ok(())
}
