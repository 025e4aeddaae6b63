//! The hot writes of a busy farm on SQLite (claims and completions), batched. One thread owns
//! a connection of its own and runs every claim and completion waiting at that moment in one
//! transaction, each inside a savepoint so that one failing changes nothing of the others;
//! callers get their answers once the transaction commits.
//!
//! Why: SQLite has one writer. Through the async pool each statement of a transaction is a
//! round trip to the connection's thread, and the write lock is held across all of them, so
//! a farm's throughput was bounded by those round trips. Here the statements run on the
//! thread that holds the lock, back to back, and the commit is shared by the batch.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::Duration;

use orchard_domain::{JobEvent, JobStatus, TaskStatus};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::rows::{status_after, task_frames};
use crate::{ClaimOptions, ClaimedTask, Completion, Lease, Result, StoreError, TaskDone};

/// Most operations in one transaction: bounds how long other writers wait for the lock.
const MAX_BATCH: usize = 256;

/// A worker's next claim, made with its completion, owned to wait in the queue.
type NextOwned = (String, Vec<Uuid>, ClaimOptions);

/// A claim or a completion (with the next claim, if asked), with where its answer goes.
enum Op {
    Claim {
        worker_id: String,
        job_ids: Vec<Uuid>,
        claim: ClaimOptions,
        reply: oneshot::Sender<Result<Option<ClaimedTask>>>,
    },
    Complete {
        lease: Lease,
        done: TaskDone,
        now: i64,
        next: Option<NextOwned>,
        reply: oneshot::Sender<Result<(Completion, Option<ClaimedTask>)>>,
    },
}

/// An operation run inside the batch, its answer held until the commit.
enum Ran {
    Claim(oneshot::Sender<Result<Option<ClaimedTask>>>, Result<Option<ClaimedTask>>),
    Complete(oneshot::Sender<Result<(Completion, Option<ClaimedTask>)>>, Result<(Completion, Option<ClaimedTask>)>),
}

impl Ran {
    /// Sends the answer, or, if the batch did not commit, its failure.
    fn send(self, committed: &std::result::Result<(), Arc<StoreError>>) {
        match (self, committed) {
            (Ran::Claim(reply, result), Ok(())) => drop(reply.send(result)),
            (Ran::Complete(reply, result), Ok(())) => drop(reply.send(result)),
            (Ran::Claim(reply, _), Err(e)) => drop(reply.send(Err(StoreError::Batch(e.clone())))),
            (Ran::Complete(reply, _), Err(e)) => drop(reply.send(Err(StoreError::Batch(e.clone())))),
        }
    }
}

impl Op {
    /// Answers with the failure of the batch it was to run in.
    fn fail(self, error: &Arc<StoreError>) {
        match self {
            Op::Claim { reply, .. } => drop(reply.send(Err(StoreError::Batch(error.clone())))),
            Op::Complete { reply, .. } => drop(reply.send(Err(StoreError::Batch(error.clone())))),
        }
    }
}

/// The batching writer; dropping every handle stops its thread.
#[derive(Debug)]
pub(crate) struct HotWriter {
    ops: Sender<Op>,
}

