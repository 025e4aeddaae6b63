//! The SQLite implementation of [`Store`].
//!
//! SQLite has one writer at a time. Every write transaction starts with `BEGIN IMMEDIATE`,
//! taking the write lock up front, so a transaction that read a row can never fail to
//! upgrade to a write (the `SQLITE_BUSY` that deferred transactions hit under load);
//! `busy_timeout` makes writers queue instead of failing. Claims and completions, the writes
//! of a busy farm, are batched on a thread of their own (`hot.rs`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use orchard_domain::{JobEvent, JobStatus, TaskStatus};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use uuid::Uuid;

mod hot;

use crate::rows::status_after;
use crate::{
    ClaimOptions, ClaimedTask, Completion, FailOutcome, Job, JobPatch, KeyInfo, KeyOwner, Lease, LeaseState, NewJob,
    NewKey, NextClaim, Order, Output, Result, StartRender, Store, StoreError, Task, TaskDone, Upload, WorkerRecord,
    regroup, task_frames,
};

/// Metadata in one SQLite file (WAL mode).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One writer at a time inside this process. SQLite allows one anyway; queueing here
    /// instead of in SQLite's busy handler (which sleeps in steps of milliseconds) keeps a busy
    /// farm's claims and completions back to back.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Claims and completions, batched on a thread of their own.
    hot: std::sync::Arc<hot::HotWriter>,
}

