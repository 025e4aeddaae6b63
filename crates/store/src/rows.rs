//! Reading rows back into records, and the values statements bind. A value that does not
//! decode is [`StoreError::Corrupt`] (its table, its column, and the decoding error as its
//! source), never a default.
//!
//! The decoders are the same for both dialects; sqlx's `PgRow` and `SqliteRow` share no trait
//! that decodes a column without a bound per column type, so `row_decoders!` writes them once
//! and each store instantiates them for its row type.

use orchard_domain::{FrameSet, JobEvent, JobStatus, TaskStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{Result, StoreError};

/// The status a job moves to from `from` on `event`, as stored; `None` if it does not move.
pub(crate) fn status_after(from: JobStatus, event: JobEvent) -> Option<&'static str> {
    from.apply(event).ok().map(JobStatus::as_str)
}

/// `($first, $first+1, …)`: `n` placeholders, for a list bound value by value.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    let marks: Vec<String> = (first..first + n).map(|it| format!("${it}")).collect();
    format!("({})", marks.join(", "))
}

/// Why a well-formed value is not one its column may hold.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Invalid {
    /// Not a status of the domain.
    #[error("unknown status {0:?}")]
    Status(String),
    /// NULL in a column that is never NULL.
    #[error("NULL")]
    Null,
    /// Absent, although the column named is set (they are written together).
    #[error("missing, although {0} is set")]
    Missing(&'static str),
}

/// `table.column` does not decode, because of `source`.
pub(crate) fn corrupt(
    table: &'static str,
    column: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StoreError {
    StoreError::Corrupt { table, column, source: source.into() }
}

/// A stored uuid.
pub(crate) fn uuid(text: &str, table: &'static str, column: &'static str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| corrupt(table, column, e))
}

/// A stored JSON value.
pub(crate) fn json<T: DeserializeOwned>(text: &str, table: &'static str, column: &'static str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(table, column, e))
}

/// A value as the JSON its column holds.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T, table: &'static str, column: &'static str) -> Result<String> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { table, column, source })
}

/// A stored job status.
pub(crate) fn job_status(text: &str) -> Result<JobStatus> {
    JobStatus::parse(text).ok_or_else(|| corrupt("jobs", "status", Invalid::Status(text.to_string())))
}

/// A stored task status.
pub(crate) fn task_status(text: &str) -> Result<TaskStatus> {
    TaskStatus::parse(text).ok_or_else(|| corrupt("tasks", "status", Invalid::Status(text.to_string())))
}

/// A task's stored frames (a JSON array of frame numbers); a stored task always holds a valid
/// set.
pub(crate) fn task_frames(frames_json: &str) -> Result<FrameSet> {
    let frames: Vec<i32> = json(frames_json, "tasks", "frames")?;
    FrameSet::from_frames(frames).map_err(|e| corrupt("tasks", "frames", e))
}

/// A task's frames, as stored.
pub(crate) fn frames_json(frames: &FrameSet) -> Result<String> {
    to_json(frames.frames(), "tasks", "frames")
}

