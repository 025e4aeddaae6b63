//! Splitting jobs into tasks, matching jobs to workers, and handing out tasks.
//!
//! Matching reads the job's analysis and final config: the Blender must be at least the
//! file's version, OpenImageDenoise and EEVEE only where the build has them, a GPU backend
//! only on workers that have it, `minimumRam` only on workers with that much. A worker that
//! failed 3 attempts of a job is blocklisted for it. A job no connected worker can take
//! carries a `waitingReason` saying why, instead of waiting silently; a job every capable
//! worker is blocklisted from fails with the last error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use orchard_api::{Assignment, SceneRef, WorkerCapabilities};
use orchard_domain::{JobEvent, JobStatus, RenderConfig};
use orchard_store::{ClaimOptions, ClaimedTask, FailedReason, Job, JobPatch, WorkerRecord};
use tracing::{info, warn};
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::state::{AppState, now_ms};

/// Different workers that must fail a task before it fails its job.
pub const MAX_FAILING_WORKERS: u32 = 3;
/// Failed attempts after which a worker is blocklisted for a job.
pub const BLOCKLIST_AFTER: i64 = 3;
/// Jobs considered per claim (oldest first).
const CLAIM_WINDOW: u32 = 200;

/// Frames per task. Blender's start-up (≈1.3 s) is paid once per task, so tasks hold several
/// frames; a job still splits into about 8 tasks so that several workers share it.
pub fn chunk_size(n_frames: usize) -> usize {
    n_frames.div_ceil(8).clamp(1, 20)
}

/// What a job needs from a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    /// The file's Blender version (major, minor): workers need at least this.
    pub min_version: (u32, u32),
    /// Cycles denoising with OpenImageDenoise.
    pub oidn: bool,
    /// An EEVEE engine.
    pub eevee: bool,
    /// A Cycles GPU backend (`CUDA`, `OPTIX`, …); OptiX denoising needs `OPTIX`.
    pub gpu_backend: Option<String>,
    /// GiB of RAM.
    pub ram_gib: Option<u32>,
}

impl Requirements {
    /// Reads a job's requirements from its analysis and final config.
    pub fn of(job: &Job) -> Requirements {
        let analysis = job.analysis.clone().unwrap_or_default();
        let version = &analysis["fileVersion"];
        let min_version =
            (version["major"].as_u64().unwrap_or(0) as u32, version["minor"].as_u64().unwrap_or(0) as u32);
        let config: Option<RenderConfig> = job.final_config.clone().and_then(|it| serde_json::from_value(it).ok());
        let Some(config) = config else {
            return Requirements { min_version, oidn: false, eevee: false, gpu_backend: None, ram_gib: None };
        };
        let cycles = config.render_engine == "CYCLES";
        // Cycles denoises unless told not to, with OpenImageDenoise unless told otherwise.
        let denoising = cycles && config.denoising_enabled != Some(false);
        let denoiser = config.denoiser_type.as_deref().unwrap_or("OPENIMAGEDENOISE");
        let mut gpu_backend = config.compute_device_type.clone().filter(|it| it != "NONE");
        if denoising && denoiser == "OPTIX" {
            gpu_backend = Some("OPTIX".into());
        }
        Requirements {
            min_version,
            oidn: denoising && denoiser == "OPENIMAGEDENOISE",
            eevee: config.render_engine.starts_with("BLENDER_EEVEE"),
            gpu_backend,
            ram_gib: config.minimum_ram,
        }
    }

