//! The worker protocol (Orchard's addition under `/api/external/v1/workers`): register,
//! claim with long-poll, heartbeat, fetch the scene, upload outputs through signed URLs,
//! complete or fail. Every task call names `(task, attempt)`: the attempt fences out a
//! worker whose task was requeued and claimed again (409 `lease_lost`).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use orchard_api::{
    Assignment, ClaimRequest, CompleteRequest, CompleteResponse, ErrorBody, FailRequest, HeartbeatRequest,
    LeaseResponse, OutputUrlsRequest, OutputUrlsResponse, RegisterRequest, RegisterResponse,
};
use orchard_store::{Completion, FailOutcome, Lease, LeaseState, NewOutput, NextClaim, TaskDone, WorkerRecord};
use serde::Deserialize;
use uuid::Uuid;

use crate::blobs::{Presign, WriteError};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, key_hash};
use crate::http::uploads::{SignedQuery, check_signature};
use crate::http::urls::base_url;
use crate::scheduler;
use crate::state::{AppState, now_ms};

/// Longest a claim waits for work.
const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);

/// The worker token of the request.
pub struct WorkerToken(pub Uuid);

impl FromRequestParts<AppState> for WorkerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<WorkerToken, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|it| it.to_str().ok())
            .and_then(|it| it.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized("worker calls need `Authorization: Bearer OW-…`"))?;
        if !token.starts_with("OW-") {
            return Err(ApiError::Unauthorized(
                "worker tokens start with OW- (create one with `orchard workers token create`)",
            ));
        }
        let hash = key_hash(token);
        if let Some(id) = state.presence.token(&hash) {
            return Ok(WorkerToken(id));
        }
        let id = state
            .store
            .find_worker_token(&hash)
            .await?
            .ok_or(ApiError::Unauthorized("unknown or revoked worker token"))?;
        state.presence.remember_token(&hash, id);
        Ok(WorkerToken(id))
    }
}

/// The registered worker named in the path, owned by the request's token.
async fn worker(state: &AppState, token: &WorkerToken, worker_id: &str) -> Result<WorkerRecord, ApiError> {
    let worker = match state.presence.worker(worker_id) {
        Some(worker) => worker,
        None => {
            let worker = state.store.get_worker(worker_id).await?.ok_or(ApiError::NotFound("worker"))?;
            state.presence.remember_worker(worker.clone());
            worker
        }
    };
    if worker.token_id != token.0 {
        return Err(ApiError::NotFound("worker"));
    }
    // "Seen" needs no better than seconds; skipping the write keeps busy workers off the
    // database's single writer.
    let now = now_ms();
    if now - worker.last_seen_at > 5_000 {
        state.store.touch_worker(worker_id, now).await?;
        state.presence.seen(worker_id, now);
    }
    Ok(worker)
}

fn lease(task_id: &str, attempt: i64) -> Result<Lease, ApiError> {
    Ok(Lease { task_id: Uuid::parse_str(task_id).map_err(|_| ApiError::NotFound("task"))?, attempt })
}

fn lease_lost() -> ApiError {
    ApiError::Conflict {
        code: "lease_lost",
        message: "this attempt no longer holds the task (canceled, or requeued after its lease expired)".into(),
    }
}

/// Register (or re-register after a restart) with capabilities and a speed factor.
#[utoipa::path(post, path = "/api/external/v1/workers/register", tag = "workers", request_body = RegisterRequest,
    responses((status = 200, body = RegisterResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("worker_token" = [])))]
