//! [`CachedReads`]: any store, with the client's read of a job (`GET /jobs/{id}`, polled
//! many times a second by busy pipelines) answered from memory while nothing could have
//! changed it.
//!
//! Every method of the wrapped store that can change what a job read returns (a status, a
//! counter, the frames rendering now) bumps a generation after it returns; a remembered job is
//! served only while the generation it was read at is current and it is younger than
//! [`JOB_MEMORY`]. So a caller always reads its own writes and every write made through this
//! process at once; a write made by another server sharing the database is seen within
//! [`JOB_MEMORY`]. Reads the server decides with (`get_job_internal`) always go to the
//! database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use orchard_domain::JobStatus;
use uuid::Uuid;

use crate::{
    AccountStore, AttemptRecord, ClaimOptions, ClaimedTask, Completion, DeliveryInfo, DeliveryOutcome, DueDelivery,
    EventRecord, FailOutcome, FrameFlag, Job, JobPatch, JobStore, KeyInfo, KeyOwner, Lease, LeaseState, NewJob, NewKey,
    NextClaim, NoticeStore, Order, Output, OutputDetail, Packaging, PackagingStore, Result, Retry, RunnableJob,
    StartRender, Task, TaskDone, TaskLog, TaskStore, Upload, UploadStore, WebhookRecord, WorkerRecord, WorkerStore,
};

/// How long a job read is remembered at most: how late this server may see a change that
/// another server made.
pub const JOB_MEMORY: Duration = Duration::from_millis(250);
/// Jobs remembered at most; past that the memory starts over.
const MAX_JOBS: usize = 10_000;

/// A store whose job reads for clients are remembered while nothing changed them.
#[derive(Debug)]
pub struct CachedReads<S> {
    inner: S,
    generation: AtomicU64,
    jobs: RwLock<HashMap<(Uuid, Uuid), Remembered>>,
}

#[derive(Debug)]
struct Remembered {
    generation: u64,
    at: Instant,
    job: Job,
}

impl<S> CachedReads<S> {
    /// `inner`, with job reads remembered.
    pub fn new(inner: S) -> CachedReads<S> {
        CachedReads { inner, generation: AtomicU64::new(0), jobs: RwLock::default() }
    }

    /// The remembered jobs, for reading (hits take no exclusive lock).
    fn jobs(&self) -> RwLockReadGuard<'_, HashMap<(Uuid, Uuid), Remembered>> {
        self.jobs.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn jobs_mut(&self) -> RwLockWriteGuard<'_, HashMap<(Uuid, Uuid), Remembered>> {
        self.jobs.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a write that may have changed a job: what is remembered is no longer served.
    fn changed<T>(&self, result: T) -> T {
        self.generation.fetch_add(1, Ordering::AcqRel);
        result
    }
}

#[async_trait]
impl<S: AccountStore> AccountStore for CachedReads<S> {
    async fn setting_or_insert(&self, name: &str, make: String) -> Result<String> {
        self.inner.setting_or_insert(name, make).await
    }
    async fn create_key(&self, new: NewKey, now: i64) -> Result<KeyOwner> {
        self.inner.create_key(new, now).await
    }
    async fn find_key(&self, key_hash: &str) -> Result<Option<KeyOwner>> {
        self.inner.find_key(key_hash).await
    }
    async fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        self.inner.list_keys().await
    }
    async fn revoke_key(&self, id_or_prefix: &str, now: i64) -> Result<bool> {
        self.inner.revoke_key(id_or_prefix, now).await
    }
    async fn set_share(&self, workspace: &str, share: f64) -> Result<bool> {
        self.inner.set_share(workspace, share).await
    }
    async fn set_retention(&self, workspace: &str, seconds: Option<i64>) -> Result<bool> {
        self.inner.set_retention(workspace, seconds).await
    }
}