    /// The Blender (by version) of `capabilities` that best fits, or why none does.
    /// The oldest fitting version wins: it reads the file most faithfully.
    pub fn choose(&self, capabilities: &WorkerCapabilities) -> Result<String, String> {
        if let Some(ram) = self.ram_gib
            && capabilities.ram_gib + 0.5 < f64::from(ram)
        {
            return Err(format!("has {:.1} GiB of RAM, the job needs {ram}", capabilities.ram_gib));
        }
        let mut builds: Vec<_> = capabilities.blenders.iter().collect();
        builds.sort_by_key(|it| version_of(&it.version));
        let mut reasons = Vec::new();
        for build in builds {
            let (major, minor) = version_of(&build.version);
            if (major, minor) < self.min_version {
                reasons.push(format!(
                    "Blender {} is older than the file ({}.{})",
                    build.version, self.min_version.0, self.min_version.1
                ));
            } else if self.oidn && !build.oidn {
                reasons.push(format!("Blender {} has no OpenImageDenoise (the scene denoises with it)", build.version));
            } else if self.eevee && !build.eevee {
                reasons.push(format!(
                    "Blender {} cannot render EEVEE here (no GPU; --allow-cpu-eevee allows it)",
                    build.version
                ));
            } else if let Some(backend) = &self.gpu_backend
                && !build.gpu_backends.contains(backend)
            {
                reasons.push(format!("Blender {} has no {backend} device", build.version));
            } else {
                return Ok(build.version.clone());
            }
        }
        Err(reasons.join("; "))
    }
}

