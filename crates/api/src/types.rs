//! Request and response bodies of the Renderjuice external API v1.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use orchard_blend::Analysis;
use orchard_domain::{RenderConfig, RequestedConfig};
use utoipa::ToSchema;

pub use orchard_domain::capabilities::{BlenderBuild, WorkerCapabilities};

/// `POST /uploads` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUploadRequest {
    /// The source file's name; its extension must match `fileType`.
    pub file_name: String,
    /// `blend` or `zip`.
    pub file_type: String,
    /// Orchard extension: send the file in this many parts (1–10,000), each PUT to its own
    /// URL, then `POST /uploads/{slug}/complete`. For files past one PUT's limit (5 GiB on
    /// S3) or for resumable transfers. Every part but the last must be at least 5 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
}

/// `POST /uploads` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateUploadResponse {
    /// A presigned URL for one `PUT` of the file's bytes. Opaque.
    pub upload_url: String,
    /// The handle to create the job with.
    pub slug: String,
    /// When `uploadUrl` stops working (ISO 8601).
    pub expires_at: String,
    /// Orchard extension, with `parts`: the PUT URL of each part, part 1 first. Each answer
    /// carries an `ETag` header to send back with `POST /uploads/{slug}/complete`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_urls: Vec<String>,
    /// Orchard extension, with `parts` on S3 storage: the bucket's multipart upload id, to
    /// send back with `POST /uploads/{slug}/complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

/// Orchard extension: `POST /uploads/{slug}/complete` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompleteUploadRequest {
    /// `uploadId` from `POST /uploads`, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Every part, part 1 first, with the `ETag` its PUT answered.
    pub parts: Vec<UploadedPart>,
}

/// A part sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadedPart {
    /// From 1.
    pub part_number: u32,
    /// The `ETag` header of the part's PUT answer.
    pub etag: String,
}

/// Orchard extension: `POST /uploads/{slug}/complete` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompleteUploadResponse {
    /// The upload, ready for `POST /jobs`.
    pub slug: String,
    /// Bytes of the assembled file.
    pub size: u64,
}

/// `POST /jobs` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateJobRequest {
    /// The slug from `POST /uploads`.
    #[schema(min_length = 1)]
    pub slug: String,
    /// Orchard extension: the main `.blend` inside a `.zip` (default: the shallowest, then alphabetical).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$")]
    pub main_file: Option<String>,
}

/// `POST /jobs/{id}/render` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenderRequest {
    /// The render config; `colorManagementPreset` is required, every other field defaults
    /// to what validation detected.
    #[schema(value_type = RequestedConfig)]
    pub requested_render_config: Value,
}

/// Why a job failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct FailedReason {
    /// Short machine name (`unreadable_scene`, `task_failed`, …).
    pub name: String,
    /// Category: `validation`, `render` or `internal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Orchard extension: a sentence for a person, with the log tail where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Information about a job's outputs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobOutputInfo {
    /// Whether the outputs were deleted for the client.
    pub is_deleted_for_client: bool,
}

/// A job, as every job endpoint returns it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Job id (uuid).
    #[schema(format = Uuid)]
    pub id: String,
    /// `created`, `validating`, `validated`, `debugging`, `rendering`, `finalizing`,
    /// `completed`, `failed`, `canceled`, `booting` or `suspended`.
    #[schema(value_type = orchard_domain::JobStatus)]
    pub status: String,
    /// The creating user.
    #[schema(format = Uuid)]
    pub user_id: String,
    /// The owning workspace.
    #[schema(format = Uuid)]
    pub workspace_id: String,
    /// Root folder of the job's files; Orchard has none.
    #[schema(value_type = Option<String>)]
    pub root_folder_id: Option<String>,
    /// ISO 8601.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// ISO 8601.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Render seconds adjusted for worker speed, over finished tasks.
    pub normalized_seconds: f64,
    /// A signed URL of a small image of the latest finished frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
    /// Set when `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_reason: Option<FailedReason>,
    /// The checked `requestedRenderConfig`; `{}` before the render starts.
    #[schema(value_type = Object)]
    #[serde(with = "empty_object")]
    pub requested_config: Option<RequestedConfig>,
    /// The configuration rendered: detected settings overlaid with the request; `{}` before
    /// the render starts.
    #[schema(value_type = Object)]
    #[serde(with = "empty_object")]
    pub final_config: Option<RenderConfig>,
    /// Output information.
    pub output: JobOutputInfo,
    /// Whether scene analysis was skipped (never, in Orchard).
    pub is_analysis_skipped: bool,
    /// The analysis id, once validated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_id: Option<String>,
    /// The scene analysis (see Orchard's spec §5); `{}` before validation.
    #[schema(value_type = Object)]
    #[serde(with = "empty_object")]
    pub analysis: Option<Arc<Analysis>>,
    /// The scene file: name, type, size, sha256.
    pub scene_file: SceneFile,
    /// Orchard extension: why the job is not progressing (no connected worker can render it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
    /// Orchard extension: the Blender versions that rendered the job, recorded when it
    /// completes (each task's is in `GET /jobs/{id}/tasks`).
    #[serde(default)]
    pub blender_versions: Vec<String>,
    /// Orchard extension: what the outputs' checks found that a person should look at (frames
    /// of one colour among frames that are not: `blank_frames`; NaN or infinite pixels in EXR
    /// frames: `non_finite_pixels`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_warnings: Vec<OutputWarning>,
    /// Orchard extension: 0–100, higher first (50 unless set); `PATCH /jobs/{id}` changes it.
    #[serde(default = "default_priority")]
    #[schema(minimum = 0, maximum = 100)]
    pub priority: i64,
}

