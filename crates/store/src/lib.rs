//! Orchard's metadata store: the only crate that contains SQL.
//!
//! The store is split by concept, one trait each, named for use cases (`claim_task`,
//! `complete_task`), not CRUD:
//!
//! - [`AccountStore`]: settings every server shares, and `RJ-` keys;
//! - [`UploadStore`]: upload targets and what they received;
//! - [`JobStore`]: jobs, their reads and their status changes;
//! - [`TaskStore`]: renders: tasks, claims, leases, completions, failures, outputs;
//! - [`WorkerStore`]: worker tokens and registrations.
//!
//! [`Store`] is all of them (the server holds an `Arc<dyn Store>`). Every status change is a
//! compare-and-set against the status the caller read, computed by `orchard-domain`'s
//! transition functions, so two servers (or two requests) can never both move a job out of
//! the same status.
//!
//! [`SqliteStore`] is the embedded implementation; [`PgStore`] is the one several servers
//! share. Each has its own migration set (`migrations/sqlite`, `migrations/postgres`) with the
//! same tables and columns; one conformance suite (`tests/`) runs on both. Each concept's file
//! holds its trait and the implementation both share (statements written once with `$N`
//! placeholders, which sqlx's SQLite driver binds by number too); `sqlite/` and `postgres/`
//! hold what differs (the `Dialect` trait, the batched claims and completions).
//!
//! Records are typed and decoded once per read: a row that does not decode is
//! [`StoreError::Corrupt`], never a default.

mod accounts;
mod cached;
mod jobs;
mod notices;
mod packaging;
mod postgres;
mod records;
mod rows;
mod sqlite;
mod tasks;
mod uploads;
mod workers;

use std::sync::Arc;

use async_trait::async_trait;
use orchard_domain::FrameSet;
use uuid::Uuid;

pub use accounts::AccountStore;
pub use cached::{CachedReads, JOB_MEMORY};
pub use jobs::JobStore;
pub use notices::NoticeStore;
pub use packaging::{Packaging, PackagingStore};
pub use postgres::PgStore;
pub use records::*;
pub use sqlite::SqliteStore;
pub use tasks::TaskStore;
pub use uploads::UploadStore;
pub use workers::WorkerStore;

