//! The worker protocol's operations: register, claim (long-polled), heartbeat, the scene,
//! output URLs and files, complete (with the next claim), fail. Every task call names
//! `(task, attempt)`: the attempt fences out a worker whose task was requeued and claimed
//! again (`lease_lost`).

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::Stream;
use orchard_api::{
    Assignment, ClaimRequest, CompleteRequest, CompleteResponse, FailRequest, HeartbeatRequest, RegisterRequest,
    RegisterResponse,
};
use orchard_domain::{FrameSet, TaskStatus};
use orchard_store::{
    Completion, FailOutcome, FrameFlag, Lease, LeaseState, NewOutput, OutputDetail, TaskDone, WorkerRecord,
};
use tracing::{Span, info};
use uuid::Uuid;

use super::write_error;
use crate::blobs::{Presign, keys};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::keys::key_hash;
use crate::lifecycle;
use crate::policy::{
    ASSIGNED_URL_TTL, CLAIM_RECHECK, FAILURE_REPORT_CHARS, MAX_CLAIM_WAIT, MAX_COMPOSITES_PER_TASK, MAX_CPU_THREADS,
    MAX_FAILING_WORKERS, MAX_LOG_CHUNK, MAX_NODE_NAME, MAX_RAM_GIB, MAX_RELATIVE_PATH, MAX_RENDER_SECONDS,
    MAX_SPEED_SPREAD, MAX_TASK_LOG, MAX_WORKER_LIST, MAX_WORKER_TEXT, SEEN_RESOLUTION_MS, SPEED_FACTORS,
    heartbeat_secs, output_url_ttl,
};
use crate::scheduler::Claimed;
use crate::state::AppState;
use crate::urls;

/// The id of an unrevoked worker token (remembered briefly).
pub(crate) async fn token_owner(state: &AppState, token: &str) -> Result<Uuid> {
    let hash = key_hash(token);
    if let Some(id) = state.presence.token(&hash) {
        return Ok(id);
    }
    let id =
        state.store.find_worker_token(&hash).await?.ok_or(Error::Unauthorized("unknown or revoked worker token"))?;
    state.presence.remember_token(&hash, id);
    Ok(id)
}

/// The registered worker `worker_id`, owned by `token_id`; notes that it was seen.
pub(crate) async fn worker(state: &AppState, token_id: Uuid, worker_id: &str) -> Result<WorkerRecord> {
    let worker = match state.presence.worker(worker_id) {
        Some(worker) => worker,
        None => {
            let worker = state.store.get_worker(worker_id).await?.ok_or(Error::NotFound("worker"))?;
            state.presence.remember_worker(worker.clone());
            worker
        }
    };
    if worker.token_id != token_id {
        return Err(Error::NotFound("worker"));
    }
    let now = now_ms();
    if now - worker.last_seen_at > SEEN_RESOLUTION_MS {
        state.store.touch_worker(worker_id, now).await?;
        state.presence.seen(worker_id, now);
    }
    Ok(worker)
}

/// A worker's preferred job, as it names it; anything that is not a job id prefers nothing.
fn preferred(job: Option<&str>) -> Option<Uuid> {
    job.and_then(|it| Uuid::parse_str(it).ok())
}

fn lease(task_id: &str, attempt: i64) -> Result<Lease> {
    Ok(Lease { task_id: Uuid::parse_str(task_id).map_err(|_| Error::NotFound("task"))?, attempt })
}

/// Registers (or re-registers after a restart) a worker of `token_id`.
pub(crate) async fn register(state: &AppState, token_id: Uuid, body: RegisterRequest) -> Result<RegisterResponse> {
    check_registration(&body)?;
    let existing = state.store.get_worker(&body.worker_id).await?;
    if let Some(existing) = &existing
        && existing.token_id != token_id
    {
        return Err(Error::Conflict {
            code: "worker_id_taken",
            message: "another token registered this workerId".into(),
        });
    }
    let now = now_ms();
    let record = WorkerRecord {
        id: body.worker_id.clone(),
        name: body.name.clone(),
        token_id,
        capabilities: body.capabilities,
        speed_factor: body.speed_factor,
        speed_measured: body.speed_factor,
        speed_spread: body.speed_spread,
        speed_observations: 0,
        registered_at: now,
        last_seen_at: now,
        // A drained worker stays drained across its restarts.
        draining: existing.is_some_and(|it| it.draining),
    };
    state.store.register_worker(&record).await?;
    // What the store kept: a worker back with the same measurement keeps its refined factor.
    let record = state.store.get_worker(&record.id).await?.unwrap_or(record);
    state.presence.remember_worker(record);
    state.scheduler.work_arrived();
    info!(name = %body.name, speed = body.speed_factor, "worker registered");
    let lease_ttl = state.config.lease_ttl.as_secs().max(1);
    Ok(RegisterResponse {
        worker_id: body.worker_id,
        lease_ttl_seconds: lease_ttl,
        heartbeat_seconds: heartbeat_secs(lease_ttl),
    })
}

