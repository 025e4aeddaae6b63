//! Splitting jobs into tasks, matching jobs to workers, and handing out tasks.
//!
//! - `matching`: what a job needs and which of a worker's Blenders fits (pure).
//! - `chunks`: frames per task (pure).
//! - `claims`: the claim itself — runnable jobs, eligible ones, the store's lease, the task
//!   as handed out.
//! - `order`: the order claims take jobs in — priority, fair share between workspaces, age.
//! - `review`: whether a job can progress, and why not.
//! - `cache`: what the scheduler remembers between claims.
//!
//! A worker that failed 3 attempts of a job is blocklisted for it (the claim statement
//! checks); a job no connected worker can take waits with a reason; a job every capable
//! worker is blocklisted from fails — `lifecycle` applies what [`Scheduler::review`] finds.

mod cache;
mod chunks;
mod claims;
mod matching;
mod order;
mod review;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use orchard_store::{Completion, Lease, NextClaim, Store, TaskDone, WorkerRecord};
use tokio::sync::Notify;
use tracing::{info, warn};
use uuid::Uuid;

pub(crate) use cache::Granted;
pub(crate) use chunks::first_chunk_size;
use claims::Finished;
pub(crate) use claims::{Claimed, scene_ref};
pub(crate) use review::Verdict;

use crate::clock::now_ms;
use crate::error::{Chain, Result};
use crate::policy::{PACKAGING_RECHECK, connected_window};

/// The scheduler of one server. Several servers may share a store: each remembers only
/// hints, and the store's fenced statements decide.
pub(crate) struct Scheduler {
    store: Arc<dyn Store>,
    cache: cache::Cache,
    lease_ttl: Duration,
    /// Wakes long-polling claims when tasks become claimable.
    work_available: Notify,
    /// This server queued or requeued a packaging task since claims last asked the store.
    packaging_queued: AtomicBool,
    /// When claims last asked the store for a packaging task (unix ms).
    packaging_looked: AtomicI64,
}

impl Scheduler {
    /// A scheduler over `store`, granting leases of `lease_ttl`.
    pub(crate) fn new(store: Arc<dyn Store>, lease_ttl: Duration) -> Scheduler {
        Scheduler {
            store,
            cache: cache::Cache::default(),
            lease_ttl,
            work_available: Notify::new(),
            // One may wait from before this server started.
            packaging_queued: AtomicBool::new(true),
            packaging_looked: AtomicI64::new(0),
        }
    }

    /// A packaging task may be claimable now: this server queued or requeued one.
    pub(crate) fn packaging_queued(&self) {
        self.packaging_queued.store(true, Ordering::Release);
        self.work_available.notify_waiters();
    }

    /// Whether a claim should ask the store for a packaging task: this server queued one since
    /// the last look, or the last look is [`PACKAGING_RECHECK`] old (another server's, or a
    /// lease that ran out). Spares every other claim a write on the store.
    pub(crate) fn packaging_may_be_due(&self) -> bool {
        let now = now_ms();
        if self.packaging_queued.swap(false, Ordering::AcqRel) {
            self.packaging_looked.store(now, Ordering::Release);
            return true;
        }
        let last = self.packaging_looked.load(Ordering::Acquire);
        now - last >= PACKAGING_RECHECK.as_millis() as i64
            && self.packaging_looked.compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Tasks became claimable here (a render started, a task was requeued, a worker joined):
    /// claims look again at once, with a fresh list of runnable jobs.
    pub(crate) fn work_arrived(&self) {
        self.cache.forget_runnable();
        self.work_available.notify_waiters();
    }

    /// Resolves at the next [`Scheduler::work_arrived`]. Register before looking, so that work
    /// arriving in between still wakes the caller.
    pub(crate) fn work_available(&self) -> tokio::sync::futures::Notified<'_> {
        self.work_available.notified()
    }

    /// Claims a task for `worker`: of the runnable jobs it can render and is not blocklisted
    /// from, the first in claim order (`order.rs`); `prefer`'s while it ranks with the first.
    pub(crate) async fn claim(&self, worker: &WorkerRecord, prefer: Option<Uuid>) -> Result<Option<Claimed>> {
        let mut fresh = false;
        loop {
            let Some(plan) = self.plan(worker, prefer, fresh).await? else { return Ok(None) };
            let claimed = self.store.claim_task(&worker.id, &plan.ids, plan.options).await?;
            match self.finish(worker, plan, claimed)? {
                Finished::Task(claimed) => return Ok(Some(*claimed)),
                Finished::Nothing => return Ok(None),
                Finished::Retry => fresh = true,
            }
        }
    }