/// Why a store call failed. Business outcomes ("not found", "status changed meanwhile") are
/// not errors: they are in each method's return type. The message says what failed; the cause
/// is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// SQLite's batching writer (a connection of its own) refused or failed.
    #[error("database error in SQLite's batching writer")]
    Sqlite(#[from] rusqlite::Error),
    /// The batch of claims and completions an operation ran in failed as a whole; each of its
    /// operations is answered with the one failure.
    #[error("a batch of claims and completions failed")]
    Batch(#[source] Arc<StoreError>),
    /// The thread or task that batches claims and completions is gone.
    #[error("the store's batching writer stopped")]
    WriterStopped,
    /// SQLite's batching writer thread could not start.
    #[error("could not start SQLite's batching writer")]
    WriterStart(#[source] std::io::Error),
    /// The SQLite URL named an in-memory database.
    #[error("Orchard keeps SQLite in a file, not in memory")]
    InMemory,
    /// The lock that puts migrations of one SQLite file in turn could not be taken.
    #[error("could not lock the database for its migrations")]
    MigrationLock(#[source] std::io::Error),
    /// A migration failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not decode: the database was changed by something else.
    #[error("corrupt value in {table}.{column}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// Why it does not decode.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A value cannot be written as the JSON its column holds.
    #[error("cannot encode {table}.{column}")]
    Encode {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Whether the database failed because its disk is full (SQLite's `SQLITE_FULL`,
    /// PostgreSQL's `disk_full`, or the OS's `ENOSPC`): an operator must free space, and the
    /// request may be tried again after.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                let code = e.code();
                let code = code.as_deref().unwrap_or("");
                code == "53100" || code.parse::<i32>().is_ok_and(|it| it & 0xff == 13)
            }
            StoreError::Database(sqlx::Error::Io(e)) => e.kind() == std::io::ErrorKind::StorageFull,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
            StoreError::Batch(inner) => inner.is_disk_full(),
            _ => false,
        }
    }
}

/// Result alias for store calls.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The metadata store: every concept's trait. Times are unix milliseconds passed in by the
/// caller.
pub trait Store:
    AccountStore + UploadStore + JobStore + TaskStore + WorkerStore + NoticeStore + PackagingStore + Send + Sync + 'static
{
}

impl<T> Store for T where
    T: AccountStore
        + UploadStore
        + JobStore
        + TaskStore
        + WorkerStore
        + NoticeStore
        + PackagingStore
        + Send
        + Sync
        + 'static
{
}

/// What the two dialects do differently, beyond the batched claims and completions (each
/// store's `hot` writer) and the clauses the shared statements take as macro arguments (lock
/// clauses, index hints). The concept traits' shared implementations call these; each store
/// also has a `pool`, a `write()` (a write transaction: on SQLite behind the in-process
/// writer lock and `BEGIN IMMEDIATE`), an `analyses` cache and a `hot` writer, which they use
/// the same way.
#[async_trait]
pub(crate) trait Dialect {
    /// A row of this database.
    type Row: Send;
    /// A connection (what a write transaction dereferences to).
    type Conn: Send;

    /// Inserts the job an upload makes (`insert_job!()`, bound by `bind_new_job!`) and counts
    /// it in its workspace, unless the upload made one already; true when it inserted.
    async fn insert_job(&self, new: &NewJob, now: i64) -> Result<bool>;
    /// Inserts a queued task per chunk, numbered from `first_seq`.
    async fn insert_tasks(conn: &mut Self::Conn, job_id: Uuid, first_seq: i64, chunks: &[FrameSet]) -> Result<()>;
    /// Requeues tasks whose lease expired before `now`; returns how many.
    async fn requeue_expired_tasks(&self, now: i64) -> Result<u64>;
    /// The job `job_id` (of `workspace_id`, when given), without its analysis: the read of
    /// `GET /jobs/{id}`, which a busy client makes many times a second.
    async fn read_job(&self, workspace_id: Option<Uuid>, job_id: Uuid) -> Result<Option<crate::Job>>;
}

/// The implementation both dialects share, for `$store`: the row decoders, and each concept
/// trait's implementation, given the dialect's clauses (`for_update`: the lock a transaction
/// takes on the rows it reads before it writes them; `by_status`, `by_workspace_status`: the
/// index hints of reads of jobs by status).
macro_rules! shared_store {
    (
        $store:ty,
        for_update = $for_update:literal,
        skip_locked = $skip_locked:literal,
        by_status = $by_status:literal,
        by_workspace_status = $by_workspace_status:literal $(,)?
    ) => {
        $crate::rows::row_decoders!(<$store as $crate::Dialect>::Row);
        $crate::accounts::account_store!($store);
        $crate::uploads::upload_store!($store);
        $crate::jobs::job_store!(
            $store,
            for_update = $for_update,
            by_status = $by_status,
            by_workspace_status = $by_workspace_status
        );
        $crate::tasks::task_store!($store, for_update = $for_update);
        $crate::workers::worker_store!($store);
        $crate::notices::notice_store!($store, skip_locked = $skip_locked);
        $crate::packaging::packaging_store!($store, skip_locked = $skip_locked);
    };
}

pub(crate) use shared_store;

/// How often a transaction aborted by a deadlock or a serialization failure is tried again.
const RETRIES: u32 = 3;

/// Runs `op` again when PostgreSQL aborted it to break a deadlock or a serialization conflict
/// (SQLSTATE 40P01 or 40001: the transaction was rolled back, so trying again is safe).
/// SQLite's error codes are numbers below 40001: there, `op` runs once.
pub(crate) async fn retrying<T, F, Fut>(mut op: F) -> Result<T>
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