#[async_trait]
impl<S: UploadStore> UploadStore for CachedReads<S> {
    async fn insert_upload(&self, upload: &Upload) -> Result<()> {
        self.inner.insert_upload(upload).await
    }
    async fn get_upload(&self, slug: &str) -> Result<Option<Upload>> {
        self.inner.get_upload(slug).await
    }
    async fn upload_has_job(&self, slug: &str) -> Result<bool> {
        self.inner.upload_has_job(slug).await
    }
    async fn mark_uploaded(&self, slug: &str, size: i64, sha256: &str, now: i64) -> Result<()> {
        self.inner.mark_uploaded(slug, size, sha256, now).await
    }
}

#[async_trait]
impl<S: JobStore> JobStore for CachedReads<S> {
    async fn create_job(&self, new: NewJob, now: i64) -> Result<(Job, bool)> {
        self.changed(self.inner.create_job(new, now).await)
    }

    async fn get_job(&self, workspace_id: Uuid, job_id: Uuid) -> Result<Option<Job>> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(it) = self.jobs().get(&(workspace_id, job_id))
            && it.generation == generation
            && it.at.elapsed() < JOB_MEMORY
        {
            return Ok(Some(it.job.clone()));
        }
        let job = self.inner.get_job(workspace_id, job_id).await?;
        // Remembered only if nothing was written meanwhile: the read may predate that write.
        if let Some(job) = &job
            && self.generation.load(Ordering::Acquire) == generation
        {
            let mut jobs = self.jobs_mut();
            if jobs.len() >= MAX_JOBS {
                jobs.clear();
            }
            jobs.insert((workspace_id, job_id), Remembered { generation, at: Instant::now(), job: job.clone() });
        }
        Ok(job)
    }

    async fn get_job_internal(&self, job_id: Uuid) -> Result<Option<Job>> {
        self.inner.get_job_internal(job_id).await
    }
    async fn list_jobs(
        &self,
        workspace_id: Uuid,
        statuses: &[JobStatus],
        page: u32,
        page_size: u32,
    ) -> Result<(Vec<Job>, u64)> {
        self.inner.list_jobs(workspace_id, statuses, page, page_size).await
    }
    async fn list_all_jobs(&self, statuses: &[JobStatus], page: u32, page_size: u32) -> Result<(Vec<Job>, u64)> {
        self.inner.list_all_jobs(statuses, page, page_size).await
    }
    async fn jobs_in_status(
        &self,
        workspace_id: Option<Uuid>,
        statuses: &[JobStatus],
        order: Order,
        limit: u32,
    ) -> Result<Vec<Job>> {
        self.inner.jobs_in_status(workspace_id, statuses, order, limit).await
    }
    async fn transition_job(
        &self,
        job_id: Uuid,
        from: JobStatus,
        to: JobStatus,
        patch: JobPatch,
        now: i64,
    ) -> Result<bool> {
        self.changed(self.inner.transition_job(job_id, from, to, patch, now).await)
    }
    async fn cancel_job(&self, job_id: Uuid, from: JobStatus, now: i64) -> Result<bool> {
        self.changed(self.inner.cancel_job(job_id, from, now).await)
    }
    async fn status_counts(&self) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)> {
        self.inner.status_counts().await
    }
    async fn set_priority(&self, job_id: Uuid, priority: i64, now: i64) -> Result<bool> {
        self.changed(self.inner.set_priority(job_id, priority, now).await)
    }
    async fn delete_job(&self, job_id: Uuid) -> Result<bool> {
        self.changed(self.inner.delete_job(job_id).await)
    }
    async fn jobs_past_retention(&self, now: i64, default_ms: Option<i64>, limit: u32) -> Result<Vec<Uuid>> {
        self.inner.jobs_past_retention(now, default_ms, limit).await
    }
    async fn forget_outputs(&self, job_id: Uuid, now: i64) -> Result<bool> {
        self.changed(self.inner.forget_outputs(job_id, now).await)
    }
    async fn set_preview(&self, job_id: Uuid, key: &str, now: i64) -> Result<()> {
        self.changed(self.inner.set_preview(job_id, key, now).await)
    }
    async fn usage(&self, workspace_id: Option<Uuid>, since: i64) -> Result<(Vec<crate::WorkspaceUsage>, i64)> {
        self.inner.usage(workspace_id, since).await
    }
    async fn set_waiting_reason(&self, job_id: Uuid, reason: Option<&str>) -> Result<()> {
        self.changed(self.inner.set_waiting_reason(job_id, reason).await)
    }
    async fn take_stale_validation(&self, now: i64, until: i64) -> Result<Option<Job>> {
        // Every server asks every few seconds; almost always nothing is taken, and nothing
        // a job read shows changed.
        let taken = self.inner.take_stale_validation(now, until).await;
        if matches!(taken, Ok(None)) { Ok(None) } else { self.changed(taken) }
    }
}