/// Checks what a worker says of itself: every number finite and within reason, every version
/// a version, every list and text bounded. A worker's numbers end up in what clients read
/// (a speed factor of 1e308 made `normalizedSeconds` infinite, which JSON cannot carry).
fn check_registration(body: &RegisterRequest) -> Result<()> {
    let field = |field: &str, code: &'static str, reason: String| Error::field(code, field, reason);
    let text = |name: &str, value: &str, max: usize| {
        if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
            return Err(field(name, "invalid_worker", format!("must be 1 to {max} printable characters")));
        }
        Ok(())
    };
    text("workerId", &body.worker_id, MAX_WORKER_TEXT)?;
    text("name", &body.name, MAX_WORKER_TEXT)?;
    if !(body.speed_factor.is_finite() && SPEED_FACTORS.contains(&body.speed_factor)) {
        let reason = format!("must be a number from {} to {}", SPEED_FACTORS.start(), SPEED_FACTORS.end());
        return Err(field("speedFactor", "invalid_speed_factor", reason));
    }
    if let Some(spread) = body.speed_spread
        && !(spread.is_finite() && (0.0..=MAX_SPEED_SPREAD).contains(&spread))
    {
        let reason = format!("must be a number from 0 to {MAX_SPEED_SPREAD}");
        return Err(field("speedSpread", "invalid_speed_spread", reason));
    }
    let capabilities = &body.capabilities;
    if capabilities.blenders.is_empty() {
        return Err(Error::invalid("no_blender", "a worker must offer at least one Blender"));
    }
    if capabilities.blenders.len() > MAX_WORKER_LIST {
        return Err(field("capabilities.blenders", "invalid_worker", format!("at most {MAX_WORKER_LIST} Blenders")));
    }
    for (i, build) in capabilities.blenders.iter().enumerate() {
        if !is_version(&build.version) {
            let name = format!("capabilities.blenders[{i}].version");
            return Err(field(
                &name,
                "invalid_blender_version",
                format!("{:?} is not a version like 4.5.3", build.version),
            ));
        }
        let backends = format!("capabilities.blenders[{i}].gpuBackends");
        if build.gpu_backends.len() > MAX_WORKER_LIST {
            return Err(field(&backends, "invalid_worker", format!("at most {MAX_WORKER_LIST} backends")));
        }
        for backend in &build.gpu_backends {
            text(&backends, backend, MAX_WORKER_TEXT)?;
        }
    }
    if !(1..=MAX_CPU_THREADS).contains(&capabilities.cpu_threads) {
        let reason = format!("must be 1 to {MAX_CPU_THREADS}");
        return Err(field("capabilities.cpuThreads", "invalid_worker", reason));
    }
    if !(capabilities.ram_gib.is_finite() && (0.0..=MAX_RAM_GIB).contains(&capabilities.ram_gib)) {
        let reason = format!("must be a number from 0 to {MAX_RAM_GIB}");
        return Err(field("capabilities.ramGib", "invalid_worker", reason));
    }
    if capabilities.tags.len() > MAX_WORKER_LIST {
        return Err(field("capabilities.tags", "invalid_worker", format!("at most {MAX_WORKER_LIST} tags")));
    }
    for tag in &capabilities.tags {
        text("capabilities.tags", tag, MAX_WORKER_TEXT)?;
    }
    if let Some(ffmpeg) = &capabilities.ffmpeg {
        text("capabilities.ffmpeg", ffmpeg, MAX_WORKER_TEXT)?;
    }
    Ok(())
}

