//! Job endpoints: create, list, get, validate, render, cancel.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orchard_api::{self as api, CreateJobRequest, ErrorBody, JobEnvelope, JobList, Pagination, RenderRequest};
use orchard_domain::JobStatus;
use orchard_store::Job;
use serde::Deserialize;
use tracing::{Instrument, info_span};

use crate::error::Error;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, BaseUrl, JobId, not_json, says_json};
use crate::http::wire;
use crate::keys::Caller;
use crate::lifecycle;
use crate::ops::jobs::owned;
use crate::policy::MAX_TASK_LOG;
use crate::state::AppState;

/// The header that marks a replayed, idempotent answer.
const REPLAY: &str = "x-idempotent-replay";

pub(super) fn job_response(state: &AppState, base: &str, job: &Job, replay: bool) -> Response {
    let body = Json(wire::job(state, base, job));
    let mut response = (StatusCode::OK, body).into_response();
    if replay {
        response.headers_mut().insert(REPLAY, HeaderValue::from_static("true"));
    }
    response
}

/// Create a job from an uploaded file. One slug makes one job: repeating the call returns
/// that job with `X-Idempotent-Replay: true`.
///
/// Renderjuice: https://www.renderjuice.com/docs/api-reference/jobs/create-job
#[utoipa::path(post, path = "/api/external/v1/jobs", tag = "jobs", request_body = CreateJobRequest,
    responses((status = 200, description = "the result", body = api::Job), (status = 400, description = "a malformed body, or `mainFile` on a `.blend` upload", body = ErrorBody),
              (status = 404, description = "no upload with this slug in the workspace", body = ErrorBody),
              (status = 409, description = "the upload's file never arrived, or its URL expired first", body = ErrorBody),
              (status = 401, description = "no API key, or an unknown or revoked one", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_job(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    ApiJson(body): ApiJson<CreateJobRequest>,
) -> Result<Response, Error> {
    let (job, created) = crate::ops::jobs::create(&state, &caller, &body).await?;
    Ok(job_response(&state, &base, &job, !created))
}

/// Query of `GET /jobs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// 1-based page (default 1). A page past the last is 404, naming the last page.
    #[param(minimum = 1, maximum = 4294967295_i64)]
    page: Option<i64>,
    /// Items per page, 1–100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<i64>,
    /// One status or a comma-separated list (`rendering,finalizing`).
    status: Option<String>,
    /// Orchard extension: only this workspace's jobs (an admin key's filter; a workspace key
    /// sees its own workspace's only, and nothing of another's).
    #[param(value_type = Option<String>, format = Uuid)]
    workspace: Option<uuid::Uuid>,
}

/// List the workspace's jobs, newest first (an admin key: every workspace's).
///
/// Renderjuice: https://www.renderjuice.com/docs/api-reference/jobs/list-jobs
#[utoipa::path(get, path = "/api/external/v1/jobs", tag = "jobs", params(ListQuery),
    responses((status = 200, description = "the result", body = JobList), (status = 400, description = "refused: the error body says why, naming the field", body = ErrorBody),
              (status = 404, description = "a page past the last (the error names the last page)", body = ErrorBody), (status = 401, description = "no API key, or an unknown or revoked one", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<JobList>, Error> {
    let page = query.page.unwrap_or(1);
    if page < 1 || page > u32::MAX as i64 {
        return Err(Error::invalid("invalid_page", "page must be 1 or more"));
    }
    let page_size = query.page_size.unwrap_or(10);
    if !(1..=100).contains(&page_size) {
        return Err(Error::invalid("invalid_page_size", "pageSize must be from 1 to 100"));
    }
    let mut statuses = Vec::new();
    if let Some(list) = &query.status {
        for name in list.split(',').map(str::trim).filter(|it| !it.is_empty()) {
            let status = JobStatus::parse(name)
                .ok_or_else(|| Error::invalid("invalid_status_filter", format!("{name:?} is not a job status")))?;
            statuses.push(status);
        }
    }
    let (jobs, total) = match (caller.admin, query.workspace) {
        (true, None) => state.store.list_all_jobs(&statuses, page as u32, page_size as u32).await?,
        (true, Some(workspace)) => state.store.list_jobs(workspace, &statuses, page as u32, page_size as u32).await?,
        (false, Some(workspace)) if workspace != caller.workspace_id => (Vec::new(), 0),
        (false, _) => state.store.list_jobs(caller.workspace_id, &statuses, page as u32, page_size as u32).await?,
    };
    let last_page = total.div_ceil(page_size as u64).max(1);
    if page as u64 > last_page {
        // The page does not exist (the query itself is well formed): 404, saying which does.
        return Err(Error::Absent {
            code: "page_not_found",
            message: format!("page {page} is past the last page ({last_page}) of {total} jobs"),
            details: Some(serde_json::json!({ "field": "page", "lastPage": last_page, "total": total })),
        });
    }
    Ok(Json(JobList {
        jobs: jobs.iter().map(|job| wire::job(&state, &base, job)).collect(),
        pagination: Pagination {
            page: page as u32,
            page_size: page_size as u32,
            total,
            total_pages: total.div_ceil(page_size as u64),
        },
    }))
}

/// Get one job.
///
/// Renderjuice: https://www.renderjuice.com/docs/api-reference/jobs/get-job
#[utoipa::path(get, path = "/api/external/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, description = "the result", body = JobEnvelope), (status = 401, description = "no API key, or an unknown or revoked one", body = ErrorBody), (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    JobId(id): JobId,
) -> Result<Json<JobEnvelope>, Error> {
    let job = owned(&state, &caller, id).await?;
    Ok(Json(JobEnvelope { data: wire::job(&state, &base, &job) }))
}

/// Validate: analyse the scene natively (milliseconds, no Blender). Only from `created`.
///
/// Renderjuice: https://www.renderjuice.com/docs/api/job-lifecycle
#[utoipa::path(post, path = "/api/external/v1/jobs/{id}/validate", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, description = "validated, or failed with failedReason for an unreadable file", body = api::Job),
              (status = 400, description = "not in created", body = ErrorBody), (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn validate_job(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    JobId(id): JobId,
) -> Result<Response, Error> {
    let job = owned(&state, &caller, id).await?;
    let job = lifecycle::validate(&state, job).instrument(info_span!("validate", job = %id)).await?;
    Ok(job_response(&state, &base, &job, false))
}

/// Start rendering. Only from `validated`; a repeated call is an idempotent replay.
///
/// Renderjuice: https://www.renderjuice.com/docs/api-reference/jobs/start-render
#[utoipa::path(post, path = "/api/external/v1/jobs/{id}/render", tag = "jobs", params(("id" = String, Path)),
    request_body = RenderRequest,
    responses((status = 200, description = "started; `X-Idempotent-Replay: true` when it already was", body = api::Job),
              (status = 400, description = "not validated, or a refused config (the field is named)", body = ErrorBody),
              (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn render_job(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    BaseUrl(base): BaseUrl,
    JobId(id): JobId,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, Error> {
    let job = owned(&state, &caller, id).await?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::TooLarge("the body is larger than 1 MiB".into()),
        _ => Error::invalid("invalid_body", rejection.body_text()),
    })?;
    // Parse after the ownership check so that another workspace learns nothing; an empty
    // body is the same as a missing config.
    let value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        // The one rule for JSON bodies: they say they are JSON.
        if !says_json(&headers) {
            return Err(not_json());
        }
        serde_json::from_slice(&body)
            .map_err(|e| Error::invalid("invalid_json", format!("the body is not JSON: {e}")))?
    };
    let value = if value.is_null() { serde_json::json!({}) } else { value };
    let (job, replay) =
        lifecycle::start_render(&state, job, &value).instrument(info_span!("render", job = %id)).await?;
    Ok(job_response(&state, &base, &job, replay))
}

/// Cancel a job in any non-terminal status; running Blender processes stop within seconds.
///
/// Renderjuice: https://www.renderjuice.com/docs/api/job-lifecycle
#[utoipa::path(post, path = "/api/external/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, description = "the result", body = api::Job), (status = 400, description = "already completed, failed or canceled", body = ErrorBody),
              (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    JobId(id): JobId,
) -> Result<Response, Error> {
    let job = owned(&state, &caller, id).await?;
    let job = lifecycle::cancel(&state, job).instrument(info_span!("cancel", job = %id)).await?;
    Ok(job_response(&state, &base, &job, false))
}

/// Orchard extension: the job's tasks, with the worker that ran each and the last failure's log.
#[utoipa::path(get, path = "/api/external/v1/jobs/{id}/tasks", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, description = "the result", body = Vec<api::TaskInfo>), (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    JobId(id): JobId,
) -> Result<Json<Vec<api::TaskInfo>>, Error> {
    let job = owned(&state, &caller, id).await?;
    Ok(Json(crate::ops::jobs::tasks(&state, &job).await?))
}

/// `?attempt=N` of a task's log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogQuery {
    /// The attempt (1 for the first); the latest that has a log when left out.
    attempt: Option<i64>,
}

/// Orchard extension: the Blender log of one attempt at a task, as text. It grows while the
/// attempt runs (the worker sends its output with each heartbeat); a long log keeps its end,
/// and says so on its first line and in `X-Orchard-Log-Truncated`.
#[utoipa::path(get, path = "/api/external/v1/jobs/{id}/tasks/{taskId}/log", tag = "jobs",
    params(("id" = String, Path), ("taskId" = String, Path), LogQuery),
    responses((status = 200, description = "the log", content_type = "text/plain", body = String,
                headers(("X-Orchard-Attempt" = i64, description = "the attempt shown"),
                        ("X-Orchard-Log-Truncated" = bool, description = "the beginning was dropped"))),
              (status = 404, description = "unknown job or task, or no log for that attempt (yet)", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn task_log(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, task_id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Response, Error> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| Error::NotFound("job"))?;
    let job = owned(&state, &caller, id).await?;
    let log = crate::ops::jobs::task_log(&state, &job, &task_id, query.attempt).await?;
    let text = if log.truncated {
        format!("[… the beginning was dropped: a log keeps its last {MAX_TASK_LOG} characters]\n{}", log.text)
    } else {
        log.text
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
        (HeaderName::from_static("x-orchard-attempt"), HeaderValue::from(log.attempt)),
        (HeaderName::from_static("x-orchard-log-truncated"), HeaderValue::from_static(bool_str(log.truncated))),
    ];
    Ok((headers, text).into_response())
}

fn bool_str(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}
