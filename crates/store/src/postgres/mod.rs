//! The PostgreSQL implementation of [`Store`]: what several `orchard serve` processes share.
//!
//! The semantics are those of [`crate::SqliteStore`], operation for operation; the
//! conformance suite (`crates/store/tests/`) runs the same bodies on both. What differs is
//! concurrency: PostgreSQL has many writers, so
//!
//! - a claim locks its task with `for update skip locked` (concurrent claimers, on any
//!   server, pass over each other's rows instead of queueing behind them) and commits at
//!   once: no transaction is open while a worker renders;
//! - every transaction that locks tasks and their jobs locks the task rows first and the job
//!   rows last (several jobs' rows in id order, `for no key update`, which foreign-key
//!   checks do not wait for);
//! - claims and completions are batched (`hot.rs`): whatever completions wait run as one
//!   statement, which updates each job's row once; the claims waiting beside them run as one
//!   statement per set of workers that claim from the same jobs with the same preference;
//! - transactions that lock several tasks of one job (a batch of completions, cancel, a task
//!   failing for good) can still meet each other in a deadlock, which PostgreSQL breaks by
//!   aborting one; that one is retried.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use orchard_domain::{JobEvent, JobStatus, TaskStatus};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool, Row};
use uuid::Uuid;

mod hot;

use crate::rows::status_after;
use crate::{
    ClaimOptions, ClaimedTask, Completion, FailOutcome, Job, JobPatch, KeyInfo, KeyOwner, Lease, LeaseState, NewJob,
    NewKey, NextClaim, Order, Output, Result, StartRender, Store, StoreError, Task, TaskDone, Upload, WorkerRecord,
    regroup, task_frames,
};

/// Metadata in a PostgreSQL database, shared by every server of a deployment.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    batcher: hot::Batcher,
}

const JOB_COLUMNS: &str = "id, workspace_id, user_id, upload_slug, file_name, file_type, object_key, file_size, \
    main_file, status, created_at, updated_at, failed_name, failed_type, failed_message, requested_config, final_config, \
    analysis, analysis_id, preview_key, frames_zip_key, normalized_seconds, frames_total, frames_done, \
    case when status in ('booting', 'rendering') then (select coalesce(sum(t.n_frames), 0) from tasks t \
        where t.status = 'running' and t.job_id = jobs.id) else 0 end::bigint as frames_rendering, \
    frames_failed, render_started_at, waiting_reason";

