//! Claims and completions, batched. With many workers finishing frames at once, one statement
//! per completion and one per claim spent most of PostgreSQL's time starting statements,
//! committing, and queueing on the job row that every completion of a job updates. Here a task
//! takes whatever claims and completions are waiting and runs them as few statements: the
//! completions as one (each task fenced by its attempt as before, the outputs stored once,
//! each job's row updated once with the batch's sums), then the claims, one statement for all
//! the workers that claim from the same jobs with the same preference (a completion's next
//! claim among them).
//!
//! A batch that PostgreSQL aborts to break a deadlock is run again. One that it refuses for
//! one operation's data (a constraint, a bad value) is replayed one operation at a time, so
//! that one bad completion does not fail the others; any other failure (a lost connection, no
//! connection to be had) answers every operation of the batch with it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use orchard_domain::{JobEvent, JobStatus, TaskStatus};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::uuid_col;
use crate::rows::{status_after, task_frames};
use crate::{ClaimOptions, ClaimedTask, Completion, Lease, NextClaim, Result, StoreError, TaskDone, retrying};

/// At most this many operations in one batch.
const MAX_BATCH: usize = 128;
/// Batches running at once: while one is in PostgreSQL the next gathers.
const IN_FLIGHT: usize = 2;

/// A claim, owned, to wait in the queue.
struct ClaimRequest {
    worker_id: String,
    job_ids: Vec<Uuid>,
    claim: ClaimOptions,
}

impl From<NextClaim<'_>> for ClaimRequest {
    fn from(request: NextClaim<'_>) -> ClaimRequest {
        ClaimRequest {
            worker_id: request.worker_id.to_string(),
            job_ids: request.job_ids.to_vec(),
            claim: request.claim,
        }
    }
}

struct Pending {
    lease: Lease,
    done: TaskDone,
    now: i64,
    next: Option<ClaimRequest>,
    reply: oneshot::Sender<Result<(Completion, Option<ClaimedTask>)>>,
}

enum Op {
    Complete(Pending),
    Claim(ClaimRequest, oneshot::Sender<Result<Option<ClaimedTask>>>),
}

/// The sending side; the batching task stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Batcher {
    queue: mpsc::UnboundedSender<Op>,
}

