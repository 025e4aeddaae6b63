//! Background duties: requeueing tasks whose lease expired, and finalizing jobs.
//!
//! Each is safe when every server runs it: the store's statements are compare-and-set.
//! A duty never takes the server down: it logs, waits, and goes on.

use std::time::Duration;

use orchard_domain::JobStatus;
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
                state.work_available.notify_waiters();
            }
            Err(error) => warn!(%error, "lease reaper failed; retrying"),
        }
    }
}

/// Packages jobs whose frames are all done. Woken by the last task's completion, and polls
/// in case another server completed it.
pub async fn finalizer(state: AppState, shutdown: CancellationToken) {
    loop {
        match state.store.jobs_in_status(None, &[JobStatus::Finalizing], 16).await {
            Ok(jobs) => {
                for job in jobs {
                    if let Err(error) = lifecycle::finalize(&state, &job).await {
                        warn!(job = %job.id, error = format!("{error:#}"), "finalizing failed; retrying");
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