fn default_priority() -> i64 {
    50
}

/// Orchard extension: `GET /usage`: what each workspace used of the farm, and its throughput.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Each workspace's totals over all its jobs (the caller's only, unless an admin key),
    /// most `normalizedSeconds` first.
    pub workspaces: Vec<WorkspaceUsage>,
    /// Frames finished in the last hour (by tasks that completed then).
    pub frames_last_hour: i64,
}

/// Orchard extension: one workspace's use of the farm.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceUsage {
    /// The workspace.
    #[schema(format = Uuid)]
    pub workspace_id: String,
    /// Its jobs, in every status.
    pub jobs: i64,
    /// Frames its jobs rendered.
    pub frames_done: i64,
    /// What its jobs cost, in the reference machine's seconds (as `normalizedSeconds`).
    pub normalized_seconds: f64,
}

/// Orchard extension: `GET /workers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerList {
    /// Every registered worker, oldest registration first.
    pub workers: Vec<WorkerInfo>,
}

/// Orchard extension: a worker as people see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInfo {
    /// Its stable id.
    pub id: String,
    /// Its name (`orchard worker --name`, the host name by default).
    pub name: String,
    /// `idle`, `busy`, `draining` (takes no new task) or `offline` (not heard from lately).
    #[schema(value_type = String, pattern = "^(idle|busy|draining|offline)$")]
    pub status: String,
    /// Drained by an operator: finishes its task, takes no new one.
    pub draining: bool,
    /// The Blenders it offers.
    pub blenders: Vec<BlenderBuild>,
    /// CPU threads.
    pub cpu_threads: u32,
    /// Memory, in GiB.
    pub ram_gib: f64,
    /// Tags set by its operator.
    pub tags: Vec<String>,
    /// Its ffmpeg's version: it makes jobs' videos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffmpeg: Option<String>,
    /// Its speed relative to the reference machine, as `normalizedSeconds` uses it: measured by
    /// reference renders, then refined by the jobs it shared with other workers.
    pub speed_factor: f64,
    /// The factor its reference renders measured (median of several frames, outliers dropped),
    /// or its operator set.
    pub speed_measured: f64,
    /// How much those frames' times varied (half their range, relative: 0.05 is ±5 %); left out
    /// when the operator set the factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_spread: Option<f64>,
    /// Jobs shared with other workers that refined the factor.
    pub speed_observations: i64,
    /// What it renders now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_task: Option<CurrentTask>,
    /// When it last called in (ISO 8601).
    pub last_seen_at: String,
    /// When it first registered (ISO 8601).
    pub registered_at: String,
}

/// Orchard extension: the task a worker renders now. Its ids are shown only to the job's
/// workspace and to admin keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentTask {
    /// The task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Its job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Its frames.
    pub frames: Vec<String>,
    /// When this attempt started (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

/// Orchard extension: `POST /jobs/{id}/suspend` body (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuspendRequest {
    /// Put the running tasks back in the queue now (their Blender stops) instead of letting
    /// them finish.
    #[serde(default)]
    pub requeue_running: bool,
}