pub async fn register_worker(
    State(state): State<AppState>,
    token: WorkerToken,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Json<RegisterResponse>, ApiError> {
    if body.worker_id.trim().is_empty() || body.worker_id.len() > 100 {
        return Err(ApiError::bad_request("invalid_worker_id", "workerId must be 1 to 100 characters"));
    }
    if body.capabilities.blenders.is_empty() {
        return Err(ApiError::bad_request("no_blender", "a worker must offer at least one Blender"));
    }
    if !(body.speed_factor.is_finite() && body.speed_factor > 0.0) {
        return Err(ApiError::bad_request("invalid_speed_factor", "speedFactor must be a positive number"));
    }
    if let Some(existing) = state.store.get_worker(&body.worker_id).await?
        && existing.token_id != token.0
    {
        return Err(ApiError::Conflict {
            code: "worker_id_taken",
            message: "another token registered this workerId".into(),
        });
    }
    let now = now_ms();
    let record = WorkerRecord {
        id: body.worker_id.clone(),
        name: body.name.clone(),
        token_id: token.0,
        capabilities: serde_json::to_value(&body.capabilities).map_err(|e| ApiError::Internal(e.into()))?,
        speed_factor: body.speed_factor,
        registered_at: now,
        last_seen_at: now,
    };
    state.store.register_worker(&record).await?;
    state.presence.remember_worker(record);
    state.work_arrived();
    tracing::info!(worker = %body.worker_id, name = %body.name, speed = body.speed_factor, "worker registered");
    let lease_ttl = state.config.lease_ttl.as_secs().max(1);
    Ok(Json(RegisterResponse {
        worker_id: body.worker_id,
        lease_ttl_seconds: lease_ttl,
        heartbeat_seconds: (lease_ttl / 6).clamp(1, 10),
    }))
}

/// Claim the next task this worker can render; waits up to `waitSeconds` for one (204 if none).
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/claim", tag = "workers", request_body = ClaimRequest,
    params(("worker_id" = String, Path)),
    responses((status = 200, body = Assignment), (status = 204, description = "no work"), (status = 404, body = ErrorBody)),
    security(("worker_token" = [])))]
pub async fn claim_task(
    State(state): State<AppState>,
    token: WorkerToken,
    headers: HeaderMap,
    Path(worker_id): Path<String>,
    ApiJson(body): ApiJson<ClaimRequest>,
) -> Result<Response, ApiError> {
    let worker = worker(&state, &token, &worker_id).await?;
    let prefer = body.prefer_job.as_deref().and_then(|it| Uuid::parse_str(it).ok());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(body.wait_seconds).min(MAX_CLAIM_WAIT);
    loop {
        // Register interest before looking, so that work arriving in between still wakes us.
        let wakeup = state.work_available.notified();
        if let Some(assignment) = scheduler::claim_for(&state, &worker, prefer).await? {
            let assignment = with_output_urls(&state, &base_url(&state, &headers), assignment).await?;
            return Ok(Json(assignment).into_response());
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        // Another server may have queued work: look again every second even without a wakeup.
        let _ =
            tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + Duration::from_secs(1)), wakeup).await;
    }
}

/// Extend the lease of a running task.
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/tasks/{task_id}/heartbeat", tag = "workers",
    request_body = HeartbeatRequest, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = LeaseResponse), (status = 409, description = "lease lost: stop rendering", body = ErrorBody)),
    security(("worker_token" = [])))]
pub async fn heartbeat(
    State(state): State<AppState>,
    token: WorkerToken,
    Path((worker_id, task_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<HeartbeatRequest>,
) -> Result<Json<LeaseResponse>, ApiError> {
    worker(&state, &token, &worker_id).await?;
    let lease = lease(&task_id, body.attempt)?;
    let lease_ms = state.config.lease_ttl.as_millis() as i64;
    match state.store.heartbeat(&lease, lease_ms, now_ms()).await? {
        LeaseState::Held => Ok(Json(LeaseResponse { lease: "held".into() })),
        LeaseState::Lost => Err(lease_lost()),
    }
}

/// `?attempt=N` of task calls.
#[derive(Debug, Deserialize)]
pub struct AttemptQuery {
    attempt: i64,
}

/// The task's scene file, streamed.
#[utoipa::path(get, path = "/api/external/v1/workers/{worker_id}/tasks/{task_id}/scene", tag = "workers",
    params(("worker_id" = String, Path), ("task_id" = String, Path), ("attempt" = i64, Query)),
    responses((status = 200, description = "the .blend or .zip"), (status = 409, body = ErrorBody)),
    security(("worker_token" = [])))]
