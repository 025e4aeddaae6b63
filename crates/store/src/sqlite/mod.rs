//! The SQLite implementation of [`Store`](crate::Store): what differs from PostgreSQL.
//!
//! SQLite has one writer at a time. Every write transaction starts with `BEGIN IMMEDIATE`,
//! taking the write lock up front, so a transaction that read a row can never fail to
//! upgrade to a write (the `SQLITE_BUSY` that deferred transactions hit under load);
//! `busy_timeout` makes writers queue instead of failing. Claims and completions, the writes
//! of a busy farm, are batched on a thread of their own (`hot.rs`).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orchard_domain::{FrameSet, TaskStatus};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};
use uuid::Uuid;

mod hot;
mod read;

use crate::jobs::{Analyses, bind_new_job, insert_job};
use crate::rows::frames_json;
use crate::{Dialect, Job, NewJob, Result, StoreError};

/// Metadata in one SQLite file (WAL mode).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One writer at a time inside this process. SQLite allows one anyway; queueing here
    /// instead of in SQLite's busy handler (which sleeps in steps of milliseconds) keeps a busy
    /// farm's claims and completions back to back.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Claims and completions, batched on a thread of their own.
    hot: Arc<hot::HotWriter>,
    /// Analyses decoded once, shared by job reads.
    analyses: Arc<Analyses>,
    /// Point reads on the calling thread.
    readers: Arc<read::Readers>,
}

/// A write transaction and the in-process writer slot it holds.
struct Write {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _slot: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for Write {
    type Target = SqliteConnection;
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

    async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`) and migrates it.
    pub async fn connect(url: &str) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // sqlx's migrator locks nothing on SQLite: two processes opening a fresh file at once
        // (`orchard serve` and `orchard keys create`) both applied the first migration and
        // one failed. A lock file beside the database puts them in turn.
        let lock = migration_lock(options.get_filename()).await?;
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        drop(lock);
        let file: String =
            sqlx::query_scalar("select file from pragma_database_list where name = 'main'").fetch_one(&pool).await?;
        if file.is_empty() {
            return Err(StoreError::InMemory);
        }
        let writer: Arc<tokio::sync::Mutex<()>> = Default::default();
        let hot = Arc::new(hot::HotWriter::start(Path::new(&file), writer.clone())?);
        let readers = Arc::new(read::Readers::new(Path::new(&file)));
        Ok(SqliteStore { pool, writer, hot, analyses: Default::default(), readers })
    }

    /// A write transaction: the in-process writer slot, then `BEGIN IMMEDIATE`.
    async fn write(&self) -> Result<Write> {
        let slot = self.writer.clone().lock_owned().await;
        Ok(Write { tx: self.pool.begin_with("BEGIN IMMEDIATE").await?, _slot: slot })
    }
}

/// Holds an exclusive lock on `{database}.migrations.lock` until dropped; waits for another
/// process (or store) that holds it. `None` for a database in memory (refused after).
async fn migration_lock(database: &Path) -> Result<Option<std::fs::File>> {
    if database.as_os_str().is_empty() || database == Path::new(":memory:") {
        return Ok(None);
    }
    let mut name = database.as_os_str().to_owned();
    name.push(".migrations.lock");
    let path = std::path::PathBuf::from(name);
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| StoreError::MigrationLock(std::io::Error::other(e)))?;
    locked.map(Some).map_err(StoreError::MigrationLock)
}

crate::shared_store!(
    SqliteStore,
    for_update = "",
    skip_locked = "",
    by_status = " indexed by jobs_by_status",
    by_workspace_status = " indexed by jobs_by_workspace_status",
);

#[async_trait]
impl Dialect for SqliteStore {
    type Row = SqliteRow;
    type Conn = SqliteConnection;

    async fn read_job(&self, workspace_id: Option<Uuid>, job_id: Uuid) -> Result<Option<Job>> {
        self.readers.job(workspace_id, job_id)
    }

    async fn insert_job(&self, new: &NewJob, now: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        let inserted =
            bind_new_job!(sqlx::query(insert_job!()), new, now).execute(&mut *tx).await?.rows_affected() == 1;
        // The workspace's job count goes up with the job, in its transaction.
        if inserted {
            sqlx::query(
                "insert into workspace_job_counts (workspace_id, jobs) values ($1, 1)
                 on conflict (workspace_id) do update set jobs = jobs + 1",
            )
            .bind(new.upload.workspace_id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn insert_tasks(
        conn: &mut SqliteConnection,
        job_id: Uuid,
        first_seq: i64,
        chunks: &[FrameSet],
    ) -> Result<()> {
        // One statement per task: inside the transaction, each is a step on the same connection.
        for (idx, chunk) in chunks.iter().enumerate() {
            sqlx::query(
                "insert into tasks (id, job_id, seq, frames, n_frames, status) values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(job_id.to_string())
            .bind(first_seq + idx as i64)
            .bind(frames_json(chunk)?)
            .bind(chunk.len() as i64)
            .bind(TaskStatus::Queued.as_str())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn requeue_expired_tasks(&self, now: i64) -> Result<u64> {
        let _slot = self.writer.lock().await;
        let requeued = sqlx::query(
            "update tasks set status = $1, worker_id = null, lease_expires_at = null
             where status = $2 and lease_expires_at < $3",
        )
        .bind(TaskStatus::Queued.as_str())
        .bind(TaskStatus::Running.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(requeued.rows_affected())
    }
}
