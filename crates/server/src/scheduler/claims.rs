//! Handing out tasks: which jobs a worker may take (runnable, matching, not blocklisted —
//! the store checks the blocklist in the claim itself), in order, and the task as the worker
//! gets it.

use std::sync::Arc;

use orchard_api::SceneRef;
use orchard_domain::RenderConfig;
use orchard_store::{ClaimOptions, ClaimedTask, Job, RunnableJob, WorkerRecord};
use uuid::Uuid;

use super::Scheduler;
use super::cache::Granted;
use super::matching::Requirements;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::policy::{BLOCKLIST_AFTER, CLAIM_WINDOW};

/// What a claim needs of a rendering job; fixed once the job renders, so read once per job.
#[derive(Debug)]
pub(crate) struct JobInfo {
    requirements: Requirements,
    scene: SceneRef,
    /// The final config as the worker gets it (encoded once per job, not per claim).
    config: serde_json::Value,
    /// What names the frames' files (the final config's output name and format).
    naming: Option<Arc<RenderConfig>>,
}

/// The scene of `job` as a worker fetches and opens it.
pub(crate) fn scene_ref(job: &Job) -> SceneRef {
    let analysis = job.analysis.as_deref();
    SceneRef {
        file_name: job.file_name.clone(),
        file_type: job.file_type.clone(),
        sha256: analysis.map(|it| it.sha256.clone()).unwrap_or_default(),
        main_file: analysis.and_then(|it| it.main_file.clone()),
        scene_name: analysis.and_then(|it| it.active_scene.clone()),
    }
}

impl JobInfo {
    fn of(job: &Job) -> Result<JobInfo> {
        Ok(JobInfo {
            requirements: Requirements::of(job),
            scene: scene_ref(job),
            config: match &job.final_config {
                Some(config) => serde_json::to_value(config).map_err(anyhow::Error::from)?,
                None => serde_json::Value::Null,
            },
            naming: job.final_config.clone().map(Arc::new),
        })
    }
}

/// A claimed task, as handed to the worker (less its upload URLs, which need the caller's
/// base URL).
#[derive(Debug)]
pub(crate) struct Claimed {
    /// The task.
    pub(crate) task: ClaimedTask,
    /// The job's scene.
    pub(crate) scene: SceneRef,
    /// The final config.
    pub(crate) config: serde_json::Value,
    /// The worker's Blender that renders it.
    pub(crate) blender_version: String,
    /// What names its frames' files (`RenderConfig::frame_file_name`), to name them before they exist.
    pub(crate) naming: Option<Arc<RenderConfig>>,
}

/// A claim ready for the store: the jobs the worker may take, in order, and how.
pub(super) struct Plan {
    eligible: Vec<(RunnableJob, Arc<JobInfo>, String)>,
    /// The jobs, in priority order.
    pub(super) ids: Vec<Uuid>,
    /// How the store picks and leases the task.
    pub(super) options: ClaimOptions,
    /// Whether the runnable jobs were read for this plan (not remembered).
    read_now: bool,
}

/// What came of a planned claim.
pub(super) enum Finished {
    /// A task.
    Task(Box<Claimed>),
    /// None to be had.
    Nothing,
    /// None from a remembered list of runnable jobs, which may be out of date: plan again
    /// with a fresh one.
    Retry,
}

impl Scheduler {
    /// Runnable jobs, highest priority then oldest first: remembered for a moment unless
    /// `fresh`. Says whether the list was read just now.
    async fn runnable_jobs(&self, fresh: bool) -> Result<(Arc<Vec<RunnableJob>>, bool)> {
        if !fresh && let Some(jobs) = self.cache.runnable() {
            return Ok((jobs, false));
        }
        let jobs = Arc::new(self.store.runnable_jobs(CLAIM_WINDOW).await?);
        self.cache.set_runnable(jobs.clone());
        Ok((jobs, true))
    }

