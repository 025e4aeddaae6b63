//! Orchard's metadata store: the only crate that contains SQL.
//!
//! [`Store`] is the trait the server uses; its methods are named for use cases
//! (`claim_task`, `complete_task`), not CRUD. Every status change is a compare-and-set
//! against the status the caller read, computed by `orchard-domain`'s transition functions,
//! so two servers (or two requests) can never both move a job out of the same status.
//!
//! [`SqliteStore`] is the embedded implementation; [`PgStore`] is the one several servers
//! share. Each has its own migration set (`migrations/sqlite`, `migrations/postgres`) with the
//! same tables and columns; one conformance suite (`tests/`) runs on both.

mod postgres;
mod records;
mod rows;
mod sqlite;

use async_trait::async_trait;
use orchard_domain::{FrameSet, JobStatus};
use uuid::Uuid;

pub use postgres::PgStore;
pub use records::*;
pub use sqlite::SqliteStore;

/// Why a store call failed. Business outcomes ("not found", "status changed meanwhile") are
/// not errors: they are in each method's return type.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite's batching writer refused or failed.
    #[error("database error: {0}")]
    Sqlite(String),
    /// A PostgreSQL batch of claims and completions failed; each of its operations is
    /// answered with this.
    #[error("database error: {0}")]
    Batch(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value cannot be read back; the database was changed by something else.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What could not be decoded.
        reason: String,
    },
}

