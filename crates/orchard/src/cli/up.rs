//! `orchard up` (server and local workers) and `orchard serve` (server only).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use orchard_server::{Server, ServerConfig};

use tokio_util::sync::CancellationToken;

use super::worker::NodeArgs;
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
    #[command(flatten)]
    node: NodeArgs,
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

/// The token of `orchard up`'s own workers, kept in DATA/worker.token (mode 0600).
async fn local_worker_token(server: &Server, data: &Path) -> anyhow::Result<String> {
    let path = data.join("worker.token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        let token = token.trim().to_string();
        let hash = orchard_server::http::extract::key_hash(&token);
        if server.state.store.find_worker_token(&hash).await?.is_some() {
            return Ok(token);
        }
    }
    let token = orchard_server::keys::create_worker_token(server.state.store.as_ref()).await?;
    write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

/// Starts `n` local workers that reach `server` over HTTP, exactly as remote ones do.
pub async fn spawn_local_workers(
    server: &Server,
    data: &Path,
    n: usize,
    node: &NodeArgs,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let token = local_worker_token(server, data).await?;
    let data = std::path::absolute(data)?;
    let mut handles = Vec::new();
    for index in 0..n {
        let name = format!("local-{index}");
        let options = node.options(&server.url(), &token, data.join("worker").join(&name), Some(name))?;
        let stop = shutdown.clone();
        handles.push(tokio::spawn(async move {
            if let Err(error) = orchard_worker::node::run_node(options, stop).await {
                tracing::error!(error = format!("{error:#}"), "local worker stopped");
            }
        }));
    }
    Ok(handles)
}

pub async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let blenders = args.node.blenders()?;
    let data = args.server.storage.data.clone();
    let server = orchard_server::start(args.server.config()).await?;
    let workers_stop = CancellationToken::new();
    let workers = spawn_local_workers(&server, &data, args.workers, &args.node, &workers_stop).await?;
    let (key, created) = admin_key(&server, &data).await?;
    let shown: Vec<String> = blenders.iter().map(|it| it.display().to_string()).collect();
    println!(
        "Orchard is up at {} with {} local worker(s) (Blender: {}).",
        server.url(),
        args.workers,
        shown.join(", ")
    );
    if created {
        println!("Admin API key (also in {}):\n{key}", data.join("admin.key").display());
    } else {
        println!("Admin API key: in {}", data.join("admin.key").display());
    }
    wait_for_signal().await;
    println!("Shutting down…");
    workers_stop.cancel();
    for handle in workers {
        let _ = handle.await;
    }
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

pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(term) => { term.recv().await; } None => std::future::pending().await } } => {}
    }
}