impl HotWriter {
    /// Opens `path` (already migrated, in WAL mode) and starts the thread. `writer` is the
    /// store's in-process writer slot, held for each batch so that the pool's writers queue
    /// behind it instead of in SQLite's sleeping busy handler.
    pub(crate) fn start(path: &Path, writer: Arc<tokio::sync::Mutex<()>>) -> Result<HotWriter> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch("pragma synchronous = normal; pragma foreign_keys = on;")?;
        let (ops, queue) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("orchard-sqlite-writer".into())
            .spawn(move || run(conn, queue, writer))
            .map_err(StoreError::WriterStart)?;
        Ok(HotWriter { ops })
    }

    /// Leases a queued task to the worker, from the jobs it names.
    pub(crate) async fn claim(&self, request: crate::NextClaim<'_>) -> Result<Option<ClaimedTask>> {
        let (reply, answer) = oneshot::channel();
        let (worker_id, job_ids, claim) = owned(request);
        self.ops.send(Op::Claim { worker_id, job_ids, claim, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Completes the task and, if it held and `next` asks, claims the worker's next task in
    /// the same batch.
    pub(crate) async fn complete(
        &self,
        lease: &Lease,
        done: TaskDone,
        now: i64,
        next: Option<crate::NextClaim<'_>>,
    ) -> Result<(Completion, Option<ClaimedTask>)> {
        let (reply, answer) = oneshot::channel();
        let next = next.map(owned);
        self.ops.send(Op::Complete { lease: lease.clone(), done, now, next, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A claim, owned to wait in the queue.
fn owned(request: crate::NextClaim<'_>) -> NextOwned {
    (request.worker_id.to_string(), request.job_ids.to_vec(), request.claim)
}

fn stopped() -> StoreError {
    StoreError::WriterStopped
}

fn run(mut conn: Connection, queue: Receiver<Op>, writer: Arc<tokio::sync::Mutex<()>>) {
    while let Ok(first) = queue.recv() {
        let mut ops = vec![first];
        while ops.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(op) => ops.push(op),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let slot = writer.blocking_lock();
        let ran = batch(&mut conn, ops);
        drop(slot);
        if let Some((ran, committed)) = ran {
            for it in ran {
                it.send(&committed);
            }
        }
    }
}

/// Runs `ops` in one transaction; `None` when it could not even begin (the ops were answered).
#[allow(clippy::type_complexity)]
fn batch(conn: &mut Connection, ops: Vec<Op>) -> Option<(Vec<Ran>, std::result::Result<(), Arc<StoreError>>)> {
    if let Err(e) = conn.execute_batch("begin immediate") {
        let error = Arc::new(StoreError::from(e));
        for op in ops {
            op.fail(&error);
        }
        return None;
    }
    let mut ran = Vec::with_capacity(ops.len());
    for op in ops {
        ran.push(match op {
            Op::Claim { worker_id, job_ids, claim, reply } => {
                Ran::Claim(reply, in_savepoint(conn, |conn| claim_task(conn, &worker_id, &job_ids, claim)))
            }
            Op::Complete { lease, done, now, next, reply } => {
                let result = in_savepoint(conn, |conn| complete_task(conn, &lease, &done, now)).map(|completion| {
                    // A next claim that fails only means no next task in the answer: the
                    // completion stands, and the worker claims again.
                    let claimed = match next {
                        Some((worker_id, job_ids, claim)) if completion != Completion::Lost => {
                            in_savepoint(conn, |conn| claim_task(conn, &worker_id, &job_ids, claim)).ok().flatten()
                        }
                        _ => None,
                    };
                    (completion, claimed)
                });
                Ran::Complete(reply, result)
            }
        });
    }
    let committed = conn.execute_batch("commit").map_err(|e| {
        let _ = conn.execute_batch("rollback");
        Arc::new(StoreError::from(e))
    });
    Some((ran, committed))
}

/// Runs `f` in a savepoint: if it fails, it leaves nothing behind, and the batch goes on.
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("savepoint op")?;
    let result = f(conn);
    let undo = if result.is_ok() { "release op" } else { "rollback to op; release op" };
    let _ = conn.execute_batch(undo);
    result
}

fn claim_task(
    conn: &Connection,
    worker_id: &str,
    job_ids: &[Uuid],
    claim: ClaimOptions,
) -> Result<Option<ClaimedTask>> {
    let Some(started) = status_after(JobStatus::Booting, JobEvent::TaskStarted) else {
        return Ok(None);
    };
    // The preferred job first (its scene is loaded on the worker), then the jobs in the
    // order given (oldest first). For each, one statement leases the job's first queued
    // task by the `tasks_queue` index, unless the job stopped rendering or blocklisted this
    // worker: a claim reads a few index entries, however many tasks wait.
    let order = claim.prefer.filter(|it| job_ids.contains(it)).into_iter().chain(job_ids.iter().copied());
    let mut lease = conn.prepare_cached(
        "update tasks set status = ?1, attempt = attempt + 1, worker_id = ?2, lease_expires_at = ?3, started_at = ?4,
            frames_done = 0, frame_progress = 0
         where id = (
            select t.id from tasks t
            where t.status = ?5 and t.job_id = ?6 and t.seq >= ?10
              and exists (select 1 from jobs j where j.id = ?6 and j.status in (?7, ?8))
              and (select count(*) from task_failures f where f.job_id = ?6 and f.worker_id = ?2 and f.cleared = 0) < ?9
            order by t.seq limit 1)
         returning id, frames, attempt, seq",
    )?;
    for job_id in order {
        let row = lease
            .query_row(
                params![
                    TaskStatus::Running.as_str(),
                    worker_id,
                    claim.now + claim.lease_ms,
                    claim.now,
                    TaskStatus::Queued.as_str(),
                    job_id.to_string(),
                    JobStatus::Booting.as_str(),
                    JobStatus::Rendering.as_str(),
                    claim.blocklist_after,
                    if claim.prefer == Some(job_id) { claim.prefer_from_seq } else { 0 },
                ],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()?;
        let Some((task_id, frames, attempt, seq)) = row else { continue };
        // A booting job starts rendering with its first claim.
        conn.prepare_cached(
            "update jobs set status = ?2, updated_at = ?3, render_started_at = coalesce(render_started_at, ?3)
             where id = ?4 and status = ?1",
        )?
        .execute(params![JobStatus::Booting.as_str(), started, claim.now, job_id.to_string()])?;
        return Ok(Some(ClaimedTask {
            lease: Lease { task_id: crate::rows::uuid(&task_id, "tasks", "id")?, attempt },
            job_id,
            seq,
            frames: task_frames(&frames)?,
        }));
    }
    Ok(None)
}

fn complete_task(conn: &Connection, lease: &Lease, done: &TaskDone, now: i64) -> Result<Completion> {
    let row = conn
        .prepare_cached(
            "update tasks set status = ?1, finished_at = ?2, render_seconds = ?3, lease_expires_at = null,
                blender_version = ?7
             where id = ?4 and attempt = ?5 and status = ?6 returning job_id, n_frames",
        )?
        .query_row(
            params![
                TaskStatus::Completed.as_str(),
                now,
                done.render_seconds,
                lease.task_id.to_string(),
                lease.attempt,
                TaskStatus::Running.as_str(),
                done.blender_version,
            ],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
        )
        .optional()?;
    let Some((job_id, n_frames)) = row else {
        return Ok(Completion::Lost);
    };
    let mut insert = conn.prepare_cached(
        "insert into outputs (id, job_id, task_id, kind, frame, file_name, object_key, size, created_at)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) on conflict (job_id, kind, file_name) do nothing",
    )?;
    for output in &done.outputs {
        insert.execute(params![
            Uuid::now_v7().to_string(),
            job_id,
            lease.task_id.to_string(),
            output.kind,
            output.frame,
            output.file_name,
            output.object_key,
            output.size,
            now,
        ])?;
    }
    // The frames count; the last task moves its job on, in the transaction that stored its frames.
    let finalizing = status_after(JobStatus::Rendering, JobEvent::AllTasksDone);
    conn.prepare_cached(
        "update jobs set frames_done = frames_done + ?1, normalized_seconds = normalized_seconds + ?2, updated_at = ?3
         where id = ?4",
    )?
    .execute(params![n_frames, done.render_seconds * done.speed_factor, now, job_id])?;
    let mut finished = 0;
    if let Some(finalizing) = finalizing {
        finished = conn
            .prepare_cached(
                "update jobs set status = ?1
                 where id = ?2 and status in (?3, ?4) and frames_done >= frames_total",
            )?
            .execute(params![finalizing, job_id, JobStatus::Booting.as_str(), JobStatus::Rendering.as_str()])?;
    }
    Ok(if finished == 1 { Completion::JobFinished } else { Completion::Completed })
}