pub async fn get_scene(
    State(state): State<AppState>,
    token: WorkerToken,
    Path((worker_id, task_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<AttemptQuery>,
) -> Result<Response, ApiError> {
    worker(&state, &token, &worker_id).await?;
    let task = held_task(&state, &worker_id, &task_id, query.attempt).await?;
    let job = state.store.get_job_internal(task.job_id).await?.ok_or(ApiError::NotFound("job"))?;
    // From a bucket, the worker downloads straight from it: the server carries no scene bytes.
    if let Some(url) = state.blobs.presigned_url(Presign::Get, &job.object_key, state.config.url_ttl).await? {
        return Ok(axum::response::Redirect::temporary(&url).into_response());
    }
    let (_, stream) = state.blobs.get_stream(&job.object_key).await?.ok_or(ApiError::NotFound("scene"))?;
    Ok(Body::from_stream(stream).into_response())
}

/// The task, if `worker_id` holds it with `attempt`; 409 otherwise.
async fn held_task(state: &AppState, worker_id: &str, task_id: &str, attempt: i64) -> Result<Held, ApiError> {
    let lease = lease(task_id, attempt)?;
    let task = state.store.get_task(lease.task_id).await?.ok_or(ApiError::NotFound("task"))?;
    let held = task.attempt == attempt
        && task.status == orchard_domain::TaskStatus::Running
        && task.worker_id.as_deref() == Some(worker_id);
    if !held {
        return Err(lease_lost());
    }
    Ok(Held { id: task.id, job_id: task.job_id, frames: task.frames })
}

/// As [`held_task`], trusting a lease this server granted recently without reading the
/// database. For calls whose writes the attempt fences anyway: output URLs (per attempt) and
/// completion (the store completes only the attempt that holds the task).
async fn granted_task(state: &AppState, worker_id: &str, task_id: &str, attempt: i64) -> Result<Held, ApiError> {
    let lease = lease(task_id, attempt)?;
    if let Some(granted) = state.scheduler.granted(lease.task_id, attempt, worker_id, state.config.lease_ttl) {
        return Ok(Held { id: lease.task_id, job_id: granted.job_id, frames: granted.frames });
    }
    held_task(state, worker_id, task_id, attempt).await
}

/// A task a worker holds.
struct Held {
    id: Uuid,
    job_id: Uuid,
    frames: orchard_domain::FrameSet,
}

fn output_key(job_id: Uuid, task_id: Uuid, attempt: i64, file_name: &str) -> String {
    // Per attempt: a late upload from a fenced-out attempt can never overwrite the frames of
    // the attempt that completed. One folder per job: on a local disk a folder per task would
    // cost two more inodes per frame.
    format!("jobs/{job_id}/outputs/{task_id}.{attempt}.{file_name}")
}

fn check_file_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name.chars().all(|it| it.is_ascii_alphanumeric() || matches!(it, '.' | '_' | '-'))
        && !name.starts_with('.');
    if !ok {
        return Err(ApiError::bad_request("invalid_file_name", format!("{name:?} is not a plain output file name")));
    }
    Ok(())
}

/// Signed PUT URLs for the task's output files.
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/tasks/{task_id}/outputs", tag = "workers",
    request_body = OutputUrlsRequest, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = OutputUrlsResponse), (status = 409, body = ErrorBody)),
    security(("worker_token" = [])))]