/// Result alias for store calls.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The metadata store. Times are unix milliseconds passed in by the caller.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Accounts.

    /// Returns the named setting, creating it with `make()` if absent. Used for secrets that
    /// every server of a deployment must share (the URL-signing key).
    async fn setting_or_insert(&self, name: &str, make: String) -> Result<String>;
    /// Creates a key for `user_name` in `workspace_name`, creating both if new.
    async fn create_key(&self, new: NewKey, now: i64) -> Result<KeyOwner>;
    /// Finds the owner of an unrevoked key by its hash.
    async fn find_key(&self, key_hash: &str) -> Result<Option<KeyOwner>>;
    /// Lists keys (never their hashes), newest first.
    async fn list_keys(&self) -> Result<Vec<KeyInfo>>;
    /// Revokes the key whose id or prefix is given; false if none matched.
    async fn revoke_key(&self, id_or_prefix: &str, now: i64) -> Result<bool>;

    // Uploads.

    /// Records a new upload target.
    async fn insert_upload(&self, upload: &Upload) -> Result<()>;
    /// Finds an upload by slug.
    async fn get_upload(&self, slug: &str) -> Result<Option<Upload>>;
    /// Whether a job was made from this upload (its bytes are then fixed).
    async fn upload_has_job(&self, slug: &str) -> Result<bool>;
    /// Records that the bytes arrived.
    async fn mark_uploaded(&self, slug: &str, size: i64, sha256: &str, now: i64) -> Result<()>;

    // Jobs.

    /// Creates the job for an upload, or returns the one that slug already made (`false`).
    async fn create_job(&self, new: NewJob, now: i64) -> Result<(Job, bool)>;
    /// A job of a workspace; `None` for unknown ids and other workspaces' jobs alike.
    async fn get_job(&self, workspace_id: Uuid, job_id: Uuid) -> Result<Option<Job>>;
    /// A job, whoever owns it (internal use: workers, background duties).
    async fn get_job_internal(&self, job_id: Uuid) -> Result<Option<Job>>;
    /// One page of a workspace's jobs, newest first, and the total count.
    async fn list_jobs(
        &self,
        workspace_id: Uuid,
        statuses: &[JobStatus],
        page: u32,
        page_size: u32,
    ) -> Result<(Vec<Job>, u64)>;
    /// Jobs of a workspace (or of all) in the given statuses, at most `limit`, in `order` of creation.
    async fn jobs_in_status(
        &self,
        workspace_id: Option<Uuid>,
        statuses: &[JobStatus],
        order: Order,
        limit: u32,
    ) -> Result<Vec<Job>>;
    /// Moves a job from `from` to `to` and applies `patch`; false if it was no longer in `from`.
    async fn transition_job(
        &self,
        job_id: Uuid,
        from: JobStatus,
        to: JobStatus,
        patch: JobPatch,
        now: i64,
    ) -> Result<bool>;
    /// Sets the preview image key.
    async fn set_preview(&self, job_id: Uuid, key: &str, now: i64) -> Result<()>;

    // Tasks.

    /// Moves a job from `validated` to `booting` with its configs and tasks, in one transaction.
    async fn start_render(&self, job_id: Uuid, start: StartRender, now: i64) -> Result<bool>;
    /// Ids of jobs with queued tasks, oldest first (at most `limit`): what workers may claim from.
    async fn runnable_job_ids(&self, limit: u32) -> Result<Vec<Uuid>>;
    /// Jobs `worker_id` failed at least `threshold` attempts of: it is blocklisted for them.
    async fn blocklisted_jobs(&self, worker_id: &str, threshold: i64) -> Result<Vec<Uuid>>;
    /// Leases a queued task to `worker_id`: the first task of `prefer` (the job whose scene the
    /// worker has loaded) if it is among `job_ids`, else of the first job of `job_ids` (in
    /// priority order, oldest first) that has one. Jobs `worker_id` failed `blocklist_after`
    /// attempts of are skipped (it is blocklisted for them).
    async fn claim_task(&self, worker_id: &str, job_ids: &[Uuid], claim: ClaimOptions) -> Result<Option<ClaimedTask>>;
    /// Extends a lease; says whether the worker should go on.
    async fn heartbeat(&self, lease: &Lease, lease_ms: i64, now: i64) -> Result<LeaseState>;
    /// Stores a task's outputs and completes it; moves the job to `finalizing` with its last task.
    async fn complete_task(&self, lease: &Lease, done: TaskDone, now: i64) -> Result<Completion>;
    /// [`Store::complete_task`], then, if the attempt held, [`Store::claim_task`] for the same
    /// worker, in the same batch. A next claim that fails only means no next task (the
    /// completion stands).
    async fn complete_and_claim(
        &self,
        lease: &Lease,
        done: TaskDone,
        now: i64,
        next: NextClaim<'_>,
    ) -> Result<(Completion, Option<ClaimedTask>)>;
    /// Records a failed attempt by `worker_id`: the task is requeued, or, once
    /// `max_workers` different workers failed it, it fails and so does its job.
    async fn fail_task(
        &self,
        lease: &Lease,
        worker_id: &str,
        error: &str,
        max_workers: u32,
        now: i64,
    ) -> Result<FailOutcome>;
    /// Failed attempts on a job, per worker: what blocklists a worker for the job.
    async fn job_failures_by_worker(&self, job_id: Uuid) -> Result<Vec<(String, i64)>>;
    /// The most recent failure message of a job, if any.
    async fn last_job_failure(&self, job_id: Uuid) -> Result<Option<String>>;
    /// Sets or clears why a job is not progressing.
    async fn set_waiting_reason(&self, job_id: Uuid, reason: Option<&str>) -> Result<()>;
    /// Regroups a job's never-claimed queued tasks into tasks of `chunk_size` frames (same
    /// frames, same order); returns how many tasks there are now. Tasks that ran or failed
    /// before keep their history and are left alone.
    async fn rechunk_queued(&self, job_id: Uuid, chunk_size: usize) -> Result<usize>;
    /// Requeues tasks whose lease expired before `now`; returns how many.
    async fn requeue_expired(&self, now: i64) -> Result<u64>;
    /// Cancels the unfinished tasks of a job that just failed; their workers lose their leases.
    async fn cancel_tasks(&self, job_id: Uuid) -> Result<()>;
    /// Cancels a job and its unfinished tasks; false if it was already terminal.
    async fn cancel_job(&self, job_id: Uuid, from: JobStatus, now: i64) -> Result<bool>;
    /// A job's stored outputs, by frame.
    async fn list_outputs(&self, job_id: Uuid) -> Result<Vec<Output>>;
    /// A job's tasks, in order.
    async fn list_tasks(&self, job_id: Uuid) -> Result<Vec<Task>>;
    /// One task.
    async fn get_task(&self, task_id: Uuid) -> Result<Option<Task>>;

    // Workers.

    /// Records a worker token (its sha256 and visible prefix).
    async fn create_worker_token(&self, token_hash: &str, prefix: &str, now: i64) -> Result<Uuid>;
    /// The id of an unrevoked worker token.
    async fn find_worker_token(&self, token_hash: &str) -> Result<Option<Uuid>>;
    /// Registers a worker, or updates it when it registers again (after a restart).
    async fn register_worker(&self, worker: &WorkerRecord) -> Result<()>;
    /// A registered worker.
    async fn get_worker(&self, worker_id: &str) -> Result<Option<WorkerRecord>>;
    /// Notes that a worker called in.
    async fn touch_worker(&self, worker_id: &str, now: i64) -> Result<()>;
    /// Workers seen at or after `since`.
    async fn live_workers(&self, since: i64) -> Result<Vec<WorkerRecord>>;
}

/// The frames of a job's untouched queued tasks (each task's stored `frames`, in order)
/// regrouped into chunks of `chunk_size`, or `None` when that would not make fewer tasks.
pub(crate) fn regroup(stored: &[String], chunk_size: usize) -> Result<Option<Vec<FrameSet>>> {
    let mut frames = Vec::new();
    for json in stored {
        frames.extend_from_slice(task_frames(json)?.frames());
    }
    let Ok(all) = FrameSet::from_frames(frames) else { return Ok(None) };
    let chunks = all.chunks(chunk_size);
    Ok((chunks.len() < stored.len()).then_some(chunks))
}

/// Checks that a claimed task's frames decode; a stored task always holds a valid set.
pub fn task_frames(frames_json: &str) -> Result<FrameSet> {
    let frames: Vec<i32> =
        serde_json::from_str(frames_json).map_err(|e| StoreError::Corrupt { table: "tasks", reason: e.to_string() })?;
    FrameSet::from_frames(frames).map_err(|e| StoreError::Corrupt { table: "tasks", reason: e.to_string() })
}
