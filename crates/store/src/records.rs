//! What the store reads and writes. Plain data; ids are `Uuid`, times unix milliseconds.

use std::sync::Arc;

use orchard_blend::Analysis;
use orchard_domain::{FrameSet, JobStatus, RenderConfig, RequestedConfig, TaskStatus, WorkerCapabilities};
use uuid::Uuid;

/// A key to create.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Workspace name; created if new.
    pub workspace_name: String,
    /// User name within the workspace; created if new.
    pub user_name: String,
    /// sha256 hex of the whole key.
    pub key_hash: String,
    /// The first characters of the key, shown in listings.
    pub prefix: String,
    /// An admin key: sees and steers the whole farm.
    pub admin: bool,
}

/// Who a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOwner {
    /// The key's id.
    pub key_id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// An admin key.
    pub admin: bool,
}

/// A key as listed (no secret material).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// The key's id.
    pub id: Uuid,
    /// The visible prefix.
    pub prefix: String,
    /// Workspace name.
    pub workspace: String,
    /// User name.
    pub user: String,
    /// Creation time.
    pub created_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
    /// An admin key.
    pub admin: bool,
}

/// An upload target and, once the PUT arrived, what it received.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The slug handed to the client.
    pub slug: String,
    /// Owner workspace.
    pub workspace_id: Uuid,
    /// Owner user.
    pub user_id: Uuid,
    /// The client's file name.
    pub file_name: String,
    /// `blend` or `zip`.
    pub file_type: String,
    /// Where the bytes go in object storage.
    pub object_key: String,
    /// After this the PUT is refused.
    pub expires_at: i64,
    /// Creation time.
    pub created_at: i64,
    /// When the bytes arrived.
    pub uploaded_at: Option<i64>,
    /// Size received.
    pub size: Option<i64>,
    /// sha256 hex of the bytes received.
    pub sha256: Option<String>,
    /// The parts of a multipart upload (`None`: the file comes in one PUT).
    pub parts: Option<u32>,
}

/// A job to create from an upload.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The new job's id (ignored when the slug already made a job).
    pub id: Uuid,
    /// The uploaded file.
    pub upload: Upload,
    /// The main `.blend` inside a `.zip`, when the client named one.
    pub main_file: Option<String>,
}

/// Why a job failed, as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedReason {
    /// Short name, such as `unreadable_scene` or `task_failed`.
    pub name: String,
    /// Category: `validation`, `render`, `internal`.
    pub kind: String,
    /// A sentence for a person, with the log tail where there is one.
    pub message: String,
}

/// A job row.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job id.
    pub id: Uuid,
    /// Owner workspace.
    pub workspace_id: Uuid,
    /// Creating user.
    pub user_id: Uuid,
    /// The upload it was made from.
    pub upload_slug: String,
    /// The client's file name.
    pub file_name: String,
    /// `blend` or `zip`.
    pub file_type: String,
    /// The scene file in object storage.
    pub object_key: String,
    /// Its size in bytes.
    pub file_size: i64,
    /// The main `.blend` inside a `.zip`, when the client named one.
    pub main_file: Option<String>,
    /// Current status.
    pub status: JobStatus,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Set when failed.
    pub failed_reason: Option<FailedReason>,
    /// `requestedRenderConfig` as sent (checked), once the render was requested.
    pub requested_config: Option<RequestedConfig>,
    /// `finalConfig`, once the render was requested.
    pub final_config: Option<RenderConfig>,
    /// The `analysis` object, once validated. It never changes once written, so the store
    /// decodes it once per analysis id and shares it.
    pub analysis: Option<Arc<Analysis>>,
    /// Its id.
    pub analysis_id: Option<Uuid>,
    /// Object key of the preview image.
    pub preview_key: Option<String>,
    /// Σ render seconds × worker speed factor over finished tasks.
    pub normalized_seconds: f64,
    /// Frames this job renders.
    pub frames_total: i64,
    /// Frames rendered and stored.
    pub frames_done: i64,
    /// Frames in running tasks.
    pub frames_rendering: i64,
    /// Frames in failed tasks.
    pub frames_failed: i64,
    /// When the first task started.
    pub render_started_at: Option<i64>,
    /// Why the job is not progressing, when no worker can take it.
    pub waiting_reason: Option<String>,
    /// 0–100, higher first; 50 unless set.
    pub priority: i64,
    /// Frames finished inside running tasks, as their workers' heartbeats say (not yet stored).
    pub frames_running_done: i64,
    /// As `frames_running_done`, with each frame in flight counted by how far it is.
    pub frames_running_progress: f64,
    /// The Blender versions that rendered it, recorded when it completes.
    pub blender_versions: Vec<String>,
    /// When retention removed its files.
    pub outputs_deleted_at: Option<i64>,
    /// Frames found blank (every pixel one colour).
    pub frames_blank: i64,
    /// Frames with NaN or infinite samples (EXR).
    pub frames_non_finite: i64,
}