/// `4.5`, `3.4.1`, `5.0.0-alpha`: two or three numbers, then anything a build appends.
fn is_version(text: &str) -> bool {
    let numbers = text.split(['-', '+', ' ']).next().unwrap_or("");
    let parts: Vec<&str> = numbers.split('.').collect();
    text.chars().count() <= MAX_WORKER_TEXT
        && (2..=3).contains(&parts.len())
        && parts.iter().all(|it| !it.is_empty() && it.len() <= 4 && it.bytes().all(|b| b.is_ascii_digit()))
}

/// Claims the next task `worker` can render, waiting up to `waitSeconds` for one.
pub(crate) async fn claim(
    state: &AppState,
    worker: &WorkerRecord,
    base: &str,
    body: &ClaimRequest,
) -> Result<Option<Assignment>> {
    let prefer = preferred(body.prefer_job.as_deref());
    let wait = std::time::Duration::from_secs(body.wait_seconds).min(MAX_CLAIM_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    if worker.draining {
        // Nothing for a drained worker: it waits as for no work (no hot loop of claims).
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = state.shutdown.cancelled() => {}
        }
        return Ok(None);
    }
    loop {
        // Register interest before looking, so that work arriving in between still wakes us.
        let wakeup = state.scheduler.work_available();
        // A job waiting for its video is nearly done: its packaging goes first.
        if super::packaging::may_claim(state, worker)
            && let Some(packaging) = super::packaging::claim_due(state, worker, base).await?
        {
            return Ok(Some(packaging));
        }
        let looking = std::time::Instant::now();
        let claimed = state.scheduler.claim(worker, prefer).await?;
        state.metrics.claim_seconds.observe(looking.elapsed().as_secs_f64());
        if let Some(claimed) = claimed {
            return Ok(Some(assignment(state, base, claimed).await?));
        }
        if tokio::time::Instant::now() >= deadline || state.shutdown.is_cancelled() {
            return Ok(None);
        }
        // Another server may have queued work: look again now and then even without a wakeup.
        let recheck = deadline.min(tokio::time::Instant::now() + CLAIM_RECHECK);
        tokio::select! {
            _ = tokio::time::timeout_at(recheck, wakeup) => {}
            _ = state.shutdown.cancelled() => return Ok(None),
        }
    }
}

/// The task for the worker, with upload URLs for the file names its frames are expected under.
async fn assignment(state: &AppState, base: &str, claimed: Claimed) -> Result<Assignment> {
    let task = claimed.task;
    Span::current().record("job", tracing::field::display(task.job_id));
    let mut assignment = Assignment {
        task_id: task.lease.task_id.to_string(),
        attempt: task.lease.attempt,
        job_id: task.job_id.to_string(),
        frames: task.frames.frames().to_vec(),
        scene: claimed.scene,
        config: claimed.config,
        blender_version: Some(claimed.blender_version),
        output_urls: BTreeMap::new(),
        packaging: None,
    };
    if let Some(naming) = claimed.naming {
        let names = task.frames.frames().iter().map(|frame| naming.frame_file_name(*frame));
        let ids = (task.job_id, task.lease.task_id, task.lease.attempt);
        assignment.output_urls = upload_urls(state, base, ids, names, ASSIGNED_URL_TTL).await?;
    }
    Ok(assignment)
}

/// Signed PUT URLs for `files` of a task's attempt: into the bucket directly when there is
/// one, else through the server's signed route.
async fn upload_urls(
    state: &AppState,
    base: &str,
    (job_id, task_id, attempt): (Uuid, Uuid, i64),
    files: impl Iterator<Item = String>,
    ttl: std::time::Duration,
) -> Result<BTreeMap<String, String>> {
    let now = now_ms();
    let mut found = BTreeMap::new();
    for file in files {
        let key = keys::output(job_id, task_id, attempt, &file);
        let path = urls::output_path(job_id, task_id, attempt, &file);
        found.insert(file, urls::put_url(state, base, &key, &path, ttl, now).await?);
    }
    Ok(found)
}

