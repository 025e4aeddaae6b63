//! Orchard extensions for people operating the farm's workers: the list (any key; job ids only
//! for their own workspace, or an admin), drain and undrain (admin keys).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use orchard_api::{ErrorBody, Usage, WorkerList};
use tracing::{Instrument, info_span};

use crate::error::Error;
use crate::http::extract::ApiPath;
use crate::keys::Caller;
use crate::ops::farm as ops;
use crate::state::AppState;

/// Every registered worker: status (idle, busy, draining, offline), Blenders and capabilities,
/// speed factor, the task it renders, last seen.
#[utoipa::path(get, path = "/api/external/v1/workers", tag = "farm",
    responses((status = 200, description = "the workers", body = WorkerList)),
    security(("bearer" = [])))]
pub(crate) async fn list_workers(State(state): State<AppState>, caller: Caller) -> Result<Json<WorkerList>, Error> {
    Ok(Json(WorkerList { workers: ops::list(&state, &caller).await? }))
}

/// What each workspace used of the farm — jobs, frames, `normalizedSeconds` — most first (the
/// caller's workspace only, unless an admin key), and the frames finished in the last hour.
#[utoipa::path(get, path = "/api/external/v1/usage", tag = "farm",
    responses((status = 200, description = "the usage", body = Usage)),
    security(("bearer" = [])))]
pub(crate) async fn usage(State(state): State<AppState>, caller: Caller) -> Result<Json<Usage>, Error> {
    Ok(Json(ops::usage(&state, &caller).await?))
}

/// Drain a worker (by id, or by its name when no other has it): it finishes its task and takes
/// no new one (until `/undrain`). Admin keys.
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/drain", tag = "farm",
    params(("worker_id" = String, Path)),
    responses((status = 204, description = "drained"),
              (status = 403, description = "not an admin key", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn drain_worker(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(worker_id): ApiPath<String>,
) -> Result<StatusCode, Error> {
    drain(&state, &caller, &worker_id, true).await
}

/// Take a drained worker back. Admin keys.
#[utoipa::path(post, path = "/api/external/v1/workers/{worker_id}/undrain", tag = "farm",
    params(("worker_id" = String, Path)),
    responses((status = 204, description = "taking tasks again"),
              (status = 403, description = "not an admin key", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn undrain_worker(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(worker_id): ApiPath<String>,
) -> Result<StatusCode, Error> {
    drain(&state, &caller, &worker_id, false).await
}

async fn drain(state: &AppState, caller: &Caller, worker_id: &str, draining: bool) -> Result<StatusCode, Error> {
    if !caller.admin {
        return Err(Error::Forbidden {
            code: "admin_required",
            message: "draining workers needs an admin key (`orchard keys create --admin`)".into(),
        });
    }
    let span = info_span!("drain", worker = %worker_id);
    ops::set_draining(state, worker_id, draining).instrument(span).await?;
    Ok(StatusCode::NO_CONTENT)
}
