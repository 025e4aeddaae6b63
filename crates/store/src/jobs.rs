//! Jobs: [`JobStore`], its implementation for both dialects, and the cache of decoded
//! analyses that job reads share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use orchard_blend::Analysis;
use orchard_domain::JobStatus;
use uuid::Uuid;

use crate::rows::{Invalid, corrupt};
use crate::{Job, JobPatch, NewJob, Order, Result, WorkspaceUsage, rows};

/// Jobs: made from uploads, read, listed, and moved through their statuses.
#[async_trait]
pub trait JobStore: Send + Sync {
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
    /// Every workspace's jobs, newest first, one page (an admin's view), and their total.
    async fn list_all_jobs(&self, statuses: &[JobStatus], page: u32, page_size: u32) -> Result<(Vec<Job>, u64)>;
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
    /// Cancels a job and its unfinished tasks; false if it was already terminal.
    async fn cancel_job(&self, job_id: Uuid, from: JobStatus, now: i64) -> Result<bool>;
    /// Sets the preview image key.
    async fn set_preview(&self, job_id: Uuid, key: &str, now: i64) -> Result<()>;
    /// Sets or clears why a job is not progressing.
    async fn set_waiting_reason(&self, job_id: Uuid, reason: Option<&str>) -> Result<()>;
    /// Each workspace's jobs, frames and normalized seconds (of one workspace, or of all with
    /// `None`), most seconds first, and the frames of tasks completed since `since`.
    async fn usage(&self, workspace_id: Option<Uuid>, since: i64) -> Result<(Vec<WorkspaceUsage>, i64)>;
    /// Jobs by status, and tasks queued and running: the farm at a glance (`/metrics`).
    async fn status_counts(&self) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)>;
    /// Sets a job's priority (0–100); false if there is no such job.
    async fn set_priority(&self, job_id: Uuid, priority: i64, now: i64) -> Result<bool>;
    /// Removes a finished (completed, failed or canceled) job and its tasks, failures and
    /// outputs' records, in one transaction; false if it is not finished or not there. Its
    /// files are the caller's to delete.
    async fn delete_job(&self, job_id: Uuid) -> Result<bool>;
    /// Finished jobs whose files outlived their retention at `now` (their workspace's, else
    /// `default_ms`; none kept forever), oldest first, at most `limit`.
    async fn jobs_past_retention(&self, now: i64, default_ms: Option<i64>, limit: u32) -> Result<Vec<Uuid>>;
    /// Records that a finished job's files are gone: its outputs' records go, its archive and
    /// preview are unset; false if it is not finished, or already so.
    async fn forget_outputs(&self, job_id: Uuid, now: i64) -> Result<bool>;
    /// Takes over the oldest validation whose owner's time ran out before `now` (its server
    /// was killed): the caller owns it until `until` and runs it again. `None` if there is
    /// none; of several servers asking at once, one gets each.
    async fn take_stale_validation(&self, now: i64, until: i64) -> Result<Option<Job>>;
}

/// The columns a job read selects: every column of [`Job`] but the analysis, which
/// [`Analyses`] keeps decoded by its id. The frames rendering now are counted from running
/// tasks (a partial index), so that a claim never writes its job's row.
macro_rules! job_columns {
    () => {
        "id, workspace_id, user_id, upload_slug, file_name, file_type, object_key, file_size, main_file, status, \
         created_at, updated_at, failed_name, failed_type, failed_message, requested_config, final_config, \
         analysis_id, preview_key, normalized_seconds, frames_total, frames_done, \
         cast(case when status in ('booting', 'rendering') then (select coalesce(sum(t.n_frames), 0) from tasks t \
             where t.status = 'running' and t.job_id = jobs.id) else 0 end as bigint) as frames_rendering, \
         frames_failed, render_started_at, waiting_reason, priority, \
         cast(case when status in ('booting', 'rendering') then (select coalesce(sum(t.frames_done), 0) \
             from tasks t where t.status = 'running' and t.job_id = jobs.id) else 0 end as bigint) as frames_running_done, \
         cast(case when status in ('booting', 'rendering') then (select coalesce(sum(t.frames_done + t.frame_progress), 0) \
             from tasks t where t.status = 'running' and t.job_id = jobs.id) else 0 end as double precision) \
             as frames_running_progress, \
         blender_versions, outputs_deleted_at, frames_blank, frames_non_finite"
    };
}

