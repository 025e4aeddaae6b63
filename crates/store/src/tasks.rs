//! Renders: [`TaskStore`] and its implementation for both dialects. Claims and completions,
//! the writes of a busy farm, go to each store's batching writer (`sqlite/hot.rs`,
//! `postgres/hot.rs`).

use async_trait::async_trait;
use orchard_domain::{FrameSet, JobStatus};
use uuid::Uuid;

use crate::{
    ClaimOptions, ClaimedTask, Completion, FailOutcome, FailedAttempt, FrameFlag, Lease, LeaseState, NextClaim, Output,
    OutputDetail, Result, Retry, RunnableJob, StartRender, Task, TaskDone, TaskLog, rows,
};

/// A job's tasks: made when its render starts, leased to workers, completed or failed, and
/// the outputs they deliver.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Moves a job from `validated` to `booting` with its configs and tasks, in one transaction.
    async fn start_render(&self, job_id: Uuid, start: StartRender, now: i64) -> Result<bool>;
    /// Jobs with queued tasks, highest priority then oldest first (at most `limit`): what
    /// workers may claim from.
    async fn runnable_jobs(&self, limit: u32) -> Result<Vec<RunnableJob>>;
    /// Renders frames of a finished job again: from `from` (the status read) to `booting`, with
    /// new tasks after the existing ones, the outputs of `retry.redo` dropped, the failure
    /// reason and the workers' blocklist of the job cleared. Returns the dropped outputs'
    /// object keys, or `None` if the job was no longer in `from`.
    async fn retry_render(&self, job_id: Uuid, from: JobStatus, retry: Retry, now: i64) -> Result<Option<Vec<String>>>;
    /// Puts a suspended job's running tasks back in the queue: their workers lose their
    /// leases (the next heartbeat says so). Returns how many.
    async fn requeue_running(&self, job_id: Uuid) -> Result<u64>;
    /// Leases a queued task to `worker_id`: the first task of `prefer` (the job whose scene the
    /// worker has loaded) if it is among `job_ids`, else of the first job of `job_ids` (in
    /// priority order, oldest first) that has one. Jobs `worker_id` failed `blocklist_after`
    /// attempts of are skipped (it is blocklisted for them).
    async fn claim_task(&self, worker_id: &str, job_ids: &[Uuid], claim: ClaimOptions) -> Result<Option<ClaimedTask>>;
    /// Extends a lease; says whether the worker should go on. `frames_done` of the task's
    /// frames are finished and the next is `frame_progress` (0–1) done, as the worker says.
    async fn heartbeat(
        &self,
        lease: &Lease,
        lease_ms: i64,
        now: i64,
        frames_done: i64,
        frame_progress: f64,
    ) -> Result<LeaseState>;
    /// Appends `chunk` to the log of the attempt `lease`, if `worker_id` holds it (false if
    /// not); past `cap` characters only the tail is kept.
    async fn append_task_log(&self, lease: &Lease, worker_id: &str, chunk: &str, cap: usize, now: i64) -> Result<bool>;
    /// The log of a task's attempt, or of its latest attempt that has one.
    async fn task_log(&self, task_id: Uuid, attempt: Option<i64>) -> Result<Option<TaskLog>>;
    /// Stores a task's outputs and completes it; moves the job to `finalizing` with its last task.
    async fn complete_task(&self, lease: &Lease, done: TaskDone, now: i64) -> Result<Completion>;
    /// [`TaskStore::complete_task`], then, if the attempt held, [`TaskStore::claim_task`] for
    /// the same worker, in the same batch. A next claim that fails only means no next task (the
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
    /// Regroups a job's never-claimed queued tasks into tasks of `chunk_size` frames (same
    /// frames, same order); returns how many tasks there are now. Tasks that ran or failed
    /// before keep their history and are left alone.
    async fn rechunk_queued(&self, job_id: Uuid, chunk_size: usize) -> Result<usize>;
    /// Requeues tasks whose lease expired before `now`; returns how many.
    async fn requeue_expired(&self, now: i64) -> Result<u64>;
    /// Cancels the unfinished tasks of a job that just failed; their workers lose their leases.
    async fn cancel_tasks(&self, job_id: Uuid) -> Result<()>;
    /// A job's stored outputs, by frame.
    async fn list_outputs(&self, job_id: Uuid) -> Result<Vec<Output>>;
    /// Records what compositor outputs of a job are (before the completion that stores them).
    async fn record_output_details(&self, job_id: Uuid, details: &[OutputDetail]) -> Result<()>;
    /// The details of a job's compositor outputs.
    async fn output_details(&self, job_id: Uuid) -> Result<Vec<OutputDetail>>;
    /// Judges `frames` of a job again: they carry the flags of `flagged` and no other (a frame
    /// rendered again is judged again); the job's counts follow.
    async fn judge_frames(&self, job_id: Uuid, frames: &[i32], flagged: &[(i32, FrameFlag)]) -> Result<()>;
    /// A job's flagged frames, by frame.
    async fn frame_flags(&self, job_id: Uuid) -> Result<Vec<(i32, FrameFlag)>>;
    /// A job's tasks, in order.
    async fn list_tasks(&self, job_id: Uuid) -> Result<Vec<Task>>;
    /// One task.
    async fn get_task(&self, task_id: Uuid) -> Result<Option<Task>>;
    /// Every failed attempt at a job's tasks, oldest first.
    async fn failed_attempts(&self, job_id: Uuid) -> Result<Vec<FailedAttempt>>;
}