/// A row as the decoders that serve more than sqlx's rows read it (a job is also read through
/// SQLite's C API directly, `sqlite/read.rs`): a column's value by name, `None` for NULL.
pub(crate) trait Columns {
    /// A text column.
    fn text(&self, col: &'static str) -> Result<Option<String>>;
    /// An integer column.
    fn int(&self, col: &'static str) -> Result<Option<i64>>;
    /// A floating-point column.
    fn real(&self, col: &'static str) -> Result<Option<f64>>;
}

/// A column that is never NULL.
fn required<T>(value: Option<T>, table: &'static str, col: &'static str) -> Result<T> {
    value.ok_or_else(|| corrupt(table, col, Invalid::Null))
}

/// A job from a row of `job_columns!()`, without its analysis (which `jobs.rs` attaches).
pub(crate) fn job_from_columns(row: &impl Columns) -> Result<crate::Job> {
    const T: &str = "jobs";
    let text = |col| -> Result<String> { required(row.text(col)?, T, col) };
    let int = |col| -> Result<i64> { required(row.int(col)?, T, col) };
    let failed_reason = match row.text("failed_name")? {
        Some(name) => {
            // Written together: one without the others is not a reason.
            let part =
                |col: &'static str| row.text(col)?.ok_or_else(|| corrupt(T, col, Invalid::Missing("failed_name")));
            Some(crate::FailedReason { name, kind: part("failed_type")?, message: part("failed_message")? })
        }
        None => None,
    };
    fn json_of<U: DeserializeOwned>(row: &impl Columns, col: &'static str) -> Result<Option<U>> {
        row.text(col)?.map(|it| json(&it, "jobs", col)).transpose()
    }
    Ok(crate::Job {
        id: uuid(&text("id")?, T, "id")?,
        workspace_id: uuid(&text("workspace_id")?, T, "workspace_id")?,
        user_id: uuid(&text("user_id")?, T, "user_id")?,
        upload_slug: text("upload_slug")?,
        file_name: text("file_name")?,
        file_type: text("file_type")?,
        object_key: text("object_key")?,
        file_size: int("file_size")?,
        main_file: row.text("main_file")?,
        status: job_status(&text("status")?)?,
        created_at: int("created_at")?,
        updated_at: int("updated_at")?,
        failed_reason,
        requested_config: json_of(row, "requested_config")?,
        final_config: json_of(row, "final_config")?,
        analysis: None,
        analysis_id: row.text("analysis_id")?.map(|it| uuid(&it, T, "analysis_id")).transpose()?,
        preview_key: row.text("preview_key")?,
        normalized_seconds: required(row.real("normalized_seconds")?, T, "normalized_seconds")?,
        frames_total: int("frames_total")?,
        frames_done: int("frames_done")?,
        frames_rendering: int("frames_rendering")?,
        frames_failed: int("frames_failed")?,
        render_started_at: row.int("render_started_at")?,
        waiting_reason: row.text("waiting_reason")?,
        priority: int("priority")?,
        frames_running_done: int("frames_running_done")?,
        frames_running_progress: row.real("frames_running_progress")?.unwrap_or(0.0),
        blender_versions: json_of(row, "blender_versions")?.unwrap_or_default(),
        outputs_deleted_at: row.int("outputs_deleted_at")?,
        frames_blank: int("frames_blank")?,
        frames_non_finite: int("frames_non_finite")?,
    })
}

/// Defines, for the row type `$row`, `uuid_col` (a column's uuid, decoded), its
/// [`Columns`], and the records' decoders: `job_from_row` (without its analysis, which `jobs.rs` attaches),
/// `upload_from_row`, `task_from_row`, `worker_from_row`, `key_owner_from_row`,
/// `key_info_from_row` and `output_from_row`.
macro_rules! row_decoders {
    ($row:ty) => {
        fn uuid_col(row: &$row, col: &'static str, table: &'static str) -> $crate::Result<uuid::Uuid> {
            let text: String = sqlx::Row::try_get(row, col)?;
            $crate::rows::uuid(&text, table, col)
        }

        impl $crate::rows::Columns for $row {
            fn text(&self, col: &'static str) -> $crate::Result<Option<String>> {
                Ok(sqlx::Row::try_get(self, col)?)
            }

            fn int(&self, col: &'static str) -> $crate::Result<Option<i64>> {
                Ok(sqlx::Row::try_get(self, col)?)
            }

            fn real(&self, col: &'static str) -> $crate::Result<Option<f64>> {
                Ok(sqlx::Row::try_get(self, col)?)
            }
        }

        fn job_from_row(row: &$row) -> $crate::Result<$crate::Job> {
            $crate::rows::job_from_columns(row)
        }

        fn upload_from_row(row: &$row) -> $crate::Result<$crate::Upload> {
            use sqlx::Row as _;
            Ok($crate::Upload {
                slug: row.try_get("slug")?,
                workspace_id: uuid_col(row, "workspace_id", "uploads")?,
                user_id: uuid_col(row, "user_id", "uploads")?,
                file_name: row.try_get("file_name")?,
                file_type: row.try_get("file_type")?,
                object_key: row.try_get("object_key")?,
                expires_at: row.try_get("expires_at")?,
                created_at: row.try_get("created_at")?,
                uploaded_at: row.try_get("uploaded_at")?,
                size: row.try_get("size")?,
                sha256: row.try_get("sha256")?,
                parts: row
                    .try_get::<Option<i64>, _>("parts")?
                    .map(|it| u32::try_from(it).map_err(|e| $crate::rows::corrupt("uploads", "parts", e)))
                    .transpose()?,
            })
        }

        fn task_from_row(row: &$row) -> $crate::Result<$crate::Task> {
            use sqlx::Row as _;
            Ok($crate::Task {
                id: uuid_col(row, "id", "tasks")?,
                job_id: uuid_col(row, "job_id", "tasks")?,
                seq: row.try_get("seq")?,
                frames: $crate::rows::task_frames(&row.try_get::<String, _>("frames")?)?,
                status: $crate::rows::task_status(&row.try_get::<String, _>("status")?)?,
                attempt: row.try_get("attempt")?,
                failures: row.try_get("failures")?,
                last_error: row.try_get("last_error")?,
                worker_id: row.try_get("worker_id")?,
                started_at: row.try_get("started_at")?,
                finished_at: row.try_get("finished_at")?,
                render_seconds: row.try_get("render_seconds")?,
                blender_version: row.try_get("blender_version")?,
                frames_done: row.try_get("frames_done")?,
                frame_progress: row.try_get("frame_progress")?,
            })
        }

        fn worker_from_row(row: &$row) -> $crate::Result<$crate::WorkerRecord> {
            use sqlx::Row as _;
            let capabilities: String = row.try_get("capabilities")?;
            let speed_factor: f64 = row.try_get("speed_factor")?;
            Ok($crate::WorkerRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                token_id: uuid_col(row, "token_id", "workers")?,
                capabilities: $crate::rows::json(&capabilities, "workers", "capabilities")?,
                speed_factor,
                speed_measured: row.try_get::<Option<f64>, _>("speed_measured")?.unwrap_or(speed_factor),
                speed_spread: row.try_get("speed_spread")?,
                speed_observations: row.try_get("speed_observations")?,
                registered_at: row.try_get("registered_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
                draining: row.try_get::<i64, _>("draining")? != 0,
            })
        }

        fn key_owner_from_row(row: &$row) -> $crate::Result<$crate::KeyOwner> {
            Ok($crate::KeyOwner {
                key_id: uuid_col(row, "id", "api_keys")?,
                workspace_id: uuid_col(row, "workspace_id", "api_keys")?,
                user_id: uuid_col(row, "user_id", "api_keys")?,
                admin: sqlx::Row::try_get::<i64, _>(row, "admin")? != 0,
            })
        }

        fn key_info_from_row(row: &$row) -> $crate::Result<$crate::KeyInfo> {
            use sqlx::Row as _;
            Ok($crate::KeyInfo {
                id: uuid_col(row, "id", "api_keys")?,
                prefix: row.try_get("prefix")?,
                workspace: row.try_get("workspace")?,
                user: row.try_get("user")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
                admin: row.try_get::<i64, _>("admin")? != 0,
            })
        }

        fn output_from_row(row: &$row) -> $crate::Result<$crate::Output> {
            use sqlx::Row as _;
            Ok($crate::Output {
                kind: row.try_get("kind")?,
                frame: row.try_get("frame")?,
                file_name: row.try_get("file_name")?,
                object_key: row.try_get("object_key")?,
                size: row.try_get("size")?,
                created_at: row.try_get("created_at")?,
            })
        }
    };
}

pub(crate) use row_decoders;
