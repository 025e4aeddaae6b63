//! `orchard up` (server and local workers) and `orchard serve` (server only).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use orchard_server::ServerConfig;
use orchard_server::config::defaults;

use super::farm::{Farm, admin_key};
use super::node::NodeArgs;
use super::{DEFAULT_LISTEN, StorageArgs, parse_listen, shutdown_signal};

/// Server settings shared by `up` and `serve`.
#[derive(Debug, Args)]
pub(super) struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "ORCHARD_LISTEN", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
    listen: SocketAddr,
    #[command(flatten)]
    storage: StorageArgs,
    /// The URL clients use to reach this server, for signed URLs (default: the request's Host).
    #[arg(long, env = "ORCHARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seconds a silent worker keeps its task before it is requeued.
    #[arg(long, env = "ORCHARD_LEASE_TTL", default_value_t = defaults::LEASE_TTL_SECS)]
    lease_ttl: u64,
    /// Largest accepted upload, in bytes (5 GiB).
    #[arg(long, env = "ORCHARD_MAX_UPLOAD_BYTES", default_value_t = defaults::MAX_UPLOAD_BYTES)]
    max_upload_bytes: u64,
    /// Seconds an upload URL stays valid.
    #[arg(long, env = "ORCHARD_UPLOAD_TTL", default_value_t = defaults::UPLOAD_TTL_SECS)]
    upload_ttl: u64,
    /// A web origin whose pages may call the API from a browser
    /// (`https://tools.studio.example`); repeat for several. None by default.
    #[arg(long = "cors-origin", env = "ORCHARD_CORS_ORIGIN", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Requests per second each API key may make (bursts of twice that); 0 turns the limit
    /// off. Failed authentications are limited per client address whatever this says;
    /// worker tokens are never limited.
    #[arg(long, env = "ORCHARD_RATE_LIMIT", default_value_t = defaults::RATE_LIMIT)]
    rate_limit: u32,
    /// Failed authentications a client address may make per minute (after a burst of 20)
    /// before it is refused everything for a while; 0 turns the limit off (for fuzzers).
    #[arg(long, env = "ORCHARD_AUTH_FAILURE_LIMIT", default_value_t = defaults::AUTH_FAILURE_LIMIT)]
    auth_failure_limit: u32,
    /// Most pixels of one frame (width × height after the percentage).
    #[arg(long, env = "ORCHARD_MAX_PIXELS_PER_FRAME", default_value_t = defaults::MAX_PIXELS_PER_FRAME)]
    max_pixels_per_frame: u64,
    /// Most frames of one job.
    #[arg(long, env = "ORCHARD_MAX_FRAMES_PER_JOB", default_value_t = defaults::MAX_FRAMES_PER_JOB)]
    max_frames_per_job: usize,
    /// Most tasks of one job (a job past it needs a larger chunkSize).
    #[arg(long, env = "ORCHARD_MAX_TASKS_PER_JOB", default_value_t = defaults::MAX_TASKS_PER_JOB)]
    max_tasks_per_job: usize,
    /// Most bytes validating a scene may decompress (a .blend's zstd, a .zip project's files).
    #[arg(long, env = "ORCHARD_MAX_ANALYSIS_BYTES", default_value_t = defaults::MAX_ANALYSIS_BYTES)]
    max_analysis_bytes: u64,
    /// Validations analysed at once (each may hold --max-analysis-bytes in memory); more wait.
    #[arg(long, env = "ORCHARD_MAX_VALIDATIONS", default_value_t = defaults::MAX_VALIDATIONS)]
    max_validations: usize,
    /// The address of a reverse proxy in front of this server whose X-Forwarded-Proto and
    /// X-Forwarded-Host are believed; repeat for several. From anyone else they are ignored.
    #[arg(long = "trusted-proxy", env = "ORCHARD_TRUSTED_PROXY", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Let webhooks target loopback, private and link-local addresses (refused by default, as
    /// a webhook is a request this server makes wherever a key holder says). `orchard up`, which
    /// serves one machine, allows them.
    #[arg(long, env = "ORCHARD_WEBHOOKS_ALLOW_PRIVATE")]
    webhooks_allow_private: bool,
    /// Seconds before the first retry of a failed webhook delivery; the later ones are
    /// multiples of it (10 s, 30 s, 1 min, … every 6 h, for 25 h at the default).
    #[arg(long, env = "ORCHARD_WEBHOOK_FIRST_RETRY", default_value_t = defaults::WEBHOOK_FIRST_RETRY_SECS, hide = true)]
    webhook_first_retry: u64,
    /// Days a finished job keeps its files (outputs, archives, preview, scene copy) before they
    /// are deleted (the job stays, with `isDeletedForClient`); forever when not given. A
    /// workspace may have its own (`orchard workspaces retention`).
    #[arg(long, env = "ORCHARD_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    retention_days: Option<u32>,
    /// The key webhook secrets are sealed with (64 hex digits), default DATA/secrets.key (made
    /// on first start). Servers sharing a database must share it.
    #[arg(long, env = "ORCHARD_SECRETS_KEY", hide_env_values = true)]
    secrets_key: Option<String>,
}

