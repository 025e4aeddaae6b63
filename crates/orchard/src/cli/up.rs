//! `orchard up` (server and local workers) and `orchard serve` (server only).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use orchard_server::{Server, ServerConfig};

use super::{DEFAULT_LISTEN, StorageArgs, parse_listen};

/// Server settings shared by `up` and `serve`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "ORCHARD_LISTEN", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
    listen: SocketAddr,
    #[command(flatten)]
    storage: StorageArgs,
    /// The URL clients use to reach this server, for signed URLs (default: the request's Host).
    #[arg(long, env = "ORCHARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seconds a silent worker keeps its task before it is requeued.
    #[arg(long, env = "ORCHARD_LEASE_TTL", default_value_t = 60)]
    lease_ttl: u64,
    /// Largest accepted upload, in bytes (default 5 GiB).
    #[arg(long, env = "ORCHARD_MAX_UPLOAD_BYTES", default_value_t = 5 * 1024 * 1024 * 1024)]
    max_upload_bytes: u64,
    /// Seconds an upload URL stays valid.
    #[arg(long, env = "ORCHARD_UPLOAD_TTL", default_value_t = 3600)]
    upload_ttl: u64,
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
        config
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Local workers to run.
    #[arg(long, env = "ORCHARD_WORKERS", default_value_t = 1)]
    workers: usize,
    /// The Blender executable (default: `blender` on PATH).
    #[arg(long, env = "ORCHARD_BLENDER")]
    blender: Option<PathBuf>,
    /// Render threads per worker (default: every core).
    #[arg(long, env = "ORCHARD_THREADS")]
    threads: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    server: ServerArgs,
}

/// Creates the admin key on first start and keeps it in DATA/admin.key (mode 0600).
pub async fn admin_key(server: &Server, data: &Path) -> anyhow::Result<(String, bool)> {
    let path = data.join("admin.key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        let key = key.trim().to_string();
        let hash = orchard_server::http::extract::key_hash(&key);
        if server.state.store.find_key(&hash).await?.is_some() {
            return Ok((key, false));
        }
    }
    let (key, _) = orchard_server::keys::create_key(server.state.store.as_ref(), "default", "admin").await?;
    write_private(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    Ok((key, true))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    writeln!(file, "{text}")
}

pub async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let blender = orchard_worker::blender::find(args.blender.as_deref()).map_err(anyhow::Error::msg)?;
    let data = args.server.storage.data.clone();
    let mut server = orchard_server::start(args.server.config()).await?;
    for index in 0..args.workers {
        server.spawn_local_worker(index, blender.clone(), args.threads);
    }
    let (key, created) = admin_key(&server, &data).await?;
    println!(
        "Orchard is up at {} with {} local worker(s) (Blender: {}).",
        server.url(),
        args.workers,
        blender.display()
    );
    if created {
        println!("Admin API key (also in {}):\n{key}", data.join("admin.key").display());
    } else {
        println!("Admin API key: in {}", data.join("admin.key").display());
    }
    wait_for_signal().await;
    println!("Shutting down…");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let server = orchard_server::start(args.server.config()).await?;
    println!("Orchard is serving at {}.", server.url());
    wait_for_signal().await;
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(term) => { term.recv().await; } None => std::future::pending().await } } => {}
    }
}
