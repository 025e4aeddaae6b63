//! Worker tokens and registrations: [`WorkerStore`], and its implementation for both
//! dialects.

use async_trait::async_trait;
use uuid::Uuid;

use crate::{Result, RunningTask, WorkerRecord, WorkerTokenInfo};

/// The render nodes: the `OW-` tokens they authenticate with, and what they registered.
#[async_trait]
pub trait WorkerStore: Send + Sync {
    /// Records a worker token (its sha256 and visible prefix).
    async fn create_worker_token(&self, token_hash: &str, prefix: &str, now: i64) -> Result<Uuid>;
    /// Every worker token (newest first), with how many workers registered with it.
    async fn list_worker_tokens(&self) -> Result<Vec<WorkerTokenInfo>>;
    /// Revokes a worker token by id or prefix; false if no unrevoked token matches. Its
    /// workers' calls are refused from then on (a server that remembers the token: within a minute).
    async fn revoke_worker_token(&self, id_or_prefix: &str, now: i64) -> Result<bool>;
    /// The id of an unrevoked worker token.
    async fn find_worker_token(&self, token_hash: &str) -> Result<Option<Uuid>>;
    /// Registers a worker, or updates it when it registers again (after a restart).
    async fn register_worker(&self, worker: &WorkerRecord) -> Result<()>;
    /// Sets a worker's factor to what one more shared job refined it to.
    async fn refine_speed(&self, worker_id: &str, factor: f64) -> Result<()>;
    /// A registered worker.
    async fn get_worker(&self, worker_id: &str) -> Result<Option<WorkerRecord>>;
    /// Notes that a worker called in.
    async fn touch_worker(&self, worker_id: &str, now: i64) -> Result<()>;
    /// Workers seen at or after `since`.
    async fn live_workers(&self, since: i64) -> Result<Vec<WorkerRecord>>;
    /// Drains a worker (no new task for it) or takes it back; false if there is no such worker.
    async fn set_draining(&self, worker_id: &str, draining: bool) -> Result<bool>;
    /// Every task running now, with its worker and job.
    async fn running_tasks(&self) -> Result<Vec<RunningTask>>;
}

/// `impl WorkerStore for $store`, the same on both dialects. Expects `row_decoders!` in scope
/// and `$store` to have a `pool`.
macro_rules! worker_store {
    ($store:ty) => {
        const _: () = {
            use uuid::Uuid;

            use $crate::{Result, RunningTask, WorkerRecord, WorkerStore, WorkerTokenInfo};

            #[async_trait::async_trait]
            impl WorkerStore for $store {
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

                async fn list_worker_tokens(&self) -> Result<Vec<WorkerTokenInfo>> {
                    let rows: Vec<(String, String, i64, Option<i64>, i64)> = sqlx::query_as(
                        "select t.id, t.prefix, t.created_at, t.revoked_at,
                            (select count(*) from workers w where w.token_id = t.id) as workers
                         from worker_tokens t order by t.created_at desc",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter()
                        .map(|(id, prefix, created_at, revoked_at, workers)| {
                            let id = $crate::rows::uuid(&id, "worker_tokens", "id")?;
                            Ok(WorkerTokenInfo { id, prefix, created_at, revoked_at, workers })
                        })
                        .collect()
                }

                async fn revoke_worker_token(&self, id_or_prefix: &str, now: i64) -> Result<bool> {
                    let done = sqlx::query(
                        "update worker_tokens set revoked_at = $1 where (id = $2 or prefix = $2) and revoked_at is null",
                    )
                    .bind(now)
                    .bind(id_or_prefix)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn find_worker_token(&self, token_hash: &str) -> Result<Option<Uuid>> {
                    let id: Option<String> =
                        sqlx::query_scalar("select id from worker_tokens where token_hash = $1 and revoked_at is null")
                            .bind(token_hash)
                            .fetch_optional(&self.pool)
                            .await?;
                    id.map(|it| $crate::rows::uuid(&it, "worker_tokens", "id")).transpose()
                }

                async fn register_worker(&self, worker: &WorkerRecord) -> Result<()> {
                    // The first registration is kept; every later one updates the rest. A worker
                    // that comes back with the same measurement keeps what its jobs refined.
                    sqlx::query(
                        "insert into workers (id, name, token_id, capabilities, speed_factor, speed_measured,
                                              speed_spread, registered_at, last_seen_at)
                         values ($1, $2, $3, $4, $5, $5, $6, $7, $8)
                         on conflict (id) do update set name = excluded.name, token_id = excluded.token_id,
                            capabilities = excluded.capabilities,
                            speed_factor = case when workers.speed_measured = excluded.speed_measured
                                then workers.speed_factor else excluded.speed_factor end,
                            speed_observations = case when workers.speed_measured = excluded.speed_measured
                                then workers.speed_observations else 0 end,
                            speed_measured = excluded.speed_measured, speed_spread = excluded.speed_spread,
                            last_seen_at = excluded.last_seen_at",
                    )
                    .bind(&worker.id)
                    .bind(&worker.name)
                    .bind(worker.token_id.to_string())
                    .bind($crate::rows::to_json(&worker.capabilities, "workers", "capabilities")?)
                    .bind(worker.speed_measured)
                    .bind(worker.speed_spread)
                    .bind(worker.registered_at)
                    .bind(worker.last_seen_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn refine_speed(&self, worker_id: &str, factor: f64) -> Result<()> {
                    sqlx::query(
                        "update workers set speed_factor = $1, speed_observations = speed_observations + 1 where id = $2",
                    )
                    .bind(factor)
                    .bind(worker_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn get_worker(&self, worker_id: &str) -> Result<Option<WorkerRecord>> {
                    let row = sqlx::query("select * from workers where id = $1")
                        .bind(worker_id)
                        .fetch_optional(&self.pool)
                        .await?;
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

                async fn set_draining(&self, worker_id: &str, draining: bool) -> Result<bool> {
                    let done = sqlx::query("update workers set draining = $1 where id = $2")
                        .bind(i64::from(draining))
                        .bind(worker_id)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn running_tasks(&self) -> Result<Vec<RunningTask>> {
                    let rows: Vec<(String, String, String, String, String, Option<i64>)> = sqlx::query_as(
                        "select t.worker_id, t.id, t.job_id, j.workspace_id, t.frames, t.started_at
                         from tasks t join jobs j on j.id = t.job_id
                         where t.status = 'running' and t.worker_id is not null order by t.started_at",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter()
                        .map(|(worker_id, task, job, workspace, frames, started_at)| {
                            Ok(RunningTask {
                                worker_id,
                                task_id: $crate::rows::uuid(&task, "tasks", "id")?,
                                job_id: $crate::rows::uuid(&job, "tasks", "job_id")?,
                                workspace_id: $crate::rows::uuid(&workspace, "jobs", "workspace_id")?,
                                frames: $crate::rows::task_frames(&frames)?,
                                started_at,
                            })
                        })
                        .collect()
                }
            }
        };
    };
}

pub(crate) use worker_store;