#[async_trait]
impl<S: TaskStore> TaskStore for CachedReads<S> {
    async fn start_render(&self, job_id: Uuid, start: StartRender, now: i64) -> Result<bool> {
        self.changed(self.inner.start_render(job_id, start, now).await)
    }
    async fn runnable_jobs(&self, limit: u32) -> Result<Vec<RunnableJob>> {
        self.inner.runnable_jobs(limit).await
    }
    async fn retry_render(&self, job_id: Uuid, from: JobStatus, retry: Retry, now: i64) -> Result<Option<Vec<String>>> {
        self.changed(self.inner.retry_render(job_id, from, retry, now).await)
    }
    async fn requeue_running(&self, job_id: Uuid) -> Result<u64> {
        self.inner.requeue_running(job_id).await
    }
    async fn claim_task(&self, worker_id: &str, job_ids: &[Uuid], claim: ClaimOptions) -> Result<Option<ClaimedTask>> {
        // A claim changes the frames rendering now, and starts a booting job rendering.
        self.changed(self.inner.claim_task(worker_id, job_ids, claim).await)
    }
    async fn heartbeat(
        &self,
        lease: &Lease,
        lease_ms: i64,
        now: i64,
        frames_done: i64,
        frame_progress: f64,
    ) -> Result<LeaseState> {
        // Progress within a task shows in job reads: what was remembered goes.
        self.changed(self.inner.heartbeat(lease, lease_ms, now, frames_done, frame_progress).await)
    }
    async fn append_task_log(&self, lease: &Lease, worker_id: &str, chunk: &str, cap: usize, now: i64) -> Result<bool> {
        self.inner.append_task_log(lease, worker_id, chunk, cap, now).await
    }
    async fn record_output_details(&self, job_id: Uuid, details: &[OutputDetail]) -> Result<()> {
        self.inner.record_output_details(job_id, details).await
    }
    async fn output_details(&self, job_id: Uuid) -> Result<Vec<OutputDetail>> {
        self.inner.output_details(job_id).await
    }
    async fn judge_frames(&self, job_id: Uuid, frames: &[i32], flagged: &[(i32, FrameFlag)]) -> Result<()> {
        self.changed(self.inner.judge_frames(job_id, frames, flagged).await)
    }
    async fn frame_flags(&self, job_id: Uuid) -> Result<Vec<(i32, FrameFlag)>> {
        self.inner.frame_flags(job_id).await
    }
    async fn task_log(&self, task_id: Uuid, attempt: Option<i64>) -> Result<Option<TaskLog>> {
        self.inner.task_log(task_id, attempt).await
    }
    async fn complete_task(&self, lease: &Lease, done: TaskDone, now: i64) -> Result<Completion> {
        self.changed(self.inner.complete_task(lease, done, now).await)
    }
    async fn complete_and_claim(
        &self,
        lease: &Lease,
        done: TaskDone,
        now: i64,
        next: NextClaim<'_>,
    ) -> Result<(Completion, Option<ClaimedTask>)> {
        self.changed(self.inner.complete_and_claim(lease, done, now, next).await)
    }
    async fn fail_task(
        &self,
        lease: &Lease,
        worker_id: &str,
        error: &str,
        max_workers: u32,
        now: i64,
    ) -> Result<FailOutcome> {
        self.changed(self.inner.fail_task(lease, worker_id, error, max_workers, now).await)
    }
    async fn job_failures_by_worker(&self, job_id: Uuid) -> Result<Vec<(String, i64)>> {
        self.inner.job_failures_by_worker(job_id).await
    }
    async fn last_job_failure(&self, job_id: Uuid) -> Result<Option<String>> {
        self.inner.last_job_failure(job_id).await
    }
    async fn rechunk_queued(&self, job_id: Uuid, chunk_size: usize) -> Result<usize> {
        self.changed(self.inner.rechunk_queued(job_id, chunk_size).await)
    }
    async fn requeue_expired(&self, now: i64) -> Result<u64> {
        let requeued = self.inner.requeue_expired(now).await;
        if matches!(requeued, Ok(0)) { Ok(0) } else { self.changed(requeued) }
    }
    async fn cancel_tasks(&self, job_id: Uuid) -> Result<()> {
        self.changed(self.inner.cancel_tasks(job_id).await)
    }
    async fn list_outputs(&self, job_id: Uuid) -> Result<Vec<Output>> {
        self.inner.list_outputs(job_id).await
    }
    async fn list_tasks(&self, job_id: Uuid) -> Result<Vec<Task>> {
        self.inner.list_tasks(job_id).await
    }
    async fn failed_attempts(&self, job_id: Uuid) -> Result<Vec<crate::FailedAttempt>> {
        self.inner.failed_attempts(job_id).await
    }
    async fn get_task(&self, task_id: Uuid) -> Result<Option<Task>> {
        self.inner.get_task(task_id).await
    }
}