/// Orchard extension: `POST /jobs/{id}/retry` body (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryRequest {
    /// Frames to render again (`["3-5"]`), rendered or not; default: every frame without an
    /// output (the failed and never-rendered ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<String>>,
    /// A new `requestedRenderConfig` for the retried frames (and the job's `finalConfig`
    /// from now on), to fix what failed; default: the job's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<RequestedConfig>)]
    pub requested_render_config: Option<Value>,
}

/// Orchard extension: `PATCH /jobs/{id}` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobPatchRequest {
    /// 0–100; higher goes first.
    #[schema(minimum = 0, maximum = 100)]
    pub priority: u32,
}

/// The kinds of scene file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileTypeName {
    /// A `.blend`.
    Blend,
    /// A `.zip` project.
    Zip,
}

/// The scene file of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SceneFile {
    /// The client's file name.
    pub file_name: String,
    /// `blend` or `zip`.
    #[schema(value_type = FileTypeName)]
    pub file_type: String,
    /// Bytes.
    pub file_size: i64,
    /// Hex SHA-256 of the file, once analysed.
    pub sha256: Option<String>,
    /// The main `.blend` of a `.zip`, when the client named one.
    pub main_file: Option<String>,
}

/// `Option<T>` as JSON where "none" is `{}` (the API's empty objects), not `null`.
mod empty_object {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<T: Serialize, S: Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => value.serialize(serializer),
            None => serde_json::Map::new().serialize(serializer),
        }
    }

    pub(super) fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        match &value {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::Object(map) if map.is_empty() => Ok(None),
            _ => serde_json::from_value(value).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

/// `GET /jobs/{id}` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobEnvelope {
    /// The job.
    pub data: Job,
}

/// Paging of `GET /jobs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// 1-based page.
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
    /// Matching jobs in all.
    pub total: u64,
    /// Pages in all.
    pub total_pages: u64,
}

/// `GET /jobs` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    /// This page's jobs, newest first.
    pub jobs: Vec<Job>,
    /// Paging.
    pub pagination: Pagination,
}

/// Progress counters of one running job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Job id.
    #[schema(format = Uuid)]
    pub job_id: String,
    /// Job status.
    #[schema(value_type = orchard_domain::JobStatus)]
    pub status: String,
    /// Frames the job renders.
    pub frames_total: i64,
    /// Frames rendered and stored.
    pub frames_done: i64,
    /// Frames being rendered now.
    pub frames_rendering: i64,
    /// Frames that failed for good.
    pub frames_failed: i64,
    /// Orchard extension: frames finished inside running tasks, not yet stored (a task of many
    /// frames, or a slow one, moves before it completes).
    #[serde(default)]
    pub frames_running_done: i64,
    /// Orchard extension: as `framesRunningDone`, with each frame being rendered counted by how
    /// far it is (its samples): a 10-minute frame moves while it renders.
    #[serde(default)]
    pub frames_running_progress: f64,
    /// Orchard extension: frames found blank (every pixel one colour).
    #[serde(default)]
    pub frames_blank: i64,
    /// Orchard extension: frames with NaN or infinite pixels (EXR).
    #[serde(default)]
    pub frames_non_finite: i64,
    /// `framesDone / framesTotal × 100`.
    pub percent: f64,
    /// Estimated seconds left, once a frame is done.
    pub eta_seconds: Option<f64>,
    /// As on the job.
    pub normalized_seconds: f64,
}

/// One downloadable file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputFile {
    /// Signed, expiring URL.
    pub url: String,
    /// File name (`0001.png`).
    pub file_name: String,
    /// Multiview view name; empty for mono renders.
    pub view: String,
    /// Whether the output uses the older storage layout (never, in Orchard).
    pub legacy: bool,
    /// Path relative to the job's output root.
    pub relative_path: String,
    /// Compositor node that wrote it; empty for frames.
    pub composite_node_name: String,
    /// Orchard extension: what its check found (`blank`: every pixel one colour, among frames
    /// that are not; `non_finite`: NaN or infinite samples).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// Orchard extension: something the outputs' checks found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputWarning {
    /// `blank_frames`, `non_finite_pixels`.
    pub code: String,
    /// For a person.
    pub message: String,
    /// The frames concerned.
    pub frames: Vec<i32>,
}