fn version_of(text: &str) -> (u32, u32) {
    let mut parts = text.split(|it: char| !it.is_ascii_digit()).filter(|it| !it.is_empty());
    let major = parts.next().and_then(|it| it.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|it| it.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn capabilities_of(worker: &WorkerRecord) -> Option<WorkerCapabilities> {
    serde_json::from_value(worker.capabilities.clone()).ok()
}

/// What the scheduler remembers between claims: what a claim needs of a job (its
/// requirements, scene and config) never changes once it renders, so it is read once per job,
/// not at every claim; the runnable jobs, for a moment; and when each job's preview was last
/// made, so that previews follow the render without a thumbnail per task.
#[derive(Debug, Default)]
pub struct SchedulerCache {
    jobs: std::sync::Mutex<HashMap<Uuid, Arc<JobInfo>>>,
    runnable: std::sync::Mutex<Option<(std::time::Instant, Arc<Vec<Uuid>>)>>,
    previews: std::sync::Mutex<HashMap<Uuid, std::time::Instant>>,
    adapted: std::sync::Mutex<std::collections::HashSet<Uuid>>,
    granted: std::sync::Mutex<HashMap<Uuid, Granted>>,
    /// Per job, the position after the last task claimed here: the queue's live head, as far
    /// as this server knows (see [`ClaimOptions::prefer_from_seq`]).
    heads: std::sync::Mutex<HashMap<Uuid, i64>>,
}

/// A lease this server granted, remembered until the task completes or fails here.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The task's job.
    pub job_id: Uuid,
    /// The task's frames.
    pub frames: orchard_domain::FrameSet,
    attempt: i64,
    worker_id: String,
    at: std::time::Instant,
}

/// Leases remembered at most; past that the map starts over.
const MAX_GRANTED: usize = 100_000;

impl SchedulerCache {
    /// The lease of `task_id` granted here to `worker_id` with `attempt`, if it is younger than
    /// `ttl` (older ones are read from the store: the lease may have expired since).
    pub fn granted(&self, task_id: Uuid, attempt: i64, worker_id: &str, ttl: Duration) -> Option<Granted> {
        let granted = self.granted.lock().unwrap_or_else(|it| it.into_inner());
        granted
            .get(&task_id)
            .filter(|it| it.attempt == attempt && it.worker_id == worker_id && it.at.elapsed() < ttl)
            .cloned()
    }

    fn remember_granted(&self, task_id: Uuid, granted: Granted) {
        let mut map = self.granted.lock().unwrap_or_else(|it| it.into_inner());
        if map.len() >= MAX_GRANTED {
            map.clear();
        }
        map.insert(task_id, granted);
    }

    /// Forgets a lease once its task completed or failed.
    pub fn forget_granted(&self, task_id: Uuid) {
        self.granted.lock().unwrap_or_else(|it| it.into_inner()).remove(&task_id);
    }

    /// Drops the remembered runnable jobs: the next claim reads them again. Tasks may have
    /// been requeued behind the known queue heads, so those go too.
    pub fn forget_runnable(&self) {
        *self.runnable.lock().unwrap_or_else(|it| it.into_inner()) = None;
        self.heads.lock().unwrap_or_else(|it| it.into_inner()).clear();
    }

    fn head(&self, job_id: Uuid) -> i64 {
        self.heads.lock().unwrap_or_else(|it| it.into_inner()).get(&job_id).copied().unwrap_or(0)
    }

    /// Notes where a claim found a job's next task (`None`: the job's queue past the known
    /// head was empty, so the next claim looks from the start, for requeued tasks).
    fn claimed_at(&self, job_id: Uuid, seq: Option<i64>) {
        let mut heads = self.heads.lock().unwrap_or_else(|it| it.into_inner());
        match seq {
            Some(seq) => {
                if heads.len() >= MAX_GRANTED {
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
}

/// How long the list of runnable jobs is reused. Work queued on this server refreshes it at
/// once ([`AppState::work_arrived`]); work queued on another server is seen within this.
const RUNNABLE_TTL: Duration = Duration::from_millis(250);

/// What a claim needs of a rendering job.
#[derive(Debug)]
pub struct JobInfo {
    requirements: Requirements,
    scene: SceneRef,
    config: serde_json::Value,
    /// The extension of the frames' files (`png`), when the config can be read.
    extension: Option<&'static str>,
}

/// A claimed task, as handed to the worker.
#[derive(Debug)]
pub struct Claimed {
    /// The task.
    pub assignment: Assignment,
    /// The task's id.
    pub task_id: Uuid,
    /// The task's job.
    pub job_id: Uuid,
    /// The extension of its frames' files (`png`), to name them before they exist.
    pub extension: Option<&'static str>,
}

impl JobInfo {
    fn of(job: &Job) -> JobInfo {
        let analysis = job.analysis.clone().unwrap_or_default();
        let text = |key: &str| analysis[key].as_str().map(str::to_string);
        JobInfo {
            requirements: Requirements::of(job),
            scene: SceneRef {
                file_name: job.file_name.clone(),
                file_type: job.file_type.clone(),
                sha256: text("sha256").unwrap_or_default(),
                main_file: text("mainFile"),
                scene_name: text("activeScene"),
            },
            config: job.final_config.clone().unwrap_or_default(),
            extension: job
                .final_config
                .clone()
                .and_then(|it| serde_json::from_value::<RenderConfig>(it).ok())
                .map(|it| it.extension()),
        }
    }
}

/// Seconds a task should take once frame times are known: long enough that a Blender
/// start-up (≈ 1.3 s) is a few per cent of it, short enough that a lost task costs little.
const TARGET_TASK_SECONDS: f64 = 30.0;

/// Frames per task from a measured frame time, keeping at least two tasks per connected
/// worker so that every worker has work.
pub fn adapted_chunk(seconds_per_frame: f64, remaining_frames: usize, n_workers: usize) -> usize {
    let by_time = (TARGET_TASK_SECONDS / seconds_per_frame.max(0.001)).ceil() as usize;
    let by_parallelism = remaining_frames.div_ceil(2 * n_workers.max(1));
    by_time.min(by_parallelism).clamp(1, 50)
}

/// After a job's first completed task: regroup its untouched queued tasks by the measured
/// frame time (unless the job fixed `chunkSize`). Once per job and server; failures only log.
pub async fn adapt_chunks(state: &AppState, job_id: Uuid, render_seconds: f64, n_frames: usize) {
    {
        let mut adapted = state.scheduler.adapted.lock().unwrap_or_else(|it| it.into_inner());
        if adapted.len() > 10_000 {
            adapted.clear();
        }
        if !adapted.insert(job_id) {
            return;
        }
    }
    let result = async {
        let Some(job) = state.store.get_job_internal(job_id).await? else { return anyhow::Ok(()) };
        let config: Option<RenderConfig> = job.final_config.clone().and_then(|it| serde_json::from_value(it).ok());
        if config.is_none_or(|it| it.chunk_size.is_some()) {
            return Ok(());
        }
        let remaining = (job.frames_total - job.frames_done - job.frames_rendering).max(0) as usize;
        let n_workers = connected_workers(state).await.map(|it| it.len()).unwrap_or(1);
        let chunk = adapted_chunk(render_seconds / n_frames.max(1) as f64, remaining, n_workers);
        if chunk > chunk_size(job.frames_total.max(0) as usize) {
            let n_tasks = state.store.rechunk_queued(job_id, chunk).await?;
            state.scheduler.claimed_at(job_id, None);
            info!(job = %job_id, chunk, tasks = n_tasks, "tasks regrouped by measured frame time");
        }
        Ok(())
    }
    .await;
    if let Err(error) = result {
        warn!(job = %job_id, error = format!("{error:#}"), "could not regroup tasks");
    }
}

/// Least time between two previews of a job while it renders.
const PREVIEW_EVERY: Duration = Duration::from_secs(2);

/// Ids of runnable jobs, oldest first: remembered for [`RUNNABLE_TTL`] unless `fresh`.
/// Says whether the list was read just now.
async fn runnable_jobs(state: &AppState, fresh: bool) -> Result<(Arc<Vec<Uuid>>, bool), ApiError> {
    if !fresh
        && let Some((at, ids)) = state.scheduler.runnable.lock().unwrap_or_else(|it| it.into_inner()).as_ref()
        && at.elapsed() < RUNNABLE_TTL
    {
        return Ok((ids.clone(), false));
    }
    let ids = Arc::new(state.store.runnable_job_ids(CLAIM_WINDOW).await?);
    // Jobs that stopped rendering leave the cache with the list.
    state.scheduler.jobs.lock().unwrap_or_else(|it| it.into_inner()).retain(|id, _| ids.contains(id));
    *state.scheduler.runnable.lock().unwrap_or_else(|it| it.into_inner()) =
        Some((std::time::Instant::now(), ids.clone()));
    Ok((ids, true))
}

/// What claims need of each of `job_ids` (cached), in their order.
async fn job_infos(state: &AppState, job_ids: &[Uuid]) -> Result<Vec<(Uuid, Arc<JobInfo>)>, ApiError> {
    let mut found = Vec::with_capacity(job_ids.len());
    for id in job_ids {
        let cached = state.scheduler.jobs.lock().unwrap_or_else(|it| it.into_inner()).get(id).cloned();
        let info = match cached {
            Some(info) => info,
            None => {
                let Some(job) = state.store.get_job_internal(*id).await? else { continue };
                let info = Arc::new(JobInfo::of(&job));
                state.scheduler.jobs.lock().unwrap_or_else(|it| it.into_inner()).insert(*id, info.clone());
                info
            }
        };
        found.push((*id, info));
    }
    Ok(found)
}

/// Claims a task for `worker`: the oldest runnable job it can render and is not blocklisted
/// from, `prefer`'s first.
pub async fn claim_for(
    state: &AppState,
    worker: &WorkerRecord,
    prefer: Option<Uuid>,
) -> Result<Option<Claimed>, ApiError> {
    let mut fresh = false;
    loop {
        let Some(plan) = plan_claim(state, worker, prefer, fresh).await? else { return Ok(None) };
        let claimed = state.store.claim_task(&worker.id, &plan.ids, plan.options).await?;
        match finish_claim(state, worker, plan, claimed)? {
            Finished::Task(claimed) => return Ok(Some(*claimed)),
            Finished::Nothing => return Ok(None),
            Finished::Retry => fresh = true,
        }
    }
}

/// A claim ready for the store: the jobs `worker` may take, in order, and how.
pub struct ClaimPlan {
    eligible: Vec<(Uuid, Arc<JobInfo>, String)>,
    /// The jobs, in priority order.
    pub ids: Vec<Uuid>,
    /// How the store picks and leases the task.
    pub options: ClaimOptions,
    read_now: bool,
}

/// What came of a planned claim.
pub enum Finished {
    /// A task.
    Task(Box<Claimed>),
    /// None to be had.
    Nothing,
    /// None from a remembered list of runnable jobs, which may be out of date: plan again
    /// with a fresh one.
    Retry,
}

/// Plans a claim for `worker` (`None` when nothing is runnable); `fresh` reads the runnable
/// jobs again instead of the remembered list.
pub async fn plan_claim(
    state: &AppState,
    worker: &WorkerRecord,
    prefer: Option<Uuid>,
    fresh: bool,
) -> Result<Option<ClaimPlan>, ApiError> {
    let Some(capabilities) = capabilities_of(worker) else {
        return Ok(None);
    };
    let (runnable, read_now) = runnable_jobs(state, fresh).await?;
    if runnable.is_empty() {
        return Ok(None);
    }
    let mut eligible = Vec::new();
    for (id, info) in job_infos(state, &runnable).await? {
        if let Ok(version) = info.requirements.choose(&capabilities) {
            eligible.push((id, info, version));
        }
    }
    let ids: Vec<Uuid> = eligible.iter().map(|(id, _, _)| *id).collect();
    let options = ClaimOptions {
        prefer,
        prefer_from_seq: prefer.map_or(0, |job| state.scheduler.head(job)),
        lease_ms: state.config.lease_ttl.as_millis() as i64,
        now: now_ms(),
        blocklist_after: BLOCKLIST_AFTER,
    };
    Ok(Some(ClaimPlan { eligible, ids, options, read_now }))
}

/// Turns the store's answer to `plan` into the task for the worker, remembering what later
/// claims and calls use.
pub fn finish_claim(
    state: &AppState,
    worker: &WorkerRecord,
    plan: ClaimPlan,
    claimed: Option<ClaimedTask>,
) -> Result<Finished, ApiError> {
    let prefer = plan.options.prefer;
    if let Some(job) = prefer
        && claimed.as_ref().is_none_or(|it| it.job_id != job)
    {
        state.scheduler.claimed_at(job, None);
    }
    let Some(task) = claimed else {
        return Ok(if plan.read_now { Finished::Nothing } else { Finished::Retry });
    };
    if plan.ids.first() != Some(&task.job_id) && prefer != Some(task.job_id) {
        // Jobs before it had nothing left for this worker: the next claim reads the list again.
        state.scheduler.forget_runnable();
    }
    state.scheduler.claimed_at(task.job_id, Some(task.seq));
    state.scheduler.remember_granted(
        task.lease.task_id,
        Granted {
            job_id: task.job_id,
            frames: task.frames.clone(),
            attempt: task.lease.attempt,
            worker_id: worker.id.clone(),
            at: std::time::Instant::now(),
        },
    );
    let Some((_, info, version)) = plan.eligible.into_iter().find(|(id, _, _)| *id == task.job_id) else {
        return Err(ApiError::Internal(anyhow::anyhow!("claimed a task of a job not offered")));
    };
    let assignment = Assignment {
        task_id: task.lease.task_id.to_string(),
        attempt: task.lease.attempt,
        job_id: task.job_id.to_string(),
        frames: task.frames.frames().to_vec(),
        scene: info.scene.clone(),
        config: info.config.clone(),
        blender_version: Some(version),
        output_urls: Default::default(),
    };
    let claimed = Claimed { assignment, task_id: task.lease.task_id, job_id: task.job_id, extension: info.extension };
    Ok(Finished::Task(Box::new(claimed)))
}

/// Workers that called in recently enough to count as connected.
async fn connected_workers(state: &AppState) -> Result<Vec<WorkerRecord>, ApiError> {
    let window = (state.config.lease_ttl * 2).max(Duration::from_secs(45));
    Ok(state.store.live_workers(now_ms() - window.as_millis() as i64).await?)
}

/// Decides whether `job_id` can progress: clears or sets its waiting reason, and fails it
/// when every capable worker is blocklisted from it.
pub async fn review_job(state: &AppState, job_id: Uuid) -> Result<(), ApiError> {
    let Some(job) = state.store.get_job_internal(job_id).await? else { return Ok(()) };
    if !matches!(job.status, JobStatus::Booting | JobStatus::Rendering) {
        return Ok(());
    }
    let workers = connected_workers(state).await?;
    if workers.is_empty() {
        let reason = "no worker is connected: start `orchard worker` (or `orchard up`)";
        state.store.set_waiting_reason(job.id, Some(reason)).await?;
        return Ok(());
    }
    let requirements = Requirements::of(&job);
    let failures = state.store.job_failures_by_worker(job.id).await?;
    let mut capable = 0;
    let mut reasons = Vec::new();
    for worker in &workers {
        let Some(capabilities) = capabilities_of(worker) else { continue };
        match requirements.choose(&capabilities) {
            Ok(_) => {
                capable += 1;
                if !failures.iter().any(|(id, n)| id == &worker.id && *n >= BLOCKLIST_AFTER) {
                    state.store.set_waiting_reason(job.id, None).await?;
                    return Ok(());
                }
            }
            Err(reason) => reasons.push(format!("{}: {reason}", worker.name)),
        }
    }
    if capable > 0 {
        let last = state.store.last_job_failure(job.id).await?.unwrap_or_default();
        let message =
            format!("every worker that can render this job failed it {BLOCKLIST_AFTER} times; last error: {last}");
        let failed = job.status.apply(JobEvent::Failed).map_err(|e| ApiError::Internal(e.into()))?;
        let patch = JobPatch {
            failed_reason: Some(FailedReason { name: "task_failed".into(), kind: "render".into(), message }),
            ..Default::default()
        };
        if state.store.transition_job(job.id, job.status, failed, patch, now_ms()).await? {
            state.store.cancel_tasks(job.id).await?;
            info!(job = %job.id, "job failed: no worker left to try");
        }
        return Ok(());
    }
    let reason = format!("no connected worker can render this job: {}", reasons.join("; "));
    state.store.set_waiting_reason(job.id, Some(&reason)).await?;
    Ok(())
}

/// Reviews every runnable job, every two seconds.
pub async fn matchmaker(state: AppState, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        match state.store.runnable_job_ids(CLAIM_WINDOW).await {
            Ok(jobs) => {
                for job_id in jobs {
                    if let Err(error) = review_job(&state, job_id).await {
                        warn!(job = %job_id, %error, "reviewing a job failed");
                    }
                }
            }
            Err(error) => warn!(%error, "matchmaker failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Refreshes the job's preview from a stored frame (the latest finished), in the background
/// and at most every [`PREVIEW_EVERY`] per job; failures only log.
pub fn update_preview(state: &AppState, job_id: Uuid, frame_key: &str) {
    {
        let mut previews = state.scheduler.previews.lock().unwrap_or_else(|it| it.into_inner());
        let now = std::time::Instant::now();
        if previews.get(&job_id).is_some_and(|last| now.duration_since(*last) < PREVIEW_EVERY) {
            return;
        }
        previews.insert(job_id, now);
        // Jobs stop rendering; keep the map from growing with history.
        previews.retain(|_, last| now.duration_since(*last) < PREVIEW_EVERY * 30);
    }
    let state = state.clone();
    let frame_key = frame_key.to_string();
    tokio::spawn(async move {
        let result = async {
            let tmp_dir = state.config.data_dir.join("tmp");
            tokio::fs::create_dir_all(&tmp_dir).await?;
            let work = tempfile::tempdir_in(&tmp_dir)?;
            let name = frame_key.rsplit('/').next().unwrap_or("frame");
            let local = work.path().join(name);
            state.blobs.get_to_file(&frame_key, &local).await?;
            if let Some(key) = crate::previews::make_preview(&state, job_id, &local).await? {
                state.store.set_preview(job_id, &key, now_ms()).await?;
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(error) = result {
            warn!(job = %job_id, error = format!("{error:#}"), "no preview");
        }
    });
}

/// `text` cut to about `max` characters: a failure report says what went wrong first and
/// ends with Blender's log, so the middle is what goes.
pub fn shorten(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max / 4).collect();
    let tail: String = text.chars().skip(n - (max - max / 4)).collect();
    format!("{head}\n…\n{tail}")
}

#[cfg(test)]
mod tests {
    use orchard_api::BlenderBuild;

    use super::*;

    fn build(version: &str, oidn: bool, eevee: bool, gpus: &[&str]) -> BlenderBuild {
        BlenderBuild {
            version: version.into(),
            oidn,
            eevee,
            gpu_backends: gpus.iter().map(|it| it.to_string()).collect(),
        }
    }

    fn caps(blenders: Vec<BlenderBuild>, ram: f64) -> WorkerCapabilities {
        WorkerCapabilities { blenders, cpu_threads: 8, ram_gib: ram, tags: vec![] }
    }

    fn needs(version: (u32, u32)) -> Requirements {
        Requirements { min_version: version, oidn: false, eevee: false, gpu_backend: None, ram_gib: None }
    }

    #[test]
    fn the_oldest_blender_that_reads_the_file_is_chosen() {
        let worker = caps(
            vec![build("5.0.1", true, true, &[]), build("4.5.3", true, true, &[]), build("3.4.1", false, false, &[])],
            32.0,
        );
        assert_eq!(needs((3, 4)).choose(&worker), Ok("3.4.1".into()));
        assert_eq!(needs((4, 2)).choose(&worker), Ok("4.5.3".into()));
        assert!(needs((5, 1)).choose(&worker).unwrap_err().contains("older than the file"));
    }

    #[test]
    fn each_capability_is_required_where_the_job_needs_it() {
        let debian = caps(vec![build("3.4.1", false, false, &[])], 16.0);
        let gpu = caps(vec![build("4.5.3", true, true, &["CUDA", "OPTIX"])], 64.0);
        let cases = [
            (Requirements { oidn: true, ..needs((3, 4)) }, "OpenImageDenoise"),
            (Requirements { eevee: true, ..needs((3, 4)) }, "EEVEE"),
            (Requirements { gpu_backend: Some("OPTIX".into()), ..needs((3, 4)) }, "OPTIX"),
            (Requirements { ram_gib: Some(32), ..needs((3, 4)) }, "RAM"),
        ];
        for (requirements, word) in cases {
            let reason = requirements.choose(&debian).unwrap_err();
            assert!(reason.contains(word), "{word}: {reason}");
            assert_eq!(requirements.choose(&gpu), Ok("4.5.3".into()));
        }
    }

    #[test]
    fn measured_frame_times_size_tasks_to_about_thirty_seconds_while_every_worker_has_work() {
        assert_eq!(adapted_chunk(0.5, 1000, 2), 50, "fast frames: capped at 50");
        assert_eq!(adapted_chunk(3.0, 1000, 2), 10);
        assert_eq!(adapted_chunk(3.0, 40, 4), 5, "40 frames for 4 workers: 8 tasks");
        assert_eq!(adapted_chunk(120.0, 1000, 2), 1, "slow frames: one per task");
    }

    #[test]
    fn chunks_stay_between_one_and_twenty_frames() {
        assert_eq!(chunk_size(1), 1);
        assert_eq!(chunk_size(3), 1);
        assert_eq!(chunk_size(80), 10);
        assert_eq!(chunk_size(10_000), 20);
    }

    #[test]
    fn failure_messages_keep_their_reason_and_their_log_tail() {
        assert_eq!(shorten("ab", 3), "ab");
        assert_eq!(shorten("reason: the middle of a long log ends here", 8), "re\n…\ns here");
        assert_eq!(shorten("éééééééé", 4), "é\n…\nééé");
    }
}