#[async_trait]
impl<S: WorkerStore> WorkerStore for CachedReads<S> {
    async fn create_worker_token(&self, token_hash: &str, prefix: &str, now: i64) -> Result<Uuid> {
        self.inner.create_worker_token(token_hash, prefix, now).await
    }
    async fn find_worker_token(&self, token_hash: &str) -> Result<Option<Uuid>> {
        self.inner.find_worker_token(token_hash).await
    }
    async fn register_worker(&self, worker: &WorkerRecord) -> Result<()> {
        self.inner.register_worker(worker).await
    }
    async fn refine_speed(&self, worker_id: &str, factor: f64) -> Result<()> {
        self.inner.refine_speed(worker_id, factor).await
    }
    async fn get_worker(&self, worker_id: &str) -> Result<Option<WorkerRecord>> {
        self.inner.get_worker(worker_id).await
    }
    async fn touch_worker(&self, worker_id: &str, now: i64) -> Result<()> {
        self.inner.touch_worker(worker_id, now).await
    }
    async fn live_workers(&self, since: i64) -> Result<Vec<WorkerRecord>> {
        self.inner.live_workers(since).await
    }
    async fn list_worker_tokens(&self) -> Result<Vec<crate::WorkerTokenInfo>> {
        self.inner.list_worker_tokens().await
    }
    async fn revoke_worker_token(&self, id_or_prefix: &str, now: i64) -> Result<bool> {
        self.inner.revoke_worker_token(id_or_prefix, now).await
    }
    async fn set_draining(&self, worker_id: &str, draining: bool) -> Result<bool> {
        self.inner.set_draining(worker_id, draining).await
    }
    async fn running_tasks(&self) -> Result<Vec<crate::RunningTask>> {
        self.inner.running_tasks().await
    }
}

