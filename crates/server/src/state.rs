//! What every handler and background duty shares.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orchard_store::Store;
use tokio::sync::Notify;

use crate::blobs::Blobs;
use crate::signing::UrlSigner;

/// Server settings. Defaults serve one machine.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Data directory: the SQLite file and the storage folder live here by default.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`; default `sqlite://{data_dir}/orchard.db`.
    pub database_url: Option<String>,
    /// `file://DIR`, or `s3://BUCKET[/PREFIX]` with the `AWS_*` variables; default `{data_dir}/storage`.
    pub storage: Option<String>,
    /// The URL clients reach this server at, for signed URLs; default: the request's `Host`.
    pub public_url: Option<String>,
    /// Largest accepted upload.
    pub max_upload_bytes: u64,
    /// How long an upload URL works.
    pub upload_ttl: Duration,
    /// How long download and preview URLs work.
    pub url_ttl: Duration,
    /// How long a silent worker keeps a task.
    pub lease_ttl: Duration,
}

impl ServerConfig {
    /// Defaults for one machine, with data under `data_dir`.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            listen,
            data_dir,
            database_url: None,
            storage: None,
            public_url: None,
            max_upload_bytes: 5 * 1024 * 1024 * 1024,
            upload_ttl: Duration::from_secs(3600),
            url_ttl: Duration::from_secs(3600),
            lease_ttl: Duration::from_secs(60),
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("orchard.db").display()))
    }
}

/// Shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Metadata.
    pub store: Arc<dyn Store>,
    /// Files.
    pub blobs: Blobs,
    /// Signs and checks the server's own URLs.
    pub signer: UrlSigner,
    /// Settings.
    pub config: Arc<ServerConfig>,
    /// Wakes the finalizer when a job's last task completes, instead of waiting for its poll.
    pub finalize_wakeup: Arc<Notify>,
    /// Wakes long-polling claims when tasks become claimable (a render starts, a task is requeued).
    pub work_available: Arc<Notify>,
    /// Per-job requirements and preview times the scheduler keeps between claims.
    pub scheduler: Arc<crate::scheduler::SchedulerCache>,
    /// Worker tokens and records, remembered between calls.
    pub presence: Arc<crate::presence::Presence>,
    /// Bound address (differs from `config.listen` when that asked for port 0).
    pub local_addr: SocketAddr,
}

impl AppState {
    /// Tasks became claimable here (a render started, a task was requeued): claims look again
    /// at once, with a fresh list of runnable jobs.
    pub fn work_arrived(&self) {
        self.scheduler.forget_runnable();
        self.work_available.notify_waiters();
    }
}

/// Unix milliseconds now. The one place the server reads the clock for stored times.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|it| it.as_millis() as i64).unwrap_or(0)
}

/// ISO 8601 (UTC, milliseconds) for a unix-milliseconds time.
pub fn iso8601(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
