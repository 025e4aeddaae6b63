//! Progress counters: one job, or every running job of the workspace.

use axum::Json;
use axum::extract::State;
use orchard_api::{ErrorBody, Progress};
use orchard_domain::JobStatus;
use orchard_store::Order;

use crate::error::Error;
use crate::http::extract::JobId;
use crate::http::wire;
use crate::keys::Caller;
use crate::ops::jobs::owned;
use crate::policy::MAX_RUNNING_REPORTED;
use crate::state::AppState;

/// Counters of one job: `[counters]` while booting, rendering or finalizing, `[]` otherwise.
///
/// Renderjuice: https://www.renderjuice.com/docs/api/job-lifecycle
#[utoipa::path(get, path = "/api/external/v1/jobs/{id}/progress", tag = "progress", params(("id" = String, Path)),
    responses((status = 200, description = "the result", body = Vec<Progress>), (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_job_progress(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
) -> Result<Json<Vec<Progress>>, Error> {
    let job = owned(&state, &caller, id).await?;
    if !job.status.is_in_progress() {
        return Ok(Json(Vec::new()));
    }
    Ok(Json(vec![wire::progress(&job)]))
}

/// Counters of every job of the workspace that is booting, rendering or finalizing.
///
/// Renderjuice: https://www.renderjuice.com/docs/api/job-lifecycle
#[utoipa::path(get, path = "/api/external/v1/jobs/progress", tag = "progress",
    responses((status = 200, description = "the result", body = Vec<Progress>), (status = 401, description = "no API key, or an unknown or revoked one", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_all_progress(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Progress>>, Error> {
    let running = [JobStatus::Booting, JobStatus::Rendering, JobStatus::Finalizing];
    let jobs = state
        .store
        .jobs_in_status(Some(caller.workspace_id), &running, Order::NewestFirst, MAX_RUNNING_REPORTED)
        .await?;
    Ok(Json(jobs.iter().map(wire::progress).collect()))
}
