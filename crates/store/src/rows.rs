//! Reading rows back into records, and the status names statements bind. The decoders are the
//! same for both dialects; sqlx's `PgRow` and `SqliteRow` share no trait that decodes a column
//! without a bound per column type, so `row_decoders!` writes them once and each store
//! instantiates them for its row type.

use orchard_domain::{JobEvent, JobStatus};

/// The status a job moves to from `from` on `event`, as stored; `None` if it does not move.
pub(crate) fn status_after(from: JobStatus, event: JobEvent) -> Option<&'static str> {
    from.apply(event).ok().map(JobStatus::as_str)
}

/// Defines `uuid_col`, `json_col`, `job_from_row`, `upload_from_row`, `task_from_row` and
/// `worker_from_row` for the row type `$row`.
macro_rules! row_decoders {
    ($row:ty) => {
        fn uuid_col(row: &$row, col: &str, table: &'static str) -> $crate::Result<uuid::Uuid> {
            let text: String = sqlx::Row::try_get(row, col)?;
            uuid::Uuid::parse_str(&text)
                .map_err(|e| $crate::StoreError::Corrupt { table, reason: format!("{col}: {e}") })
        }

        fn json_col(row: &$row, col: &str, table: &'static str) -> $crate::Result<Option<serde_json::Value>> {
            let text: Option<String> = sqlx::Row::try_get(row, col)?;
            text.map(|it| {
                serde_json::from_str(&it)
                    .map_err(|e| $crate::StoreError::Corrupt { table, reason: format!("{col}: {e}") })
            })
            .transpose()
        }

        fn job_from_row(row: &$row) -> $crate::Result<$crate::Job> {
            use sqlx::Row as _;
            let status: String = row.try_get("status")?;
            let status = orchard_domain::JobStatus::parse(&status)
                .ok_or_else(|| $crate::StoreError::Corrupt { table: "jobs", reason: format!("status {status:?}") })?;
            let failed_name: Option<String> = row.try_get("failed_name")?;
            let failed_reason = match failed_name {
                Some(name) => Some($crate::FailedReason {
                    name,
                    kind: row.try_get::<Option<String>, _>("failed_type")?.unwrap_or_default(),
                    message: row.try_get::<Option<String>, _>("failed_message")?.unwrap_or_default(),
                }),
                None => None,
            };
            let analysis_id: Option<String> = row.try_get("analysis_id")?;
            Ok($crate::Job {
                id: uuid_col(row, "id", "jobs")?,
                workspace_id: uuid_col(row, "workspace_id", "jobs")?,
                user_id: uuid_col(row, "user_id", "jobs")?,
                upload_slug: row.try_get("upload_slug")?,
                file_name: row.try_get("file_name")?,
                file_type: row.try_get("file_type")?,
                object_key: row.try_get("object_key")?,
                file_size: row.try_get("file_size")?,
                main_file: row.try_get("main_file")?,
                status,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                failed_reason,
                requested_config: json_col(row, "requested_config", "jobs")?,
                final_config: json_col(row, "final_config", "jobs")?,
                analysis: json_col(row, "analysis", "jobs")?,
                analysis_id: analysis_id.and_then(|it| uuid::Uuid::parse_str(&it).ok()),
                preview_key: row.try_get("preview_key")?,
                frames_zip_key: row.try_get("frames_zip_key")?,
                normalized_seconds: row.try_get("normalized_seconds")?,
                frames_total: row.try_get("frames_total")?,
                frames_done: row.try_get("frames_done")?,
                frames_rendering: row.try_get("frames_rendering")?,
                frames_failed: row.try_get("frames_failed")?,
                render_started_at: row.try_get("render_started_at")?,
                waiting_reason: row.try_get("waiting_reason")?,
            })
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
            })
        }

        fn task_from_row(row: &$row) -> $crate::Result<$crate::Task> {
            use sqlx::Row as _;
            let status: String = row.try_get("status")?;
            Ok($crate::Task {
                id: uuid_col(row, "id", "tasks")?,
                job_id: uuid_col(row, "job_id", "tasks")?,
                seq: row.try_get("seq")?,
                frames: $crate::task_frames(&row.try_get::<String, _>("frames")?)?,
                status: orchard_domain::TaskStatus::parse(&status).ok_or_else(|| $crate::StoreError::Corrupt {
                    table: "tasks",
                    reason: format!("status {status:?}"),
                })?,
                attempt: row.try_get("attempt")?,
                failures: row.try_get("failures")?,
                last_error: row.try_get("last_error")?,
                worker_id: row.try_get("worker_id")?,
            })
        }

        fn worker_from_row(row: &$row) -> $crate::Result<$crate::WorkerRecord> {
            use sqlx::Row as _;
            Ok($crate::WorkerRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                token_id: uuid_col(row, "token_id", "workers")?,
                capabilities: json_col(row, "capabilities", "workers")?.unwrap_or(serde_json::Value::Null),
                speed_factor: row.try_get("speed_factor")?,
                registered_at: row.try_get("registered_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
            })
        }
    };
}

pub(crate) use row_decoders;
