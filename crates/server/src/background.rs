//! Background duties: requeueing tasks whose lease expired, reviewing runnable jobs, and
//! finalizing jobs.
//!
//! Each is safe when every server runs it: the store's statements are compare-and-set.
//! A duty never takes the server down: it logs, waits, and goes on.

use std::collections::HashMap;
use std::time::Duration;

use orchard_domain::JobStatus;
use orchard_store::Order;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};
use uuid::Uuid;

use crate::clock::now_ms;
use crate::error::Chain;
use crate::lifecycle;
use crate::policy::{
    CLAIM_WINDOW, FINALIZE_ATTEMPTS, FINALIZE_BATCH, FINALIZE_POLL, FORGET_IDLE_LIMITS, RETENTION_BATCH,
    RETENTION_EVERY, RETURN_MEMORY_EVERY, REVIEW_EVERY, STALE_VALIDATIONS_EVERY, VALIDATION_LEASE, reap_every,
};
use crate::state::AppState;

/// Requeues tasks of silent workers, every quarter of the lease.
pub(crate) async fn lease_reaper(state: AppState, shutdown: CancellationToken) {
    let period = reap_every(state.config.lease_ttl);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.cancelled() => return,
        }
        match state.store.requeue_expired(now_ms()).await {
            Ok(0) => {}
            Ok(n) => {
                info!(tasks = n, "requeued tasks whose lease expired");
                state.scheduler.work_arrived();
            }
            Err(error) => warn!(error = %Chain(&error), "lease reaper failed; retrying"),
        }
    }
}

/// Reviews every runnable job (waiting reasons, jobs no worker is left to try).
pub(crate) async fn matchmaker(state: AppState, shutdown: CancellationToken) {
    loop {
        match state.store.runnable_jobs(CLAIM_WINDOW).await {
            Ok(jobs) => {
                for job_id in jobs.into_iter().map(|it| it.id) {
                    let review = lifecycle::review(&state, job_id).instrument(info_span!("review", job = %job_id));
                    if let Err(error) = review.await {
                        warn!(job = %job_id, error = %Chain(&error), "reviewing a job failed");
                    }
                }
            }
            Err(error) => warn!(error = %Chain(&error), "matchmaker failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(REVIEW_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Packages jobs whose frames are all done. Woken by the last task's completion, and polls
/// in case another server completed it.
pub(crate) async fn finalizer(state: AppState, shutdown: CancellationToken) {
    // Failures per job: a job whose outputs cannot be packaged fails instead of retrying forever.
    let mut failures: HashMap<Uuid, u32> = HashMap::new();
    loop {
        match state.store.jobs_in_status(None, &[JobStatus::Finalizing], Order::OldestFirst, FINALIZE_BATCH).await {
            Ok(jobs) => {
                failures.retain(|id, _| jobs.iter().any(|it| it.id == *id));
                for job in jobs {
                    let span = info_span!("finalize", job = %job.id);
                    let Err(error) = lifecycle::finalize(&state, &job).instrument(span.clone()).await else { continue };
                    let n = failures.entry(job.id).or_default();
                    *n += 1;
                    warn!(parent: &span, attempt = *n, error = %Chain(error.as_ref()), "finalizing failed");
                    if *n >= FINALIZE_ATTEMPTS {
                        let message = Chain(error.as_ref()).to_string();
                        lifecycle::fail_finalizing(&state, &job, &message).instrument(span).await;
                    }
                }
            }
            Err(error) => warn!(error = %Chain(&error), "finalizer failed; retrying"),
        }
        tokio::select! {
            _ = state.finalize_wakeup.notified() => {}
            _ = tokio::time::sleep(FINALIZE_POLL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Lets the rate limiters forget keys and addresses whose budget is full again.
pub(crate) async fn limits_upkeep(state: AppState, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FORGET_IDLE_LIMITS) => state.limits.forget_idle(),
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Gives memory the allocator holds free back to the OS, now and then. glibc keeps what a
/// burst freed (a flood of 9,000 connections left ~180 MB) in its arenas for good: freed
/// from other threads, in the middle of heaps, it is never trimmed on its own.
pub(crate) async fn return_memory(shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RETURN_MEMORY_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
        // A walk over the arenas: milliseconds, off the async threads.
        let _ = tokio::task::spawn_blocking(trim_heap).await;
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim takes no pointers and locks each arena itself; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

/// Runs again the validations whose server died mid-way (their lease ran out): a job must not
/// stay `validating` forever.
pub(crate) async fn stale_validations(state: AppState, shutdown: CancellationToken) {
    loop {
        loop {
            let now = now_ms();
            let until = now + VALIDATION_LEASE.as_millis() as i64;
            let job = match state.store.take_stale_validation(now, until).await {
                Ok(Some(job)) => job,
                Ok(None) => break,
                Err(error) => {
                    warn!(error = %Chain(&error), "looking for abandoned validations failed; retrying");
                    break;
                }
            };
            let span = info_span!("revalidate", job = %job.id);
            warn!(parent: &span, "a validation was abandoned by a server that stopped; running it again");
            let finished = lifecycle::finish_validation(&state, &job, JobStatus::Validating).instrument(span.clone());
            if let Err(error) = finished.await {
                warn!(parent: &span, error = %Chain(&error), "the validation failed again; it is back in created");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(STALE_VALIDATIONS_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Deletes the files of finished jobs past their retention (`--retention-days`, or their
/// workspace's), a batch at a time.
pub(crate) async fn retention(state: AppState, shutdown: CancellationToken) {
    let default_ms = state.config.retention.map(|it| it.as_millis() as i64);
    // Often enough for the shortest retention a test sets; a minute otherwise.
    let every = state
        .config
        .retention
        .map_or(RETENTION_EVERY, |it| (it / 2).clamp(Duration::from_millis(200), RETENTION_EVERY));
    loop {
        match state.store.jobs_past_retention(now_ms(), default_ms, RETENTION_BATCH).await {
            Ok(jobs) => {
                for job in jobs {
                    let span = info_span!("retention", job = %job);
                    if let Err(error) = lifecycle::expire(&state, job).instrument(span.clone()).await {
                        warn!(parent: &span, error = %Chain(&error), "deleting an expired job's files failed");
                    }
                }
            }
            Err(error) => warn!(error = %Chain(&error), "looking for jobs past their retention failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