pub async fn output_urls(
    State(state): State<AppState>,
    token: WorkerToken,
    headers: HeaderMap,
    Path((worker_id, task_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<OutputUrlsRequest>,
) -> Result<Json<OutputUrlsResponse>, ApiError> {
    worker(&state, &token, &worker_id).await?;
    let task = granted_task(&state, &worker_id, &task_id, body.attempt).await?;
    let base = base_url(&state, &headers);
    for file in &body.files {
        check_file_name(file)?;
    }
    let ttl = state.config.lease_ttl.max(Duration::from_secs(60)) * 10;
    let urls =
        upload_urls(&state, &base, (task.job_id, task.id), body.attempt, body.files.iter().cloned(), ttl).await?;
    Ok(Json(OutputUrlsResponse { urls }))
}

/// Signed PUT URLs for `files` of the task's attempt: into the bucket directly when there is
/// one, else through the server's signed route.
async fn upload_urls(
    state: &AppState,
    base: &str,
    (job_id, task_id): (Uuid, Uuid),
    attempt: i64,
    files: impl Iterator<Item = String>,
    ttl: Duration,
) -> Result<BTreeMap<String, String>, ApiError> {
    let expires = now_ms() / 1000 + ttl.as_secs() as i64;
    let mut urls = BTreeMap::new();
    for file in files {
        let key = output_key(job_id, task_id, attempt, &file);
        let url = match state.blobs.presigned_url(Presign::Put, &key, ttl).await? {
            Some(url) => url,
            None => {
                let path = format!("/blobs/outputs/{job_id}/{task_id}/{attempt}/{file}");
                format!("{base}{path}?{}", state.signer.sign("PUT", &path, expires))
            }
        };
        urls.insert(file, url);
    }
    Ok(urls)
}

/// How long the upload URLs handed out with a task work: long enough for slow frames; a
/// worker whose URLs expired asks for new ones.
const ASSIGNED_URL_TTL: Duration = Duration::from_secs(24 * 3600);

/// The task for the worker, with upload URLs for the file names its frames are expected under.
async fn with_output_urls(state: &AppState, base: &str, claimed: scheduler::Claimed) -> Result<Assignment, ApiError> {
    let mut assignment = claimed.assignment;
    let Some(extension) = claimed.extension else {
        return Ok(assignment);
    };
    let (task_id, job_id) = (claimed.task_id, claimed.job_id);
    let names = assignment.frames.iter().map(|frame| format!("{frame:04}.{extension}"));
    assignment.output_urls =
        upload_urls(state, base, (job_id, task_id), assignment.attempt, names, ASSIGNED_URL_TTL).await?;
    Ok(assignment)
}

/// Receive one output file behind a signed URL.
#[utoipa::path(put, path = "/blobs/outputs/{job_id}/{task_id}/{attempt}/{file}", tag = "workers",
    params(("job_id" = String, Path), ("task_id" = String, Path), ("attempt" = i64, Path), ("file" = String, Path),
           ("expires" = i64, Query), ("signature" = String, Query)),
    responses((status = 200, description = "stored"), (status = 403, body = ErrorBody)))]
pub async fn put_output(
    State(state): State<AppState>,
    Path((job_id, task_id, attempt, file)): Path<(Uuid, Uuid, i64, String)>,
    ApiQuery(query): ApiQuery<SignedQuery>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let path = format!("/blobs/outputs/{job_id}/{task_id}/{attempt}/{file}");
    check_signature(&state, "PUT", &path, &query)?;
    check_file_name(&file)?;
    state
        .blobs
        .put_stream(
            &output_key(job_id, task_id, attempt, &file),
            body.into_data_stream(),
            state.config.max_upload_bytes,
        )
        .await
        .map_err(|e| match e {
            WriteError::TooLarge { limit } => ApiError::TooLarge(format!("outputs are limited to {limit} bytes")),
            WriteError::Stream(message) => ApiError::bad_request("upload_interrupted", message),
            WriteError::Storage(cause) => ApiError::Internal(cause),
        })?;
    Ok(StatusCode::OK)
}

/// Every frame is uploaded: complete the task (the job finalizes with its last task).
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/tasks/{task_id}/complete", tag = "workers",
    request_body = CompleteRequest, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = CompleteResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("worker_token" = [])))]
