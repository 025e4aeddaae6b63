//! The worker protocol over HTTP (Orchard's addition under `/api/external/v1/workers`);
//! the operations are in `ops::workers`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchard_api::{
    Assignment, ClaimRequest, CompleteRequest, CompleteResponse, ErrorBody, FailRequest, HeartbeatRequest,
    LeaseResponse, OutputUrlsRequest, OutputUrlsResponse, PackagingDone, RegisterRequest, RegisterResponse,
};
use serde::Deserialize;
use tracing::{Instrument, info_span};
use uuid::Uuid;

use crate::error::Error;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, BaseUrl, SignedQuery, WorkerToken, check_signature};
use crate::ops::packaging;
use crate::ops::workers::{self as ops, Scene};
use crate::state::AppState;
use crate::urls::output_path;

/// The span of a worker's call about a task: every log line under it names the worker, the
/// task and (once known) the job.
fn task_span(worker_id: &str, task_id: &str) -> tracing::Span {
    info_span!("task", worker = %worker_id, task = %task_id, job = tracing::field::Empty)
}

/// Register (or re-register after a restart) with capabilities and a speed factor.
#[utoipa::path(post, path = "/api/external/v1/workers/register", tag = "workers", request_body = RegisterRequest,
    responses((status = 200, description = "the result", body = RegisterResponse), (status = 400, description = "refused: the error body says why, naming the field", body = ErrorBody), (status = 401, description = "no API key, or an unknown or revoked one", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn register_worker(
    State(state): State<AppState>,
    token: WorkerToken,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Json<RegisterResponse>, Error> {
    let span = info_span!("register", worker = %body.worker_id);
    Ok(Json(ops::register(&state, token.0, body).instrument(span).await?))
}

/// Claim the next task this worker can render; waits up to `waitSeconds` for one (204 if none).
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/claim", tag = "workers", request_body = ClaimRequest,
    params(("worker_id" = String, Path)),
    responses((status = 200, description = "the result", body = Assignment), (status = 204, description = "no work"), (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn claim_task(
    State(state): State<AppState>,
    token: WorkerToken,
    BaseUrl(base): BaseUrl,
    ApiPath(worker_id): ApiPath<String>,
    ApiJson(body): ApiJson<ClaimRequest>,
) -> Result<Response, Error> {
    let span = info_span!("claim", worker = %worker_id, job = tracing::field::Empty);
    async {
        let worker = ops::worker(&state, token.0, &worker_id).await?;
        Ok(match ops::claim(&state, &worker, &base, &body).await? {
            Some(assignment) => Json(assignment).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        })
    }
    .instrument(span)
    .await
}

/// Extend the lease of a running task.
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/tasks/{task_id}/heartbeat", tag = "workers",
    request_body = HeartbeatRequest, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, description = "the result", body = LeaseResponse), (status = 409, description = "lease lost: stop rendering", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    token: WorkerToken,
    ApiPath((worker_id, task_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<HeartbeatRequest>,
) -> Result<Json<LeaseResponse>, Error> {
    async {
        ops::worker(&state, token.0, &worker_id).await?;
        ops::heartbeat(&state, &worker_id, &task_id, &body).await?;
        Ok(Json(LeaseResponse { lease: "held".into() }))
    }
    .instrument(task_span(&worker_id, &task_id))
    .await
}

/// `?attempt=N` of task calls.
#[derive(Debug, Deserialize)]
pub(crate) struct AttemptQuery {
    attempt: i64,
}

/// The task's scene file, streamed.
#[utoipa::path(get, path = "/api/external/v1/workers/{worker_id}/tasks/{task_id}/scene", tag = "workers",
    params(("worker_id" = String, Path), ("task_id" = String, Path), ("attempt" = i64, Query)),
    responses((status = 200, description = "the .blend or .zip"), (status = 409, description = "in a state that forbids this", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn get_scene(
    State(state): State<AppState>,
    token: WorkerToken,
    ApiPath((worker_id, task_id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<AttemptQuery>,
) -> Result<Response, Error> {
    async {
        ops::worker(&state, token.0, &worker_id).await?;
        Ok(match ops::scene(&state, &worker_id, &task_id, query.attempt).await? {
            // From a bucket, the worker downloads straight from it.
            Scene::At(url) => axum::response::Redirect::temporary(&url).into_response(),
            Scene::Stream(stream) => Body::from_stream(stream).into_response(),
        })
    }
    .instrument(task_span(&worker_id, &task_id))
    .await
}

/// Signed PUT URLs for the task's output files.
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/tasks/{task_id}/outputs", tag = "workers",
    request_body = OutputUrlsRequest, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, description = "the result", body = OutputUrlsResponse), (status = 409, description = "in a state that forbids this", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn output_urls(
    State(state): State<AppState>,
    token: WorkerToken,
    BaseUrl(base): BaseUrl,
    ApiPath((worker_id, task_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<OutputUrlsRequest>,
) -> Result<Json<OutputUrlsResponse>, Error> {
    async {
        ops::worker(&state, token.0, &worker_id).await?;
        let urls = ops::output_urls(&state, &worker_id, &task_id, body.attempt, &body.files, &base).await?;
        Ok(Json(OutputUrlsResponse { urls }))
    }
    .instrument(task_span(&worker_id, &task_id))
    .await
}

/// Receive one output file behind a signed URL.
#[utoipa::path(put, path = "/blobs/outputs/{job_id}/{task_id}/{attempt}/{file}", tag = "workers",
    params(("job_id" = String, Path), ("task_id" = String, Path), ("attempt" = i64, Path), ("file" = String, Path),
           ("expires" = i64, Query), ("signature" = String, Query)),
    responses((status = 200, description = "stored"),
              (status = 400, description = "not a plain file name, or the body broke off", body = ErrorBody),
              (status = 403, description = "the signed URL is wrong, incomplete or expired", body = ErrorBody),
              (status = 404, description = "ids in the path that are not ids", body = ErrorBody),
              (status = 413, description = "larger than the output limit", body = ErrorBody)))]
pub(crate) async fn put_output(
    State(state): State<AppState>,
    ApiPath((job_id, task_id, attempt, file)): ApiPath<(Uuid, Uuid, i64, String)>,
    query: SignedQuery,
    body: Body,
) -> Result<StatusCode, Error> {
    check_signature(&state, "PUT", &output_path(job_id, task_id, attempt, &file), &query)?;
    ops::receive_output(&state, (job_id, task_id, attempt), &file, body.into_data_stream()).await?;
    Ok(StatusCode::OK)
}

/// Every frame is uploaded: complete the task (the job finalizes with its last task).
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/tasks/{task_id}/complete", tag = "workers",
    request_body = CompleteRequest, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, description = "the result", body = CompleteResponse), (status = 400, description = "refused: the error body says why, naming the field", body = ErrorBody), (status = 409, description = "in a state that forbids this", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn complete_task(
    State(state): State<AppState>,
    token: WorkerToken,
    BaseUrl(base): BaseUrl,
    ApiPath((worker_id, task_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CompleteRequest>,
) -> Result<Json<CompleteResponse>, Error> {
    async {
        let worker = ops::worker(&state, token.0, &worker_id).await?;
        Ok(Json(ops::complete(&state, &worker, &task_id, body, &base).await?))
    }
    .instrument(task_span(&worker_id, &task_id))
    .await
}

/// The attempt failed: the task is requeued for another worker, or fails its job.
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/tasks/{task_id}/fail", tag = "workers",
    request_body = FailRequest, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, description = "the result", body = LeaseResponse), (status = 409, description = "in a state that forbids this", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn fail_task(
    State(state): State<AppState>,
    token: WorkerToken,
    ApiPath((worker_id, task_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<FailRequest>,
) -> Result<Json<LeaseResponse>, Error> {
    async {
        ops::worker(&state, token.0, &worker_id).await?;
        ops::fail(&state, &worker_id, &task_id, &body).await?;
        Ok(Json(LeaseResponse { lease: "released".into() }))
    }
    .instrument(task_span(&worker_id, &task_id))
    .await
}

/// Extend the lease of a packaging task (a job's video).
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/packaging/{task_id}/heartbeat", tag = "workers",
    request_body = HeartbeatRequest, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, description = "the result", body = LeaseResponse), (status = 409, description = "lease lost: stop packaging", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn packaging_heartbeat(
    State(state): State<AppState>,
    token: WorkerToken,
    ApiPath((worker_id, task_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<HeartbeatRequest>,
) -> Result<Json<LeaseResponse>, Error> {
    async {
        ops::worker(&state, token.0, &worker_id).await?;
        packaging::heartbeat(&state, &worker_id, &task_id, &body).await?;
        Ok(Json(LeaseResponse { lease: "held".into() }))
    }
    .instrument(task_span(&worker_id, &task_id))
    .await
}

/// The scene of the job whose video is made (Blender mixes its sound down), streamed.
#[utoipa::path(get, path = "/api/external/v1/workers/{worker_id}/packaging/{task_id}/scene", tag = "workers",
    params(("worker_id" = String, Path), ("task_id" = String, Path), ("attempt" = i64, Query)),
    responses((status = 200, description = "the .blend or .zip"), (status = 409, description = "in a state that forbids this", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn packaging_scene(
    State(state): State<AppState>,
    token: WorkerToken,
    ApiPath((worker_id, task_id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<AttemptQuery>,
) -> Result<Response, Error> {
    async {
        ops::worker(&state, token.0, &worker_id).await?;
        Ok(match packaging::scene(&state, &worker_id, &task_id, query.attempt).await? {
            Scene::At(url) => axum::response::Redirect::temporary(&url).into_response(),
            Scene::Stream(stream) => Body::from_stream(stream).into_response(),
        })
    }
    .instrument(task_span(&worker_id, &task_id))
    .await
}

/// The video is uploaded: record it (the job completes with it).
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/packaging/{task_id}/complete", tag = "workers",
    request_body = PackagingDone, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, description = "the result", body = LeaseResponse), (status = 400, description = "refused: the error body says why, naming the field", body = ErrorBody), (status = 409, description = "in a state that forbids this", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn packaging_complete(
    State(state): State<AppState>,
    token: WorkerToken,
    ApiPath((worker_id, task_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PackagingDone>,
) -> Result<Json<LeaseResponse>, Error> {
    async {
        ops::worker(&state, token.0, &worker_id).await?;
        packaging::complete(&state, &worker_id, &task_id, &body).await?;
        Ok(Json(LeaseResponse { lease: "released".into() }))
    }
    .instrument(task_span(&worker_id, &task_id))
    .await
}

/// The attempt at the video failed: another worker tries, until the job completes without it.
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/packaging/{task_id}/fail", tag = "workers",
    request_body = FailRequest, params(("worker_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, description = "the result", body = LeaseResponse), (status = 409, description = "in a state that forbids this", body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn packaging_fail(
    State(state): State<AppState>,
    token: WorkerToken,
    ApiPath((worker_id, task_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<FailRequest>,
) -> Result<Json<LeaseResponse>, Error> {
    async {
        ops::worker(&state, token.0, &worker_id).await?;
        packaging::fail(&state, &worker_id, &task_id, &body).await?;
        Ok(Json(LeaseResponse { lease: "released".into() }))
    }
    .instrument(task_span(&worker_id, &task_id))
    .await
}
