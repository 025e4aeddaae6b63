//! An embedded farm: a server in this process and local workers that reach it over HTTP,
//! exactly as remote ones do. `orchard up` runs one until a signal; `orchard render` runs
//! one for a single job when no farm answers.
//!
//! One farm per data folder: a farm holds an exclusive lock on `DATA/farm.lock` while it
//! runs and says where it serves in `DATA/farm.json` (`url`, `pid`), which the CLI's other
//! commands read to find it on whatever port it listens.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use orchard_api::Client;
use orchard_server::{Server, ServerConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::node::NodeArgs;

/// A running embedded farm.
pub(crate) struct Farm {
    /// The server.
    pub(crate) server: Server,
    workers: Vec<tokio::task::JoinHandle<()>>,
    stop: CancellationToken,
    /// Held while the farm runs: released (and `farm.json` removed) at shutdown.
    _lock: Flock<File>,
    announced: PathBuf,
}

impl Farm {
    /// Starts a server with `config` and `n` local workers keeping their files under `data`.
    /// Refused when another farm runs on the same data folder.
    pub(crate) async fn start(config: ServerConfig, n: usize, node: &NodeArgs) -> anyhow::Result<Farm> {
        let data = config.data_dir.clone();
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let lock = lock_data(&data)?;
        let server = orchard_server::start(config).await?;
        let announced = data.join("farm.json");
        let about = json!({"url": server.url(), "pid": std::process::id()});
        std::fs::write(&announced, format!("{about}\n")).with_context(|| format!("writing {}", announced.display()))?;
        let stop = CancellationToken::new();
        let workers = spawn_local_workers(&server, &data, n, node, &stop).await?;
        Ok(Farm { server, workers, stop, _lock: lock, announced })
    }

    /// Stops the workers (their Blenders are killed), then the server.
    pub(crate) async fn shutdown(self) {
        self.stop.cancel();
        for worker in self.workers {
            let _ = worker.await;
        }
        self.server.shutdown().await;
        let _ = std::fs::remove_file(&self.announced);
    }
}

/// The exclusive lock of a farm on `data`, or why not.
fn lock_data(data: &Path) -> anyhow::Result<Flock<File>> {
    let path = data.join("farm.lock");
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        let running = std::fs::read_to_string(data.join("farm.json")).unwrap_or_default();
        anyhow::anyhow!(
            "another Orchard farm runs on {} ({}; {errno}): use it (`orchard render` and `orchard jobs` find it), \
             stop it, or give this one another --data",
            data.display(),
            running.trim()
        )
    })
}

/// The URL of a farm running on `data` that answers now, read from `DATA/farm.json`.
pub(crate) async fn running_farm(data: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data.join("farm.json")).ok()?;
    let about: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = about["url"].as_str()?.to_string();
    let client = Client::new(&url, "");
    let answered = tokio::time::timeout(Duration::from_secs(2), client.health()).await;
    answered.is_ok_and(|it| it.is_ok()).then_some(url)
}

/// Creates the admin key on first start and keeps it in DATA/admin.key (mode 0600).
pub(crate) async fn admin_key(server: &Server, data: &Path) -> anyhow::Result<(String, bool)> {
    let path = data.join("admin.key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        let key = key.trim().to_string();
        let hash = orchard_server::keys::key_hash(&key);
        // (A key of a farm from before admin keys is replaced by an admin one.)
        if server.store().find_key(&hash).await?.is_some_and(|it| it.admin) {
            return Ok((key, false));
        }
    }
    let (key, _) = orchard_server::keys::create_key_as(server.store().as_ref(), "default", "admin", true).await?;
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
        let hash = orchard_server::keys::key_hash(&token);
        if server.store().find_worker_token(&hash).await?.is_some() {
            return Ok(token);
        }
    }
    let token = orchard_server::keys::create_worker_token(server.store().as_ref()).await?;
    write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

/// Starts `n` local workers that reach `server` over HTTP, exactly as remote ones do.
async fn spawn_local_workers(
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
