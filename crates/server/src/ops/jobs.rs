//! Jobs as a client sees them: creating one from an upload, and finding one's own.

use orchard_api::CreateJobRequest;
use orchard_store::{Job, NewJob};
use tracing::warn;
use uuid::Uuid;

use super::uploads::received_upload;
use crate::clock::now_ms;
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