/// A write transaction and the in-process writer slot it holds.
struct Write {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _slot: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for Write {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for Write {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl Write {
    async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

const JOB_COLUMNS: &str = "id, workspace_id, user_id, upload_slug, file_name, file_type, object_key, file_size, \
    main_file, status, created_at, updated_at, failed_name, failed_type, failed_message, requested_config, final_config, \
    analysis, analysis_id, preview_key, frames_zip_key, normalized_seconds, frames_total, frames_done, \
    case when status in ('booting', 'rendering') then (select coalesce(sum(t.n_frames), 0) from tasks t \
        where t.status = 'running' and t.job_id = jobs.id) else 0 end as frames_rendering, \
    frames_failed, render_started_at, waiting_reason";

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`) and migrates it.
    pub async fn connect(url: &str) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let file: String =
            sqlx::query_scalar("select file from pragma_database_list where name = 'main'").fetch_one(&pool).await?;
        if file.is_empty() {
            return Err(StoreError::Sqlite("Orchard keeps SQLite in a file, not in memory".into()));
        }
        let writer: std::sync::Arc<tokio::sync::Mutex<()>> = Default::default();
        let hot = std::sync::Arc::new(hot::HotWriter::start(Path::new(&file), writer.clone())?);
        Ok(SqliteStore { pool, writer, hot })
    }

    async fn write(&self) -> Result<Write> {
        let slot = self.writer.clone().lock_owned().await;
        Ok(Write { tx: self.pool.begin_with("BEGIN IMMEDIATE").await?, _slot: slot })
    }
}

crate::rows::row_decoders!(SqliteRow);

/// `(?, ?, …)` with one placeholder per status, and the names to bind.
fn status_list(statuses: &[JobStatus]) -> (String, Vec<&'static str>) {
    let marks = vec!["?"; statuses.len()].join(", ");
    (format!("({marks})"), statuses.iter().map(|it| it.as_str()).collect())
}

#[async_trait]
impl Store for SqliteStore {
    async fn setting_or_insert(&self, name: &str, make: String) -> Result<String> {
        // Insert-or-ignore then read: concurrent first starts agree on one value.
        sqlx::query("insert into settings (name, value) values (?, ?) on conflict (name) do nothing")
            .bind(name)
            .bind(make)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("select value from settings where name = ?").bind(name).fetch_one(&self.pool).await?)
    }

    async fn create_key(&self, new: NewKey, now: i64) -> Result<KeyOwner> {
        let mut tx = self.write().await?;
        sqlx::query("insert into workspaces (id, name, created_at) values (?, ?, ?) on conflict (name) do nothing")
            .bind(Uuid::now_v7().to_string())
            .bind(&new.workspace_name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let workspace_id: String = sqlx::query_scalar("select id from workspaces where name = ?")
            .bind(&new.workspace_name)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "insert into users (id, workspace_id, name, created_at) values (?, ?, ?, ?)
             on conflict (workspace_id, name) do nothing",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&workspace_id)
        .bind(&new.user_name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let user_id: String = sqlx::query_scalar("select id from users where workspace_id = ? and name = ?")
            .bind(&workspace_id)
            .bind(&new.user_name)
            .fetch_one(&mut *tx)
            .await?;
        let key_id = Uuid::now_v7();
        sqlx::query(
            "insert into api_keys (id, key_hash, prefix, workspace_id, user_id, created_at) values (?, ?, ?, ?, ?, ?)",
        )
        .bind(key_id.to_string())
        .bind(&new.key_hash)
        .bind(&new.prefix)
        .bind(&workspace_id)
        .bind(&user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let parse = |s: &str| {
            Uuid::parse_str(s).map_err(|e| StoreError::Corrupt { table: "workspaces", reason: e.to_string() })
        };
        Ok(KeyOwner { key_id, workspace_id: parse(&workspace_id)?, user_id: parse(&user_id)? })
    }

    async fn find_key(&self, key_hash: &str) -> Result<Option<KeyOwner>> {
        let row =
            sqlx::query("select id, workspace_id, user_id from api_keys where key_hash = ? and revoked_at is null")
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(KeyOwner {
                key_id: uuid_col(&row, "id", "api_keys")?,
                workspace_id: uuid_col(&row, "workspace_id", "api_keys")?,
                user_id: uuid_col(&row, "user_id", "api_keys")?,
            })
        })
        .transpose()
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let rows = sqlx::query(
            "select k.id, k.prefix, w.name as workspace, u.name as user, k.created_at, k.revoked_at
             from api_keys k join workspaces w on w.id = k.workspace_id join users u on u.id = k.user_id
             order by k.created_at desc",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(KeyInfo {
                    id: uuid_col(row, "id", "api_keys")?,
                    prefix: row.try_get("prefix")?,
                    workspace: row.try_get("workspace")?,
                    user: row.try_get("user")?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    async fn revoke_key(&self, id_or_prefix: &str, now: i64) -> Result<bool> {
        let done =
            sqlx::query("update api_keys set revoked_at = ? where (id = ? or prefix = ?) and revoked_at is null")
                .bind(now)
                .bind(id_or_prefix)
                .bind(id_or_prefix)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_upload(&self, upload: &Upload) -> Result<()> {
        sqlx::query(
            "insert into uploads (slug, workspace_id, user_id, file_name, file_type, object_key, expires_at, created_at)
             values (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&upload.slug)
        .bind(upload.workspace_id.to_string())
        .bind(upload.user_id.to_string())
        .bind(&upload.file_name)
        .bind(&upload.file_type)
        .bind(&upload.object_key)
        .bind(upload.expires_at)
        .bind(upload.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_upload(&self, slug: &str) -> Result<Option<Upload>> {
        let row = sqlx::query("select * from uploads where slug = ?").bind(slug).fetch_optional(&self.pool).await?;
        row.as_ref().map(upload_from_row).transpose()
    }

    async fn upload_has_job(&self, slug: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("select count(*) from jobs where upload_slug = ?")
            .bind(slug)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    async fn mark_uploaded(&self, slug: &str, size: i64, sha256: &str, now: i64) -> Result<()> {
        sqlx::query("update uploads set uploaded_at = ?, size = ?, sha256 = ? where slug = ?")
            .bind(now)
            .bind(size)
            .bind(sha256)
            .bind(slug)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_job(&self, new: NewJob, now: i64) -> Result<(Job, bool)> {
        let upload = &new.upload;
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "insert into jobs (id, workspace_id, user_id, upload_slug, file_name, file_type, object_key, file_size,
                               main_file, status, created_at, updated_at)
             values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict (upload_slug) do nothing",
        )
        .bind(new.id.to_string())
        .bind(upload.workspace_id.to_string())
        .bind(upload.user_id.to_string())
        .bind(&upload.slug)
        .bind(&upload.file_name)
        .bind(&upload.file_type)
        .bind(&upload.object_key)
        .bind(upload.size.unwrap_or(0))
        .bind(&new.main_file)
        .bind(JobStatus::Created.as_str())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        // The workspace's job count goes up with the job, in its transaction.
        if inserted {
            sqlx::query(
                "insert into workspace_job_counts (workspace_id, jobs) values (?, 1)
                 on conflict (workspace_id) do update set jobs = jobs + 1",
            )
            .bind(upload.workspace_id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let row = sqlx::query(AssertSqlSafe(format!("select {JOB_COLUMNS} from jobs where upload_slug = ?")))
            .bind(&upload.slug)
            .fetch_one(&self.pool)
            .await?;
        Ok((job_from_row(&row)?, inserted))
    }

    async fn get_job(&self, workspace_id: Uuid, job_id: Uuid) -> Result<Option<Job>> {
        let row =
            sqlx::query(AssertSqlSafe(format!("select {JOB_COLUMNS} from jobs where id = ? and workspace_id = ?")))
                .bind(job_id.to_string())
                .bind(workspace_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn get_job_internal(&self, job_id: Uuid) -> Result<Option<Job>> {
        let row = sqlx::query(AssertSqlSafe(format!("select {JOB_COLUMNS} from jobs where id = ?")))
            .bind(job_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn list_jobs(
        &self,
        workspace_id: Uuid,
        statuses: &[JobStatus],
        page: u32,
        page_size: u32,
    ) -> Result<(Vec<Job>, u64)> {
        let (filter, names) = if statuses.is_empty() {
            (String::new(), Vec::new())
        } else {
            let (list, names) = status_list(statuses);
            (format!(" and status in {list}"), names)
        };
        // Without a filter the total is the kept count; counting rows grows with history.
        let total: i64 = if statuses.is_empty() {
            sqlx::query_scalar("select jobs from workspace_job_counts where workspace_id = ?")
                .bind(workspace_id.to_string())
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0)
        } else {
            let mut count =
                sqlx::query_scalar(AssertSqlSafe(format!("select count(*) from jobs where workspace_id = ?{filter}")))
                    .bind(workspace_id.to_string());
            for name in &names {
                count = count.bind(*name);
            }
            count.fetch_one(&self.pool).await?
        };
        let mut select = sqlx::query(AssertSqlSafe(format!(
            "select {JOB_COLUMNS} from jobs where workspace_id = ?{filter} order by created_at desc, id desc limit ? offset ?"
        )))
        .bind(workspace_id.to_string());
        for name in &names {
            select = select.bind(*name);
        }
        let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
        let rows = select.bind(i64::from(page_size)).bind(offset).fetch_all(&self.pool).await?;
        let jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        Ok((jobs, total.max(0) as u64))
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
        let (list, names) = status_list(statuses);
        // Few jobs are in any one live status, many in the workspace: without the hint SQLite
        // prefers the index that already has the order and walks the workspace's whole history.
        let (index, workspace_filter) = match workspace_id {
            Some(_) => ("jobs_by_workspace_status", " and workspace_id = ?"),
            None => ("jobs_by_status", ""),
        };
        let mut select = sqlx::query(AssertSqlSafe(format!(
            "select {JOB_COLUMNS} from jobs indexed by {index} where status in {list}{workspace_filter}
             order by created_at {} limit ?",
            order.sql()
        )));
        for name in &names {
            select = select.bind(*name);
        }
        if let Some(workspace_id) = workspace_id {
            select = select.bind(workspace_id.to_string());
        }
        let rows = select.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn transition_job(
        &self,
        job_id: Uuid,
        from: JobStatus,
        to: JobStatus,
        patch: JobPatch,
        now: i64,
    ) -> Result<bool> {
        let (analysis_id, analysis) = match patch.analysis {
            Some((id, value)) => (Some(id.to_string()), Some(value.to_string())),
            None => (None, None),
        };
        let failed = patch.failed_reason;
        let done = sqlx::query(
            "update jobs set status = ?, updated_at = ?,
                analysis_id = coalesce(?, analysis_id), analysis = coalesce(?, analysis),
                failed_name = coalesce(?, failed_name), failed_type = coalesce(?, failed_type),
                failed_message = coalesce(?, failed_message),
                frames_zip_key = coalesce(?, frames_zip_key), preview_key = coalesce(?, preview_key)
             where id = ? and status = ?",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(analysis_id)
        .bind(analysis)
        .bind(failed.as_ref().map(|it| it.name.clone()))
        .bind(failed.as_ref().map(|it| it.kind.clone()))
        .bind(failed.as_ref().map(|it| it.message.clone()))
        .bind(patch.frames_zip_key)
        .bind(patch.preview_key)
        .bind(job_id.to_string())
        .bind(from.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_preview(&self, job_id: Uuid, key: &str, now: i64) -> Result<()> {
        sqlx::query("update jobs set preview_key = ?, updated_at = ? where id = ?")
            .bind(key)
            .bind(now)
            .bind(job_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn start_render(&self, job_id: Uuid, start: StartRender, now: i64) -> Result<bool> {
        let Some(booting) = status_after(JobStatus::Validated, JobEvent::RenderRequested) else {
            return Ok(false);
        };
        let frames_total: usize = start.chunks.iter().map(|it| it.len()).sum();
        let mut tx = self.write().await?;
        let moved = sqlx::query(
            "update jobs set status = ?, updated_at = ?, requested_config = ?, final_config = ?, frames_total = ?
             where id = ? and status = ?",
        )
        .bind(booting)
        .bind(now)
        .bind(start.requested_config.to_string())
        .bind(start.final_config.to_string())
        .bind(frames_total as i64)
        .bind(job_id.to_string())
        .bind(JobStatus::Validated.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !moved {
            return Ok(false);
        }
        for (seq, chunk) in start.chunks.iter().enumerate() {
            let frames = serde_json::to_string(chunk.frames()).unwrap_or_else(|_| "[]".to_string());
            sqlx::query("insert into tasks (id, job_id, seq, frames, n_frames, status) values (?, ?, ?, ?, ?, ?)")
                .bind(Uuid::now_v7().to_string())
                .bind(job_id.to_string())
                .bind(seq as i64)
                .bind(frames)
                .bind(chunk.len() as i64)
                .bind(TaskStatus::Queued.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn runnable_job_ids(&self, limit: u32) -> Result<Vec<Uuid>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "select id from jobs j where status in (?, ?)
               and exists (select 1 from tasks t where t.job_id = j.id and t.status = ?)
             order by created_at limit ?",
        )
        .bind(JobStatus::Booting.as_str())
        .bind(JobStatus::Rendering.as_str())
        .bind(TaskStatus::Queued.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        ids.iter()
            .map(|it| Uuid::parse_str(it).map_err(|e| StoreError::Corrupt { table: "jobs", reason: e.to_string() }))
            .collect()
    }

    async fn blocklisted_jobs(&self, worker_id: &str, threshold: i64) -> Result<Vec<Uuid>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "select job_id from task_failures where worker_id = ? group by job_id having count(*) >= ?",
        )
        .bind(worker_id)
        .bind(threshold)
        .fetch_all(&self.pool)
        .await?;
        ids.iter()
            .map(|it| {
                Uuid::parse_str(it).map_err(|e| StoreError::Corrupt { table: "task_failures", reason: e.to_string() })
            })
            .collect()
    }

    async fn claim_task(&self, worker_id: &str, job_ids: &[Uuid], claim: ClaimOptions) -> Result<Option<ClaimedTask>> {
        if job_ids.is_empty() {
            return Ok(None);
        }
        self.hot.claim(worker_id, job_ids, claim).await
    }

    async fn heartbeat(&self, lease: &Lease, lease_ms: i64, now: i64) -> Result<LeaseState> {
        // The attempt fences the write: a worker whose task was requeued and claimed again
        // extends nothing and learns that it lost the task.
        let done = sqlx::query("update tasks set lease_expires_at = ? where id = ? and attempt = ? and status = ?")
            .bind(now + lease_ms)
            .bind(lease.task_id.to_string())
            .bind(lease.attempt)
            .bind(TaskStatus::Running.as_str())
            .execute(&self.pool)
            .await?;
        Ok(if done.rows_affected() == 1 { LeaseState::Held } else { LeaseState::Lost })
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
        let next = (!next.job_ids.is_empty()).then(|| (next.worker_id.to_string(), next.job_ids.to_vec(), next.claim));
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
        let mut tx = self.write().await?;
        let row = sqlx::query("select job_id, n_frames, frames from tasks where id = ? and attempt = ? and status = ?")
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
            "insert into task_failures (id, task_id, job_id, worker_id, attempt, error, at) values (?, ?, ?, ?, ?, ?, ?)",
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
            sqlx::query_scalar("select count(distinct worker_id) from task_failures where task_id = ?")
                .bind(lease.task_id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        let failed_for_good = n_workers >= i64::from(max_workers);
        let status = if failed_for_good { TaskStatus::Failed } else { TaskStatus::Queued };
        sqlx::query(
            "update tasks set status = ?, failures = failures + 1, last_error = ?, worker_id = null,
                lease_expires_at = null, finished_at = ? where id = ?",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(now)
        .bind(lease.task_id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("update jobs set frames_failed = frames_failed + ?, updated_at = ? where id = ?")
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
                sqlx::query(
                    "update jobs set status = ?, failed_name = 'task_failed', failed_type = 'render',
                        failed_message = ? where id = ? and status = ?",
                )
                .bind(failed)
                .bind(&message)
                .bind(&job_id)
                .bind(from.as_str())
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("update tasks set status = ? where job_id = ? and status in (?, ?)")
                .bind(TaskStatus::Canceled.as_str())
                .bind(&job_id)
                .bind(TaskStatus::Queued.as_str())
                .bind(TaskStatus::Running.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(if failed_for_good { FailOutcome::JobFailed } else { FailOutcome::Requeued })
    }

    async fn job_failures_by_worker(&self, job_id: Uuid) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("select worker_id, count(*) as n from task_failures where job_id = ? group by worker_id")
                .bind(job_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|row| Ok((row.try_get("worker_id")?, row.try_get("n")?))).collect()
    }

    async fn last_job_failure(&self, job_id: Uuid) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("select error from task_failures where job_id = ? order by at desc, id desc limit 1")
            .bind(job_id.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_waiting_reason(&self, job_id: Uuid, reason: Option<&str>) -> Result<()> {
        sqlx::query("update jobs set waiting_reason = ? where id = ? and waiting_reason is not ?")
            .bind(reason)
            .bind(job_id.to_string())
            .bind(reason)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn rechunk_queued(&self, job_id: Uuid, chunk_size: usize) -> Result<usize> {
        let mut tx = self.write().await?;
        let rows = sqlx::query("select frames from tasks where job_id = ? and status = ? and attempt = 0 order by seq")
            .bind(job_id.to_string())
            .bind(TaskStatus::Queued.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let stored =
            rows.iter().map(|row| row.try_get::<String, _>("frames")).collect::<std::result::Result<Vec<_>, _>>()?;
        let Some(chunks) = regroup(&stored, chunk_size)? else { return Ok(rows.len()) };
        let next_seq: i64 = sqlx::query_scalar("select coalesce(max(seq), -1) + 1 from tasks where job_id = ?")
            .bind(job_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("delete from tasks where job_id = ? and status = ? and attempt = 0")
            .bind(job_id.to_string())
            .bind(TaskStatus::Queued.as_str())
            .execute(&mut *tx)
            .await?;
        for (idx, chunk) in chunks.iter().enumerate() {
            let frames = serde_json::to_string(chunk.frames()).unwrap_or_else(|_| "[]".to_string());
            sqlx::query("insert into tasks (id, job_id, seq, frames, n_frames, status) values (?, ?, ?, ?, ?, ?)")
                .bind(Uuid::now_v7().to_string())
                .bind(job_id.to_string())
                .bind(next_seq + idx as i64)
                .bind(frames)
                .bind(chunk.len() as i64)
                .bind(TaskStatus::Queued.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(chunks.len())
    }

    async fn requeue_expired(&self, now: i64) -> Result<u64> {
        let _slot = self.writer.lock().await;
        let requeued = sqlx::query(
            "update tasks set status = ?, worker_id = null, lease_expires_at = null
             where status = ? and lease_expires_at < ?",
        )
        .bind(TaskStatus::Queued.as_str())
        .bind(TaskStatus::Running.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(requeued.rows_affected())
    }

    async fn cancel_tasks(&self, job_id: Uuid) -> Result<()> {
        sqlx::query("update tasks set status = ?, lease_expires_at = null where job_id = ? and status in (?, ?)")
            .bind(TaskStatus::Canceled.as_str())
            .bind(job_id.to_string())
            .bind(TaskStatus::Queued.as_str())
            .bind(TaskStatus::Running.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn cancel_job(&self, job_id: Uuid, from: JobStatus, now: i64) -> Result<bool> {
        let Some(canceled) = status_after(from, JobEvent::Canceled) else {
            return Ok(false);
        };
        let mut tx = self.write().await?;
        let moved = sqlx::query("update jobs set status = ?, updated_at = ? where id = ? and status = ?")
            .bind(canceled)
            .bind(now)
            .bind(job_id.to_string())
            .bind(from.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if moved {
            sqlx::query("update tasks set status = ?, lease_expires_at = null where job_id = ? and status in (?, ?)")
                .bind(TaskStatus::Canceled.as_str())
                .bind(job_id.to_string())
                .bind(TaskStatus::Queued.as_str())
                .bind(TaskStatus::Running.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    async fn list_outputs(&self, job_id: Uuid) -> Result<Vec<Output>> {
        let rows = sqlx::query(
            "select kind, frame, file_name, object_key, size, created_at from outputs where job_id = ?
             order by kind, frame, file_name",
        )
        .bind(job_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Output {
                    kind: row.try_get("kind")?,
                    frame: row.try_get("frame")?,
                    file_name: row.try_get("file_name")?,
                    object_key: row.try_get("object_key")?,
                    size: row.try_get("size")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn list_tasks(&self, job_id: Uuid) -> Result<Vec<Task>> {
        let rows = sqlx::query(
            "select id, job_id, seq, frames, status, attempt, failures, last_error, worker_id from tasks
             where job_id = ? order by seq",
        )
        .bind(job_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn get_task(&self, task_id: Uuid) -> Result<Option<Task>> {
        let row = sqlx::query(
            "select id, job_id, seq, frames, status, attempt, failures, last_error, worker_id from tasks where id = ?",
        )
        .bind(task_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn create_worker_token(&self, token_hash: &str, prefix: &str, now: i64) -> Result<Uuid> {
        let id = Uuid::now_v7();
        sqlx::query("insert into worker_tokens (id, token_hash, prefix, created_at) values (?, ?, ?, ?)")
            .bind(id.to_string())
            .bind(token_hash)
            .bind(prefix)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    async fn find_worker_token(&self, token_hash: &str) -> Result<Option<Uuid>> {
        let id: Option<String> =
            sqlx::query_scalar("select id from worker_tokens where token_hash = ? and revoked_at is null")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        id.map(|it| {
            Uuid::parse_str(&it).map_err(|e| StoreError::Corrupt { table: "worker_tokens", reason: e.to_string() })
        })
        .transpose()
    }

    async fn register_worker(&self, worker: &WorkerRecord) -> Result<()> {
        sqlx::query(
            "insert into workers (id, name, token_id, capabilities, speed_factor, registered_at, last_seen_at)
             values (?, ?, ?, ?, ?, ?, ?)
             on conflict (id) do update set name = excluded.name, token_id = excluded.token_id,
                capabilities = excluded.capabilities, speed_factor = excluded.speed_factor,
                last_seen_at = excluded.last_seen_at",
        )
        .bind(&worker.id)
        .bind(&worker.name)
        .bind(worker.token_id.to_string())
        .bind(worker.capabilities.to_string())
        .bind(worker.speed_factor)
        .bind(worker.registered_at)
        .bind(worker.last_seen_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_worker(&self, worker_id: &str) -> Result<Option<WorkerRecord>> {
        let row = sqlx::query("select * from workers where id = ?").bind(worker_id).fetch_optional(&self.pool).await?;
        row.as_ref().map(worker_from_row).transpose()
    }

    async fn touch_worker(&self, worker_id: &str, now: i64) -> Result<()> {
        sqlx::query("update workers set last_seen_at = ? where id = ?")
            .bind(now)
            .bind(worker_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn live_workers(&self, since: i64) -> Result<Vec<WorkerRecord>> {
        let rows = sqlx::query("select * from workers where last_seen_at >= ? order by registered_at")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(worker_from_row).collect()
    }
}
