//! The PostgreSQL implementation of [`Store`](crate::Store): what several `orchard serve`
//! processes share, and what differs from SQLite.
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
//!   aborting one; that one is retried ([`crate::retrying`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orchard_domain::{FrameSet, TaskStatus};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

mod hot;

use crate::jobs::{Analyses, bind_new_job, insert_job, job_columns};
use crate::rows::frames_json;
use crate::{Dialect, Job, NewJob, Result, StoreError};

/// Metadata in a PostgreSQL database, shared by every server of a deployment.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Claims and completions, batched.
    hot: hot::Batcher,
    /// Analyses decoded once, shared by job reads.
    analyses: Arc<Analyses>,
}

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
        let hot = hot::Batcher::start(pool.clone());
        Ok(PgStore { pool, hot, analyses: Default::default() })
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

    /// A write transaction (PostgreSQL's default isolation, read committed).
    async fn write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
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

crate::shared_store!(
    PgStore,
    for_update = " for update",
    skip_locked = " for update skip locked",
    by_status = "",
    by_workspace_status = "",
);

#[async_trait]
impl Dialect for PgStore {
    type Row = PgRow;
    type Conn = PgConnection;

    async fn read_job(&self, workspace_id: Option<Uuid>, job_id: Uuid) -> Result<Option<Job>> {
        // `$2 is null`: one statement (one prepared plan) for both reads.
        let row = sqlx::query(concat!(
            "select ",
            job_columns!(),
            " from jobs where id = $1 and ($2::text is null or workspace_id = $2)"
        ))
        .bind(job_id.to_string())
        .bind(workspace_id.map(|it| it.to_string()))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(crate::rows::job_from_columns).transpose()
    }

    async fn insert_job(&self, new: &NewJob, now: i64) -> Result<bool> {
        // One statement: the workspace's job count goes up with the job, only if it was made.
        let insert = sqlx::query_scalar(concat!(
            "with inserted as (",
            insert_job!(),
            " returning workspace_id
             ), counted as (
                insert into workspace_job_counts (workspace_id, jobs) select workspace_id, 1 from inserted
                on conflict (workspace_id) do update set jobs = workspace_job_counts.jobs + 1
             )
             select count(*) from inserted"
        ));
        let inserted: i64 = bind_new_job!(insert, new, now).fetch_one(&self.pool).await?;
        Ok(inserted == 1)
    }

    async fn insert_tasks(conn: &mut PgConnection, job_id: Uuid, first_seq: i64, chunks: &[FrameSet]) -> Result<()> {
        // All tasks in one statement, whatever their number: one round trip.
        let n = chunks.len();
        let mut ids = Vec::with_capacity(n);
        let mut seqs = Vec::with_capacity(n);
        let mut frames = Vec::with_capacity(n);
        let mut n_frames = Vec::with_capacity(n);
        for (idx, chunk) in chunks.iter().enumerate() {
            ids.push(Uuid::now_v7().to_string());
            seqs.push(first_seq + idx as i64);
            frames.push(frames_json(chunk)?);
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
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn requeue_expired_tasks(&self, now: i64) -> Result<u64> {
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
