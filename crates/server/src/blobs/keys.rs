//! Where each kind of file lives in blob storage: every key Orchard writes is made here.
//!
//! - `uploads/{slug}`: what the client PUT; `uploads/{slug}.parts/{n}`: its parts, waiting
//!   for the upload to complete (local storage; a bucket keeps parts itself).
//! - `scenes/{slug}/{copy}`: a job's own copy of its upload, which later PUTs cannot change.
//! - `jobs/{job}/outputs/{task}.{attempt}.{file}`: a task's files, per attempt, so that a
//!   late upload of a fenced-out attempt never overwrites the attempt that completed; one
//!   folder per job (a folder per task would cost a local disk two more inodes per frame).
//! - `jobs/{job}/preview.png`, `jobs/{job}/contact-sheet.png` (archives are made as they
//!   download, never stored).

use uuid::Uuid;

/// The file a client uploads to `slug`.
pub(crate) fn upload(slug: &str) -> String {
    format!("uploads/{slug}")
}

/// Part `number` of a multipart upload to `slug`, kept until the upload completes.
pub(crate) fn upload_part(slug: &str, number: u32) -> String {
    format!("uploads/{slug}.parts/{number:05}")
}

/// A fresh key for a job's own copy of the scene uploaded to `slug`: one per request, so that
/// concurrent requests each copy and the job that wins keeps its own.
pub(crate) fn scene_copy(slug: &str) -> String {
    format!("scenes/{slug}/{}", Uuid::now_v7().simple())
}

/// A file of a task's attempt.
pub(crate) fn output(job_id: Uuid, task_id: Uuid, attempt: i64, file_name: &str) -> String {
    format!("jobs/{job_id}/outputs/{task_id}.{attempt}.{file_name}")
}

/// Everything a job writes: its outputs, preview and archive (the scene copy is apart).
pub(crate) fn job_folder(job_id: Uuid) -> String {
    format!("jobs/{job_id}")
}

/// A job's preview image.
pub(crate) fn preview(job_id: Uuid) -> String {
    format!("jobs/{job_id}/preview.png")
}

/// A job's contact sheet: every frame's thumbnail in a grid.
pub(crate) fn contact_sheet(job_id: Uuid) -> String {
    format!("jobs/{job_id}/contact-sheet.png")
}