/// A workspace's use of the farm.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceUsage {
    /// The workspace.
    pub workspace_id: Uuid,
    /// Its jobs (every status).
    pub jobs: i64,
    /// Frames its jobs rendered.
    pub frames_done: i64,
    /// What its jobs cost, in the reference machine's seconds.
    pub normalized_seconds: f64,
}

/// What a worker's checks found wrong with a frame that still counts as rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameFlag {
    /// Every pixel is one colour.
    Blank,
    /// Some samples are NaN or infinite (EXR).
    NonFinite,
}

impl FrameFlag {
    /// Every flag.
    pub const ALL: [FrameFlag; 2] = [FrameFlag::Blank, FrameFlag::NonFinite];

    /// The stored name (also the name clients see in an output's `flags`).
    pub fn as_str(self) -> &'static str {
        match self {
            FrameFlag::Blank => "blank",
            FrameFlag::NonFinite => "non_finite",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<FrameFlag> {
        FrameFlag::ALL.into_iter().find(|it| it.as_str() == text)
    }
}

/// A job workers may claim from, with what orders it among the others.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnableJob {
    /// The job.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// 0–100, higher first.
    pub priority: i64,
    /// The workspace's share of the farm (1 unless an operator set another).
    pub share: f64,
}

/// Columns a transition may set alongside the status.
#[derive(Debug, Clone, Default)]
pub struct JobPatch {
    /// Sets `analysis_id` and `analysis` (whose `id` the caller has set to that id).
    pub analysis: Option<(Uuid, Analysis)>,
    /// Sets `failedReason`.
    pub failed_reason: Option<FailedReason>,
    /// Sets the preview key.
    pub preview_key: Option<String>,
    /// Until when the caller owns the validation it starts (for a move to `validating`);
    /// any other move clears it.
    pub validating_until: Option<i64>,
    /// Sets the Blender versions that rendered the job.
    pub blender_versions: Option<Vec<String>>,
}

/// What `/render` stores.
#[derive(Debug, Clone)]
pub struct StartRender {
    /// The checked request.
    pub requested_config: RequestedConfig,
    /// The final config.
    pub final_config: RenderConfig,
    /// The frames of each task, in order.
    pub chunks: Vec<FrameSet>,
    /// The job's priority, when the request set one.
    pub priority: Option<i64>,
}

/// Frames of a finished job to render again (`POST /retry`).
#[derive(Debug, Clone)]
pub struct Retry {
    /// The new tasks' frames, in order; they follow the job's existing tasks.
    pub chunks: Vec<FrameSet>,
    /// Frames rendered before whose outputs go (they render again).
    pub redo: Vec<i32>,
    /// New configs, when the retry changes the render.
    pub configs: Option<(RequestedConfig, RenderConfig)>,
}

/// A task row.
#[derive(Debug, Clone)]
pub struct Task {
    /// Task id.
    pub id: Uuid,
    /// Its job.
    pub job_id: Uuid,
    /// Position within the job.
    pub seq: i64,
    /// Its frames.
    pub frames: FrameSet,
    /// Status.
    pub status: TaskStatus,
    /// Attempt number (the fencing token).
    pub attempt: i64,
    /// Failed attempts so far.
    pub failures: i64,
    /// The last failure's message and log tail.
    pub last_error: Option<String>,
    /// The worker holding it, while running.
    pub worker_id: Option<String>,
    /// When its latest attempt started.
    pub started_at: Option<i64>,
    /// When it completed or last failed.
    pub finished_at: Option<i64>,
    /// Seconds Blender spent on it, once completed.
    pub render_seconds: Option<f64>,
    /// The Blender that rendered it, once completed.
    pub blender_version: Option<String>,
    /// While running: frames of it finished, as its worker last said.
    pub frames_done: i64,
    /// While running: how far the frame in flight is (0–1).
    pub frame_progress: f64,
}