/// The columns a task read selects: every column of [`Task`].
macro_rules! task_columns {
    () => {
        "id, job_id, seq, frames, status, attempt, failures, last_error, worker_id, started_at, finished_at, \
         render_seconds, blender_version, frames_done, frame_progress"
    };
}

pub(crate) use task_columns;

/// The frames of a job's untouched queued tasks (each task's stored `frames`, in order)
/// regrouped into chunks of `chunk_size`, or `None` when that would not make fewer tasks.
pub(crate) fn regroup(stored: &[String], chunk_size: usize) -> Result<Option<Vec<FrameSet>>> {
    let mut frames = Vec::new();
    for json in stored {
        frames.extend_from_slice(rows::task_frames(json)?.frames());
    }
    let Ok(all) = FrameSet::from_frames(frames) else { return Ok(None) };
    let chunks = all.chunks(chunk_size);
    Ok((chunks.len() < stored.len()).then_some(chunks))
}

/// `impl TaskStore for $store`, for both dialects: what differs is in [`crate::Dialect`] and
/// each store's `hot` writer (claims and completions). `for_update` is the clause that locks
/// the rows a transaction reads before it writes them (empty on SQLite, whose write
/// transactions hold the database's one write lock from their start). Expects
/// `row_decoders!` in scope and `$store` to have a `pool`, a `write()` and a `hot` writer.
macro_rules! task_store {
    ($store:ty, for_update = $for_update:literal) => {
        const _: () = {
            use orchard_domain::{JobEvent, JobStatus, TaskStatus};
            use sqlx::Row as _;
            use uuid::Uuid;

            use $crate::rows::{status_after, task_frames, to_json};
            use $crate::tasks::{regroup, task_columns};
            use $crate::{
                ClaimOptions, ClaimedTask, Completion, Dialect, FailOutcome, FrameFlag, Lease, LeaseState, NextClaim,
                Output, FailedAttempt, OutputDetail, Result, Retry, RunnableJob, StartRender, Task, TaskDone, TaskLog, TaskStore,
            };

            /// `fail_task`, once. Lock order (on PostgreSQL): the failed task, then (when the job
            /// fails) its other unfinished tasks, then the job row.
            async fn fail_once(
                store: &$store,
                lease: &Lease,
                worker_id: &str,
                error: &str,
                max_workers: u32,
                now: i64,
            ) -> Result<FailOutcome> {
                let mut tx = store.write().await?;
                // The attempt fences the failure as it fences a heartbeat; the lock holds the
                // row against a concurrent reaper until this transaction ends.
                let row = sqlx::query(concat!(
                    "select job_id, n_frames, frames from tasks where id = $1 and attempt = $2 and status = $3",
                    $for_update
                ))
                .bind(lease.task_id.to_string())
                .bind(lease.attempt)
                .bind(TaskStatus::Running.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok(FailOutcome::Lost);
                };
                let job_id: String = row.try_get("job_id")?;
                let n_frames: i64 = row.try_get("n_frames")?;
                sqlx::query(
                    "insert into task_failures (id, task_id, job_id, worker_id, attempt, error, at)
                     values ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(Uuid::now_v7().to_string())
                .bind(lease.task_id.to_string())
                .bind(&job_id)
                .bind(worker_id)
                .bind(lease.attempt)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let n_workers: i64 =
                    sqlx::query_scalar("select count(distinct worker_id) from task_failures where task_id = $1")
                        .bind(lease.task_id.to_string())
                        .fetch_one(&mut *tx)
                        .await?;
                let failed_for_good = n_workers >= i64::from(max_workers);
                let status = if failed_for_good { TaskStatus::Failed } else { TaskStatus::Queued };
                sqlx::query(
                    "update tasks set status = $1, failures = failures + 1, last_error = $2, worker_id = null,
                        lease_expires_at = null, finished_at = $3 where id = $4",
                )
                .bind(status.as_str())
                .bind(error)
                .bind(now)
                .bind(lease.task_id.to_string())
                .execute(&mut *tx)
                .await?;
                if failed_for_good {
                    sqlx::query("update tasks set status = $1 where job_id = $2 and status in ($3, $4)")
                        .bind(TaskStatus::Canceled.as_str())
                        .bind(&job_id)
                        .bind(TaskStatus::Queued.as_str())
                        .bind(TaskStatus::Running.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("update jobs set frames_failed = frames_failed + $1, updated_at = $2 where id = $3")
                    .bind(if failed_for_good { n_frames } else { 0 })
                    .bind(now)
                    .bind(&job_id)
                    .execute(&mut *tx)
                    .await?;
                if failed_for_good {
                    let frames = task_frames(&row.try_get::<String, _>("frames")?)?;
                    let message = format!(
                        "frames {} failed on {n_workers} different workers; last error: {error}",
                        frames.to_ranges().join(", ")
                    );
                    for from in [JobStatus::Booting, JobStatus::Rendering] {
                        let Some(failed) = status_after(from, JobEvent::Failed) else { continue };
                        let moved = sqlx::query(
                            "update jobs set status = $1, failed_name = 'task_failed', failed_type = 'render',
                                failed_message = $2 where id = $3 and status = $4",
                        )
                        .bind(failed)
                        .bind(&message)
                        .bind(&job_id)
                        .bind(from.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if moved == 1 {
                            $crate::notices::record_notice!(tx, job_id, JobStatus::Failed, now);
                        }
                    }
                }
                tx.commit().await?;
                Ok(if failed_for_good { FailOutcome::JobFailed } else { FailOutcome::Requeued })
            }

            #[async_trait::async_trait]
            impl TaskStore for $store {
                async fn start_render(&self, job_id: Uuid, start: StartRender, now: i64) -> Result<bool> {
                    let Some(booting) = status_after(JobStatus::Validated, JobEvent::RenderRequested) else {
                        return Ok(false);
                    };
                    let requested_config = to_json(&start.requested_config, "jobs", "requested_config")?;
                    let final_config = to_json(&start.final_config, "jobs", "final_config")?;
                    let frames_total: usize = start.chunks.iter().map(|it| it.len()).sum();
                    let mut tx = self.write().await?;
                    let moved = sqlx::query(
                        "update jobs set status = $1, updated_at = $2, requested_config = $3, final_config = $4,
                            frames_total = $5, priority = coalesce($8, priority)
                         where id = $6 and status = $7",
                    )
                    .bind(booting)
                    .bind(now)
                    .bind(requested_config)
                    .bind(final_config)
                    .bind(frames_total as i64)
                    .bind(job_id.to_string())
                    .bind(JobStatus::Validated.as_str())
                    .bind(start.priority)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    if !moved {
                        return Ok(false);
                    }
                    $crate::notices::record_notice!(tx, job_id.to_string(), JobStatus::Booting, now);
                    <$store as Dialect>::insert_tasks(&mut *tx, job_id, 0, &start.chunks).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn runnable_jobs(&self, limit: u32) -> Result<Vec<RunnableJob>> {
                    let rows: Vec<(String, String, i64, f64)> = sqlx::query_as(
                        "select j.id, j.workspace_id, j.priority, w.share from jobs j
                         join workspaces w on w.id = j.workspace_id
                         where j.status in ($1, $2)
                           and exists (select 1 from tasks t where t.job_id = j.id and t.status = $3)
                         order by j.priority desc, j.created_at limit $4",
                    )
                    .bind(JobStatus::Booting.as_str())
                    .bind(JobStatus::Rendering.as_str())
                    .bind(TaskStatus::Queued.as_str())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter()
                        .map(|(id, workspace, priority, share)| {
                            Ok(RunnableJob {
                                id: $crate::rows::uuid(&id, "jobs", "id")?,
                                workspace_id: $crate::rows::uuid(&workspace, "jobs", "workspace_id")?,
                                priority,
                                share,
                            })
                        })
                        .collect()
                }

                async fn retry_render(
                    &self,
                    job_id: Uuid,
                    from: JobStatus,
                    retry: Retry,
                    now: i64,
                ) -> Result<Option<Vec<String>>> {
                    let Some(booting) = status_after(from, JobEvent::Retried) else { return Ok(None) };
                    let id = job_id.to_string();
                    let mut tx = self.write().await?;
                    let moved = sqlx::query(
                        "update jobs set status = $1, updated_at = $2, failed_name = null, failed_type = null,
                            failed_message = null, frames_failed = 0, waiting_reason = null
                         where id = $3 and status = $4",
                    )
                    .bind(booting)
                    .bind(now)
                    .bind(&id)
                    .bind(from.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    if !moved {
                        return Ok(None);
                    }
                    $crate::notices::record_notice!(tx, id, JobStatus::Booting, now);
                    if let Some((requested, last)) = &retry.configs {
                        sqlx::query("update jobs set requested_config = $1, final_config = $2 where id = $3")
                            .bind(to_json(requested, "jobs", "requested_config")?)
                            .bind(to_json(last, "jobs", "final_config")?)
                            .bind(&id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    let mut dropped = Vec::new();
                    for frame in &retry.redo {
                        // Rendered again, judged again.
                        sqlx::query("delete from frame_flags where job_id = $1 and frame = $2")
                            .bind(&id)
                            .bind(i64::from(*frame))
                            .execute(&mut *tx)
                            .await?;
                        let keys: Vec<String> = sqlx::query_scalar(
                            "delete from outputs where job_id = $1 and kind = 'frame' and frame = $2 returning object_key",
                        )
                        .bind(&id)
                        .bind(frame)
                        .fetch_all(&mut *tx)
                        .await?;
                        dropped.extend(keys);
                    }
                    sqlx::query(
                        "update jobs set frames_done =
                            (select count(distinct frame) from outputs where job_id = $1 and kind = 'frame'),
                            frames_blank = (select count(*) from frame_flags where job_id = $1 and flag = 'blank'),
                            frames_non_finite =
                                (select count(*) from frame_flags where job_id = $1 and flag = 'non_finite')
                         where id = $1",
                    )
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    // Old failures would blocklist the workers that failed them: the retry clears
                    // them for that, and keeps them as the job's history of attempts.
                    sqlx::query("update task_failures set cleared = 1 where job_id = $1").bind(&id).execute(&mut *tx).await?;
                    let next_seq: i64 = sqlx::query_scalar("select coalesce(max(seq), -1) + 1 from tasks where job_id = $1")
                        .bind(&id)
                        .fetch_one(&mut *tx)
                        .await?;
                    <$store as Dialect>::insert_tasks(&mut *tx, job_id, next_seq, &retry.chunks).await?;
                    tx.commit().await?;
                    Ok(Some(dropped))
                }

                async fn requeue_running(&self, job_id: Uuid) -> Result<u64> {
                    $crate::retrying(|| async {
                        Ok(sqlx::query(
                            "update tasks set status = $1, worker_id = null, lease_expires_at = null
                             where job_id = $2 and status = $3",
                        )
                        .bind(TaskStatus::Queued.as_str())
                        .bind(job_id.to_string())
                        .bind(TaskStatus::Running.as_str())
                        .execute(&self.pool)
                        .await?
                        .rows_affected())
                    })
                    .await
                }

                async fn claim_task(
                    &self,
                    worker_id: &str,
                    job_ids: &[Uuid],
                    claim: ClaimOptions,
                ) -> Result<Option<ClaimedTask>> {
                    if job_ids.is_empty() {
                        return Ok(None);
                    }
                    self.hot.claim(NextClaim { worker_id, job_ids, claim }).await
                }

                async fn heartbeat(
                    &self,
                    lease: &Lease,
                    lease_ms: i64,
                    now: i64,
                    frames_done: i64,
                    frame_progress: f64,
                ) -> Result<LeaseState> {
                    // The attempt fences the write: a worker whose task was requeued and claimed
                    // again extends nothing and learns that it lost the task.
                    let done = sqlx::query(
                        "update tasks set lease_expires_at = $1,
                            frames_done = case when $5 < n_frames then $5 else n_frames end,
                            frame_progress = case when $5 < n_frames then $6 else 0 end
                         where id = $2 and attempt = $3 and status = $4",
                    )
                    .bind(now + lease_ms)
                    .bind(lease.task_id.to_string())
                    .bind(lease.attempt)
                    .bind(TaskStatus::Running.as_str())
                    .bind(frames_done.max(0))
                    .bind(if frame_progress.is_finite() { frame_progress.clamp(0.0, 1.0) } else { 0.0 })
                    .execute(&self.pool)
                    .await?;
                    Ok(if done.rows_affected() == 1 { LeaseState::Held } else { LeaseState::Lost })
                }

                async fn append_task_log(
                    &self,
                    lease: &Lease,
                    worker_id: &str,
                    chunk: &str,
                    cap: usize,
                    now: i64,
                ) -> Result<bool> {
                    // Fenced like a heartbeat: only the worker holding the attempt writes its log.
                    // `substr` from a position counts characters on both databases (an `int4`
                    // position: PostgreSQL has no `substr(text, bigint)`).
                    let cap = i32::try_from(cap).unwrap_or(i32::MAX);
                    let done = sqlx::query(
                        "insert into task_logs (task_id, attempt, job_id, worker_id, text, truncated, updated_at)
                         select id, attempt, job_id, $3, substr($4, case when length($4) > $5
                                then length($4) - $5 + 1 else 1 end), case when length($4) > $5 then 1 else 0 end, $6
                         from tasks where id = $1 and attempt = $2 and worker_id = $3 and status = $7
                         on conflict (task_id, attempt) do update set
                            text = case when length(task_logs.text) + length(excluded.text) > $5
                                then substr(task_logs.text || excluded.text,
                                            length(task_logs.text) + length(excluded.text) - $5 + 1)
                                else task_logs.text || excluded.text end,
                            truncated = case when length(task_logs.text) + length(excluded.text) > $5
                                then 1 else task_logs.truncated + excluded.truncated end,
                            updated_at = excluded.updated_at",
                    )
                    .bind(lease.task_id.to_string())
                    .bind(lease.attempt)
                    .bind(worker_id)
                    .bind(chunk)
                    .bind(cap)
                    .bind(now)
                    .bind(TaskStatus::Running.as_str())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn record_output_details(&self, job_id: Uuid, details: &[OutputDetail]) -> Result<()> {
                    if details.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self.write().await?;
                    for detail in details {
                        sqlx::query(
                            "insert into output_details (job_id, file_name, relative_path, node_name, view)
                             values ($1, $2, $3, $4, $5)
                             on conflict (job_id, file_name) do update set relative_path = excluded.relative_path,
                                node_name = excluded.node_name, view = excluded.view",
                        )
                        .bind(job_id.to_string())
                        .bind(&detail.file_name)
                        .bind(&detail.relative_path)
                        .bind(&detail.node_name)
                        .bind(&detail.view)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn judge_frames(&self, job_id: Uuid, frames: &[i32], flagged: &[(i32, FrameFlag)]) -> Result<()> {
                    let id = job_id.to_string();
                    let mut tx = self.write().await?;
                    let stored: Vec<(i64, String)> =
                        sqlx::query_as("select frame, flag from frame_flags where job_id = $1")
                            .bind(&id)
                            .fetch_all(&mut *tx)
                            .await?;
                    // Nothing to change (the usual case): no write.
                    let now = |frame: &i32, flag: FrameFlag| flagged.contains(&(*frame, flag));
                    let was = |frame: &i32, flag: FrameFlag| {
                        stored.iter().any(|(f, name)| *f == i64::from(*frame) && name == flag.as_str())
                    };
                    if frames.iter().all(|it| FrameFlag::ALL.iter().all(|flag| now(it, *flag) == was(it, *flag))) {
                        return Ok(());
                    }
                    for frame in frames {
                        sqlx::query("delete from frame_flags where job_id = $1 and frame = $2")
                            .bind(&id)
                            .bind(i64::from(*frame))
                            .execute(&mut *tx)
                            .await?;
                        for flag in FrameFlag::ALL.iter().filter(|flag| now(frame, **flag)) {
                            sqlx::query("insert into frame_flags (job_id, frame, flag) values ($1, $2, $3)")
                                .bind(&id)
                                .bind(i64::from(*frame))
                                .bind(flag.as_str())
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    sqlx::query(
                        "update jobs set
                            frames_blank = (select count(*) from frame_flags where job_id = $1 and flag = 'blank'),
                            frames_non_finite =
                                (select count(*) from frame_flags where job_id = $1 and flag = 'non_finite')
                         where id = $1",
                    )
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn frame_flags(&self, job_id: Uuid) -> Result<Vec<(i32, FrameFlag)>> {
                    let rows: Vec<(i64, String)> = sqlx::query_as(
                        "select frame, flag from frame_flags where job_id = $1 order by frame, flag",
                    )
                    .bind(job_id.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter()
                        .map(|(frame, flag)| {
                            let flag = FrameFlag::parse(&flag).ok_or_else(|| {
                                $crate::rows::corrupt("frame_flags", "flag", format!("unknown flag {flag:?}"))
                            })?;
                            let frame = i32::try_from(frame).map_err(|e| $crate::rows::corrupt("frame_flags", "frame", e))?;
                            Ok((frame, flag))
                        })
                        .collect()
                }

                async fn output_details(&self, job_id: Uuid) -> Result<Vec<OutputDetail>> {
                    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
                        "select file_name, relative_path, node_name, view from output_details where job_id = $1
                         order by file_name",
                    )
                    .bind(job_id.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(file_name, relative_path, node_name, view)| OutputDetail {
                            file_name,
                            relative_path,
                            node_name,
                            view,
                        })
                        .collect())
                }

                async fn task_log(&self, task_id: Uuid, attempt: Option<i64>) -> Result<Option<TaskLog>> {
                    let row = sqlx::query(
                        "select attempt, worker_id, text, truncated, updated_at from task_logs
                         where task_id = $1 and ($2 is null or attempt = $2) order by attempt desc limit 1",
                    )
                    .bind(task_id.to_string())
                    .bind(attempt)
                    .fetch_optional(&self.pool)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    Ok(Some(TaskLog {
                        attempt: row.try_get("attempt")?,
                        worker_id: row.try_get("worker_id")?,
                        text: row.try_get("text")?,
                        truncated: row.try_get::<i64, _>("truncated")? != 0,
                        updated_at: row.try_get("updated_at")?,
                    }))
                }

                async fn complete_task(&self, lease: &Lease, done: TaskDone, now: i64) -> Result<Completion> {
                    Ok(self.hot.complete(lease, done, now, None).await?.0)
                }

                async fn complete_and_claim(
                    &self,
                    lease: &Lease,
                    done: TaskDone,
                    now: i64,
                    next: NextClaim<'_>,
                ) -> Result<(Completion, Option<ClaimedTask>)> {
                    let next = (!next.job_ids.is_empty()).then_some(next);
                    self.hot.complete(lease, done, now, next).await
                }

                async fn fail_task(
                    &self,
                    lease: &Lease,
                    worker_id: &str,
                    error: &str,
                    max_workers: u32,
                    now: i64,
                ) -> Result<FailOutcome> {
                    $crate::retrying(|| fail_once(self, lease, worker_id, error, max_workers, now)).await
                }

                async fn job_failures_by_worker(&self, job_id: Uuid) -> Result<Vec<(String, i64)>> {
                    let rows = sqlx::query(
                        "select worker_id, count(*) as n from task_failures where job_id = $1 and cleared = 0 group by worker_id",
                    )
                    .bind(job_id.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(|row| Ok((row.try_get("worker_id")?, row.try_get("n")?))).collect()
                }

                async fn last_job_failure(&self, job_id: Uuid) -> Result<Option<String>> {
                    Ok(sqlx::query_scalar(
                        "select error from task_failures where job_id = $1 order by at desc, id desc limit 1",
                    )
                    .bind(job_id.to_string())
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn rechunk_queued(&self, job_id: Uuid, chunk_size: usize) -> Result<usize> {
                    let mut tx = self.write().await?;
                    let rows = sqlx::query(concat!(
                        "select frames from tasks where job_id = $1 and status = $2 and attempt = 0 order by seq",
                        $for_update
                    ))
                    .bind(job_id.to_string())
                    .bind(TaskStatus::Queued.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                    let stored = rows
                        .iter()
                        .map(|row| row.try_get::<String, _>("frames"))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    let Some(chunks) = regroup(&stored, chunk_size)? else { return Ok(rows.len()) };
                    let next_seq: i64 =
                        sqlx::query_scalar("select coalesce(max(seq), -1) + 1 from tasks where job_id = $1")
                            .bind(job_id.to_string())
                            .fetch_one(&mut *tx)
                            .await?;
                    sqlx::query("delete from tasks where job_id = $1 and status = $2 and attempt = 0")
                        .bind(job_id.to_string())
                        .bind(TaskStatus::Queued.as_str())
                        .execute(&mut *tx)
                        .await?;
                    <$store as Dialect>::insert_tasks(&mut *tx, job_id, next_seq, &chunks).await?;
                    tx.commit().await?;
                    Ok(chunks.len())
                }

                async fn requeue_expired(&self, now: i64) -> Result<u64> {
                    self.requeue_expired_tasks(now).await
                }

                async fn cancel_tasks(&self, job_id: Uuid) -> Result<()> {
                    // It locks several of the job's tasks, as a batch of completions does: on
                    // PostgreSQL, retried if a deadlock between them is broken by aborting it.
                    $crate::retrying(|| async {
                        sqlx::query(
                            "update tasks set status = $1, lease_expires_at = null where job_id = $2 and status in ($3, $4)",
                        )
                        .bind(TaskStatus::Canceled.as_str())
                        .bind(job_id.to_string())
                        .bind(TaskStatus::Queued.as_str())
                        .bind(TaskStatus::Running.as_str())
                        .execute(&self.pool)
                        .await?;
                        Ok(())
                    })
                    .await
                }

                async fn list_outputs(&self, job_id: Uuid) -> Result<Vec<Output>> {
                    let rows = sqlx::query(
                        "select kind, frame, file_name, object_key, size, created_at from outputs where job_id = $1
                         order by kind, frame, file_name",
                    )
                    .bind(job_id.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(output_from_row).collect()
                }

                async fn list_tasks(&self, job_id: Uuid) -> Result<Vec<Task>> {
                    let rows = sqlx::query(concat!("select ", task_columns!(), " from tasks where job_id = $1 order by seq"))
                        .bind(job_id.to_string())
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(task_from_row).collect()
                }

                async fn failed_attempts(&self, job_id: Uuid) -> Result<Vec<FailedAttempt>> {
                    let rows: Vec<(String, i64, String, String, i64)> = sqlx::query_as(
                        "select task_id, attempt, worker_id, error, at from task_failures where job_id = $1
                         order by at, id",
                    )
                    .bind(job_id.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter()
                        .map(|(task, attempt, worker_id, error, at)| {
                            let task_id = $crate::rows::uuid(&task, "task_failures", "task_id")?;
                            Ok(FailedAttempt { task_id, attempt, worker_id, error, at })
                        })
                        .collect()
                }

                async fn get_task(&self, task_id: Uuid) -> Result<Option<Task>> {
                    let row = sqlx::query(concat!("select ", task_columns!(), " from tasks where id = $1"))
                        .bind(task_id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(task_from_row).transpose()
                }
            }
        };
    };
}

pub(crate) use task_store;