/// Extends the lease of a running task, notes how far it is and appends Blender's output to
/// the attempt's log; `lease_lost` when the attempt no longer holds it.
pub(crate) async fn heartbeat(state: &AppState, worker_id: &str, task_id: &str, body: &HeartbeatRequest) -> Result<()> {
    let frame_progress = body.frame_progress.unwrap_or(0.0);
    if !(frame_progress.is_finite() && (0.0..=1.0).contains(&frame_progress)) {
        return Err(Error::field("invalid_frame_progress", "frameProgress", "must be a number from 0 to 1"));
    }
    let log = checked_log(body.log.as_deref())?;
    let lease = lease(task_id, body.attempt)?;
    let lease_ms = state.config.lease_ttl.as_millis() as i64;
    let frames_done = i64::try_from(body.frames_done).unwrap_or(i64::MAX);
    match state.store.heartbeat(&lease, lease_ms, now_ms(), frames_done, frame_progress).await? {
        LeaseState::Held => append_log(state, &lease, worker_id, log).await,
        LeaseState::Lost => Err(Error::lease_lost()),
    }
}

/// A worker's log chunk, within its bound, made `printable_lines`.
fn checked_log(log: Option<&str>) -> Result<Option<String>> {
    let Some(log) = log.filter(|it| !it.is_empty()) else { return Ok(None) };
    if log.chars().count() > MAX_LOG_CHUNK {
        let reason = format!("at most {MAX_LOG_CHUNK} characters per call");
        return Err(Error::field("log_too_long", "log", reason));
    }
    Ok(Some(printable_lines(log)))
}

/// Appends to the log of the attempt `worker_id` holds; `lease_lost` if it no longer does.
async fn append_log(state: &AppState, lease: &Lease, worker_id: &str, log: Option<String>) -> Result<()> {
    let Some(log) = log else { return Ok(()) };
    if state.store.append_task_log(lease, worker_id, &log, MAX_TASK_LOG, now_ms()).await? {
        Ok(())
    } else {
        Err(Error::lease_lost())
    }
}

/// A task a worker holds.
struct Held {
    id: Uuid,
    job_id: Uuid,
    frames: FrameSet,
}

/// The task, if `worker_id` holds it with `attempt`; `lease_lost` otherwise.
async fn held_task(state: &AppState, worker_id: &str, task_id: &str, attempt: i64) -> Result<Held> {
    let lease = lease(task_id, attempt)?;
    let task = state.store.get_task(lease.task_id).await?.ok_or(Error::NotFound("task"))?;
    let held =
        task.attempt == attempt && task.status == TaskStatus::Running && task.worker_id.as_deref() == Some(worker_id);
    if !held {
        return Err(Error::lease_lost());
    }
    Span::current().record("job", tracing::field::display(task.job_id));
    Ok(Held { id: task.id, job_id: task.job_id, frames: task.frames })
}

/// As [`held_task`], trusting a lease this server granted recently without reading the
/// database. For calls whose writes the attempt fences anyway: output URLs (per attempt) and
/// completion (the store completes only the attempt that holds the task).
async fn granted_task(state: &AppState, worker_id: &str, task_id: &str, attempt: i64) -> Result<Held> {
    let lease = lease(task_id, attempt)?;
    if let Some(granted) = state.scheduler.granted(lease.task_id, attempt, worker_id) {
        Span::current().record("job", tracing::field::display(granted.job_id));
        return Ok(Held { id: lease.task_id, job_id: granted.job_id, frames: granted.frames });
    }
    held_task(state, worker_id, task_id, attempt).await
}

/// Where a worker gets its task's scene.
pub(crate) enum Scene {
    /// A presigned URL at the bucket: the server carries no scene bytes.
    At(String),
    /// The file, streamed through this server.
    Stream(futures::stream::BoxStream<'static, std::result::Result<Bytes, object_store::Error>>),
}

/// The scene of a task the worker holds.
pub(crate) async fn scene(state: &AppState, worker_id: &str, task_id: &str, attempt: i64) -> Result<Scene> {
    let task = held_task(state, worker_id, task_id, attempt).await?;
    scene_of(state, task.job_id).await
}

/// The scene of a job, for a worker that holds one of its tasks.
pub(crate) async fn scene_of(state: &AppState, job_id: Uuid) -> Result<Scene> {
    let job = state.store.get_job_internal(job_id).await?.ok_or(Error::NotFound("job"))?;
    if let Some(url) = state.blobs.presigned_url(Presign::Get, &job.object_key, state.config.url_ttl).await? {
        return Ok(Scene::At(url));
    }
    let (_, stream) = state.blobs.get_stream(&job.object_key).await?.ok_or(Error::NotFound("scene"))?;
    Ok(Scene::Stream(futures::StreamExt::boxed(stream)))
}

/// A file name a worker may deliver: plain, no path, no leading dot.
pub(crate) fn check_file_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= orchard_api::limits::MAX_OUTPUT_FILE_NAME
        && name.chars().all(|it| it.is_ascii_alphanumeric() || matches!(it, '.' | '_' | '-'))
        && !name.starts_with('.');
    if !ok {
        return Err(Error::invalid("invalid_file_name", format!("{name:?} is not a plain output file name")));
    }
    Ok(())
}