/// The Blender output of one attempt at a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskLog {
    /// The attempt.
    pub attempt: i64,
    /// The worker that ran it.
    pub worker_id: String,
    /// What Blender printed (the tail, when `truncated`).
    pub text: String,
    /// The beginning was dropped to keep the log within its cap.
    pub truncated: bool,
    /// When it last grew.
    pub updated_at: i64,
}

/// A failed attempt at a task: the job's history keeps every one (a retry included).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedAttempt {
    /// The task.
    pub task_id: Uuid,
    /// Its attempt number.
    pub attempt: i64,
    /// The worker that failed it.
    pub worker_id: String,
    /// What it reported.
    pub error: String,
    /// When.
    pub at: i64,
}

/// The lease a worker holds: every call it makes names the task and the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The task.
    pub task_id: Uuid,
    /// The attempt the worker was given.
    pub attempt: i64,
}

/// An order of creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The newest first (what people look at).
    NewestFirst,
    /// The oldest first (work queues: nothing waits behind what came later).
    OldestFirst,
}

impl Order {
    /// The SQL direction.
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Order::NewestFirst => "desc",
            Order::OldestFirst => "asc",
        }
    }
}

/// How a claim picks and leases its task.
#[derive(Debug, Clone, Copy)]
pub struct ClaimOptions {
    /// The job whose scene the worker has loaded: its tasks come first.
    pub prefer: Option<Uuid>,
    /// Where to look for the preferred job's next task: its tasks before this position were
    /// claimed already. On PostgreSQL a claimed task leaves a dead entry at the head of the
    /// queue's index until vacuum; starting past them keeps a claim from stepping over every
    /// task claimed so far. 0 looks from the start (and finds requeued tasks).
    pub prefer_from_seq: i64,
    /// Lease length.
    pub lease_ms: i64,
    /// Now, unix milliseconds.
    pub now: i64,
    /// Failed attempts of a job after which the worker is blocklisted for it.
    pub blocklist_after: i64,
}

/// The claim a worker makes with its completion.
#[derive(Debug, Clone, Copy)]
pub struct NextClaim<'a> {
    /// The worker.
    pub worker_id: &'a str,
    /// The jobs it may claim from, in priority order.
    pub job_ids: &'a [Uuid],
    /// How.
    pub claim: ClaimOptions,
}

/// A task handed to a worker. What the worker needs of the job (its scene, its config) does
/// not change while the job renders, so the server reads it once per job, not per claim.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    /// The lease to name in every later call.
    pub lease: Lease,
    /// The job.
    pub job_id: Uuid,
    /// The task's position in its job.
    pub seq: i64,
    /// Frames to render.
    pub frames: FrameSet,
}

/// Whether a lease still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Go on.
    Held,
    /// Stop: the job was canceled, or the task was given to someone else.
    Lost,
}

/// What completing a task did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The attempt no longer held the task: nothing changed.
    Lost,
    /// The task completed; its job has tasks left.
    Completed,
    /// The task completed and it was its job's last: the job is finalizing.
    JobFinished,
}

/// A stored output of a task.
#[derive(Debug, Clone)]
pub struct NewOutput {
    /// `frame` or `composite`.
    pub kind: String,
    /// Frame number.
    pub frame: Option<i32>,
    /// File name as delivered (`0001.png`).
    pub file_name: String,
    /// Object key.
    pub object_key: String,
    /// Bytes.
    pub size: i64,
}

/// What a completed task delivers.
#[derive(Debug, Clone)]
pub struct TaskDone {
    /// Its outputs, already in object storage.
    pub outputs: Vec<NewOutput>,
    /// Wall seconds Blender spent rendering.
    pub render_seconds: f64,
    /// The worker's speed factor.
    pub speed_factor: f64,
    /// The Blender that rendered it, as the worker reports it.
    pub blender_version: Option<String>,
}

/// An output row.
#[derive(Debug, Clone)]
pub struct Output {
    /// `frame` or `composite`.
    pub kind: String,
    /// Frame number.
    pub frame: Option<i32>,
    /// File name.
    pub file_name: String,
    /// Object key.
    pub object_key: String,
    /// Bytes.
    pub size: i64,
    /// When it was stored.
    pub created_at: i64,
}

/// How a failed attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// The task waits for another attempt.
    Requeued,
    /// Enough different workers failed it: the task and its job failed.
    JobFailed,
    /// The attempt was no longer current; nothing changed.
    Lost,
}