    /// What claims need of each of `jobs` (remembered), in their order.
    async fn job_infos(&self, jobs: Vec<RunnableJob>) -> Result<Vec<(RunnableJob, Arc<JobInfo>)>> {
        let mut found = Vec::with_capacity(jobs.len());
        for job in jobs {
            let id = job.id;
            let info = match self.cache.job(id) {
                Some(info) => info,
                None => {
                    let Some(job) = self.store.get_job_internal(id).await? else { continue };
                    let info = Arc::new(JobInfo::of(&job)?);
                    self.cache.set_job(id, info.clone());
                    info
                }
            };
            found.push((job, info));
        }
        Ok(found)
    }

    /// Plans a claim for `worker` (`None` when nothing is runnable); `fresh` reads the
    /// runnable jobs again instead of the remembered list.
    pub(super) async fn plan(&self, worker: &WorkerRecord, prefer: Option<Uuid>, fresh: bool) -> Result<Option<Plan>> {
        let (runnable, read_now) = self.runnable_jobs(fresh).await?;
        if runnable.is_empty() {
            return Ok(None);
        }
        let (ordered, now) = self.cache.in_claim_order(&runnable);
        let mut eligible = Vec::new();
        for (job, info) in self.job_infos(ordered).await? {
            if let Ok(version) = info.requirements.choose(&worker.capabilities) {
                eligible.push((job, info, version));
            }
        }
        let ids: Vec<Uuid> = eligible.iter().map(|(job, _, _)| job.id).collect();
        // The job whose scene the worker has loaded goes first only while it ranks with the
        // first: warm Blender never outranks priority or another workspace's turn.
        let prefer = prefer.filter(|preferred| {
            let rank = |job: &RunnableJob| (job.priority, self.cache.standing(job, now));
            match (eligible.first(), eligible.iter().find(|(job, _, _)| job.id == *preferred)) {
                (Some((first, _, _)), Some((it, _, _))) => rank(it) == rank(first),
                _ => false,
            }
        });
        let options = ClaimOptions {
            prefer,
            prefer_from_seq: prefer.map_or(0, |job| self.cache.head(job)),
            lease_ms: self.lease_ttl.as_millis() as i64,
            now: now_ms(),
            blocklist_after: BLOCKLIST_AFTER,
        };
        Ok(Some(Plan { eligible, ids, options, read_now }))
    }

    /// Turns the store's answer to `plan` into the task for the worker, remembering what
    /// later claims and calls use.
    pub(super) fn finish(&self, worker: &WorkerRecord, plan: Plan, claimed: Option<ClaimedTask>) -> Result<Finished> {
        let prefer = plan.options.prefer;
        if let Some(job) = prefer
            && claimed.as_ref().is_none_or(|it| it.job_id != job)
        {
            self.cache.claimed_at(job, None);
        }
        let Some(task) = claimed else {
            return Ok(if plan.read_now { Finished::Nothing } else { Finished::Retry });
        };
        if plan.ids.first() != Some(&task.job_id) && prefer != Some(task.job_id) {
            // Jobs before it had nothing left for this worker: the next claim reads the list again.
            self.cache.forget_runnable();
        }
        self.cache.claimed_at(task.job_id, Some(task.seq));
        self.cache
            .grant(task.lease.task_id, Granted::new(task.job_id, task.frames.clone(), task.lease.attempt, &worker.id));
        let Some((job, info, version)) = plan.eligible.into_iter().find(|(job, _, _)| job.id == task.job_id) else {
            return Err(Error::Internal(anyhow::anyhow!("claimed a task of a job not offered")));
        };
        self.cache.served(job.workspace_id, task.frames.len());
        Ok(Finished::Task(Box::new(Claimed {
            task,
            scene: info.scene.clone(),
            config: info.config.clone(),
            blender_version: version,
            naming: info.naming.clone(),
        })))
    }
}