impl ServerArgs {
    fn config(&self) -> ServerConfig {
        let mut config = ServerConfig::new(self.listen, self.storage.data.clone());
        config.database_url = self.storage.database_url.clone();
        config.storage = self.storage.storage.clone();
        config.public_url = self.public_url.clone();
        config.lease_ttl = Duration::from_secs(self.lease_ttl.max(1));
        config.max_upload_bytes = self.max_upload_bytes;
        config.upload_ttl = Duration::from_secs(self.upload_ttl.max(1));
        config.cors_origins = self.cors_origins.clone();
        config.trusted_proxies = self.trusted_proxies.clone();
        config.rate_limit = self.rate_limit;
        config.auth_failure_limit = self.auth_failure_limit;
        config.max_pixels_per_frame = self.max_pixels_per_frame;
        config.max_frames_per_job = self.max_frames_per_job;
        config.max_tasks_per_job = self.max_tasks_per_job;
        config.max_analysis_bytes = self.max_analysis_bytes;
        config.max_validations = self.max_validations;
        config.webhooks_allow_private = self.webhooks_allow_private;
        config.webhook_first_retry = Duration::from_secs(self.webhook_first_retry.max(1));
        config.secrets_key = self.secrets_key.clone();
        config.retention = self.retention_days.map(|days| Duration::from_secs(u64::from(days) * 86_400));
        config
    }
}

#[derive(Debug, Args)]
pub(super) struct UpArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Local workers to run.
    #[arg(long, env = "ORCHARD_WORKERS", default_value_t = 1)]
    workers: usize,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    server: ServerArgs,
}

pub(super) async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let blenders = args.node.blenders()?;
    let data = args.server.storage.data.clone();
    let mut config = args.server.config();
    // One machine: a receiver on it (or on its network) is the usual target.
    config.webhooks_allow_private = true;
    let farm = Farm::start(config, args.workers, &args.node).await?;
    let (key, created) = admin_key(&farm.server, &data).await?;
    let shown: Vec<String> = blenders.iter().map(|it| it.display().to_string()).collect();
    println!(
        "Orchard is up at {} with {} local worker(s) (Blender: {}).",
        farm.server.url(),
        args.workers,
        shown.join(", ")
    );
    println!("Dashboard: {}/ (log in with an API key).", farm.server.url());
    if created {
        println!("Admin API key (also in {}):\n{key}", data.join("admin.key").display());
    } else {
        println!("Admin API key: in {}", data.join("admin.key").display());
    }
    shutdown_signal().await;
    println!("Shutting down…");
    farm.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let server = orchard_server::start(args.server.config()).await?;
    println!("Orchard is serving at {}.", server.url());
    shutdown_signal().await;
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