pub(crate) use job_columns;

/// The insert of a new job, `$1` to `$11` bound by `bind_new_job!`; it does nothing when the
/// upload made a job already (on PostgreSQL, a concurrent insert of the same slug makes it
/// wait for that one's commit, then do nothing).
macro_rules! insert_job {
    () => {
        "insert into jobs (id, workspace_id, user_id, upload_slug, file_name, file_type, object_key, file_size,
                           main_file, status, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) on conflict (upload_slug) do nothing"
    };
}

/// `$query` with the values of `insert_job!()` bound: those of the job `$new` makes at `$now`.
macro_rules! bind_new_job {
    ($query:expr, $new:expr, $now:expr) => {{
        let new: &$crate::NewJob = $new;
        $query
            .bind(new.id.to_string())
            .bind(new.upload.workspace_id.to_string())
            .bind(new.upload.user_id.to_string())
            .bind(&new.upload.slug)
            .bind(&new.upload.file_name)
            .bind(&new.upload.file_type)
            .bind(&new.upload.object_key)
            .bind(new.upload.size.unwrap_or(0))
            .bind(&new.main_file)
            .bind(orchard_domain::JobStatus::Created.as_str())
            .bind($now)
    }};
}

pub(crate) use {bind_new_job, insert_job};

/// Most analyses kept decoded (one is a few kilobytes); the cache is emptied when full.
const MAX_ANALYSES: usize = 4096;

/// Most jobs whose analyses one statement reads.
pub(crate) const MAX_ANALYSES_READ: usize = 100;

/// Analyses by id, each decoded once. An analysis never changes once written (validating again
/// would write a new id), so what is kept is never stale, whichever server wrote it; a job
/// read whose analysis is kept does not read its text at all.
#[derive(Debug, Default)]
pub(crate) struct Analyses {
    by_id: Mutex<HashMap<Uuid, Arc<Analysis>>>,
}

impl Analyses {
    /// The map, even after a panic elsewhere (each entry is complete once inserted).
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<Analysis>>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `analysis` as the one of `id`.
    pub(crate) fn keep(&self, id: Uuid, analysis: Arc<Analysis>) {
        let mut by_id = self.lock();
        if by_id.len() >= MAX_ANALYSES && !by_id.contains_key(&id) {
            by_id.clear();
        }
        by_id.insert(id, analysis);
    }

    /// Gives each job that has an analysis the one kept for its id; returns the ids of the
    /// jobs whose analysis is not kept, for [`Analyses::read`].
    pub(crate) fn attach(&self, jobs: &mut [Job]) -> Vec<Uuid> {
        let by_id = self.lock();
        let mut missing = Vec::new();
        for job in jobs {
            if let Some(id) = job.analysis_id {
                match by_id.get(&id) {
                    Some(analysis) => job.analysis = Some(analysis.clone()),
                    None => missing.push(job.id),
                }
            }
        }
        missing
    }

