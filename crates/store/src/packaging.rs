//! A job's packaging task ([`PackagingStore`]): its video, made from its frames by a worker
//! with ffmpeg while the job is `finalizing`. One per job, claimed with a lease like a task; a
//! lease that ran out is taken over by the next claim (no reaper needed), so a worker that died
//! costs one lease.

use async_trait::async_trait;
use orchard_domain::PackagingStatus;
use uuid::Uuid;

use crate::Result;

/// A job's packaging task.
#[derive(Debug, Clone, PartialEq)]
pub struct Packaging {
    /// The task's id (what the worker protocol names).
    pub id: Uuid,
    /// Its job.
    pub job_id: Uuid,
    /// Where it stands.
    pub status: PackagingStatus,
    /// Attempts so far (the lease's fence).
    pub attempt: i64,
    /// The worker of the current or last attempt.
    pub worker_id: Option<String>,
    /// Until when the running attempt holds it (unix ms).
    pub lease_until: i64,
    /// Failed attempts.
    pub failures: i64,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// What the worker made (JSON), once done.
    pub result: Option<String>,
}

/// Packaging tasks.
#[async_trait]
pub trait PackagingStore: Send + Sync {
    /// Queues the packaging of `job_id` unless it has one; the job's packaging either way.
    async fn queue_packaging(&self, job_id: Uuid, now: i64) -> Result<Packaging>;
    /// The packaging of a job.
    async fn packaging(&self, job_id: Uuid) -> Result<Option<Packaging>>;
    /// A packaging task by its id.
    async fn packaging_by_id(&self, id: Uuid) -> Result<Option<Packaging>>;
    /// Leases the oldest packaging due to `worker_id` until `lease_until`: queued, or running
    /// past its lease, of a job still `finalizing`.
    async fn claim_packaging(&self, worker_id: &str, now: i64, lease_until: i64) -> Result<Option<Packaging>>;
    /// Extends the lease `worker_id` holds with `attempt`; false if it does not hold it.
    async fn renew_packaging(&self, id: Uuid, attempt: i64, worker_id: &str, lease_until: i64) -> Result<bool>;
    /// Records the attempt's result; false if `worker_id` does not hold it with `attempt`.
    async fn finish_packaging(&self, id: Uuid, attempt: i64, worker_id: &str, result: &str, now: i64) -> Result<bool>;
    /// A failed attempt: queued again, or failed for good with `error` at its `max_failures`th
    /// failure; false if `worker_id` does not hold it with `attempt`.
    async fn fail_packaging(
        &self,
        id: Uuid,
        attempt: i64,
        worker_id: &str,
        error: &str,
        max_failures: i64,
        now: i64,
    ) -> Result<bool>;
    /// Forgets a job's packaging (a retry renders frames again, so the video is made again).
    async fn forget_packaging(&self, job_id: Uuid) -> Result<()>;
}

/// The columns `packaging_of` reads.
macro_rules! packaging_columns {
    () => {
        "id, job_id, status, attempt, worker_id, lease_until, failures, error, result"
    };
}