impl Batcher {
    pub(super) fn start(pool: PgPool) -> Batcher {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, pending));
        Batcher { queue }
    }

    /// Leases a queued task to the worker, from the jobs it names.
    pub(super) async fn claim(&self, request: NextClaim<'_>) -> Result<Option<ClaimedTask>> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Op::Claim(ClaimRequest::from(request), reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Completes the task and, if it held and `next` asks, claims the worker's next task in
    /// the same batch.
    pub(super) async fn complete(
        &self,
        lease: &Lease,
        done: TaskDone,
        now: i64,
        next: Option<NextClaim<'_>>,
    ) -> Result<(Completion, Option<ClaimedTask>)> {
        let (reply, answer) = oneshot::channel();
        let next = next.map(ClaimRequest::from);
        self.queue
            .send(Op::Complete(Pending { lease: lease.clone(), done, now, next, reply }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::WriterStopped
}

async fn run(pool: PgPool, mut pending: mpsc::UnboundedReceiver<Op>) {
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

async fn execute(pool: &PgPool, batch: Vec<Op>) {
    let mut completes = Vec::new();
    let mut claims = Vec::new();
    for op in batch {
        match op {
            Op::Complete(pending) => completes.push(pending),
            Op::Claim(request, reply) => claims.push((request, reply)),
        }
    }
    let completions = complete_all(pool, &completes).await;
    // The next claims of the completions that held, then the plain claims, all together.
    let mut requests: Vec<&ClaimRequest> = Vec::new();
    let mut wants_next = Vec::with_capacity(completes.len());
    for (pending, completion) in completes.iter().zip(&completions) {
        let wants = matches!(completion, Ok(Completion::Completed | Completion::JobFinished))
            && pending.next.as_ref().is_some_and(|it| !it.job_ids.is_empty());
        if wants && let Some(next) = &pending.next {
            requests.push(next);
        }
        wants_next.push(wants);
    }
    requests.extend(claims.iter().map(|(request, _)| request));
    let mut claimed = claim_all(pool, &requests).await.into_iter();
    for ((pending, completion), wants) in completes.into_iter().zip(completions).zip(wants_next) {
        // As one completion then one claim would: a failed next claim leaves the worker to ask again.
        let next = if wants { claimed.next().and_then(|it| it.ok().flatten()) } else { None };
        let _ = pending.reply.send(completion.map(|it| (it, next)));
    }
    for ((_, reply), result) in claims.into_iter().zip(claimed) {
        let _ = reply.send(result);
    }
}

/// Completes `batch` in one statement; answers in `batch`'s order. If PostgreSQL refuses the
/// data of one of them, each is tried alone.
async fn complete_all(pool: &PgPool, batch: &[Pending]) -> Vec<Result<Completion>> {
    if batch.is_empty() {
        return Vec::new();
    }
    let error = match retrying(|| complete_batch(pool, batch)).await {
        Ok(answers) => return answers,
        Err(e) if batch.len() == 1 => return vec![Err(e)],
        Err(e) => e,
    };
    if !replayable(&error) {
        return shared(error, batch.len());
    }
    let mut out = Vec::with_capacity(batch.len());
    for alone in batch.chunks(1) {
        match retrying(|| complete_batch(pool, alone)).await {
            Ok(answers) => out.extend(answers),
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

/// Whether a failed batch is worth replaying one operation at a time: PostgreSQL refused the
/// data of one of them (SQLSTATE class 22, data exception, or 23, integrity constraint).
/// Anything else would fail each operation again, one after the other.
fn replayable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            db.code().is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
        }
        _ => false,
    }
}

/// A batch's error, for each of its `n` operations.
fn shared<T>(e: StoreError, n: usize) -> Vec<Result<T>> {
    let e = Arc::new(e);
    (0..n).map(|_| Err(StoreError::Batch(e.clone()))).collect()
}

/// What claims share a statement by: the jobs, the preferred one and where its queue starts,
/// the lease, the blocklist.
type GroupKey<'a> = (&'a [Uuid], Option<Uuid>, i64, i64, i64);

/// Claims for every request; answers in `requests`' order. Requests for the same jobs with the
/// same preference share one statement.
async fn claim_all(pool: &PgPool, requests: &[&ClaimRequest]) -> Vec<Result<Option<ClaimedTask>>> {
    let mut groups: HashMap<GroupKey<'_>, Vec<usize>> = HashMap::new();
    for (index, request) in requests.iter().enumerate() {
        let claim = &request.claim;
        let key = (&request.job_ids[..], claim.prefer, claim.prefer_from_seq, claim.lease_ms, claim.blocklist_after);
        groups.entry(key).or_default().push(index);
    }
    let mut out: Vec<Option<Result<Option<ClaimedTask>>>> = requests.iter().map(|_| None).collect();
    for members in groups.into_values() {
        let mut alone = members.clone();
        if members.len() > 1 {
            let group: Vec<&ClaimRequest> = members.iter().map(|&i| requests[i]).collect();
            match retrying(|| claim_batch(pool, &group)).await {
                Ok(tasks) => {
                    alone.clear();
                    for (&index, task) in members.iter().zip(tasks) {
                        match task {
                            Some(task) => out[index] = Some(task.map(Some)),
                            // The jobs ran out, or a worker of the group is blocklisted for one
                            // of them: those left claim on their own.
                            None => alone.push(index),
                        }
                    }
                }
                Err(e) if !replayable(&e) => {
                    alone.clear();
                    for (&index, answer) in members.iter().zip(shared(e, members.len())) {
                        out[index] = Some(answer);
                    }
                }
                Err(_) => {}
            }
        }
        for index in alone {
            let request = requests[index];
            out[index] = Some(claim_one(pool, request).await);
        }
    }
    out.into_iter().map(|it| it.unwrap_or(Ok(None))).collect()
}

/// A claimed task, as `claim_one` and `claim_batch` return it.
fn claimed_from_row(row: &PgRow) -> Result<ClaimedTask> {
    Ok(ClaimedTask {
        lease: Lease { task_id: uuid_col(row, "id", "tasks")?, attempt: row.try_get("attempt")? },
        job_id: uuid_col(row, "job_id", "tasks")?,
        seq: row.try_get("seq")?,
        frames: task_frames(&row.try_get::<String, _>("frames")?)?,
    })
}

/// One claim in one statement: what a claim alone in its batch runs.
async fn claim_one(pool: &PgPool, request: &ClaimRequest) -> Result<Option<ClaimedTask>> {
    let ClaimRequest { worker_id, job_ids, claim } = request;
    if job_ids.is_empty() {
        return Ok(None);
    }
    let Some(rendering) = status_after(JobStatus::Booting, JobEvent::TaskStarted) else {
        return Ok(None);
    };
    let job_ids: Vec<String> = job_ids.iter().map(Uuid::to_string).collect();
    // One statement, committed at once. `candidates` orders the allowed jobs (the
    // preferred one first, whose scene the worker has loaded; then in the order given: the
    // scheduler's claim order), and for
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
                    and (select count(*) from task_failures f where f.job_id = jobs.id and f.worker_id = $7
                        and f.cleared = 0) < $11
                  order by id is not distinct from $5 desc, array_position($4::text[], id)) as candidates
            cross join lateral (
                select id from tasks where job_id = candidates.id and status = $1
                  and seq >= case when candidates.id = $5 then $12 else 0 end
                order by seq limit 1
                for update skip locked
            ) as t
            limit 1
         ), claimed as (
            update tasks t set status = $6, attempt = t.attempt + 1, worker_id = $7, lease_expires_at = $8,
                started_at = $9, frames_done = 0, frame_progress = 0
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
    row.as_ref().map(claimed_from_row).transpose()
}

/// One statement that leases a task to each worker of `group` (which claim from the same jobs
/// with the same preference): the first free tasks in the order a single claim takes them,
/// handed out in `group`'s order. If any worker of the group is blocklisted for any of the
/// jobs, it leases nothing (the group then claims one by one, each with its own blocklist).
/// Answers in `group`'s order; `None` for a worker left without a task. `Err` only if the
/// statement failed (then nothing was leased); a leased task whose row cannot be read back
/// fails for its worker alone.
async fn claim_batch(pool: &PgPool, group: &[&ClaimRequest]) -> Result<Vec<Option<Result<ClaimedTask>>>> {
    let Some(first) = group.first() else { return Ok(Vec::new()) };
    let Some(rendering) = status_after(JobStatus::Booting, JobEvent::TaskStarted) else {
        return Ok(group.iter().map(|_| None).collect());
    };
    let workers: Vec<&str> = group.iter().map(|it| it.worker_id.as_str()).collect();
    let expires: Vec<i64> = group.iter().map(|it| it.claim.now + it.claim.lease_ms).collect();
    let nows: Vec<i64> = group.iter().map(|it| it.claim.now).collect();
    let job_ids: Vec<String> = first.job_ids.iter().map(Uuid::to_string).collect();
    let latest = nows.iter().copied().max().unwrap_or(0);
    // As the single claim (`claim_one`), with `limit` the group's size: the lateral subquery
    // takes up to that many free tasks of each candidate job in turn, skipping locked rows,
    // and the outer `limit` stops at the group's size. `next` numbers them in that order and
    // `members` numbers the workers: task n goes to worker n.
    let rows = sqlx::query(
        "with members as (
            select * from unnest($1::text[], $2::int8[], $3::int8[]) with ordinality
                as m (worker_id, lease_expires_at, now, n)
         ), next as (
            select picked.id, row_number() over () as n
            from (
                select t.id
                from (select id from jobs where id = any($4) and status in ($5, $6)
                        and not exists (select 1 from task_failures f where f.job_id = any($4) and f.cleared = 0
                            and f.worker_id = any($1) group by f.worker_id, f.job_id having count(*) >= $7)
                      order by id is not distinct from $8 desc, array_position($4::text[], id)) as candidates
                cross join lateral (
                    select id from tasks where job_id = candidates.id and status = $9
                      and seq >= case when candidates.id = $8 then $10 else 0 end
                    order by seq limit $11
                    for update skip locked
                ) as t
                limit $11
            ) as picked
         ), claimed as (
            update tasks t set status = $12, attempt = t.attempt + 1, worker_id = m.worker_id,
                lease_expires_at = m.lease_expires_at, started_at = m.now, frames_done = 0, frame_progress = 0
            from next join members m on m.n = next.n
            where t.id = next.id
            returning t.id, t.job_id, t.frames, t.attempt, t.seq, m.n
         ), booting as (
            select id from jobs where id in (select job_id from claimed) and status = $5
            order by id for no key update
         ), job as (
            update jobs j set status = $13, updated_at = $14, render_started_at = coalesce(j.render_started_at, $14)
            where j.id in (select id from booting) and j.status = $5
         )
         select id, job_id, frames, attempt, seq, n from claimed",
    )
    .bind(&workers)
    .bind(&expires)
    .bind(&nows)
    .bind(&job_ids)
    .bind(JobStatus::Booting.as_str())
    .bind(JobStatus::Rendering.as_str())
    .bind(first.claim.blocklist_after)
    .bind(first.claim.prefer.map(|it| it.to_string()))
    .bind(TaskStatus::Queued.as_str())
    .bind(first.claim.prefer_from_seq)
    .bind(group.len() as i64)
    .bind(TaskStatus::Running.as_str())
    .bind(rendering)
    .bind(latest)
    .fetch_all(pool)
    .await?;
    let mut out: Vec<Option<Result<ClaimedTask>>> = group.iter().map(|_| None).collect();
    for row in rows {
        let n: i64 = row.try_get("n")?;
        let task = claimed_from_row(&row);
        if let Some(slot) = usize::try_from(n).ok().and_then(|n| n.checked_sub(1)).and_then(|i| out.get_mut(i)) {
            *slot = Some(task);
        }
    }
    Ok(out)
}

/// Completes every task of `batch` in one statement; the answers are in `batch`'s order. `Err`
/// only if the statement failed (then nothing changed).
async fn complete_batch(pool: &PgPool, batch: &[Pending]) -> Result<Vec<Result<Completion>>> {
    let n = batch.len();
    let (mut task_ids, mut attempts, mut seconds, mut normalized, mut nows) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut versions: Vec<Option<String>> = Vec::with_capacity(n);
    let (mut out_tasks, mut out_attempts, mut out_ids) = (Vec::new(), Vec::new(), Vec::new());
    let (mut kinds, mut frames, mut file_names, mut object_keys, mut sizes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for pending in batch {
        let task_id = pending.lease.task_id.to_string();
        for output in &pending.done.outputs {
            out_tasks.push(task_id.clone());
            out_attempts.push(pending.lease.attempt);
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
        versions.push(pending.done.blender_version.clone());
    }
    // The status a job's last completed task moves it to.
    let finalizing =
        status_after(JobStatus::Rendering, JobEvent::AllTasksDone).unwrap_or(JobStatus::Rendering.as_str());
    // `done` completes each task its attempt still holds (`= any($1)` lets the planner see
    // the batch's size and use the primary key). `stored` records the outputs of those
    // attempts, each frame once. `locked` takes the jobs' rows in id order, so that two
    // batches never wait on each other's job rows in a cycle (`no key update`: foreign-key
    // checks of rows inserted for the job need not wait for it); `job` adds each job's sums
    // and, when its last frames came in, moves it to finalizing. `finished` is true for the
    // job whose counter crossed its total in this statement: one batch, one answer.
    let rows = sqlx::query(
        "with input as (
            select * from unnest($1::text[], $2::int8[], $3::float8[], $4::float8[], $5::int8[], $19::text[])
                as i (task_id, attempt, render_seconds, normalized_seconds, now, blender_version)
         ), done as (
            update tasks t set status = $6, finished_at = i.now, render_seconds = i.render_seconds,
                lease_expires_at = null, blender_version = i.blender_version
            from input i
            where t.id = any($1) and t.id = i.task_id and t.attempt = i.attempt and t.status = $7
            returning t.id, i.attempt, t.job_id, t.n_frames, i.normalized_seconds, i.now
         ), stored as (
            insert into outputs (id, job_id, task_id, kind, frame, file_name, object_key, size, created_at)
            select o.id, done.job_id, done.id, o.kind, o.frame, o.file_name, o.object_key, o.size, done.now
            from unnest($8::text[], $18::int8[], $9::text[], $10::text[], $11::int4[], $12::text[], $13::text[],
                    $14::int8[])
                as o (task_id, attempt, id, kind, frame, file_name, object_key, size)
            join done on done.id = o.task_id and done.attempt = o.attempt
            on conflict (job_id, kind, file_name) do nothing
         ), per_job as (
            select job_id, sum(n_frames) as n_frames, sum(normalized_seconds) as normalized_seconds,
                max(now) as now
            from done group by job_id
         ), locked as (
            select id from jobs where id in (select job_id from per_job) order by id for no key update
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
    .bind(&out_attempts)
    .bind(&versions)
    .fetch_all(pool)
    .await?;
    let mut completed = HashMap::with_capacity(rows.len());
    for row in &rows {
        let read = (|| -> Result<_> {
            Ok((
                (row.try_get::<String, _>("id")?, row.try_get::<i64, _>("attempt")?),
                (row.try_get::<String, _>("job_id")?, row.try_get::<bool, _>("finished")?),
            ))
        })();
        match read {
            Ok((key, value)) => {
                completed.insert(key, value);
            }
            // Committed, but not readable back: which completion it answers is unknown.
            Err(e) => return Ok(shared(e, batch.len())),
        }
    }
    // A job's finish is reported once, to the first of its tasks in the batch; a completion
    // sent twice in one batch counts once, as it would one after the other.
    let mut reported = HashSet::new();
    Ok(task_ids
        .into_iter()
        .zip(attempts)
        .map(|key| match completed.remove(&key) {
            None => Ok(Completion::Lost),
            Some((job_id, true)) if reported.insert(job_id.clone()) => Ok(Completion::JobFinished),
            Some(_) => Ok(Completion::Completed),
        })
        .collect())
}
