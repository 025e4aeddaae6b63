//! Background duties: requeueing tasks whose lease expired, and finalizing jobs.
//!
//! Each is safe when every server runs it: the store's statements are compare-and-set.
//! A duty never takes the server down: it logs, waits, and goes on.

use std::time::Duration;

use orchard_domain::JobStatus;
use orchard_store::Order;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::lifecycle;
use crate::state::{AppState, now_ms};

/// Requeues tasks of silent workers, every quarter of the lease.
pub async fn lease_reaper(state: AppState, shutdown: CancellationToken) {
    let period = (state.config.lease_ttl / 4).max(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.cancelled() => return,
        }
        match state.store.requeue_expired(now_ms()).await {
            Ok(0) => {}
            Ok(n) => {
                info!(tasks = n, "requeued tasks whose lease expired");
                state.work_arrived();
            }
            Err(error) => warn!(%error, "lease reaper failed; retrying"),
        }
    }
}

/// Attempts at packaging a job's outputs before it fails.
const FINALIZE_ATTEMPTS: u32 = 5;

/// Packages jobs whose frames are all done. Woken by the last task's completion, and polls
/// in case another server completed it.
pub async fn finalizer(state: AppState, shutdown: CancellationToken) {
    // Failures per job: a job whose outputs cannot be packaged fails instead of retrying forever.
    let mut failures: std::collections::HashMap<uuid::Uuid, u32> = Default::default();
    loop {
        match state.store.jobs_in_status(None, &[JobStatus::Finalizing], Order::OldestFirst, 16).await {
            Ok(jobs) => {
                failures.retain(|id, _| jobs.iter().any(|it| it.id == *id));
                for job in jobs {
                    let Err(error) = lifecycle::finalize(&state, &job).await else { continue };
                    let n = failures.entry(job.id).or_default();
                    *n += 1;
                    warn!(job = %job.id, attempt = *n, error = format!("{error:#}"), "finalizing failed");
                    if *n >= FINALIZE_ATTEMPTS {
                        lifecycle::fail_finalizing(&state, &job, &format!("{error:#}")).await;
                    }
                }
            }
            Err(error) => warn!(%error, "finalizer failed; retrying"),
        }
        tokio::select! {
            _ = state.finalize_wakeup.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
