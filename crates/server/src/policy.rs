//! The numbers that shape dispatch, each with why it is what it is. Settings an operator
//! changes are in `config`; these are the farm's own judgement.

use std::time::Duration;

/// Different workers that must fail a task before it fails its job: one bad machine must
/// not fail a job, three agreeing ones are the scene.
pub(crate) const MAX_FAILING_WORKERS: u32 = 3;
/// Failed attempts after which a worker is blocklisted for a job.
pub(crate) const BLOCKLIST_AFTER: i64 = 3;
/// Jobs a claim considers, oldest first: enough that a worker finds one it can render behind
/// jobs it cannot, few enough that a claim stays cheap.
pub(crate) const CLAIM_WINDOW: u32 = 200;
/// How long the list of runnable jobs is reused between claims. Work queued on this server
/// refreshes it at once; work queued on another server is seen within this.
pub(crate) const RUNNABLE_TTL: Duration = Duration::from_millis(250);
/// How fast a workspace's account of frames claimed fades (see `scheduler/order.rs`): after
/// this, half of it counts.
pub(crate) const FAIR_SHARE_HALF_LIFE: Duration = Duration::from_secs(600);
/// Leases, queue heads and other per-task memories kept at most; past that the map starts
/// over (the store stays the authority, so forgetting costs a read, never a wrong answer).
pub(crate) const MAX_REMEMBERED: usize = 100_000;
/// Jobs whose chunks were adapted, remembered at most.
pub(crate) const MAX_ADAPTED_JOBS: usize = 10_000;

/// Frames per task before any frame time is known. Blender's start-up (≈1.3 s) is paid once
/// per task, so tasks hold several frames; a job still splits into about 8 tasks so that
/// several workers share it.
pub(crate) fn first_chunk_size(n_frames: usize) -> usize {
    n_frames.div_ceil(8).clamp(1, 20)
}

/// Seconds a task should take once frame times are known: long enough that a Blender
/// start-up is a few per cent of it, short enough that a lost task costs little.
pub(crate) const TARGET_TASK_SECONDS: f64 = 30.0;
/// Most frames a regrouped task holds.
pub(crate) const MAX_ADAPTED_CHUNK: usize = 50;

/// Longest a claim waits for work before answering 204: under proxies' idle timeouts.
pub(crate) const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);
/// A waiting claim looks again this often even without a wake-up: another server may have
/// queued work.
pub(crate) const CLAIM_RECHECK: Duration = Duration::from_secs(1);
/// Heartbeat period for a lease of `lease_secs`: six beats per lease, so that a few lost
/// requests never lose it, at most every 10 s.
pub(crate) fn heartbeat_secs(lease_secs: u64) -> u64 {
    (lease_secs / 6).clamp(1, 10)
}
/// "Last seen" needs no better than this; skipping the write keeps busy workers off the
/// database's single writer.
pub(crate) const SEEN_RESOLUTION_MS: i64 = 5_000;
/// A worker silent for longer than this (or two leases, if longer) is not connected.
pub(crate) fn connected_window(lease_ttl: Duration) -> Duration {
    (lease_ttl * 2).max(Duration::from_secs(45))
}
/// How long the upload URLs handed out with a task work: long enough for slow frames; a
/// worker whose URLs expired asks for new ones.
pub(crate) const ASSIGNED_URL_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long output URLs asked for later work, in leases (at least a minute each).
pub(crate) fn output_url_ttl(lease_ttl: Duration) -> Duration {
    lease_ttl.max(Duration::from_secs(60)) * 10
}

/// Characters of a worker's error report kept: what went wrong first, then Blender's log.
pub(crate) const FAILURE_REPORT_CHARS: usize = 4000;

/// Least time between two previews of a job while it renders.
pub(crate) const PREVIEW_EVERY: Duration = Duration::from_secs(2);
/// Longest side of a preview, in pixels.
pub(crate) const PREVIEW_SIDE: u32 = 320;

