//! Task completions, batched. With many workers finishing frames at once, one statement per
//! completion spent most of PostgreSQL's time starting statements, committing, and queueing
//! on the job row that every completion of a job updates. Here a task takes whatever
//! completions are waiting and runs them as one statement: each task fenced by its attempt as
//! before, the outputs stored once, and each job's row updated once with the batch's sums.
//!
//! A batch that fails for another reason than a deadlock is replayed one completion at a
//! time, so that one bad completion does not fail the others.

use std::collections::HashSet;
use std::sync::Arc;

use orchard_domain::{JobStatus, TaskStatus};
use sqlx::{PgPool, Row};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::{PgStore, complete_one, finalizing_status};
use crate::{Completion, Lease, Result, StoreError, TaskDone};

/// At most this many completions in one statement.
const MAX_BATCH: usize = 128;
/// Batches running at once: while one is in PostgreSQL the next gathers.
const IN_FLIGHT: usize = 2;

struct Pending {
    lease: Lease,
    done: TaskDone,
    now: i64,
    reply: oneshot::Sender<Result<Completion>>,
}

/// The sending side; the batching task stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Completions {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Completions {
    pub(super) fn start(pool: PgPool) -> Completions {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, pending));
        Completions { queue }
    }

    pub(super) async fn complete(&self, lease: &Lease, done: TaskDone, now: i64) -> Result<Completion> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Pending { lease: lease.clone(), done, now, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

async fn run(pool: PgPool, mut pending: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Some(first) = pending.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            execute(&pool, batch).await;
            drop(slot);
        });
    }
}

async fn execute(pool: &PgPool, batch: Vec<Pending>) {
    if batch.len() > 1 {
        let outcome = PgStore::retrying_on(|| complete_batch(pool, &batch)).await;
        if let Ok(completions) = outcome {
            for (pending, completion) in batch.into_iter().zip(completions) {
                let _ = pending.reply.send(Ok(completion));
            }
            return;
        }
    }
    for pending in batch {
        let result = PgStore::retrying_on(|| complete_one(pool, &pending.lease, &pending.done, pending.now)).await;
        let _ = pending.reply.send(result);
    }
}

/// Completes every task of `batch` in one statement; the answers are in `batch`'s order.
async fn complete_batch(pool: &PgPool, batch: &[Pending]) -> Result<Vec<Completion>> {
    let n = batch.len();
    let (mut task_ids, mut attempts, mut seconds, mut normalized, mut nows) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut out_tasks, mut out_ids, mut kinds, mut frames, mut file_names, mut object_keys, mut sizes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for pending in batch {
        let task_id = pending.lease.task_id.to_string();
        for output in &pending.done.outputs {
            out_tasks.push(task_id.clone());
            out_ids.push(Uuid::now_v7().to_string());
            kinds.push(output.kind.clone());
            frames.push(output.frame);
            file_names.push(output.file_name.clone());
            object_keys.push(output.object_key.clone());
            sizes.push(output.size);
        }
        task_ids.push(task_id);
        attempts.push(pending.lease.attempt);
        seconds.push(pending.done.render_seconds);
        normalized.push(pending.done.render_seconds * pending.done.speed_factor);
        nows.push(pending.now);
    }
    let finalizing = finalizing_status();
    // `done` completes each task its attempt still holds (`= any($1)` lets the planner see
    // the batch's size and use the primary key). `stored` records the outputs of those, each
    // frame once. `locked` takes the jobs' rows in id order, so that two servers' batches
    // never wait on each other in a cycle; `job` adds each job's sums and, when its last
    // frames came in, moves it to finalizing. `finished` is true for the job whose counter
    // crossed its total in this statement: one batch, one answer.
    let rows = sqlx::query(
        "with input as (
            select * from unnest($1::text[], $2::int8[], $3::float8[], $4::float8[], $5::int8[])
                as i (task_id, attempt, render_seconds, normalized_seconds, now)
         ), done as (
            update tasks t set status = $6, finished_at = i.now, render_seconds = i.render_seconds,
                lease_expires_at = null
            from input i
            where t.id = any($1) and t.id = i.task_id and t.attempt = i.attempt and t.status = $7
            returning t.id, i.attempt, t.job_id, t.n_frames, i.normalized_seconds, i.now
         ), stored as (
            insert into outputs (id, job_id, task_id, kind, frame, file_name, object_key, size, created_at)
            select o.id, done.job_id, done.id, o.kind, o.frame, o.file_name, o.object_key, o.size, done.now
            from unnest($8::text[], $9::text[], $10::text[], $11::int4[], $12::text[], $13::text[], $14::int8[])
                as o (task_id, id, kind, frame, file_name, object_key, size)
            join done on done.id = o.task_id
            on conflict (job_id, kind, file_name) do nothing
         ), per_job as (
            select job_id, sum(n_frames) as n_frames, sum(normalized_seconds) as normalized_seconds,
                max(now) as now
            from done group by job_id
         ), locked as (
            select id from jobs where id in (select job_id from per_job) order by id for update
         ), job as (
            update jobs j set frames_done = j.frames_done + p.n_frames,
                status = case when j.status in ($15, $16) and j.frames_done + p.n_frames >= j.frames_total
                    then $17 else j.status end,
                normalized_seconds = j.normalized_seconds + p.normalized_seconds, updated_at = p.now
            from per_job p join locked l on l.id = p.job_id
            where j.id = p.job_id
            returning j.id, j.status = $17 and j.frames_done - p.n_frames < j.frames_total as finished
         )
         select done.id, done.attempt, done.job_id, coalesce(job.finished, false) as finished
         from done left join job on job.id = done.job_id",
    )
    .bind(&task_ids)
    .bind(&attempts)
    .bind(&seconds)
    .bind(&normalized)
    .bind(&nows)
    .bind(TaskStatus::Completed.as_str())
    .bind(TaskStatus::Running.as_str())
    .bind(&out_tasks)
    .bind(&out_ids)
    .bind(&kinds)
    .bind(&frames)
    .bind(&file_names)
    .bind(&object_keys)
    .bind(&sizes)
    .bind(JobStatus::Booting.as_str())
    .bind(JobStatus::Rendering.as_str())
    .bind(finalizing)
    .fetch_all(pool)
    .await?;
    let mut completed = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("id")?;
        let attempt: i64 = row.try_get("attempt")?;
        let job_id: String = row.try_get("job_id")?;
        let finished: bool = row.try_get("finished")?;
        completed.insert((id, attempt), (job_id, finished));
    }
    // A job's finish is reported once, to the first of its tasks in the batch; a completion
    // sent twice in one batch counts once, as it would one after the other.
    let mut reported = HashSet::new();
    Ok(task_ids
        .into_iter()
        .zip(attempts)
        .map(|key| match completed.remove(&key) {
            None => Completion::Lost,
            Some((job_id, true)) if reported.insert(job_id.clone()) => Completion::JobFinished,
            Some(_) => Completion::Completed,
        })
        .collect())
}