/// How often a transaction aborted by a deadlock or a serialization failure is tried again.
const RETRIES: u32 = 3;

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`) and
    /// migrates it. Several servers may do this at once: sqlx serializes migrations with an
    /// advisory lock.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        let batcher = hot::Batcher::start(pool.clone());
        Ok(PgStore { pool, batcher })
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates the empty database `name` on the server `server_url` points at, and returns
    /// the URL of the new database. For tests and benchmarks, which want a fresh database
    /// each; `name` may hold only ASCII lowercase letters, digits and `_`.
    pub async fn create_database(server_url: &str, name: &str) -> Result<String> {
        check_database_name(name)?;
        let mut admin = PgConnectOptions::from_str(server_url)?.connect().await?;
        sqlx::query(AssertSqlSafe(format!("create database {name}"))).execute(&mut admin).await?;
        admin.close().await?;
        Ok(url_with_database(server_url, name))
    }

    /// Drops the database `name` on the server `server_url` points at, disconnecting its
    /// sessions; nothing happens if there is no such database.
    pub async fn drop_database(server_url: &str, name: &str) -> Result<()> {
        check_database_name(name)?;
        let mut admin = PgConnectOptions::from_str(server_url)?.connect().await?;
        sqlx::query(AssertSqlSafe(format!("drop database if exists {name} with (force)"))).execute(&mut admin).await?;
        admin.close().await?;
        Ok(())
    }

    /// Runs `op` again when PostgreSQL aborted it to break a deadlock or a serialization
    /// conflict (the transaction was rolled back, so trying again is safe).
    pub(super) async fn retrying_on<T, F, Fut>(mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut tries = 1;
        loop {
            match op().await {
                Err(StoreError::Database(sqlx::Error::Database(e)))
                    if tries < RETRIES && matches!(e.code().as_deref(), Some("40P01" | "40001")) =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }
}

fn check_database_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if valid {
        Ok(())
    } else {
        Err(StoreError::Database(sqlx::Error::Configuration(format!("invalid database name {name:?}").into())))
    }
}

/// `url` with its database (the path) replaced by `name`; user, host and parameters kept.
fn url_with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |it| it + 3);
    let authority_end = base[authority_start..].find('/').map_or(base.len(), |it| authority_start + it);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

crate::rows::row_decoders!(PgRow);

fn status_names(statuses: &[JobStatus]) -> Vec<&'static str> {
    statuses.iter().map(|it| it.as_str()).collect()
}

impl PgStore {
    /// `cancel_job`, once. Locks the job's unfinished tasks before the job row (the order a
    /// claim takes), guarded by the job's status so that a stale cancel locks nothing.
    async fn cancel_job_once(&self, job_id: Uuid, from: JobStatus, canceled: &str, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "update tasks set status = $1, lease_expires_at = null
             where job_id = $2 and status in ($3, $4) and exists (select 1 from jobs where id = $2 and status = $5)",
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
            tx.commit().await?;
        } else {
            // The job left `from` meanwhile: its tasks stay as they were.
            tx.rollback().await?;
        }
        Ok(moved)
    }

    /// `fail_task`, once. Lock order: the failed task, then (when the job fails) its other
    /// unfinished tasks, then the job row.
    async fn fail_task_once(
        &self,
        lease: &Lease,
        worker_id: &str,
        error: &str,
        max_workers: u32,
        now: i64,
    ) -> Result<FailOutcome> {
        let mut tx = self.pool.begin().await?;
        // The attempt fences the failure as it fences a heartbeat; `for update` holds the row
        // against a concurrent reaper until this transaction ends.
        let row = sqlx::query(
            "select job_id, n_frames, frames from tasks where id = $1 and attempt = $2 and status = $3 for update",
        )
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
                sqlx::query(
                    "update jobs set status = $1, failed_name = 'task_failed', failed_type = 'render',
                        failed_message = $2 where id = $3 and status = $4",
                )
                .bind(failed)
                .bind(&message)
                .bind(&job_id)
                .bind(from.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(if failed_for_good { FailOutcome::JobFailed } else { FailOutcome::Requeued })
    }
}

#[async_trait]
impl Store for PgStore {
    async fn setting_or_insert(&self, name: &str, make: String) -> Result<String> {
        // Insert-or-ignore then read: concurrent first starts agree on one value (the loser's
        // insert waits for the winner's commit, then does nothing).
        sqlx::query("insert into settings (name, value) values ($1, $2) on conflict (name) do nothing")
            .bind(name)
            .bind(make)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("select value from settings where name = $1").bind(name).fetch_one(&self.pool).await?)
    }

    async fn create_key(&self, new: NewKey, now: i64) -> Result<KeyOwner> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("insert into workspaces (id, name, created_at) values ($1, $2, $3) on conflict (name) do nothing")
            .bind(Uuid::now_v7().to_string())
            .bind(&new.workspace_name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let workspace_id: String = sqlx::query_scalar("select id from workspaces where name = $1")
            .bind(&new.workspace_name)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "insert into users (id, workspace_id, name, created_at) values ($1, $2, $3, $4)
             on conflict (workspace_id, name) do nothing",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&workspace_id)
        .bind(&new.user_name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let user_id: String = sqlx::query_scalar("select id from users where workspace_id = $1 and name = $2")
            .bind(&workspace_id)
            .bind(&new.user_name)
            .fetch_one(&mut *tx)
            .await?;
        let key_id = Uuid::now_v7();
        sqlx::query(
            "insert into api_keys (id, key_hash, prefix, workspace_id, user_id, created_at)
             values ($1, $2, $3, $4, $5, $6)",
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
            sqlx::query("select id, workspace_id, user_id from api_keys where key_hash = $1 and revoked_at is null")
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
            sqlx::query("update api_keys set revoked_at = $1 where (id = $2 or prefix = $2) and revoked_at is null")
                .bind(now)
                .bind(id_or_prefix)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_upload(&self, upload: &Upload) -> Result<()> {
        sqlx::query(
            "insert into uploads (slug, workspace_id, user_id, file_name, file_type, object_key, expires_at, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        let row = sqlx::query("select * from uploads where slug = $1").bind(slug).fetch_optional(&self.pool).await?;
        row.as_ref().map(upload_from_row).transpose()
    }

    async fn upload_has_job(&self, slug: &str) -> Result<bool> {
        Ok(sqlx::query_scalar("select exists (select 1 from jobs where upload_slug = $1)")
            .bind(slug)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn mark_uploaded(&self, slug: &str, size: i64, sha256: &str, now: i64) -> Result<()> {
        sqlx::query("update uploads set uploaded_at = $1, size = $2, sha256 = $3 where slug = $4")
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
        // A concurrent insert of the same slug makes this one wait for its commit, then do
        // nothing; the read below (a new snapshot) then sees the winner's job.
        // The workspace's job count goes up in the same statement, only if the job was made.
        let inserted: i64 = sqlx::query_scalar(
            "with inserted as (
                insert into jobs (id, workspace_id, user_id, upload_slug, file_name, file_type, object_key, file_size,
                                  main_file, status, created_at, updated_at)
                values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) on conflict (upload_slug) do nothing
                returning workspace_id
             ), counted as (
                insert into workspace_job_counts (workspace_id, jobs) select workspace_id, 1 from inserted
                on conflict (workspace_id) do update set jobs = workspace_job_counts.jobs + 1
             )
             select count(*) from inserted",
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
        .fetch_one(&self.pool)
        .await?;
        let inserted = inserted == 1;
        let row = sqlx::query(AssertSqlSafe(format!("select {JOB_COLUMNS} from jobs where upload_slug = $1")))
            .bind(&upload.slug)
            .fetch_one(&self.pool)
            .await?;
        Ok((job_from_row(&row)?, inserted))
    }

    async fn get_job(&self, workspace_id: Uuid, job_id: Uuid) -> Result<Option<Job>> {
        let row =
            sqlx::query(AssertSqlSafe(format!("select {JOB_COLUMNS} from jobs where id = $1 and workspace_id = $2")))
                .bind(job_id.to_string())
                .bind(workspace_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn get_job_internal(&self, job_id: Uuid) -> Result<Option<Job>> {
        let row = sqlx::query(AssertSqlSafe(format!("select {JOB_COLUMNS} from jobs where id = $1")))
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
        // Without a filter the statement has no status condition at all, so that the
        // (workspace_id, created_at) index serves the page, and the total is the kept count.
        let filter = if statuses.is_empty() { "" } else { " and status = any($2)" };
        let names = status_names(statuses);
        let total: i64 = if statuses.is_empty() {
            sqlx::query_scalar("select jobs from workspace_job_counts where workspace_id = $1")
                .bind(workspace_id.to_string())
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0)
        } else {
            sqlx::query_scalar(AssertSqlSafe(format!("select count(*) from jobs where workspace_id = $1{filter}")))
                .bind(workspace_id.to_string())
                .bind(&names)
                .fetch_one(&self.pool)
                .await?
        };
        let (limit, offset) = if statuses.is_empty() { ("$2", "$3") } else { ("$3", "$4") };
        let mut select = sqlx::query(AssertSqlSafe(format!(
            "select {JOB_COLUMNS} from jobs where workspace_id = $1{filter}
             order by created_at desc, id desc limit {limit} offset {offset}"
        )))
        .bind(workspace_id.to_string());
        if !statuses.is_empty() {
            select = select.bind(&names);
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
        // `$2 is null` folds away at planning time when no workspace is given.
        let rows = sqlx::query(AssertSqlSafe(format!(
            "select {JOB_COLUMNS} from jobs where status = any($1) and ($2::text is null or workspace_id = $2)
             order by created_at {} limit $3",
            order.sql()
        )))
        .bind(status_names(statuses))
        .bind(workspace_id.map(|it| it.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
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
        // Compare-and-set on the status the caller read: of two concurrent transitions out of
        // one status, the second finds the row changed (re-read after the first commits) and
        // updates nothing.
        let done = sqlx::query(
            "update jobs set status = $1, updated_at = $2,
                analysis_id = coalesce($3, analysis_id), analysis = coalesce($4, analysis),
                failed_name = coalesce($5, failed_name), failed_type = coalesce($6, failed_type),
                failed_message = coalesce($7, failed_message),
                frames_zip_key = coalesce($8, frames_zip_key), preview_key = coalesce($9, preview_key)
             where id = $10 and status = $11",
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
        sqlx::query("update jobs set preview_key = $1, updated_at = $2 where id = $3")
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
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "update jobs set status = $1, updated_at = $2, requested_config = $3, final_config = $4, frames_total = $5
             where id = $6 and status = $7",
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
        // All tasks in one statement, whatever their number: one round trip per render.
        let n = start.chunks.len();
        let mut ids = Vec::with_capacity(n);
        let mut seqs = Vec::with_capacity(n);
        let mut frames = Vec::with_capacity(n);
        let mut n_frames = Vec::with_capacity(n);
        for (seq, chunk) in start.chunks.iter().enumerate() {
            ids.push(Uuid::now_v7().to_string());
            seqs.push(seq as i64);
            frames.push(serde_json::to_string(chunk.frames()).unwrap_or_else(|_| "[]".to_string()));
            n_frames.push(chunk.len() as i64);
        }
        sqlx::query(
            "insert into tasks (id, job_id, seq, frames, n_frames, status)
             select id, $1, seq, frames, n_frames, $2
             from unnest($3::text[], $4::bigint[], $5::text[], $6::bigint[]) as t (id, seq, frames, n_frames)",
        )
        .bind(job_id.to_string())
        .bind(TaskStatus::Queued.as_str())
        .bind(ids)
        .bind(seqs)
        .bind(frames)
        .bind(n_frames)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn runnable_job_ids(&self, limit: u32) -> Result<Vec<Uuid>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "select id from jobs j where status in ($1, $2)
               and exists (select 1 from tasks t where t.job_id = j.id and t.status = $3)
             order by created_at limit $4",
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
            "select job_id from task_failures where worker_id = $1 group by job_id having count(*) >= $2",
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
        self.batcher.claim(worker_id, job_ids, claim).await
    }

    async fn heartbeat(&self, lease: &Lease, lease_ms: i64, now: i64) -> Result<LeaseState> {
        // The attempt fences the write: a worker whose task was requeued and claimed again
        // extends nothing and learns that it lost the task.
        let done = sqlx::query("update tasks set lease_expires_at = $1 where id = $2 and attempt = $3 and status = $4")
            .bind(now + lease_ms)
            .bind(lease.task_id.to_string())
            .bind(lease.attempt)
            .bind(TaskStatus::Running.as_str())
            .execute(&self.pool)
            .await?;
        Ok(if done.rows_affected() == 1 { LeaseState::Held } else { LeaseState::Lost })
    }

    async fn complete_task(&self, lease: &Lease, done: TaskDone, now: i64) -> Result<Completion> {
        Ok(self.batcher.complete(lease, done, now, None).await?.0)
    }

    async fn complete_and_claim(
        &self,
        lease: &Lease,
        done: TaskDone,
        now: i64,
        next: NextClaim<'_>,
    ) -> Result<(Completion, Option<ClaimedTask>)> {
        self.batcher.complete(lease, done, now, Some(next)).await
    }

    async fn fail_task(
        &self,
        lease: &Lease,
        worker_id: &str,
        error: &str,
        max_workers: u32,
        now: i64,
    ) -> Result<FailOutcome> {
        Self::retrying_on(|| self.fail_task_once(lease, worker_id, error, max_workers, now)).await
    }

    async fn job_failures_by_worker(&self, job_id: Uuid) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("select worker_id, count(*) as n from task_failures where job_id = $1 group by worker_id")
                .bind(job_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|row| Ok((row.try_get("worker_id")?, row.try_get("n")?))).collect()
    }

    async fn last_job_failure(&self, job_id: Uuid) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("select error from task_failures where job_id = $1 order by at desc, id desc limit 1")
            .bind(job_id.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_waiting_reason(&self, job_id: Uuid, reason: Option<&str>) -> Result<()> {
        sqlx::query("update jobs set waiting_reason = $1 where id = $2 and waiting_reason is distinct from $1")
            .bind(reason)
            .bind(job_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn rechunk_queued(&self, job_id: Uuid, chunk_size: usize) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "select frames from tasks where job_id = $1 and status = $2 and attempt = 0 order by seq for update",
        )
        .bind(job_id.to_string())
        .bind(TaskStatus::Queued.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let stored =
            rows.iter().map(|row| row.try_get::<String, _>("frames")).collect::<std::result::Result<Vec<_>, _>>()?;
        let Some(chunks) = regroup(&stored, chunk_size)? else { return Ok(rows.len()) };
        let next_seq: i64 = sqlx::query_scalar("select coalesce(max(seq), -1) + 1 from tasks where job_id = $1")
            .bind(job_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("delete from tasks where job_id = $1 and status = $2 and attempt = 0")
            .bind(job_id.to_string())
            .bind(TaskStatus::Queued.as_str())
            .execute(&mut *tx)
            .await?;
        for (idx, chunk) in chunks.iter().enumerate() {
            let frames = serde_json::to_string(chunk.frames()).unwrap_or_else(|_| "[]".to_string());
            sqlx::query(
                "insert into tasks (id, job_id, seq, frames, n_frames, status) values ($1, $2, $3, $4, $5, $6)",
            )
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
        // One statement, safe when every server runs it: `expired` locks the tasks whose lease
        // ran out with `skip locked`, so two reapers split the rows instead of waiting on each
        // other, and a task whose heartbeat committed meanwhile is re-checked and left alone.
        let requeued: i64 = sqlx::query_scalar(
            "with expired as (
                select id from tasks where status = $2 and lease_expires_at < $3 for update skip locked
             ), requeued as (
                update tasks t set status = $1, worker_id = null, lease_expires_at = null
                from expired where t.id = expired.id
                returning t.id
             )
             select count(*) from requeued",
        )
        .bind(TaskStatus::Queued.as_str())
        .bind(TaskStatus::Running.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(requeued.max(0) as u64)
    }

    async fn cancel_tasks(&self, job_id: Uuid) -> Result<()> {
        // It locks several of the job's tasks, as a batch of completions does: retried if
        // PostgreSQL breaks a deadlock between them by aborting this one.
        Self::retrying_on(|| async {
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

    async fn cancel_job(&self, job_id: Uuid, from: JobStatus, now: i64) -> Result<bool> {
        let Some(canceled) = status_after(from, JobEvent::Canceled) else {
            return Ok(false);
        };
        Self::retrying_on(|| self.cancel_job_once(job_id, from, canceled, now)).await
    }

    async fn list_outputs(&self, job_id: Uuid) -> Result<Vec<Output>> {
        let rows = sqlx::query(
            "select kind, frame, file_name, object_key, size, created_at from outputs where job_id = $1
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
             where job_id = $1 order by seq",
        )
        .bind(job_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn get_task(&self, task_id: Uuid) -> Result<Option<Task>> {
        let row = sqlx::query(
            "select id, job_id, seq, frames, status, attempt, failures, last_error, worker_id from tasks where id = $1",
        )
        .bind(task_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn create_worker_token(&self, token_hash: &str, prefix: &str, now: i64) -> Result<Uuid> {
        let id = Uuid::now_v7();
        sqlx::query("insert into worker_tokens (id, token_hash, prefix, created_at) values ($1, $2, $3, $4)")
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
            sqlx::query_scalar("select id from worker_tokens where token_hash = $1 and revoked_at is null")
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
             values ($1, $2, $3, $4, $5, $6, $7)
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
        let row = sqlx::query("select * from workers where id = $1").bind(worker_id).fetch_optional(&self.pool).await?;
        row.as_ref().map(worker_from_row).transpose()
    }

    async fn touch_worker(&self, worker_id: &str, now: i64) -> Result<()> {
        sqlx::query("update workers set last_seen_at = $1 where id = $2")
            .bind(now)
            .bind(worker_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn live_workers(&self, since: i64) -> Result<Vec<WorkerRecord>> {
        let rows = sqlx::query("select * from workers where last_seen_at >= $1 order by registered_at")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(worker_from_row).collect()
    }
}

/// One claim in one statement: what a claim alone in its batch runs.
async fn claim_one(
    pool: &PgPool,
    worker_id: &str,
    job_ids: &[Uuid],
    claim: ClaimOptions,
) -> Result<Option<ClaimedTask>> {
    if job_ids.is_empty() {
        return Ok(None);
    }
    let Some(rendering) = status_after(JobStatus::Booting, JobEvent::TaskStarted) else {
        return Ok(None);
    };
    let job_ids: Vec<String> = job_ids.iter().map(Uuid::to_string).collect();
    // One statement, committed at once. `candidates` orders the allowed jobs (the
    // preferred one first, whose scene the worker has loaded; then the oldest), and for
    // each in turn the lateral subquery takes its first queued task by the `tasks_queue`
    // index and locks it with `skip locked`: a row another claimer holds is passed over,
    // not waited for, and a row changed since this statement's snapshot is re-checked (a
    // task just claimed or canceled no longer matches). The lateral reference makes this a
    // nested loop over `candidates` in their order, which `limit 1` stops at the first
    // job with a free task: the cost does not grow with the number of queued tasks, and
    // no other job's task is locked. (An `order by` outside would run the subquery for
    // every job first, locking a task in each.) `claimed` leases the task with the next
    // attempt (the fencing token); `job` moves a booting job on. Only then is the job row
    // locked (after the task row, the order every other statement keeps): claims of a
    // rendering job never queue on its row, which every completion updates.
    let row = sqlx::query(
        "with next as (
            select t.id
            from (select id from jobs where id = any($4) and status in ($2, $3)
                    and (select count(*) from task_failures f where f.job_id = jobs.id and f.worker_id = $7) < $11
                  order by id is not distinct from $5 desc, created_at, id) as candidates
            cross join lateral (
                select id from tasks where job_id = candidates.id and status = $1
                  and seq >= case when candidates.id = $5 then $12 else 0 end
                order by seq limit 1
                for update skip locked
            ) as t
            limit 1
         ), claimed as (
            update tasks t set status = $6, attempt = t.attempt + 1, worker_id = $7, lease_expires_at = $8,
                started_at = $9
            from next where t.id = next.id
            returning t.id, t.job_id, t.frames, t.attempt, t.seq
         ), job as (
            update jobs j set status = $10, updated_at = $9, render_started_at = coalesce(j.render_started_at, $9)
            from claimed where j.id = claimed.job_id and j.status = $2
         )
         select claimed.id, claimed.job_id, claimed.frames, claimed.attempt, claimed.seq from claimed",
    )
    .bind(TaskStatus::Queued.as_str())
    .bind(JobStatus::Booting.as_str())
    .bind(JobStatus::Rendering.as_str())
    .bind(job_ids)
    .bind(claim.prefer.map(|it| it.to_string()))
    .bind(TaskStatus::Running.as_str())
    .bind(worker_id)
    .bind(claim.now + claim.lease_ms)
    .bind(claim.now)
    .bind(rendering)
    .bind(claim.blocklist_after)
    .bind(claim.prefer_from_seq)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let frames_json: String = row.try_get("frames")?;
    Ok(Some(ClaimedTask {
        lease: Lease { task_id: uuid_col(&row, "id", "tasks")?, attempt: row.try_get("attempt")? },
        job_id: uuid_col(&row, "job_id", "tasks")?,
        seq: row.try_get("seq")?,
        frames: task_frames(&frames_json)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_gets_another_database_and_keeps_the_rest() {
        for (url, expected) in [
            ("postgres://postgres@127.0.0.1:55432/postgres", "postgres://postgres@127.0.0.1:55432/t1"),
            ("postgres://u:p@host/db?sslmode=disable", "postgres://u:p@host/t1?sslmode=disable"),
            ("postgresql://host", "postgresql://host/t1"),
            ("postgres:///db?host=/run/postgresql", "postgres:///t1?host=/run/postgresql"),
        ] {
            assert_eq!(url_with_database(url, "t1"), expected, "{url}");
        }
    }

    #[test]
    fn database_names_are_plain_identifiers() {
        for name in ["orchard_test_0a1b", "t"] {
            assert!(check_database_name(name).is_ok(), "{name}");
        }
        for name in ["", "Upper", "1st", "a;drop", "a b", "a\"b", &"x".repeat(64)] {
            assert!(check_database_name(name).is_err(), "{name}");
        }
    }
}
