//! Jobs as a client sees them: creating one from an upload, and finding one's own.

use orchard_api::CreateJobRequest;
use orchard_domain::TaskStatus;
use orchard_store::{Job, NewJob};
use tracing::warn;
use uuid::Uuid;

use super::uploads::received_upload;
use crate::clock::{iso8601, now_ms};
use crate::error::{Chain, Error, Result};
use crate::keys::Caller;
use crate::state::AppState;

/// A job of the caller's workspace; another workspace's is a 404, as an unknown one is (an
/// admin key reaches every workspace's).
pub(crate) async fn owned(state: &AppState, caller: &Caller, job_id: Uuid) -> Result<Job> {
    let job = if caller.admin {
        // An admin key sees and steers every workspace's jobs.
        state.store.get_job_internal(job_id).await?
    } else {
        state.store.get_job(caller.workspace_id, job_id).await?
    };
    job.ok_or(Error::NotFound("job"))
}

/// Creates the job of an upload, with a copy of the scene of its own. One slug makes one job:
/// the second value says whether this call made it (false: a replay).
pub(crate) async fn create(state: &AppState, caller: &Caller, body: &CreateJobRequest) -> Result<(Job, bool)> {
    let unknown = || Error::Absent {
        code: "unknown_slug",
        message: "no upload with this slug: call POST /uploads first".into(),
        details: None,
    };
    if let Some(main) = &body.main_file
        && (main.is_empty() || main.chars().any(char::is_control))
    {
        return Err(Error::field(
            "invalid_main_file",
            "mainFile",
            "must be a path in the .zip, without control characters",
        ));
    }
    let upload = super::uploads::find(state, &body.slug).await?.ok_or_else(unknown)?;
    if upload.workspace_id != caller.workspace_id {
        return Err(unknown());
    }
    // With S3 the bytes went straight to the bucket: look there.
    let upload = received_upload(state, upload).await?;
    if upload.uploaded_at.is_none() {
        if now_ms() > upload.expires_at {
            return Err(Error::Conflict {
                code: "upload_expired",
                message: "the upload URL expired before a file arrived".into(),
            });
        }
        return Err(Error::Conflict {
            code: "upload_incomplete",
            message: "no file was uploaded to this slug yet: PUT it to uploadUrl".into(),
        });
    }
    if let Some(main) = &body.main_file
        && upload.file_type != "zip"
    {
        return Err(Error::invalid("invalid_main_file", format!("mainFile {main:?} applies to .zip uploads only")));
    }
    let original = crate::blobs::keys::upload(&upload.slug);
    let copy = upload.object_key.clone();
    let new = NewJob { id: Uuid::now_v7(), upload, main_file: body.main_file.clone() };
    let (job, created) = state.store.create_job(new, now_ms()).await?;
    // One stored copy per job: the job renders its own, and the upload can no longer change,
    // so the upload's file goes; a copy made by a request that lost the race goes too.
    let unused = if created { original } else { copy };
    if unused != job.object_key
        && let Err(error) = state.blobs.delete(&unused).await
    {
        warn!(key = %unused, error = %Chain(error.as_ref()), "an unused scene copy stays");
    }
    Ok((job, created))
}

/// A job's tasks as people see them: each with its worker's name, times, the Blender that
/// rendered it, and every failed attempt.
pub(crate) async fn tasks(state: &AppState, job: &Job) -> Result<Vec<orchard_api::TaskInfo>> {
    let tasks = state.store.list_tasks(job.id).await?;
    let failures = state.store.failed_attempts(job.id).await?;
    let names: std::collections::HashMap<String, String> =
        state.store.live_workers(0).await?.into_iter().map(|it| (it.id, it.name)).collect();
    let name = |id: &str| names.get(id).cloned();
    Ok(tasks
        .into_iter()
        .map(|task| orchard_api::TaskInfo {
            id: task.id.to_string(),
            seq: task.seq,
            frames: task.frames.to_ranges(),
            status: task.status.as_str().to_string(),
            attempt: task.attempt,
            failures: task.failures,
            worker_name: task.worker_id.as_deref().and_then(name),
            worker_id: task.worker_id,
            last_error: task.last_error,
            started_at: task.started_at.map(iso8601),
            finished_at: task.finished_at.map(iso8601),
            render_seconds: task.render_seconds,
            blender_version: task.blender_version,
            frames_done: if task.status == TaskStatus::Running { task.frames_done } else { 0 },
            frame_progress: (task.status == TaskStatus::Running).then_some(task.frame_progress),
            failed_attempts: failures
                .iter()
                .filter(|it| it.task_id == task.id)
                .map(|it| orchard_api::FailedAttemptInfo {
                    attempt: it.attempt,
                    worker_name: name(&it.worker_id),
                    worker_id: it.worker_id.clone(),
                    error: it.error.clone(),
                    at: iso8601(it.at),
                })
                .collect(),
        })
        .collect())
}

/// The Blender log of an attempt at one of `job`'s tasks (its latest attempt that has one when
/// `attempt` is not given): what the worker has sent so far while it runs.
pub(crate) async fn task_log(
    state: &AppState,
    job: &Job,
    task_id: &str,
    attempt: Option<i64>,
) -> Result<orchard_store::TaskLog> {
    let task_id = Uuid::parse_str(task_id).map_err(|_| Error::NotFound("task"))?;
    match state.store.get_task(task_id).await? {
        Some(task) if task.job_id == job.id => {}
        _ => return Err(Error::NotFound("task")),
    }
    state.store.task_log(task_id, attempt).await?.ok_or_else(|| Error::Absent {
        code: "no_log",
        message: match attempt {
            Some(n) => format!("attempt {n} of this task has no log (it never ran, or printed nothing yet)"),
            None => "this task has no log yet: no attempt has printed anything".into(),
        },
        details: None,
    })
}