/// Archive downloads.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transforms {
    /// URL of a zip of every frame; empty until the job is `completed`.
    pub frames_zip: String,
    /// URL of a zip of compositor outputs; empty when there are none.
    pub composite_nodes_zip: String,
    /// The video: `{}` unless `requestedRenderConfig.video` asked for one; once the job
    /// completed, an H.264 MP4 of the frames with the scene's sound: `{url, fileName, codec,
    /// width, height, fps, frames, durationSeconds, audio, size}`; `{error}` when no worker
    /// could make it (the frames are delivered as ever).
    #[schema(value_type = Object)]
    pub video: Value,
    /// `framesZip` as a rich output.
    pub frames_zip_outputs: OutputFile,
    /// `compositeNodesZip` as a rich output.
    pub composite_nodes_zip_outputs: OutputFile,
    /// Orchard extension: a PNG of every frame's thumbnail in a grid with frame numbers (PNG and
    /// JPEG frames), once the job completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_sheet: Option<OutputFile>,
}

/// `GET /jobs/{id}/downloads` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Downloads {
    /// Legacy list of frame URLs, in frame order.
    pub frames: Vec<String>,
    /// Legacy list of compositor output URLs.
    pub composite_nodes: Vec<String>,
    /// Archives.
    pub transforms: Transforms,
    /// Frames with their file names.
    pub frame_outputs: Vec<OutputFile>,
    /// Compositor outputs with their file names.
    pub composite_node_outputs: Vec<OutputFile>,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// snake_case code, stable for programs.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// More structure where there is some (such as the `field` of a refused config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// `GET /healthz` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when something needs an operator (see `problems`).
    pub status: String,
    /// Orchard's version.
    pub version: String,
    /// What needs an operator, for a person (a full disk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Worker protocol: a task handed to a worker. In `orchard up` it crosses no network, but it
/// is the same value the HTTP worker protocol carries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The task.
    pub task_id: String,
    /// The attempt this worker holds: the fencing token named in every later call.
    pub attempt: i64,
    /// The task's job.
    pub job_id: String,
    /// Frames to render, ascending.
    pub frames: Vec<i32>,
    /// The scene file.
    pub scene: SceneRef,
    /// The job's `finalConfig`.
    #[schema(value_type = Object)]
    pub config: Value,
    /// The Blender version (as the worker reported it) the scheduler chose for this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blender_version: Option<String>,
    /// Signed PUT URLs for the file names the frames are expected under (`0001.png`, …), so
    /// that the worker need not ask for them; files named otherwise, or URLs that expired,
    /// are asked for with `outputs`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub output_urls: std::collections::BTreeMap<String, String>,
    /// Set for a packaging task (the job's video) instead of frames to render: its calls go to
    /// `/workers/{id}/packaging/{taskId}/…`. Only workers that report `ffmpeg` get one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packaging: Option<PackagingAssignment>,
}

/// Worker protocol: what a packaging task makes: an H.264 MP4 of the job's frames, with the
/// scene's sound mixed down by Blender.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackagingAssignment {
    /// The job's frames, in order, with signed GET URLs.
    pub frames: Vec<FrameSource>,
    /// Frames per second.
    pub fps: f64,
    /// The video's file name (`shot.mp4`).
    pub file_name: String,
    /// Signed PUT URL for the video.
    pub upload_url: String,
    /// The file holds sounds (its analysis lists some, packed or not): Blender opens the scene
    /// to mix them down. Without sounds, and with 8-bit PNG or JPEG frames, no Blender runs.
    #[serde(default = "yes")]
    pub sound: bool,
}

fn yes() -> bool {
    true
}

/// Worker protocol: one frame a packaging task reads.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FrameSource {
    /// The frame number.
    pub frame: i32,
    /// The frame's file name.
    pub file_name: String,
    /// Signed GET URL.
    pub url: String,
}

/// A job's video as its worker checked it (ffprobe), and as `transforms.video` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VideoInfo {
    /// The file's name.
    pub file_name: String,
    /// `h264`.
    pub codec: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// Frames in the video.
    pub frames: u32,
    /// Seconds.
    pub duration_seconds: f64,
    /// Whether it carries the scene's sound (AAC).
    pub audio: bool,
    /// Bytes.
    pub size: u64,
}

/// Worker protocol: `POST /workers/{id}/packaging/{taskId}/complete`, once the video is
/// uploaded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackagingDone {
    /// The attempt held.
    pub attempt: i64,
    /// What was made.
    pub video: VideoInfo,
}