#[async_trait]
impl<S: NoticeStore> NoticeStore for CachedReads<S> {
    async fn create_webhook(&self, webhook: &WebhookRecord) -> Result<()> {
        self.inner.create_webhook(webhook).await
    }
    async fn list_webhooks(&self, workspace_id: Uuid) -> Result<Vec<WebhookRecord>> {
        self.inner.list_webhooks(workspace_id).await
    }
    async fn get_webhook(&self, workspace_id: Uuid, id: Uuid) -> Result<Option<WebhookRecord>> {
        self.inner.get_webhook(workspace_id, id).await
    }
    async fn delete_webhook(&self, workspace_id: Uuid, id: Uuid, now: i64) -> Result<bool> {
        self.inner.delete_webhook(workspace_id, id, now).await
    }
    async fn reseal_webhook(&self, workspace_id: Uuid, id: Uuid, nonce: &str, sealed: &str) -> Result<bool> {
        self.inner.reseal_webhook(workspace_id, id, nonce, sealed).await
    }
    async fn events_after(&self, workspace_id: Option<Uuid>, after: i64, limit: u32) -> Result<Vec<EventRecord>> {
        self.inner.events_after(workspace_id, after, limit).await
    }
    async fn last_event_seq(&self) -> Result<i64> {
        self.inner.last_event_seq().await
    }
    async fn record_event(&self, job_id: Uuid, kind: &str, data: Option<&str>, now: i64) -> Result<bool> {
        self.inner.record_event(job_id, kind, data, now).await
    }
    async fn prune_events(&self, before: i64) -> Result<u64> {
        self.inner.prune_events(before).await
    }
    async fn claim_deliveries(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<DueDelivery>> {
        self.inner.claim_deliveries(now, lease_until, limit).await
    }
    async fn finish_delivery(
        &self,
        delivery: &DueDelivery,
        attempt: &AttemptRecord,
        outcome: DeliveryOutcome,
    ) -> Result<bool> {
        self.inner.finish_delivery(delivery, attempt, outcome).await
    }
    async fn list_deliveries(&self, webhook_id: Uuid, limit: u32) -> Result<Vec<DeliveryInfo>> {
        self.inner.list_deliveries(webhook_id, limit).await
    }
    async fn redeliver(&self, webhook_id: Uuid, delivery_id: Uuid, now: i64) -> Result<Option<Uuid>> {
        self.inner.redeliver(webhook_id, delivery_id, now).await
    }
}

#[async_trait]
impl<S: PackagingStore> PackagingStore for CachedReads<S> {
    async fn queue_packaging(&self, job_id: Uuid, now: i64) -> Result<Packaging> {
        self.inner.queue_packaging(job_id, now).await
    }
    async fn packaging(&self, job_id: Uuid) -> Result<Option<Packaging>> {
        self.inner.packaging(job_id).await
    }
    async fn packaging_by_id(&self, id: Uuid) -> Result<Option<Packaging>> {
        self.inner.packaging_by_id(id).await
    }
    async fn claim_packaging(&self, worker_id: &str, now: i64, lease_until: i64) -> Result<Option<Packaging>> {
        self.inner.claim_packaging(worker_id, now, lease_until).await
    }
    async fn renew_packaging(&self, id: Uuid, attempt: i64, worker_id: &str, lease_until: i64) -> Result<bool> {
        self.inner.renew_packaging(id, attempt, worker_id, lease_until).await
    }
    async fn finish_packaging(&self, id: Uuid, attempt: i64, worker_id: &str, result: &str, now: i64) -> Result<bool> {
        self.inner.finish_packaging(id, attempt, worker_id, result, now).await
    }
    async fn fail_packaging(
        &self,
        id: Uuid,
        attempt: i64,
        worker_id: &str,
        error: &str,
        max_failures: i64,
        now: i64,
    ) -> Result<bool> {
        self.inner.fail_packaging(id, attempt, worker_id, error, max_failures, now).await
    }
    async fn forget_packaging(&self, job_id: Uuid) -> Result<()> {
        self.inner.forget_packaging(job_id).await
    }
}