/// Signed PUT URLs for more files of a task's attempt.
pub(crate) async fn output_urls(
    state: &AppState,
    worker_id: &str,
    task_id: &str,
    attempt: i64,
    files: &[String],
    base: &str,
) -> Result<BTreeMap<String, String>> {
    let task = granted_task(state, worker_id, task_id, attempt).await?;
    for file in files {
        check_file_name(file)?;
    }
    let ttl = output_url_ttl(state.config.lease_ttl);
    upload_urls(state, base, (task.job_id, task.id, attempt), files.iter().cloned(), ttl).await
}

/// Stores one output file behind a signed URL (its signature already checked).
pub(crate) async fn receive_output<S, E>(
    state: &AppState,
    (job_id, task_id, attempt): (Uuid, Uuid, i64),
    file: &str,
    body: S,
) -> Result<()>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    check_file_name(file)?;
    let key = keys::output(job_id, task_id, attempt, file);
    let body = super::non_empty(body).await?;
    state.blobs.put_stream(&key, body, state.config.max_upload_bytes).await.map_err(|e| write_error(e, "outputs"))?;
    Ok(())
}

/// Completes a task whose every frame is uploaded (the job finalizes with its last task) and,
/// with `claimNext`, hands out the worker's next task.
pub(crate) async fn complete(
    state: &AppState,
    worker: &WorkerRecord,
    task_id: &str,
    body: CompleteRequest,
    base: &str,
) -> Result<CompleteResponse> {
    if !(body.render_seconds.is_finite() && (0.0..=MAX_RENDER_SECONDS).contains(&body.render_seconds)) {
        let reason = format!("must be a number from 0 to {MAX_RENDER_SECONDS}");
        return Err(Error::field("invalid_render_seconds", "renderSeconds", reason));
    }
    if let Some(version) = &body.blender_version
        && !is_version(version)
    {
        let reason = format!("{version:?} is not a version like 4.5.3");
        return Err(Error::field("invalid_blender_version", "blenderVersion", reason));
    }
    let log = checked_log(body.log.as_deref())?;
    let task = granted_task(state, &worker.id, task_id, body.attempt).await?;
    // A multiview render delivers each frame once per view, one after the other.
    let mut delivered: Vec<i32> = body.frames.iter().map(|it| it.frame).collect();
    delivered.dedup();
    if delivered != task.frames.frames() {
        return Err(Error::invalid(
            "wrong_frames",
            format!("the task renders frames {:?}, the worker delivered {delivered:?}", task.frames.frames()),
        ));
    }
    let mut outputs = Vec::with_capacity(body.frames.len());
    let mut views = Vec::new();
    for frame in &body.frames {
        check_file_name(&frame.file_name)?;
        if !frame.view.is_empty() {
            if frame.view.chars().count() > MAX_NODE_NAME || frame.view.chars().any(char::is_control) {
                let reason = format!("must be at most {MAX_NODE_NAME} printable characters");
                return Err(Error::field("invalid_view", "frames.view", reason));
            }
            // What view a frame's file is: kept beside it, as compositor files' are.
            views.push(OutputDetail {
                file_name: frame.file_name.clone(),
                relative_path: frame.file_name.clone(),
                node_name: String::new(),
                view: frame.view.clone(),
            });
        }
        let key = keys::output(task.job_id, task.id, body.attempt, &frame.file_name);
        let size = state.blobs.size(&key).await?.ok_or_else(|| {
            Error::invalid("output_missing", format!("frame {} ({}) was not uploaded", frame.frame, frame.file_name))
        })?;
        outputs.push(NewOutput {
            kind: "frame".into(),
            frame: Some(frame.frame),
            file_name: frame.file_name.clone(),
            object_key: key,
            size: size as i64,
        });
    }
    // The preview shows the last frame's first view.
    let last_frame = task.frames.frames().last().copied();
    let last = outputs.iter().find(|it| it.frame == last_frame).map(|it| it.object_key.clone());
    let mut details = composites(state, &task, &body, &mut outputs).await?;
    details.extend(views);
    let done = TaskDone {
        outputs,
        render_seconds: body.render_seconds,
        speed_factor: worker.speed_factor,
        blender_version: body.blender_version.clone(),
    };
    let lease = lease(task_id, body.attempt)?;
    // The log's end is written before the completion, while the attempt still holds the task.
    append_log(state, &lease, &worker.id, log).await?;
    let mut flagged: Vec<(i32, FrameFlag)> = Vec::new();
    for frame in &body.frames {
        for (set, flag) in [(frame.blank, FrameFlag::Blank), (frame.non_finite, FrameFlag::NonFinite)] {
            if set && !flagged.contains(&(frame.frame, flag)) {
                flagged.push((frame.frame, flag));
            }
        }
    }
    // A frame rendered again had its flags cleared by the retry: only news is written.
    if !flagged.is_empty() {
        state.store.judge_frames(task.job_id, task.frames.frames(), &flagged).await?;
    }
    state.store.record_output_details(task.job_id, &details).await?;
    // A drained worker finishes what it holds and takes nothing more. A job's video goes before
    // more frames: when one may be due, the next task is claimed once the completion holds.
    let claim_next =
        body.claim_next.as_ref().filter(|_| !worker.draining).map(|it| preferred(it.prefer_job.as_deref()));
    let video_first = claim_next.is_some() && super::packaging::may_claim(state, worker);
    let with_completion = claim_next.filter(|_| !video_first);
    let (outcome, next) = state.scheduler.complete(worker, &lease, done, with_completion).await?;
    if outcome == Completion::Lost {
        return Err(Error::lease_lost());
    }
    state.metrics.frames_rendered.inc_by(task.frames.len() as u64);
    state.notices.frames_done(&state.store, task.job_id, outcome == Completion::JobFinished);
    if let Some(key) = last {
        state.previews.frame_finished(task.job_id, &key);
    }
    state.scheduler.adapt_chunks(task.job_id, body.render_seconds, task.frames.len()).await;
    if outcome == Completion::JobFinished {
        state.finalize_wakeup.notify_one();
    }
    let next = match (next, claim_next) {
        (Some(next), _) => Some(assignment(state, base, next).await?),
        (None, Some(prefer)) if video_first => match super::packaging::claim_due(state, worker, base).await? {
            Some(video) => Some(video),
            None => match state.scheduler.claim(worker, prefer).await? {
                Some(claimed) => Some(assignment(state, base, claimed).await?),
                None => None,
            },
        },
        (None, _) => None,
    };
    Ok(CompleteResponse { lease: "held".into(), next })
}