/// The scene file of an assignment: enough to fetch it once and cache it by content.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SceneRef {
    /// The client's file name.
    pub file_name: String,
    /// `blend` or `zip`.
    pub file_type: String,
    /// sha256 hex of the file: the cache key.
    pub sha256: String,
    /// The main `.blend` inside a zip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_file: Option<String>,
    /// The scene to render (the file's active scene).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene_name: Option<String>,
}

/// Worker protocol: `POST /workers/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// Stable id the worker keeps across restarts.
    pub worker_id: String,
    /// For people.
    pub name: String,
    /// What it can render.
    pub capabilities: WorkerCapabilities,
    /// Its speed relative to the reference machine (from rendering the reference scene).
    pub speed_factor: f64,
    /// How much the reference frames' times varied: half their range, relative to the median
    /// (0.05: ±5 %). Left out when the operator set the factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_spread: Option<f64>,
}

/// Worker protocol: the answer to registration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    /// The worker's id.
    pub worker_id: String,
    /// A task is requeued when its worker is silent this long.
    pub lease_ttl_seconds: u64,
    /// How often to heartbeat while rendering.
    pub heartbeat_seconds: u64,
}

/// Worker protocol: `POST /workers/{id}/claim`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimRequest {
    /// A job whose scene the worker has loaded: its tasks come first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_job: Option<String>,
    /// Seconds to wait for work before answering 204 (at most 30).
    #[serde(default)]
    pub wait_seconds: u64,
}

/// Worker protocol: a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatRequest {
    /// The attempt held.
    pub attempt: i64,
    /// Frames of the task finished so far.
    pub frames_done: usize,
    /// How far the frame being rendered now is (0–1; Cycles' samples, EEVEE's), so that a long
    /// frame does not look stuck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub frame_progress: Option<f64>,
    /// Blender's output since the last call, appended to the attempt's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 65536)]
    pub log: Option<String>,
}

/// Worker protocol: where to PUT a task's outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputUrlsRequest {
    /// The attempt held.
    pub attempt: i64,
    /// File names (`0001.png`).
    pub files: Vec<String>,
}

/// Worker protocol: one signed PUT URL per file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputUrlsResponse {
    /// File name → URL.
    pub urls: std::collections::BTreeMap<String, String>,
}

/// Worker protocol: a frame delivered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveredFrame {
    /// Frame number.
    pub frame: i32,
    /// The file name it was uploaded under.
    pub file_name: String,
    /// Every pixel is one colour (PNG and JPEG frames are looked at).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blank: bool,
    /// Some samples are NaN or infinite (EXR frames are read whole).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_finite: bool,
    /// The view, for a multiview render that writes a file per view (`left`, `right`, a
    /// custom view's name): the frame is delivered once per view. Empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub view: String,
}

/// Worker protocol: a file a compositor File Output node wrote, uploaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveredComposite {
    /// The frame it belongs to.
    pub frame: i32,
    /// The file name it was uploaded under.
    pub file_name: String,
    /// Where the node wrote it, relative to the node's base path (`beauty/rgb_0001.png`).
    pub relative_path: String,
    /// The node's name.
    pub node: String,
    /// The view, for multiview renders; empty otherwise.
    #[serde(default)]
    pub view: String,
}

/// Worker protocol: every frame of the task is uploaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteRequest {
    /// The attempt held.
    pub attempt: i64,
    /// The frames.
    pub frames: Vec<DeliveredFrame>,
    /// Seconds Blender spent rendering them.
    pub render_seconds: f64,
    /// Also claim the worker's next task, in the same call (answered at once, without
    /// waiting for work): a busy worker makes one call per task instead of two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_next: Option<ClaimNext>,
    /// The Blender that rendered the frames (`bpy.app.version_string`), recorded on the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blender_version: Option<String>,
    /// Blender's output since the last heartbeat, appended to the attempt's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// The files the scene's compositor File Output nodes wrote, uploaded like the frames.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub composites: Vec<DeliveredComposite>,
}

/// Worker protocol: the next claim, made with a completion.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimNext {
    /// A job whose scene the worker has loaded: its tasks come first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_job: Option<String>,
}

/// Worker protocol: the task is complete.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompleteResponse {
    /// `held`: the completion counted. (A lost lease is a 409 `lease_lost`.)
    pub lease: String,
    /// The next task, when `claimNext` asked for one and there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Assignment>,
}

