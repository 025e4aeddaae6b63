//! Orchard's server: the Renderjuice-compatible API, the scheduler, and background duties.
//!
//! [`start`] opens the store and the blob storage, binds the listener and spawns the
//! HTTP server, the lease reaper, the matchmaker and the finalizer; [`Server`] is the handle
//! to all of it. Workers, local or remote, reach it only through the HTTP worker protocol.

pub mod addon;
mod archives;
mod background;
pub mod blobs;
mod clock;
pub mod config;
mod contact_sheet;
mod counters;
mod deliveries;
mod error;
pub mod gc;
mod http;
pub mod keys;
mod leftovers;
mod lifecycle;
mod limits;
mod memory;
mod metrics;
mod notices;
mod ops;
mod policy;
mod presence;
mod previews;
mod scheduler;
mod serve;
mod sessions;
pub mod signing;
mod speeds;
mod state;
mod urls;
mod video;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orchard_store::{CachedReads, PgStore, SqliteStore, Store};
use rand::RngCore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use clock::now_ms;
pub use config::{Connections, ServerConfig};
pub use error::Error;
pub use ops::uploads::received_upload;
pub use state::AppState;
pub use urls::signed_file_url;

/// A running server.
pub struct Server {
    /// Shared state: the store and the blobs are public, for tools and tests.
    pub state: AppState,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

/// Opens (and migrates) the metadata store named by `database_url`: `sqlite://PATH`, or
/// `postgres://…` / `postgresql://…` for a database that several servers share; clients'
/// job reads are remembered while nothing changed them ([`CachedReads`]).
pub async fn open_store(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if database_url.starts_with("sqlite:") {
        let store =
            SqliteStore::connect(database_url).await.with_context(|| format!("opening the database {database_url}"))?;
        return Ok(Arc::new(CachedReads::new(store)));
    }
    if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        // The URL may hold a password: name only the host and database in the error.
        let store = PgStore::connect(database_url)
            .await
            .with_context(|| format!("opening the PostgreSQL database {}", redact_password(database_url)))?;
        return Ok(Arc::new(CachedReads::new(store)));
    }
    anyhow::bail!(
        "unknown database URL {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
        redact_password(database_url)
    )
}

/// `url` with the password of its `user:password@` part replaced by `***`.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|it| it + 3) else { return url.to_string() };
    let authority_end = url[scheme_end..].find(['/', '?']).map_or(url.len(), |it| scheme_end + it);
    let authority = &url[scheme_end..authority_end];
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            format!("{}{user}:***@{host}{}", &url[..scheme_end], &url[authority_end..])
        }
        _ => url.to_string(),
    }
}

/// Opens the blob storage named by `config.storage`: `file://DIR`, `s3://BUCKET[/PREFIX]`, or
/// by default the `storage` folder of the data directory.
pub fn open_blobs(config: &ServerConfig) -> anyhow::Result<blobs::Blobs> {
    match &config.storage {
        None => blobs::Blobs::local(&config.data_dir.join("storage")),
        Some(url) => match url.strip_prefix("file://") {
            Some(dir) => blobs::Blobs::local(&PathBuf::from(dir)),
            None if url.starts_with("s3://") => blobs::Blobs::s3(url),
            None => anyhow::bail!("unknown storage {url:?}: use file://DIR or s3://BUCKET[/PREFIX]"),
        },
    }
}