    /// Completes a task; with `claim_next` (the worker's preferred job, if any), claims its
    /// next task in the same batch of the store.
    pub(crate) async fn complete(
        &self,
        worker: &WorkerRecord,
        lease: &Lease,
        done: TaskDone,
        claim_next: Option<Option<Uuid>>,
    ) -> Result<(Completion, Option<Claimed>)> {
        let plan = match claim_next {
            Some(prefer) => self.plan(worker, prefer, false).await?,
            None => None,
        };
        let (outcome, claimed) = match &plan {
            Some(plan) => {
                let next = NextClaim { worker_id: &worker.id, job_ids: &plan.ids, claim: plan.options };
                self.store.complete_and_claim(lease, done, now_ms(), next).await?
            }
            None => (self.store.complete_task(lease, done, now_ms()).await?, None),
        };
        self.cache.forget_granted(lease.task_id);
        let Some(plan) = plan else { return Ok((outcome, None)) };
        let next = match self.finish(worker, plan, claimed)? {
            Finished::Task(next) => Some(*next),
            Finished::Nothing => None,
            Finished::Retry => self.claim(worker, claim_next.flatten()).await?,
        };
        Ok((outcome, next))
    }

    /// The lease of `task_id` granted here to `worker_id` with `attempt`, while it is surely
    /// still held (younger than a lease).
    pub(crate) fn granted(&self, task_id: Uuid, attempt: i64, worker_id: &str) -> Option<Granted> {
        self.cache.granted(task_id, attempt, worker_id, self.lease_ttl)
    }

    /// Forgets what claims remembered of `job_id`: its config changed (a retry).
    pub(crate) fn forget_job(&self, job_id: Uuid) {
        self.cache.forget_job(job_id);
    }

    /// Forgets a lease granted here once its task failed.
    pub(crate) fn forget_granted(&self, task_id: Uuid) {
        self.cache.forget_granted(task_id);
    }

    /// Workers that called in recently enough to count as connected.
    pub(crate) async fn connected_workers(&self) -> Result<Vec<WorkerRecord>> {
        let since = now_ms() - connected_window(self.lease_ttl).as_millis() as i64;
        Ok(self.store.live_workers(since).await?)
    }

    /// After a job's first completed task here: regroups its untouched queued tasks by the
    /// measured frame time (unless the job fixed `chunkSize`). Failures only log: the job
    /// renders as it was split.
    pub(crate) async fn adapt_chunks(&self, job_id: Uuid, render_seconds: f64, n_frames: usize) {
        if !self.cache.first_adaptation(job_id) {
            return;
        }
        if let Err(error) = self.try_adapt_chunks(job_id, render_seconds, n_frames).await {
            warn!(error = %Chain(&error), "could not regroup tasks");
        }
    }

    async fn try_adapt_chunks(&self, job_id: Uuid, render_seconds: f64, n_frames: usize) -> Result<()> {
        let Some(job) = self.store.get_job_internal(job_id).await? else { return Ok(()) };
        if job.final_config.as_ref().is_none_or(|it| it.chunk_size.is_some()) {
            return Ok(());
        }
        let remaining = (job.frames_total - job.frames_done - job.frames_rendering).max(0) as usize;
        let n_workers = self.connected_workers().await?.len();
        let chunk = chunks::adapted_chunk(render_seconds / n_frames.max(1) as f64, remaining, n_workers);
        if chunk > first_chunk_size(job.frames_total.max(0) as usize) {
            let n_tasks = self.store.rechunk_queued(job_id, chunk).await?;
            self.cache.claimed_at(job_id, None);
            info!(chunk, tasks = n_tasks, "tasks regrouped by measured frame time");
        }
        Ok(())
    }
}

/// The Blender of `capabilities` (by version) that opens `job`'s scene to package it: the
/// oldest as new as the file, else the newest there is (sound and colour survive most
/// version gaps; a refusal fails the attempt with Blender's own words).
pub(crate) fn blender_to_open(
    job: &orchard_store::Job,
    capabilities: &orchard_domain::WorkerCapabilities,
) -> Option<String> {
    matching::Requirements::to_open(job).choose(capabilities).ok().or_else(|| {
        let mut versions: Vec<&String> = capabilities.blenders.iter().map(|it| &it.version).collect();
        versions.sort_by_key(|it| matching::version_of(it));
        versions.last().map(|it| (*it).clone())
    })
}
