//! The farm's workers as people operate them: the list (job ids only for their own workspace
//! or an admin), drain and undrain.

use orchard_store::{RunningTask, WorkerRecord};
use tracing::info;
use uuid::Uuid;

use crate::clock::{iso8601, now_ms};
use crate::error::{Error, Result};
use crate::keys::Caller;
use crate::policy::connected_window;
use crate::state::AppState;

/// Drains a worker, named by id or by its (unique) name: it takes no new task, its running
/// one finishes. Or takes it back.
pub(crate) async fn set_draining(state: &AppState, worker: &str, draining: bool) -> Result<()> {
    let worker_id = if state.store.get_worker(worker).await?.is_some() {
        worker.to_string()
    } else {
        let named: Vec<WorkerRecord> =
            state.store.live_workers(0).await?.into_iter().filter(|it| it.name == worker).collect();
        match named.as_slice() {
            [one] => one.id.clone(),
            [] => return Err(Error::NotFound("worker")),
            _ => {
                return Err(Error::Conflict {
                    code: "ambiguous_worker",
                    message: format!("{} workers are named {worker:?}: name one by its id", named.len()),
                });
            }
        }
    };
    let worker_id = worker_id.as_str();
    if !state.store.set_draining(worker_id, draining).await? {
        return Err(Error::NotFound("worker"));
    }
    if let Some(record) = state.store.get_worker(worker_id).await? {
        state.presence.remember_worker(record);
    }
    if !draining {
        state.scheduler.work_arrived();
    }
    info!(worker = worker_id, draining, "worker drain changed");
    Ok(())
}

/// Every registered worker with the task it runs and its status, read once for whoever asks.
async fn workers_now(state: &AppState) -> Result<Vec<(WorkerRecord, Option<RunningTask>, &'static str)>> {
    let workers = state.store.live_workers(0).await?;
    let mut running = state.store.running_tasks().await?;
    let connected_since = now_ms() - connected_window(state.config.lease_ttl).as_millis() as i64;
    Ok(workers
        .into_iter()
        .map(|worker| {
            let task = running.iter().position(|it| it.worker_id == worker.id).map(|at| running.swap_remove(at));
            let status = status(&worker, task.is_some(), connected_since);
            (worker, task, status)
        })
        .collect())
}

/// What each workspace used of the farm (the caller's own, unless an admin), and the frames
/// finished in the last hour.
pub(crate) async fn usage(state: &AppState, caller: &Caller) -> Result<orchard_api::Usage> {
    let workspace = (!caller.admin).then_some(caller.workspace_id);
    let (workspaces, frames_last_hour) = state.store.usage(workspace, now_ms() - 3_600_000).await?;
    Ok(orchard_api::Usage {
        workspaces: workspaces
            .into_iter()
            .map(|it| orchard_api::WorkspaceUsage {
                workspace_id: it.workspace_id.to_string(),
                jobs: it.jobs,
                frames_done: it.frames_done,
                normalized_seconds: (it.normalized_seconds * 1000.0).round() / 1000.0,
            })
            .collect(),
        frames_last_hour,
    })
}

/// Every registered worker as people see it: status, what it offers, what it renders now (the
/// job only for its own workspace's callers, or an admin).
pub(crate) async fn list(state: &AppState, caller: &Caller) -> Result<Vec<orchard_api::WorkerInfo>> {
    let visible = |workspace: Uuid| caller.admin || workspace == caller.workspace_id;
    Ok(workers_now(state)
        .await?
        .into_iter()
        .map(|(worker, task, status)| orchard_api::WorkerInfo {
            id: worker.id,
            name: worker.name,
            status: status.into(),
            draining: worker.draining,
            blenders: worker.capabilities.blenders,
            cpu_threads: worker.capabilities.cpu_threads,
            ram_gib: worker.capabilities.ram_gib,
            tags: worker.capabilities.tags,
            ffmpeg: worker.capabilities.ffmpeg,
            speed_factor: worker.speed_factor,
            speed_measured: worker.speed_measured,
            speed_spread: worker.speed_spread,
            speed_observations: worker.speed_observations,
            current_task: task.map(|it| orchard_api::CurrentTask {
                task_id: visible(it.workspace_id).then(|| it.task_id.to_string()),
                job_id: visible(it.workspace_id).then(|| it.job_id.to_string()),
                frames: it.frames.to_ranges(),
                started_at: it.started_at.map(iso8601),
            }),
            last_seen_at: iso8601(worker.last_seen_at),
            registered_at: iso8601(worker.registered_at),
        })
        .collect())
}

/// `offline` (not heard from within the connected window), `draining`, `busy` or `idle`.
fn status(worker: &WorkerRecord, busy: bool, connected_since: i64) -> &'static str {
    if worker.last_seen_at < connected_since {
        "offline"
    } else if worker.draining {
        "draining"
    } else if busy {
        "busy"
    } else {
        "idle"
    }
}

/// How many workers are in each status, for `/metrics`.
pub(crate) async fn count_by_status(state: &AppState) -> Result<Vec<(&'static str, i64)>> {
    let mut counts: Vec<(&'static str, i64)> = Vec::new();
    for (_, _, status) in workers_now(state).await? {
        match counts.iter_mut().find(|(it, _)| *it == status) {
            Some((_, n)) => *n += 1,
            None => counts.push((status, 1)),
        }
    }
    Ok(counts)
}