/// How often the matchmaker reviews runnable jobs.
pub(crate) const REVIEW_EVERY: Duration = Duration::from_secs(2);
/// How often the finalizer looks for finished jobs without a wake-up (another server may
/// have finished one).
pub(crate) const FINALIZE_POLL: Duration = Duration::from_secs(2);
/// Finalizing jobs packaged per round, oldest first.
pub(crate) const FINALIZE_BATCH: u32 = 16;
/// Attempts at packaging a job's outputs before it fails.
pub(crate) const FINALIZE_ATTEMPTS: u32 = 5;
/// Failed attempts at a job's video before the job completes without it (with a warning):
/// its frames are good, and a video that three workers could not make will not come.
pub(crate) const PACKAGING_ATTEMPTS: i64 = 3;
/// How often claims ask the store for a packaging task when this server queued none: another
/// server's, or one whose worker went silent, waits at most this long (plus its lease).
pub(crate) const PACKAGING_RECHECK: Duration = Duration::from_secs(2);
/// How often the lease reaper runs, for a lease of `lease_ttl`: a quarter of it.
pub(crate) fn reap_every(lease_ttl: Duration) -> Duration {
    (lease_ttl / 4).max(Duration::from_millis(250))
}
/// Tries at cancelling a job whose status keeps changing under the request.
pub(crate) const CANCEL_TRIES: u32 = 5;

/// Most jobs `GET /jobs/progress` reports; the busiest studio has fewer running at once.
pub(crate) const MAX_RUNNING_REPORTED: u32 = 1000;
/// JSON bodies are small; the one large body (an upload) has its own limit.
pub(crate) const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// How long a server remembers who an API key belongs to. A key revoked on this server is
/// forgotten at once; one revoked through another server stops working within this.
pub(crate) const KEY_MEMORY: Duration = Duration::from_secs(5);
/// How long a worker token's owner is remembered. Tokens are never reassigned.
pub(crate) const TOKEN_MEMORY: Duration = Duration::from_secs(60);
/// How long a worker record is remembered; a record changed through another server (a worker
/// registering there) is seen here within this.
pub(crate) const WORKER_MEMORY: Duration = Duration::from_secs(5);
/// Keys, tokens and workers remembered at most; a farm has far fewer.
pub(crate) const MAX_CALLERS: usize = 10_000;

/// Failed authentications a client address may make in a burst before it is refused
/// everything for a while: enough for a person mistyping, far too few to guess a key.
pub(crate) const FAILED_AUTH_BURST: std::num::NonZeroU32 = std::num::NonZeroU32::new(20).expect("not zero");
/// How often the rate limiters forget idle keys and addresses.
pub(crate) const FORGET_IDLE_LIMITS: Duration = Duration::from_secs(60);
/// Longest a stopping server waits for open requests to finish.
pub(crate) const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);
/// How long a server owns a validation it started. Fetching a 5 GiB scene from a bucket and
/// analysing it takes a minute or two; past this, the server is taken for dead and another
/// runs the validation again.
pub(crate) const VALIDATION_LEASE: Duration = Duration::from_secs(600);
/// How often servers look for validations whose owner died.
pub(crate) const STALE_VALIDATIONS_EVERY: Duration = Duration::from_secs(5);
/// How often servers look for finished jobs past their retention (more often when the
/// retention itself is shorter).
pub(crate) const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// Expired jobs whose files one pass deletes.
pub(crate) const RETENTION_BATCH: u32 = 100;
/// How often the allocator is asked to give freed memory back to the OS.
pub(crate) const RETURN_MEMORY_EVERY: Duration = Duration::from_secs(20);
/// Longest request target (path and query) read, in bytes: every URL this server makes is far
/// shorter. Longer ones are 414 with the error body (hyper itself refuses past 64 KiB, bare).
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;
/// Free bytes on the data folder's disk below which `/healthz` reports it full: less than
/// one frame of a large render.
pub(crate) const DISK_FULL_BELOW: u64 = 1024 * 1024;
// The bounds of what clients and workers send are part of the contract: they live with the
// wire types, where the OpenAPI document reads them too.
pub(crate) use orchard_api::limits::{
    MAX_COMPOSITES_PER_TASK, MAX_FILE_NAME, MAX_LOG_CHUNK, MAX_NODE_NAME, MAX_RELATIVE_PATH, MAX_RENDER_SECONDS,
    MAX_TASK_LOG, MAX_UPLOAD_PARTS,
};
pub(crate) use orchard_domain::capabilities::{
    MAX_CPU_THREADS, MAX_RAM_GIB, MAX_SPEED_SPREAD, MAX_WORKER_LIST, MAX_WORKER_TEXT, SPEED_FACTORS,
};