/// The compositor files a completion delivers, checked (each uploaded, of the task's frames,
/// its path relative and inside its node's folder): added to `outputs`, their details returned.
async fn composites(
    state: &AppState,
    task: &Held,
    body: &CompleteRequest,
    outputs: &mut Vec<NewOutput>,
) -> Result<Vec<OutputDetail>> {
    if body.composites.len() > MAX_COMPOSITES_PER_TASK {
        let reason = format!("at most {MAX_COMPOSITES_PER_TASK} compositor files per task");
        return Err(Error::field("too_many_composites", "composites", reason));
    }
    let mut details = Vec::with_capacity(body.composites.len());
    for composite in &body.composites {
        check_file_name(&composite.file_name)?;
        if !task.frames.frames().contains(&composite.frame) {
            let reason = format!("frame {} is not one of the task's", composite.frame);
            return Err(Error::field("wrong_frames", "composites.frame", reason));
        }
        if !is_inside_path(&composite.relative_path) {
            let reason = format!("{:?} is not a relative path inside its node's folder", composite.relative_path);
            return Err(Error::field("invalid_relative_path", "composites.relativePath", reason));
        }
        let printable = |text: &str, max: usize| text.chars().count() <= max && !text.chars().any(char::is_control);
        if composite.node.trim().is_empty() || !printable(&composite.node, MAX_NODE_NAME) {
            let reason = format!("must be 1 to {MAX_NODE_NAME} printable characters");
            return Err(Error::field("invalid_node", "composites.node", reason));
        }
        if !printable(&composite.view, MAX_NODE_NAME) {
            let reason = format!("must be at most {MAX_NODE_NAME} printable characters");
            return Err(Error::field("invalid_view", "composites.view", reason));
        }
        let key = keys::output(task.job_id, task.id, body.attempt, &composite.file_name);
        let size = state.blobs.size(&key).await?.ok_or_else(|| {
            Error::invalid(
                "output_missing",
                format!("{} ({}) was not uploaded", composite.relative_path, composite.file_name),
            )
        })?;
        outputs.push(NewOutput {
            kind: "composite".into(),
            frame: Some(composite.frame),
            file_name: composite.file_name.clone(),
            object_key: key,
            size: size as i64,
        });
        details.push(OutputDetail {
            file_name: composite.file_name.clone(),
            relative_path: composite.relative_path.clone(),
            node_name: composite.node.clone(),
            view: composite.view.clone(),
        });
    }
    Ok(details)
}

