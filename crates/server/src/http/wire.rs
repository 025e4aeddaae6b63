//! Conversions from stored records to wire types.

use orchard_api as api;
use orchard_store::Job;

use crate::clock::{iso8601, now_ms};
use crate::state::AppState;
use crate::urls::signed_file_url;

/// The API's view of a job; URLs are signed afresh for `base`.
pub(crate) fn job(state: &AppState, base: &str, job: &Job) -> api::Job {
    let now = now_ms();
    api::Job {
        id: job.id.to_string(),
        status: job.status.as_str().to_string(),
        user_id: job.user_id.to_string(),
        workspace_id: job.workspace_id.to_string(),
        root_folder_id: None,
        created_at: iso8601(job.created_at),
        updated_at: iso8601(job.updated_at),
        normalized_seconds: job.normalized_seconds,
        preview_url: job.preview_key.as_ref().map(|key| signed_file_url(state, base, key, now)),
        failed_reason: job.failed_reason.as_ref().map(|it| api::FailedReason {
            name: it.name.clone(),
            kind: it.kind.clone(),
            message: Some(it.message.clone()),
        }),
        requested_config: job.requested_config.clone(),
        final_config: job.final_config.clone(),
        output: api::JobOutputInfo { is_deleted_for_client: job.outputs_deleted_at.is_some() },
        is_analysis_skipped: false,
        analysis_id: job.analysis_id.map(|it| it.to_string()),
        scene_file: api::SceneFile {
            file_name: job.file_name.clone(),
            file_type: job.file_type.clone(),
            file_size: job.file_size,
            sha256: job.analysis.as_ref().map(|it| it.sha256.clone()),
            main_file: job.main_file.clone(),
        },
        analysis: job.analysis.clone(),
        waiting_reason: job.waiting_reason.clone(),
        priority: job.priority,
        blender_versions: job.blender_versions.clone(),
    }
}
pub(crate) use crate::counters::progress;
