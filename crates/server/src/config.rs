//! Server settings and their defaults. The CLI's flags take their defaults from [`defaults`],
//! so that a value is written once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Defaults that serve one machine; `orchard serve`/`up`'s flags show them.
pub mod defaults {
    use super::Path;

    /// Largest accepted upload: 5 GiB (Renderjuice's documented limit for a scene).
    pub const MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;
    /// Seconds an upload URL works: an hour is enough for a 5 GiB upload on a slow line.
    pub const UPLOAD_TTL_SECS: u64 = 3600;
    /// Seconds download and preview URLs work.
    pub const URL_TTL_SECS: u64 = 3600;
    /// Seconds a silent worker keeps a task before it is requeued.
    pub const LEASE_TTL_SECS: u64 = 60;
    /// Requests per second per API key: far above what a pipeline polling its jobs makes,
    /// low enough that one runaway script cannot take the server from everyone else.
    pub const RATE_LIMIT: u32 = 200;
    /// Failed authentications a client address regains per minute, after a burst of 20:
    /// enough for a person mistyping, far too few to guess a key.
    pub const AUTH_FAILURE_LIMIT: u32 = 30;
    /// Pixels of one frame: 16384 × 16384, well past any delivery format; a mistyped
    /// percentage (16384 %) stops here instead of at a worker's memory.
    pub const MAX_PIXELS_PER_FRAME: u64 = 16384 * 16384;
    /// Frames of one job: over an hour at 24 fps, times ten.
    pub const MAX_FRAMES_PER_JOB: usize = 100_000;
    /// Tasks of one job: each is a row and a claim; a job past this wants a larger chunkSize.
    pub const MAX_TASKS_PER_JOB: usize = 20_000;
    /// Bytes an analysis may decompress (a `.blend`'s zstd, a `.zip` project's files): guards
    /// validation against decompression bombs.
    pub const MAX_ANALYSIS_BYTES: u64 = 2 * 1024 * 1024 * 1024;
    /// Validations analysed at once; more wait their turn. Each may hold up to
    /// `MAX_ANALYSIS_BYTES` of decompressed scene in memory, so this bounds validation's
    /// memory as a whole (six decompression bombs at once once took 12 GB).
    pub const MAX_VALIDATIONS: usize = 2;

    /// Seconds before the first retry of a failed webhook delivery.
    pub const WEBHOOK_FIRST_RETRY_SECS: u64 = 10;

    /// The database of a data directory: a SQLite file in it.
    pub fn database_url(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("orchard.db").display())
    }
}

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
    /// Web origins (`https://tools.studio.example`) whose pages may call the API from a
    /// browser; none by default (no CORS headers: browsers refuse cross-origin calls).
    pub cors_origins: Vec<String>,
    /// Most pixels of one frame (width × height after the percentage).
    pub max_pixels_per_frame: u64,
    /// Most frames of one job.
    pub max_frames_per_job: usize,
    /// Most tasks of one job.
    pub max_tasks_per_job: usize,
    /// Most bytes an analysis may decompress.
    pub max_analysis_bytes: u64,
    /// Validations analysed at once.
    pub max_validations: usize,
    /// How connections are bounded.
    pub connections: Connections,
    /// Failed authentications per minute a client address may make (after a burst of 20)
    /// before it is refused everything for a while; 0: no limit.
    pub auth_failure_limit: u32,
    /// Requests per second each API key may make (bursts of twice that); 0: no limit.
    /// Worker tokens are never limited.
    pub rate_limit: u32,
    /// Proxies (by address) whose `X-Forwarded-Proto` and `X-Forwarded-Host` are believed;
    /// from anyone else those headers are ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Webhooks may target loopback, private, link-local and other inward addresses (off by
    /// default: a webhook is a request the server makes wherever a key holder says).
    pub webhooks_allow_private: bool,
    /// The first retry of a failed webhook delivery; the later ones are multiples of it
    /// (`notices::delivery::RETRY_SCHEDULE`).
    pub webhook_first_retry: Duration,
    /// How long a finished job keeps its files (outputs, archives, preview, scene copy) before
    /// they are deleted; `None`: forever. A workspace may have its own.
    pub retention: Option<Duration>,
    /// The key webhook secrets are sealed with, 64 hex digits; default: `{data_dir}/secrets.key`
    /// (made on first start). Servers sharing a database must share it.
    pub secrets_key: Option<String>,
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
            max_upload_bytes: defaults::MAX_UPLOAD_BYTES,
            upload_ttl: Duration::from_secs(defaults::UPLOAD_TTL_SECS),
            url_ttl: Duration::from_secs(defaults::URL_TTL_SECS),
            lease_ttl: Duration::from_secs(defaults::LEASE_TTL_SECS),
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            rate_limit: defaults::RATE_LIMIT,
            connections: Connections::default(),
            auth_failure_limit: defaults::AUTH_FAILURE_LIMIT,
            max_pixels_per_frame: defaults::MAX_PIXELS_PER_FRAME,
            max_frames_per_job: defaults::MAX_FRAMES_PER_JOB,
            max_tasks_per_job: defaults::MAX_TASKS_PER_JOB,
            max_analysis_bytes: defaults::MAX_ANALYSIS_BYTES,
            max_validations: defaults::MAX_VALIDATIONS,
            webhooks_allow_private: false,
            retention: None,
            webhook_first_retry: Duration::from_secs(defaults::WEBHOOK_FIRST_RETRY_SECS),
            secrets_key: None,
        }
    }

    /// Where this server process keeps temporary files (analysis copies, frames being
    /// packaged): its own folder, so that another starting server can tell it is in use.
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.data_dir.join("tmp").join(std::process::id().to_string())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| defaults::database_url(&self.data_dir))
    }
}

/// Bounds on clients' connections.
#[derive(Debug, Clone, Copy)]
pub struct Connections {
    /// Time a client has to send a request's headers (slow-loris clients are cut off).
    pub header_read_timeout: Duration,
    /// A connection with nothing read or written for this long is closed. Longer than a
    /// worker's long-polling claim, which waits up to 30 s in silence.
    pub idle_timeout: Duration,
    /// Connections open at once; past that, new ones wait in the kernel's queue.
    pub max_connections: usize,
}

impl Default for Connections {
    fn default() -> Connections {
        Connections {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_connections: 10_000,
        }
    }
}