    /// Decodes and keeps the analyses read again for the jobs [`Analyses::attach`] left
    /// without: `read` holds, per job id, its `analysis_id` and `analysis` columns as one row
    /// has them (should the job have been analysed again between the two reads, it gets the
    /// later pair).
    pub(crate) fn read(
        &self,
        jobs: &mut [Job],
        mut read: HashMap<Uuid, (Option<String>, Option<String>)>,
    ) -> Result<()> {
        for job in jobs.iter_mut().filter(|it| it.analysis_id.is_some() && it.analysis.is_none()) {
            let Some((Some(id), Some(text))) = read.remove(&job.id) else {
                return Err(corrupt("jobs", "analysis", Invalid::Missing("analysis_id")));
            };
            let id = rows::uuid(&id, "jobs", "analysis_id")?;
            let analysis = Arc::new(rows::json::<Analysis>(&text, "jobs", "analysis")?);
            self.keep(id, analysis.clone());
            job.analysis_id = Some(id);
            job.analysis = Some(analysis);
        }
        Ok(())
    }
}

/// `impl JobStore for $store`, for both dialects: what differs is in [`crate::Dialect`] and
/// the index hints `by_status` and `by_workspace_status` (clauses after `from jobs` for a read
/// by status, of every workspace or of one). Expects `row_decoders!` in scope and `$store` to
/// have a `pool`, a `write()` and `analyses` ([`Analyses`]).
macro_rules! job_store {
    (
        $store:ty,
        for_update = $for_update:literal,
        by_status = $by_status:literal,
        by_workspace_status = $by_workspace_status:literal
    ) => {
        const _: () = {
            use std::collections::HashMap;
            use std::sync::Arc;

            use orchard_domain::{JobEvent, JobStatus, TaskStatus};
            use sqlx::{AssertSqlSafe, Row as _};
            use uuid::Uuid;

            use $crate::jobs::{MAX_ANALYSES_READ, job_columns};
            use $crate::rows::{placeholders, status_after, to_json};
            use $crate::{Dialect, Job, JobPatch, JobStore, NewJob, Order, Result};

            /// Decodes rows of `job_columns!()`, with their analyses.
            async fn jobs_from_rows(store: &$store, rows: &[<$store as Dialect>::Row]) -> Result<Vec<Job>> {
                let mut jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
                with_analyses(store, &mut jobs).await?;
                Ok(jobs)
            }

            /// Gives each job its analysis: the one kept, else read (one statement for up to
            /// `MAX_ANALYSES_READ` jobs), decoded and kept.
            async fn with_analyses(store: &$store, jobs: &mut [Job]) -> Result<()> {
                let missing = store.analyses.attach(jobs);
                if missing.is_empty() {
                    return Ok(());
                }
                let mut read = HashMap::with_capacity(missing.len());
                for chunk in missing.chunks(MAX_ANALYSES_READ) {
                    let list = placeholders(1, chunk.len());
                    let statement = format!("select id, analysis_id, analysis from jobs where id in {list}");
                    let mut select = sqlx::query(AssertSqlSafe(statement));
                    for id in chunk {
                        select = select.bind(id.to_string());
                    }
                    for row in select.fetch_all(&store.pool).await? {
                        let columns = (row.try_get("analysis_id")?, row.try_get("analysis")?);
                        read.insert(uuid_col(&row, "id", "jobs")?, columns);
                    }
                }
                store.analyses.read(jobs, read)
            }

            /// `cancel_job`, once. Locks the job's unfinished tasks before the job row (the order
            /// a claim takes), guarded by the job's status so that a stale cancel locks nothing.
            async fn cancel_once(
                store: &$store,
                job_id: Uuid,
                from: JobStatus,
                canceled: &str,
                now: i64,
            ) -> Result<bool> {
                let mut tx = store.write().await?;
                sqlx::query(
                    "update tasks set status = $1, lease_expires_at = null
                     where job_id = $2 and status in ($3, $4)
                       and exists (select 1 from jobs where id = $2 and status = $5)",
                )
                .bind(TaskStatus::Canceled.as_str())
                .bind(job_id.to_string())
                .bind(TaskStatus::Queued.as_str())
                .bind(TaskStatus::Running.as_str())
                .bind(from.as_str())
                .execute(&mut *tx)
                .await?;
                let moved = sqlx::query("update jobs set status = $1, updated_at = $2 where id = $3 and status = $4")
                    .bind(canceled)
                    .bind(now)
                    .bind(job_id.to_string())
                    .bind(from.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if moved {
                    $crate::notices::record_notice!(tx, job_id.to_string(), JobStatus::Canceled, now);
                    tx.commit().await?;
                } else {
                    // The job left `from` meanwhile: its tasks stay as they were.
                    tx.rollback().await?;
                }
                Ok(moved)
            }

            #[async_trait::async_trait]
            impl JobStore for $store {
                async fn create_job(&self, new: NewJob, now: i64) -> Result<(Job, bool)> {
                    let inserted = self.insert_job(&new, now).await?;
                    // A new statement: it sees the job whichever insert made it.
                    let row = sqlx::query(concat!("select ", job_columns!(), " from jobs where upload_slug = $1"))
                        .bind(&new.upload.slug)
                        .fetch_one(&self.pool)
                        .await?;
                    let mut jobs = jobs_from_rows(self, std::slice::from_ref(&row)).await?;
                    Ok((jobs.remove(0), inserted))
                }

                async fn get_job(&self, workspace_id: Uuid, job_id: Uuid) -> Result<Option<Job>> {
                    let mut job = Vec::from_iter(self.read_job(Some(workspace_id), job_id).await?);
                    with_analyses(self, &mut job).await?;
                    Ok(job.pop())
                }

                async fn get_job_internal(&self, job_id: Uuid) -> Result<Option<Job>> {
                    let mut job = Vec::from_iter(self.read_job(None, job_id).await?);
                    with_analyses(self, &mut job).await?;
                    Ok(job.pop())
                }

                async fn list_jobs(
                    &self,
                    workspace_id: Uuid,
                    statuses: &[JobStatus],
                    page: u32,
                    page_size: u32,
                ) -> Result<(Vec<Job>, u64)> {
                    let workspace_id = workspace_id.to_string();
                    // Without a filter the statements have no status condition at all, so that
                    // the (workspace_id, created_at) index serves the page, and the total is the
                    // kept count: counting rows grows with history.
                    let filter = match statuses {
                        [] => String::new(),
                        _ => format!(" and status in {}", placeholders(2, statuses.len())),
                    };
                    let total: i64 = if statuses.is_empty() {
                        sqlx::query_scalar("select jobs from workspace_job_counts where workspace_id = $1")
                            .bind(&workspace_id)
                            .fetch_optional(&self.pool)
                            .await?
                            .unwrap_or(0)
                    } else {
                        let statement = format!("select count(*) from jobs where workspace_id = $1{filter}");
                        let mut count = sqlx::query_scalar(AssertSqlSafe(statement)).bind(&workspace_id);
                        for status in statuses {
                            count = count.bind(status.as_str());
                        }
                        count.fetch_one(&self.pool).await?
                    };
                    let limit = statuses.len() + 2;
                    let mut select = sqlx::query(AssertSqlSafe(format!(
                        "select {} from jobs where workspace_id = $1{filter}
                         order by created_at desc, id desc limit ${limit} offset ${}",
                        job_columns!(),
                        limit + 1
                    )))
                    .bind(&workspace_id);
                    for status in statuses {
                        select = select.bind(status.as_str());
                    }
                    let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
                    let rows = select.bind(i64::from(page_size)).bind(offset).fetch_all(&self.pool).await?;
                    Ok((jobs_from_rows(self, &rows).await?, total.max(0) as u64))
                }

                async fn list_all_jobs(
                    &self,
                    statuses: &[JobStatus],
                    page: u32,
                    page_size: u32,
                ) -> Result<(Vec<Job>, u64)> {
                    let filter = match statuses {
                        [] => String::new(),
                        _ => format!(" where status in {}", placeholders(1, statuses.len())),
                    };
                    let total: i64 = if statuses.is_empty() {
                        sqlx::query_scalar("select cast(coalesce(sum(jobs), 0) as bigint) from workspace_job_counts")
                            .fetch_one(&self.pool)
                            .await?
                    } else {
                        let mut count = sqlx::query_scalar(AssertSqlSafe(format!("select count(*) from jobs{filter}")));
                        for status in statuses {
                            count = count.bind(status.as_str());
                        }
                        count.fetch_one(&self.pool).await?
                    };
                    let limit = statuses.len() + 1;
                    let mut select = sqlx::query(AssertSqlSafe(format!(
                        "select {} from jobs{filter} order by created_at desc, id desc limit ${limit} offset ${}",
                        job_columns!(),
                        limit + 1
                    )));
                    for status in statuses {
                        select = select.bind(status.as_str());
                    }
                    let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
                    let rows = select.bind(i64::from(page_size)).bind(offset).fetch_all(&self.pool).await?;
                    Ok((jobs_from_rows(self, &rows).await?, total.max(0) as u64))
                }

                async fn jobs_in_status(
                    &self,
                    workspace_id: Option<Uuid>,
                    statuses: &[JobStatus],
                    order: Order,
                    limit: u32,
                ) -> Result<Vec<Job>> {
                    if statuses.is_empty() {
                        return Ok(Vec::new());
                    }
                    // Few jobs are in any one live status, many in the workspace: without its
                    // hint SQLite prefers the index that already has the order, and walks the
                    // workspace's whole history.
                    let n = statuses.len();
                    let (index, filter, limit_mark) = match workspace_id {
                        Some(_) => ($by_workspace_status, format!(" and workspace_id = ${}", n + 1), n + 2),
                        None => ($by_status, String::new(), n + 1),
                    };
                    let mut select = sqlx::query(AssertSqlSafe(format!(
                        "select {} from jobs{index} where status in {}{filter}
                         order by created_at {} limit ${limit_mark}",
                        job_columns!(),
                        placeholders(1, n),
                        order.sql()
                    )));
                    for status in statuses {
                        select = select.bind(status.as_str());
                    }
                    if let Some(workspace_id) = workspace_id {
                        select = select.bind(workspace_id.to_string());
                    }
                    let rows = select.bind(i64::from(limit)).fetch_all(&self.pool).await?;
                    jobs_from_rows(self, &rows).await
                }

                async fn transition_job(
                    &self,
                    job_id: Uuid,
                    from: JobStatus,
                    to: JobStatus,
                    patch: JobPatch,
                    now: i64,
                ) -> Result<bool> {
                    let (analysis_id, analysis) = match &patch.analysis {
                        Some((id, analysis)) => (Some(id.to_string()), Some(to_json(analysis, "jobs", "analysis")?)),
                        None => (None, None),
                    };
                    let failed = patch.failed_reason;
                    // Compare-and-set on the status the caller read: of two concurrent
                    // transitions out of one status, the second finds the row changed (on
                    // PostgreSQL, re-read after the first commits) and updates nothing. A
                    // status people hear about is recorded with it, in one transaction.
                    let mut tx = self.write().await?;
                    let done = sqlx::query(
                        "update jobs set status = $1, updated_at = $2,
                            analysis_id = coalesce($3, analysis_id), analysis = coalesce($4, analysis),
                            failed_name = coalesce($5, failed_name), failed_type = coalesce($6, failed_type),
                            failed_message = coalesce($7, failed_message),
                            preview_key = coalesce($8, preview_key),
                            validating_until = $11, blender_versions = coalesce($12, blender_versions)
                         where id = $9 and status = $10",
                    )
                    .bind(to.as_str())
                    .bind(now)
                    .bind(analysis_id)
                    .bind(analysis)
                    .bind(failed.as_ref().map(|it| it.name.clone()))
                    .bind(failed.as_ref().map(|it| it.kind.clone()))
                    .bind(failed.as_ref().map(|it| it.message.clone()))
                    .bind(patch.preview_key)
                    .bind(job_id.to_string())
                    .bind(from.as_str())
                    .bind(patch.validating_until)
                    .bind(
                        patch
                            .blender_versions
                            .as_ref()
                            .map(|it| to_json(it, "jobs", "blender_versions"))
                            .transpose()?,
                    )
                    .execute(&mut *tx)
                    .await?;
                    let moved = done.rows_affected() == 1;
                    if moved {
                        $crate::notices::record_notice!(tx, job_id.to_string(), to, now);
                    }
                    tx.commit().await?;
                    if moved && let Some((id, analysis)) = patch.analysis {
                        // Written: the next read of the job need not decode it.
                        self.analyses.keep(id, Arc::new(analysis));
                    }
                    Ok(moved)
                }

                async fn cancel_job(&self, job_id: Uuid, from: JobStatus, now: i64) -> Result<bool> {
                    let Some(canceled) = status_after(from, JobEvent::Canceled) else {
                        return Ok(false);
                    };
                    $crate::retrying(|| cancel_once(self, job_id, from, canceled, now)).await
                }

                async fn set_preview(&self, job_id: Uuid, key: &str, now: i64) -> Result<()> {
                    sqlx::query("update jobs set preview_key = $1, updated_at = $2 where id = $3")
                        .bind(key)
                        .bind(now)
                        .bind(job_id.to_string())
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn set_waiting_reason(&self, job_id: Uuid, reason: Option<&str>) -> Result<()> {
                    // Only a change writes: the matchmaker sets the same reason again and again.
                    sqlx::query(
                        "update jobs set waiting_reason = $1 where id = $2 and waiting_reason is distinct from $1",
                    )
                    .bind(reason)
                    .bind(job_id.to_string())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn usage(
                    &self,
                    workspace_id: Option<Uuid>,
                    since: i64,
                ) -> Result<(Vec<$crate::WorkspaceUsage>, i64)> {
                    let workspace = workspace_id.map(|it| it.to_string());
                    let rows: Vec<(String, i64, i64, f64)> = sqlx::query_as(
                        "select workspace_id, count(*), cast(coalesce(sum(frames_done), 0) as bigint),
                             cast(coalesce(sum(normalized_seconds), 0) as double precision)
                         from jobs where $1 is null or workspace_id = $1
                         group by workspace_id order by 4 desc, 1",
                    )
                    .bind(&workspace)
                    .fetch_all(&self.pool)
                    .await?;
                    let usage = rows
                        .into_iter()
                        .map(|(workspace, jobs, frames_done, normalized_seconds)| {
                            Ok($crate::WorkspaceUsage {
                                workspace_id: $crate::rows::uuid(&workspace, "jobs", "workspace_id")?,
                                jobs,
                                frames_done,
                                normalized_seconds,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let frames: i64 = sqlx::query_scalar(
                        "select cast(coalesce(sum(t.n_frames), 0) as bigint) from tasks t
                         where t.status = 'completed' and t.finished_at >= $1
                           and ($2 is null or t.job_id in (select id from jobs where workspace_id = $2))",
                    )
                    .bind(since)
                    .bind(&workspace)
                    .fetch_one(&self.pool)
                    .await?;
                    Ok((usage, frames))
                }

                async fn status_counts(&self) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)> {
                    let jobs = sqlx::query_as("select status, count(*) from jobs group by status")
                        .fetch_all(&self.pool)
                        .await?;
                    // By the tasks_queue index: finished tasks, however many, are not read.
                    let tasks = sqlx::query_as(
                        "select status, count(*) from tasks where status in ('queued', 'running') group by status",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    Ok((jobs, tasks))
                }

                async fn set_priority(&self, job_id: Uuid, priority: i64, now: i64) -> Result<bool> {
                    let done = sqlx::query("update jobs set priority = $1, updated_at = $2 where id = $3")
                        .bind(priority)
                        .bind(now)
                        .bind(job_id.to_string())
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn jobs_past_retention(
                    &self,
                    now: i64,
                    default_ms: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<Uuid>> {
                    let ids: Vec<String> = sqlx::query_scalar(
                        "select j.id from jobs j join workspaces w on w.id = j.workspace_id
                         where j.status in ($1, $2, $3) and j.outputs_deleted_at is null
                           and coalesce(w.retention_seconds * 1000, $4) > 0
                           and j.updated_at < $5 - coalesce(w.retention_seconds * 1000, $4)
                         order by j.updated_at limit $6",
                    )
                    .bind(JobStatus::Completed.as_str())
                    .bind(JobStatus::Failed.as_str())
                    .bind(JobStatus::Canceled.as_str())
                    .bind(default_ms)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    ids.iter().map(|it| $crate::rows::uuid(it, "jobs", "id")).collect()
                }

                async fn forget_outputs(&self, job_id: Uuid, now: i64) -> Result<bool> {
                    let id = job_id.to_string();
                    let mut tx = self.write().await?;
                    let done = sqlx::query(
                        "update jobs set outputs_deleted_at = $1, preview_key = null
                         where id = $2 and status in ($3, $4, $5) and outputs_deleted_at is null",
                    )
                    .bind(now)
                    .bind(&id)
                    .bind(JobStatus::Completed.as_str())
                    .bind(JobStatus::Failed.as_str())
                    .bind(JobStatus::Canceled.as_str())
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    sqlx::query("delete from outputs where job_id = $1").bind(&id).execute(&mut *tx).await?;
                    sqlx::query("delete from output_details where job_id = $1").bind(&id).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn delete_job(&self, job_id: Uuid) -> Result<bool> {
                    let id = job_id.to_string();
                    let mut tx = self.write().await?;
                    let workspace: Option<String> =
                        sqlx::query_scalar("select workspace_id from jobs where id = $1 and status in ($2, $3, $4)")
                            .bind(&id)
                            .bind(JobStatus::Completed.as_str())
                            .bind(JobStatus::Failed.as_str())
                            .bind(JobStatus::Canceled.as_str())
                            .fetch_optional(&mut *tx)
                            .await?;
                    let Some(workspace) = workspace else { return Ok(false) };
                    for statement in [
                        "delete from outputs where job_id = $1",
                        "delete from task_failures where job_id = $1",
                        "delete from task_logs where job_id = $1",
                        "delete from output_details where job_id = $1",
                        "delete from frame_flags where job_id = $1",
                        "delete from packaging where job_id = $1",
                        "delete from tasks where job_id = $1",
                        "delete from jobs where id = $1",
                    ] {
                        sqlx::query(statement).bind(&id).execute(&mut *tx).await?;
                    }
                    sqlx::query("update workspace_job_counts set jobs = jobs - 1 where workspace_id = $1")
                        .bind(&workspace)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn take_stale_validation(&self, now: i64, until: i64) -> Result<Option<Job>> {
                    // The outer conditions repeat the inner ones: of two servers that picked
                    // the same job, the second finds it taken (re-read after the first
                    // commits, on PostgreSQL) and updates nothing.
                    let taken: Option<String> = sqlx::query_scalar(concat!(
                        "update jobs set validating_until = $1
                         where id = (select id from jobs
                                     where status = $2 and (validating_until is null or validating_until < $3)
                                     order by created_at limit 1",
                        $for_update,
                        ")
                           and status = $2 and (validating_until is null or validating_until < $3)
                         returning id"
                    ))
                    .bind(until)
                    .bind(JobStatus::Validating.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                    match taken {
                        Some(id) => self.get_job_internal($crate::rows::uuid(&id, "jobs", "id")?).await,
                        None => Ok(None),
                    }
                }
            }
        };
    };
}

pub(crate) use job_store;