/// Starts the server: store, storage, HTTP, background duties.
pub async fn start(mut config: ServerConfig) -> anyhow::Result<Server> {
    http::check_cors_origins(&config.cors_origins)?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    // Blender and the worker get paths under the data directory; they must not depend on a cwd.
    config.data_dir = std::path::absolute(&config.data_dir).context("resolving the data directory")?;
    info!(data = %config.data_dir.display(), "starting");
    leftovers::clean_tmp(&config.data_dir.join("tmp"));
    let store = open_store(&config.database_url()).await?;
    info!("store ready");
    let blobs = open_blobs(&config)?;
    if let Some(root) = blobs.local_root() {
        // A walk of every stored file: in the background, not between the server and its
        // first request.
        let root = root.to_path_buf();
        tokio::task::spawn_blocking(move || leftovers::clean_staging(&root));
    }
    info!(bucket = blobs.is_bucket(), "storage ready");
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    let secret = store.setting_or_insert("url_signing_key", hex::encode(fresh)).await?;
    let secrets =
        notices::secrets::SecretsKey::load(config.secrets_key.as_deref(), &config.data_dir, store.as_ref()).await?;
    let last_event = store.last_event_seq().await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let local_addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let limits = limits::Limits::new(config.rate_limit, config.auth_failure_limit);
    let validations = tokio::sync::Semaphore::new(config.max_validations.max(1));
    let state = AppState::new(state::Shared {
        scheduler: Arc::new(scheduler::Scheduler::new(store.clone(), config.lease_ttl)),
        previews: Arc::new(previews::Previews::new(blobs.clone(), store.clone(), config.tmp_dir())),
        store,
        blobs,
        signer: signing::UrlSigner::new(secret.as_bytes()),
        config: Arc::new(config),
        finalize_wakeup: Arc::new(tokio::sync::Notify::new()),
        presence: Arc::default(),
        keys: Arc::default(),
        limits,
        metrics: metrics::Metrics::default(),
        validations,
        local_addr,
        notices: Arc::new(notices::Notices::new(secrets, last_event)),
        shutdown: shutdown.clone(),
    });
    let mut tasks = JoinSet::new();
    let app = http::router(state.clone());
    let stop = shutdown.clone();
    let connections = state.config.connections;
    tasks.spawn(async move {
        serve::serve(listener, app, connections, stop).await;
    });
    tasks.spawn(background::lease_reaper(state.clone(), shutdown.clone()));
    tasks.spawn(background::finalizer(state.clone(), shutdown.clone()));
    tasks.spawn(background::matchmaker(state.clone(), shutdown.clone()));
    tasks.spawn(background::limits_upkeep(state.clone(), shutdown.clone()));
    tasks.spawn(background::return_memory(shutdown.clone()));
    tasks.spawn(background::stale_validations(state.clone(), shutdown.clone()));
    tasks.spawn(background::retention(state.clone(), shutdown.clone()));
    tasks.spawn(deliveries::run(state.clone(), shutdown.clone()));
    tasks.spawn(notices::stream::pump(state.store.clone(), state.notices.clone(), shutdown.clone()));
    info!(addr = %local_addr, "listening");
    Ok(Server { state, shutdown, tasks })
}

impl Server {
    /// The settings it runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.state.config
    }

    /// The metadata store this server uses.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.state.store
    }

    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.state.local_addr
    }

    /// The URL to reach this server at.
    pub fn url(&self) -> String {
        match &self.state.config.public_url {
            Some(url) => url.clone(),
            None => format!("http://{}", self.addr()),
        }
    }

    /// Stops everything: HTTP drains, duties and workers end (Blender processes are killed).
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => { warn!("shutdown deadline passed"); self.tasks.abort_all(); break }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn a_database_password_never_reaches_a_message() {
        for (url, shown) in [
            ("postgres://orchard:s3cret@db:5432/orchard", "postgres://orchard:***@db:5432/orchard"),
            ("postgres://orchard:p@ss@db/orchard?sslmode=require", "postgres://orchard:***@db/orchard?sslmode=require"),
            ("postgres://orchard@db/orchard", "postgres://orchard@db/orchard"),
            ("sqlite:///tmp/orchard.db", "sqlite:///tmp/orchard.db"),
            ("nonsense", "nonsense"),
        ] {
            assert_eq!(redact_password(url), shown);
        }
    }
}

#[cfg(test)]
mod validation_turns {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::{ServerConfig, keys, start};

    /// While every turn of validation is taken, a validation waits (its job stays
    /// `validating`); it finishes once a turn is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_validation_waits_for_a_free_turn() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
        config.max_validations = 1;
        let server = start(config).await.unwrap();
        let (key, _) = keys::create_key(server.store().as_ref(), "studio", "alice").await.unwrap();
        let http = reqwest::Client::new();
        let api = format!("{}/api/external/v1", server.url());
        let post = |path: &str, body: Value| http.post(format!("{api}{path}")).bearer_auth(&key).json(&body).send();
        let upload: Value =
            post("/uploads", json!({"fileName": "a.blend", "fileType": "blend"})).await.unwrap().json().await.unwrap();
        let scene = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/cube.blend")).unwrap();
        http.put(upload["uploadUrl"].as_str().unwrap()).body(scene).send().await.unwrap();
        let job: Value = post("/jobs", json!({"slug": upload["slug"]})).await.unwrap().json().await.unwrap();
        let id = job["id"].as_str().unwrap().to_string();

        let turn = server.state.validations.acquire().await.unwrap();
        let validate = tokio::spawn({
            let (http, url, key) = (http.clone(), format!("{api}/jobs/{id}/validate"), key.clone());
            async move { http.post(url).bearer_auth(key).send().await.unwrap().json::<Value>().await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!validate.is_finished(), "a validation ran without a turn");
        let waiting: Value =
            http.get(format!("{api}/jobs/{id}")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
        assert_eq!(waiting["data"]["status"], "validating", "{waiting}");
        drop(turn);
        let job = tokio::time::timeout(Duration::from_secs(20), validate).await.unwrap().unwrap();
        assert_eq!(job["status"], "validated", "{job}");
        server.shutdown().await;
    }
}