/// A registered render node.
#[derive(Debug, Clone)]
pub struct WorkerRecord {
    /// Stable id chosen by the worker (kept in its data directory).
    pub id: String,
    /// Name for people (the host name by default).
    pub name: String,
    /// The token it registered with.
    pub token_id: Uuid,
    /// What it reported it can render.
    pub capabilities: WorkerCapabilities,
    /// Speed relative to the reference machine: the one used, refined by the jobs it shared.
    pub speed_factor: f64,
    /// The factor its reference renders measured (or its operator set).
    pub speed_measured: f64,
    /// How much the reference frames' times varied (half their range, relative); `None` when
    /// the operator set the factor.
    pub speed_spread: Option<f64>,
    /// Jobs shared with other workers that refined `speed_factor`.
    pub speed_observations: i64,
    /// First registration.
    pub registered_at: i64,
    /// Last call.
    pub last_seen_at: i64,
    /// Takes no new task (an operator drains it).
    pub draining: bool,
}

/// A worker token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerTokenInfo {
    /// The token's id.
    pub id: Uuid,
    /// Its visible prefix.
    pub prefix: String,
    /// Creation time.
    pub created_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
    /// Workers registered with it.
    pub workers: i64,
}

/// A task running now, as the list of workers shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningTask {
    /// The worker holding it.
    pub worker_id: String,
    /// The task.
    pub task_id: Uuid,
    /// Its job.
    pub job_id: Uuid,
    /// The job's workspace.
    pub workspace_id: Uuid,
    /// Its frames.
    pub frames: FrameSet,
    /// When this attempt started.
    pub started_at: Option<i64>,
}

/// A workspace's webhook endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRecord {
    /// Its id.
    pub id: Uuid,
    /// The workspace it belongs to.
    pub workspace_id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// The event names it asked for.
    pub events: Vec<String>,
    /// The nonce its secret was sealed with (hex).
    pub secret_nonce: String,
    /// Its secret, sealed (hex): the server's secrets key opens it.
    pub secret_sealed: String,
    /// Creation time.
    pub created_at: i64,
    /// Removal time, once removed.
    pub deleted_at: Option<i64>,
}

/// Something that happened to a job: one row of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Its place in the log (the event stream's `id`).
    pub seq: i64,
    /// The job's workspace.
    pub workspace_id: Uuid,
    /// The job.
    pub job_id: Uuid,
    /// The event's name (`onRenderComplete`, …).
    pub kind: String,
    /// The job's status (the one it entered, for a status change).
    pub status: String,
    /// What a progress or preview event says (JSON); `None` for a status change.
    pub data: Option<String>,
    /// When.
    pub at: i64,
}

/// A delivery leased for an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    /// Its id (`X-Orchard-Delivery`, the same on every attempt).
    pub id: Uuid,
    /// Attempts made before this one.
    pub attempts: i64,
    /// When the event was recorded (retries stop a day after).
    pub created_at: i64,
    /// The lease taken (the fence of the attempt's result).
    pub leased_until: i64,
    /// Where it goes.
    pub webhook: WebhookRecord,
    /// What it says.
    pub event: EventRecord,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// Try again at `at`.
    Retry {
        /// When.
        at: i64,
    },
    /// Given up.
    Dead,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// Its number, from 1.
    pub attempt: i64,
    /// When it was made.
    pub at: i64,
    /// The endpoint's status code, if it answered.
    pub status_code: Option<i64>,
    /// How long it took.
    pub latency_ms: i64,
    /// Why it failed without an answer (refused, timed out, …).
    pub error: Option<String>,
    /// The first bytes of the answer.
    pub response: Option<String>,
}

/// A delivery as its endpoint's log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryInfo {
    /// Its id.
    pub id: Uuid,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The next attempt, while pending.
    pub next_at: i64,
    /// When the event was recorded for it.
    pub created_at: i64,
    /// When it was delivered or given up.
    pub finished_at: Option<i64>,
    /// The last status code answered.
    pub last_status: Option<i64>,
    /// The event.
    pub event: EventRecord,
    /// Every attempt, oldest first.
    pub tries: Vec<AttemptRecord>,
}

/// What a compositor output is beside its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputDetail {
    /// The output's file name (as stored in `outputs`).
    pub file_name: String,
    /// Where its File Output node wrote it, relative to the node's base path.
    pub relative_path: String,
    /// The node's name.
    pub node_name: String,
    /// The view (multiview); empty otherwise.
    pub view: String,
}