/// `impl PackagingStore for $store`, both dialects; `skip_locked` lets concurrent claimers
/// pass over each other's rows (empty on SQLite, whose writes are serial).
macro_rules! packaging_store {
    ($store:ty, skip_locked = $skip_locked:literal) => {
        const _: () = {
            use orchard_domain::{PackagingEvent, PackagingStatus};
            use sqlx::Row as _;
            use uuid::Uuid;

            use $crate::packaging::{Packaging, PackagingStore};
            use $crate::rows::{corrupt, uuid};
            use $crate::Result;

            fn packaging_of(row: &<$store as $crate::Dialect>::Row) -> Result<Packaging> {
                let status: String = row.try_get("status")?;
                Ok(Packaging {
                    id: uuid(&row.try_get::<String, _>("id")?, "packaging", "id")?,
                    job_id: uuid(&row.try_get::<String, _>("job_id")?, "packaging", "job_id")?,
                    status: PackagingStatus::parse(&status)
                        .ok_or_else(|| corrupt("packaging", "status", format!("unknown status {status:?}")))?,
                    attempt: row.try_get("attempt")?,
                    worker_id: row.try_get("worker_id")?,
                    lease_until: row.try_get("lease_until")?,
                    failures: row.try_get("failures")?,
                    error: row.try_get("error")?,
                    result: row.try_get("result")?,
                })
            }

            /// The status `event` gives `status`, or `Corrupt` (a stored status the event
            /// cannot follow was written by something other than these statements).
            fn next(status: PackagingStatus, event: PackagingEvent) -> Result<PackagingStatus> {
                status.apply(event).map_err(|e| corrupt("packaging", "status", e))
            }

            #[async_trait::async_trait]
            impl PackagingStore for $store {
                async fn queue_packaging(&self, job_id: Uuid, now: i64) -> Result<Packaging> {
                    let mut tx = self.write().await?;
                    sqlx::query(
                        "insert into packaging (id, job_id, status, created_at, updated_at)
                         values ($1, $2, $3, $4, $4) on conflict (job_id) do nothing",
                    )
                    .bind(Uuid::new_v4().to_string())
                    .bind(job_id.to_string())
                    .bind(PackagingStatus::Queued.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let row = sqlx::query(concat!("select ", $crate::packaging::packaging_columns!(), " from packaging where job_id = $1"))
                        .bind(job_id.to_string())
                        .fetch_one(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    packaging_of(&row)
                }

                async fn packaging(&self, job_id: Uuid) -> Result<Option<Packaging>> {
                    let row = sqlx::query(concat!("select ", $crate::packaging::packaging_columns!(), " from packaging where job_id = $1"))
                        .bind(job_id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(packaging_of).transpose()
                }

                async fn packaging_by_id(&self, id: Uuid) -> Result<Option<Packaging>> {
                    let row = sqlx::query(concat!("select ", $crate::packaging::packaging_columns!(), " from packaging where id = $1"))
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(packaging_of).transpose()
                }

                async fn claim_packaging(&self, worker_id: &str, now: i64, lease_until: i64) -> Result<Option<Packaging>> {
                    let running = next(PackagingStatus::Queued, PackagingEvent::Claimed)?;
                    let mut tx = self.write().await?;
                    let row = sqlx::query(concat!(
                        "update packaging set status = $1, attempt = attempt + 1, worker_id = $2, lease_until = $3,
                             updated_at = $4
                         where id = (select p.id from packaging p
                             where (p.status = 'queued' or (p.status = 'running' and p.lease_until < $4))
                               and exists (select 1 from jobs j where j.id = p.job_id and j.status = 'finalizing')
                             order by p.created_at limit 1",
                        $skip_locked,
                        ") returning ",
                        $crate::packaging::packaging_columns!()
                    ))
                    .bind(running.as_str())
                    .bind(worker_id)
                    .bind(lease_until)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    row.as_ref().map(packaging_of).transpose()
                }

                async fn renew_packaging(&self, id: Uuid, attempt: i64, worker_id: &str, lease_until: i64) -> Result<bool> {
                    let done = sqlx::query(
                        "update packaging set lease_until = $1
                         where id = $2 and attempt = $3 and worker_id = $4 and status = 'running'",
                    )
                    .bind(lease_until)
                    .bind(id.to_string())
                    .bind(attempt)
                    .bind(worker_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn finish_packaging(
                    &self,
                    id: Uuid,
                    attempt: i64,
                    worker_id: &str,
                    result: &str,
                    now: i64,
                ) -> Result<bool> {
                    let done_status = next(PackagingStatus::Running, PackagingEvent::Finished)?;
                    let mut tx = self.write().await?;
                    let done = sqlx::query(
                        "update packaging set status = $1, result = $2, error = null, updated_at = $3
                         where id = $4 and attempt = $5 and worker_id = $6 and status = 'running'",
                    )
                    .bind(done_status.as_str())
                    .bind(result)
                    .bind(now)
                    .bind(id.to_string())
                    .bind(attempt)
                    .bind(worker_id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn fail_packaging(
                    &self,
                    id: Uuid,
                    attempt: i64,
                    worker_id: &str,
                    error: &str,
                    max_failures: i64,
                    now: i64,
                ) -> Result<bool> {
                    let mut tx = self.write().await?;
                    let failures: Option<i64> = sqlx::query_scalar(
                        "select failures from packaging
                         where id = $1 and attempt = $2 and worker_id = $3 and status = 'running'",
                    )
                    .bind(id.to_string())
                    .bind(attempt)
                    .bind(worker_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(failures) = failures else { return Ok(false) };
                    let last = failures + 1 >= max_failures;
                    let status = next(PackagingStatus::Running, PackagingEvent::Failed { last })?;
                    // A compare-and-set on what was read: a concurrent claim or failure wins.
                    let done = sqlx::query(
                        "update packaging set status = $1, failures = failures + 1, error = $2, lease_until = 0,
                             updated_at = $3
                         where id = $4 and attempt = $5 and status = 'running' and failures = $6",
                    )
                    .bind(status.as_str())
                    .bind(error)
                    .bind(now)
                    .bind(id.to_string())
                    .bind(attempt)
                    .bind(failures)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn forget_packaging(&self, job_id: Uuid) -> Result<()> {
                    let mut tx = self.write().await?;
                    sqlx::query("delete from packaging where job_id = $1")
                        .bind(job_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }
            }
        };
    };
}

pub(crate) use {packaging_columns, packaging_store};
