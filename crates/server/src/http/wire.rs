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
        output_warnings: output_warnings(job),
    }
}
pub(crate) use crate::counters::progress;

/// Blank frames are news only among frames that are not (a job of black frames renders black
/// on purpose, or fails its checks another way).
pub(crate) fn blank_frames_matter(job: &Job) -> bool {
    job.frames_blank > 0 && job.frames_blank < job.frames_done
}

/// Whether any flag of the job's frames is worth reading (blank ones that matter, any NaN).
pub(crate) fn frame_flags_matter(job: &Job) -> bool {
    blank_frames_matter(job) || job.frames_non_finite > 0
}

fn output_warnings(job: &Job) -> Vec<api::OutputWarning> {
    let mut warnings = Vec::new();
    // NaN and infinity are never meant: flagged however many frames have them.
    if job.frames_non_finite > 0 {
        warnings.push(api::OutputWarning {
            code: "non_finite_pixels".into(),
            message: format!(
                "{} of {} frames have NaN or infinite pixels (flagged `non_finite` in frameOutputs): a shader \
                 dividing by zero or a broken normal? They spread through any compositing or filtering",
                job.frames_non_finite, job.frames_done
            ),
            frames: Vec::new(),
        });
    }
    if !blank_frames_matter(job) {
        return warnings;
    }
    warnings.push(api::OutputWarning {
        code: "blank_frames".into(),
        message: format!(
            "{} of {} frames are one colour only while the others are not (flagged in frameOutputs): a hidden \
             object, a missing light or texture? `failOnBlank` makes such a frame fail instead",
            job.frames_blank, job.frames_done
        ),
        // The frames themselves are in the downloads' flags (a read this answer does not make).
        frames: Vec::new(),
    });
    warnings
}