pub async fn complete_task(
    State(state): State<AppState>,
    token: WorkerToken,
    headers: HeaderMap,
    Path((worker_id, task_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<CompleteRequest>,
) -> Result<Json<CompleteResponse>, ApiError> {
    let worker = worker(&state, &token, &worker_id).await?;
    let task = granted_task(&state, &worker_id, &task_id, body.attempt).await?;
    let delivered: Vec<i32> = body.frames.iter().map(|it| it.frame).collect();
    if delivered != task.frames.frames() {
        return Err(ApiError::bad_request(
            "wrong_frames",
            format!("the task renders frames {:?}, the worker delivered {delivered:?}", task.frames.frames()),
        ));
    }
    let mut outputs = Vec::with_capacity(body.frames.len());
    for frame in &body.frames {
        check_file_name(&frame.file_name)?;
        let key = output_key(task.job_id, task.id, body.attempt, &frame.file_name);
        let size = state.blobs.size(&key).await?.ok_or_else(|| {
            ApiError::bad_request(
                "output_missing",
                format!("frame {} ({}) was not uploaded", frame.frame, frame.file_name),
            )
        })?;
        outputs.push(NewOutput {
            kind: "frame".into(),
            frame: Some(frame.frame),
            file_name: frame.file_name.clone(),
            object_key: key,
            size: size as i64,
        });
    }
    let last = outputs.last().map(|it| it.object_key.clone());
    let done = TaskDone { outputs, render_seconds: body.render_seconds.max(0.0), speed_factor: worker.speed_factor };
    let lease = lease(&task_id, body.attempt)?;
    // With `claimNext`, the next claim goes to the store with the completion.
    let plan = match &body.claim_next {
        Some(claim) => {
            let prefer = claim.prefer_job.as_deref().and_then(|it| Uuid::parse_str(it).ok());
            scheduler::plan_claim(&state, &worker, prefer, false).await?
        }
        None => None,
    };
    let (outcome, claimed) = match &plan {
        Some(plan) => {
            let next = NextClaim { worker_id: &worker.id, job_ids: &plan.ids, claim: plan.options };
            state.store.complete_and_claim(&lease, done, now_ms(), next).await?
        }
        None => (state.store.complete_task(&lease, done, now_ms()).await?, None),
    };
    state.scheduler.forget_granted(task.id);
    if outcome == Completion::Lost {
        return Err(lease_lost());
    }
    if let Some(key) = last {
        scheduler::update_preview(&state, task.job_id, &key);
    }
    scheduler::adapt_chunks(&state, task.job_id, body.render_seconds, task.frames.len()).await;
    if outcome == Completion::JobFinished {
        state.finalize_wakeup.notify_one();
    }
    let next = match plan {
        Some(plan) => match scheduler::finish_claim(&state, &worker, plan, claimed)? {
            scheduler::Finished::Task(next) => Some(*next),
            scheduler::Finished::Nothing => None,
            scheduler::Finished::Retry => {
                let prefer = body.claim_next.as_ref().and_then(|it| it.prefer_job.as_deref()?.parse().ok());
                scheduler::claim_for(&state, &worker, prefer).await?
            }
        },
        None => None,
    };
    let next = match next {
        Some(next) => Some(with_output_urls(&state, &base_url(&state, &headers), next).await?),
        None => None,
    };
    Ok(Json(CompleteResponse { lease: "held".into(), next }))
}

/// The attempt failed: the task is requeued for another worker, or fails its job.
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/tasks/{task_id}/fail", tag = "workers",
    request_body = FailRequest, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = LeaseResponse), (status = 409, body = ErrorBody)),
    security(("worker_token" = [])))]
pub async fn fail_task(
    State(state): State<AppState>,
    token: WorkerToken,
    Path((worker_id, task_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<FailRequest>,
) -> Result<Json<LeaseResponse>, ApiError> {
    worker(&state, &token, &worker_id).await?;
    let task = held_task(&state, &worker_id, &task_id, body.attempt).await?;
    // Name the frames: the job's failedReason may end up being this message.
    let error = format!("frames {}: {}", task.frames.to_ranges().join(", "), scheduler::shorten(&body.error, 4000));
    let error = error.as_str();
    state.scheduler.forget_granted(task.id);
    let outcome = state
        .store
        .fail_task(&lease(&task_id, body.attempt)?, &worker_id, error, scheduler::MAX_FAILING_WORKERS, now_ms())
        .await?;
    match outcome {
        FailOutcome::Lost => Err(lease_lost()),
        FailOutcome::JobFailed => Ok(Json(LeaseResponse { lease: "released".into() })),
        FailOutcome::Requeued => {
            // The failing worker may now be blocklisted; if no one else can take the job, say so now.
            scheduler::review_job(&state, task.job_id).await?;
            state.work_arrived();
            Ok(Json(LeaseResponse { lease: "released".into() }))
        }
    }
}
