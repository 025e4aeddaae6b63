//! Orchard extensions for operating jobs: suspend, resume, priority, delete. Each answers the
//! bare job, like `/cancel`; a status that does not allow the action is the usual 400 naming it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use orchard_api::{self as api, ErrorBody, JobPatchRequest, RetryRequest, SuspendRequest};
use tracing::{Instrument, info_span};

use super::jobs::job_response;
use crate::error::Error;
use crate::http::extract::{ApiJson, BaseUrl, JobId, OptionalJson};
use crate::keys::Caller;
use crate::lifecycle;
use crate::ops::jobs::owned;
use crate::state::AppState;

/// Suspend a booting or rendering job: no new task starts. Running tasks finish, or go back to
/// the queue at once with `{"requeueRunning": true}`. The body is optional.
#[utoipa::path(post, path = "/api/external/v1/jobs/{id}/suspend", tag = "control", params(("id" = String, Path)),
    request_body(content = Option<SuspendRequest>, description = "optional"),
    responses((status = 200, description = "suspended", body = api::Job),
              (status = 400, description = "not booting or rendering (the error names the status)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn suspend_job(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    JobId(id): JobId,
    OptionalJson(body): OptionalJson<SuspendRequest>,
) -> Result<Response, Error> {
    let job = owned(&state, &caller, id).await?;
    let job =
        lifecycle::suspend(&state, job, body.requeue_running).instrument(info_span!("suspend", job = %id)).await?;
    Ok(job_response(&state, &base, &job, false))
}

/// Resume a suspended job where it was (or finalize it, when its running tasks finished
/// every frame meanwhile).
#[utoipa::path(post, path = "/api/external/v1/jobs/{id}/resume", tag = "control", params(("id" = String, Path)),
    responses((status = 200, description = "resumed", body = api::Job),
              (status = 400, description = "not suspended (the error names the status)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn resume_job(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    JobId(id): JobId,
) -> Result<Response, Error> {
    let job = owned(&state, &caller, id).await?;
    let job = lifecycle::resume(&state, job).instrument(info_span!("resume", job = %id)).await?;
    Ok(job_response(&state, &base, &job, false))
}

/// Render frames of a completed, failed or canceled job again, as new tasks after the old ones
/// (which keep their history): `frames` named, or every frame without an output; with a new
/// `requestedRenderConfig` to fix what failed. Frames already rendered are kept unless named.
/// The body is optional.
#[utoipa::path(post, path = "/api/external/v1/jobs/{id}/retry", tag = "control", params(("id" = String, Path)),
    request_body(content = Option<RetryRequest>, description = "optional"),
    responses((status = 200, description = "rendering again", body = api::Job),
              (status = 400, description = "not completed, failed or canceled (the error names the status), nothing to retry, or a frame or config refused by field", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn retry_job(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    JobId(id): JobId,
    OptionalJson(body): OptionalJson<RetryRequest>,
) -> Result<Response, Error> {
    let job = owned(&state, &caller, id).await?;
    let retried = lifecycle::retry(&state, job, body.frames.as_deref(), body.requested_render_config.as_ref());
    let job = retried.instrument(info_span!("retry", job = %id)).await?;
    Ok(job_response(&state, &base, &job, false))
}

/// Change a job's priority (0–100, 50 unless set; higher goes first), in any status.
#[utoipa::path(patch, path = "/api/external/v1/jobs/{id}", tag = "control", params(("id" = String, Path)),
    request_body = JobPatchRequest,
    responses((status = 200, description = "changed", body = api::Job)),
    security(("bearer" = [])))]
pub(crate) async fn patch_job(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    JobId(id): JobId,
    ApiJson(body): ApiJson<JobPatchRequest>,
) -> Result<Response, Error> {
    let (lowest, highest) = orchard_domain::config::PRIORITIES;
    if !(lowest..=highest).contains(&body.priority) {
        let reason = format!("must be a whole number from {lowest} to {highest}");
        return Err(Error::field("invalid_priority", "priority", reason));
    }
    let job = owned(&state, &caller, id).await?;
    let job = lifecycle::set_priority(&state, job, body.priority).instrument(info_span!("patch", job = %id)).await?;
    Ok(job_response(&state, &base, &job, false))
}

/// Delete a job: cancels it if it is not finished, removes its files (scene, frames, archive,
/// preview) and its records. Afterwards it is 404.
#[utoipa::path(delete, path = "/api/external/v1/jobs/{id}", tag = "control", params(("id" = String, Path)),
    responses((status = 204, description = "deleted")),
    security(("bearer" = [])))]
pub(crate) async fn delete_job(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
) -> Result<StatusCode, Error> {
    let job = owned(&state, &caller, id).await?;
    lifecycle::delete(&state, job).instrument(info_span!("delete", job = %id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