/// Worker protocol: the attempt failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailRequest {
    /// The attempt held.
    pub attempt: i64,
    /// What went wrong, with Blender's log tail.
    pub error: String,
    /// Blender's output since the last heartbeat, appended to the attempt's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 65536)]
    pub log: Option<String>,
}

/// Worker protocol: whether the worker keeps its task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseResponse {
    /// `held`: go on. (A lost lease is a 409 `lease_lost`.)
    pub lease: String,
}

/// Orchard extension: one task of a job (`GET /jobs/{id}/tasks`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    /// Task id.
    pub id: String,
    /// Position in the job.
    pub seq: i64,
    /// Its frames, as range strings.
    pub frames: Vec<String>,
    /// `queued`, `running`, `completed`, `failed` or `canceled`.
    #[schema(value_type = orchard_domain::TaskStatus)]
    pub status: String,
    /// Attempts so far.
    pub attempt: i64,
    /// Failed attempts so far.
    pub failures: i64,
    /// The worker running it (or that last ran it).
    pub worker_id: Option<String>,
    /// That worker's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_name: Option<String>,
    /// The last failure, with Blender's log tail.
    pub last_error: Option<String>,
    /// When its latest attempt started (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it completed, or last failed (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Seconds Blender spent on it, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_seconds: Option<f64>,
    /// The Blender that rendered it, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blender_version: Option<String>,
    /// While running: frames of it finished so far.
    #[serde(default)]
    pub frames_done: i64,
    /// While running: how far the frame being rendered is (0–1, from its samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_progress: Option<f64>,
    /// Every failed attempt, oldest first (a retried job's included).
    #[serde(default)]
    pub failed_attempts: Vec<FailedAttemptInfo>,
}

/// Orchard extension: one failed attempt at a task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedAttemptInfo {
    /// The attempt number.
    pub attempt: i64,
    /// The worker that failed it.
    pub worker_id: String,
    /// Its name, when it is still registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_name: Option<String>,
    /// What the worker reported, with Blender's log tail.
    pub error: String,
    /// When (ISO 8601).
    pub at: String,
}

/// Orchard extension: `POST /webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are POSTed: `https://…` (or `http://…`), at most 2048 characters, no
    /// user or password in it.
    #[schema(max_length = 2048, min_length = 1, pattern = r"^https?://[^\s/?#@]+(/[^\s]*)?$")]
    pub url: String,
    /// The events wanted: `onRenderComplete`, `onRenderFail` (Renderjuice's), and Orchard's
    /// `onValidated`, `onRenderStart`, `onRenderCancel`, `onRenderSuspend`.
    #[schema(min_items = 1, max_items = 6)]
    pub events: Vec<orchard_domain::Notice>,
}

/// Orchard extension: a webhook endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Its id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The events it gets.
    pub events: Vec<orchard_domain::Notice>,
    /// The signing secret: only in the answers of create and rotate-secret (keep it: it is
    /// never shown again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// When it was added (ISO 8601).
    pub created_at: String,
}

/// Orchard extension: `GET /webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// The workspace's endpoints, oldest first.
    pub webhooks: Vec<Webhook>,
}

/// Orchard extension: one event sent (or being sent) to one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Its id: `X-Orchard-Delivery`, the same on every attempt.
    #[schema(format = Uuid)]
    pub id: String,
    /// The event's name.
    pub event: String,
    /// The job it is about.
    #[schema(format = Uuid)]
    pub job_id: String,
    /// `pending` (being tried), `delivered` (a 2xx came back) or `dead` (given up).
    #[schema(pattern = "^(pending|delivered|dead)$")]
    pub state: String,
    /// When the event happened (ISO 8601).
    pub created_at: String,
    /// While pending: when the next attempt is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// When it was delivered or given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

/// Orchard extension: one attempt at a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// 1 for the first.
    pub attempt: i64,
    /// When (ISO 8601).
    pub at: String,
    /// The status code answered, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i64>,
    /// Milliseconds until the answer (or the failure).
    pub latency_ms: i64,
    /// Why there was no answer (refused target, timeout, connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The answer's first bytes (up to 1 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

/// Orchard extension: `GET /webhooks/{id}/deliveries`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    /// The most recent deliveries (at most 100), newest first.
    pub deliveries: Vec<Delivery>,
}
