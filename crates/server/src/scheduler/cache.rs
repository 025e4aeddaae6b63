//! What the scheduler remembers between claims. Each memory only saves a read: the store's
//! fenced statements stay the authority, so a forgotten or stale entry costs a query, never a
//! wrong answer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use orchard_domain::FrameSet;
use orchard_store::RunnableJob;
use uuid::Uuid;

use super::claims::JobInfo;
use super::order::Usage;
use crate::policy::{MAX_ADAPTED_JOBS, MAX_REMEMBERED, RUNNABLE_TTL};

/// The scheduler's memories, each behind its own lock (none is held across an await).
#[derive(Debug, Default)]
pub(crate) struct Cache {
    /// What claims need of each rendering job: fixed once it renders.
    jobs: Mutex<HashMap<Uuid, Arc<JobInfo>>>,
    /// The runnable jobs, as the store lists them, and when they were read.
    runnable: Mutex<Option<(Instant, Arc<Vec<RunnableJob>>)>>,
    /// Frames each workspace's claims took lately, for fair share.
    usage: Mutex<Usage>,
    /// Jobs whose tasks were regrouped by measured frame time (once per job and server).
    adapted: Mutex<HashSet<Uuid>>,
    /// Leases granted here, until their task completes or fails here.
    granted: Mutex<HashMap<Uuid, Granted>>,
    /// Per job, the position after the last task claimed here: the queue's live head, as far
    /// as this server knows (see `ClaimOptions::prefer_from_seq`).
    heads: Mutex<HashMap<Uuid, i64>>,
}

/// A lease this server granted.
#[derive(Debug, Clone)]
pub(crate) struct Granted {
    /// The task's job.
    pub(crate) job_id: Uuid,
    /// The task's frames.
    pub(crate) frames: FrameSet,
    attempt: i64,
    worker_id: String,
    at: Instant,
}

impl Granted {
    pub(crate) fn new(job_id: Uuid, frames: FrameSet, attempt: i64, worker_id: &str) -> Granted {
        Granted { job_id, frames, attempt, worker_id: worker_id.to_string(), at: Instant::now() }
    }
}

/// Locks `mutex`, recovering from a panic elsewhere: every memory here is a cache, and a
/// half-updated cache entry is still only a hint.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|it| it.into_inner())
}

/// Inserts into a bounded map: past `MAX_REMEMBERED` entries it starts over.
fn remember<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= MAX_REMEMBERED {
        map.clear();
    }
    map.insert(key, value);
}

impl Cache {
    /// The runnable jobs read less than [`RUNNABLE_TTL`] ago.
    pub(crate) fn runnable(&self) -> Option<Arc<Vec<RunnableJob>>> {
        lock(&self.runnable).as_ref().filter(|(at, _)| at.elapsed() < RUNNABLE_TTL).map(|(_, ids)| ids.clone())
    }

    /// Remembers the runnable jobs just read; jobs that stopped rendering leave the memory.
    pub(crate) fn set_runnable(&self, jobs: Arc<Vec<RunnableJob>>) {
        lock(&self.jobs).retain(|id, _| jobs.iter().any(|it| it.id == *id));
        *lock(&self.runnable) = Some((Instant::now(), jobs));
    }

    /// `jobs` in claim order, by the accounts of fair share (see `order.rs`).
    pub(crate) fn in_claim_order(&self, jobs: &[RunnableJob]) -> (Vec<RunnableJob>, Instant) {
        let now = Instant::now();
        (super::order::in_claim_order(jobs, &lock(&self.usage), now), now)
    }

    /// How `job` stands in fair share now (lower goes first).
    pub(crate) fn standing(&self, job: &RunnableJob, now: Instant) -> f64 {
        super::order::standing(job, &lock(&self.usage), now)
    }

    /// A claim of `workspace` took `frames`.
    pub(crate) fn served(&self, workspace: Uuid, frames: usize) {
        lock(&self.usage).add(workspace, frames, Instant::now());
    }

    /// Drops the remembered runnable jobs: the next claim reads them again. Tasks may have
    /// been requeued behind the known queue heads, so those go too.
    pub(crate) fn forget_runnable(&self) {
        *lock(&self.runnable) = None;
        lock(&self.heads).clear();
    }

    /// What claims need of `job_id`, if remembered.
    pub(crate) fn job(&self, job_id: Uuid) -> Option<Arc<JobInfo>> {
        lock(&self.jobs).get(&job_id).cloned()
    }

    /// Forgets what claims need of `job_id` (its config changed).
    pub(crate) fn forget_job(&self, job_id: Uuid) {
        lock(&self.jobs).remove(&job_id);
        lock(&self.heads).remove(&job_id);
    }

    /// Remembers what claims need of `job_id`.
    pub(crate) fn set_job(&self, job_id: Uuid, info: Arc<JobInfo>) {
        remember(&mut lock(&self.jobs), job_id, info);
    }

    /// The lease of `task_id` granted here to `worker_id` with `attempt`, if younger than
    /// `ttl` (older ones are read from the store: the lease may have expired since).
    pub(crate) fn granted(&self, task_id: Uuid, attempt: i64, worker_id: &str, ttl: Duration) -> Option<Granted> {
        lock(&self.granted)
            .get(&task_id)
            .filter(|it| it.attempt == attempt && it.worker_id == worker_id && it.at.elapsed() < ttl)
            .cloned()
    }

    /// Remembers a lease granted here.
    pub(crate) fn grant(&self, task_id: Uuid, granted: Granted) {
        remember(&mut lock(&self.granted), task_id, granted);
    }

    /// Forgets a lease once its task completed or failed.
    pub(crate) fn forget_granted(&self, task_id: Uuid) {
        lock(&self.granted).remove(&task_id);
    }

    /// Where to look for `job_id`'s next task.
    pub(crate) fn head(&self, job_id: Uuid) -> i64 {
        lock(&self.heads).get(&job_id).copied().unwrap_or(0)
    }

    /// Notes where a claim found a job's next task (`None`: the job's queue past the known
    /// head was empty, so the next claim looks from the start, for requeued tasks).
    pub(crate) fn claimed_at(&self, job_id: Uuid, seq: Option<i64>) {
        let mut heads = lock(&self.heads);
        match seq {
            Some(seq) => {
                if heads.len() >= MAX_REMEMBERED {
                    heads.clear();
                }
                let head = heads.entry(job_id).or_default();
                *head = (*head).max(seq + 1);
            }
            None => {
                heads.remove(&job_id);
            }
        }
    }

    /// Whether `job_id`'s tasks are to be adapted now: true once per job.
    pub(crate) fn first_adaptation(&self, job_id: Uuid) -> bool {
        let mut adapted = lock(&self.adapted);
        if adapted.len() > MAX_ADAPTED_JOBS {
            adapted.clear();
        }
        adapted.insert(job_id)
    }
}