/// A `/`-separated relative path that stays inside its folder: no root, no `..`, no empty or
/// `.` segment, no backslash or control character, within [`MAX_RELATIVE_PATH`].
fn is_inside_path(path: &str) -> bool {
    !path.is_empty()
        && path.chars().count() <= MAX_RELATIVE_PATH
        && !path.chars().any(|it| it.is_control() || it == '\\')
        && path.split('/').all(|it| !it.is_empty() && it != "." && it != "..")
}

/// The attempt failed: the task is requeued for another worker, or fails its job.
pub(crate) async fn fail(state: &AppState, worker_id: &str, task_id: &str, body: &FailRequest) -> Result<()> {
    let log = checked_log(body.log.as_deref())?;
    let task = held_task(state, worker_id, task_id, body.attempt).await?;
    append_log(state, &lease(task_id, body.attempt)?, worker_id, log).await?;
    // Name the frames: the job's failedReason may end up being this message.
    let error =
        format!("frames {}: {}", task.frames.to_ranges().join(", "), shorten(&body.error, FAILURE_REPORT_CHARS));
    state.scheduler.forget_granted(task.id);
    let lease = lease(task_id, body.attempt)?;
    match state.store.fail_task(&lease, worker_id, &error, MAX_FAILING_WORKERS, now_ms()).await? {
        FailOutcome::Lost => Err(Error::lease_lost()),
        FailOutcome::JobFailed => {
            state.notices.wake();
            Ok(())
        }
        FailOutcome::Requeued => {
            // The failing worker may now be blocklisted; if no one else can take the job, say so now.
            lifecycle::review(state, task.job_id).await?;
            state.scheduler.work_arrived();
            Ok(())
        }
    }
}

/// `text` without control characters but line breaks and tabs (PostgreSQL text cannot hold a
/// NUL; a terminal must not take escapes from a worker's report).
pub(crate) fn printable_lines(text: &str) -> String {
    text.chars().filter(|it| !it.is_control() || matches!(it, '\n' | '\t')).collect()
}

/// `text` cut to about `max` characters: a failure report says what went wrong first and
/// ends with Blender's log, so the middle is what goes; made `printable_lines`.
fn shorten(text: &str, max: usize) -> String {
    let text = printable_lines(text);
    let n = text.chars().count();
    if n <= max {
        return text;
    }
    let head: String = text.chars().take(max / 4).collect();
    let tail: String = text.chars().skip(n - (max - max / 4)).collect();
    format!("{head}\n…\n{tail}")
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn versions_are_two_or_three_numbers_and_what_a_build_appends() {
        for good in ["4.5", "3.4.1", "5.0.0-alpha", "4.2.10 LTS"] {
            assert!(super::is_version(good), "{good}");
        }
        for bad in ["abc", "4", "4.", ".5", "4.5.1.2", "4.x", "", "99999.1"] {
            assert!(!super::is_version(bad), "{bad}");
        }
    }

    #[test]
    fn failure_messages_keep_their_reason_and_their_log_tail() {
        assert_eq!(shorten("ab", 3), "ab");
        assert_eq!(shorten("a\0b\u{1b}[0m\nc\td", 100), "ab[0m\nc\td", "control characters go, lines stay");
        assert_eq!(shorten("reason: the middle of a long log ends here", 8), "re\n…\ns here");
        assert_eq!(shorten("éééééééé", 4), "é\n…\nééé");
    }
}
