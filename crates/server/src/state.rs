//! What every handler and background duty shares.

use std::net::SocketAddr;
use std::sync::Arc;

use orchard_store::Store;
use tokio::sync::Notify;

use crate::blobs::Blobs;
use crate::config::ServerConfig;
use crate::keys::KnownKeys;
use crate::limits::Limits;
use crate::presence::Presence;
use crate::previews::Previews;
use crate::scheduler::Scheduler;
use crate::signing::UrlSigner;

/// Shared state: one `Arc`, cloned for every request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub(crate) fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl Shared {
    /// This server's URL for links made outside a request (webhook bodies): `--public-url`,
    /// or the address it listens on.
    pub(crate) fn public_base(&self) -> String {
        match &self.config.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.local_addr),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    /// Metadata.
    pub store: Arc<dyn Store>,
    /// Files.
    pub blobs: Blobs,
    /// Signs and checks the server's own URLs.
    pub(crate) signer: UrlSigner,
    /// Settings.
    pub(crate) config: Arc<ServerConfig>,
    /// Claims, matching, reviews.
    pub(crate) scheduler: Arc<Scheduler>,
    /// Preview images.
    pub(crate) previews: Arc<Previews>,
    /// Wakes the finalizer when a job's last task completes, instead of waiting for its poll.
    pub(crate) finalize_wakeup: Arc<Notify>,
    /// Worker tokens and records, remembered between calls.
    pub(crate) presence: Arc<Presence>,
    /// API keys' owners, remembered between calls.
    pub(crate) keys: Arc<KnownKeys>,
    /// Rate limits.
    pub(crate) limits: Limits,
    /// What `/metrics` reports.
    pub(crate) metrics: crate::metrics::Metrics,
    /// Turns of validations' analyses (their memory, bounded as a whole).
    pub(crate) validations: tokio::sync::Semaphore,
    /// Bound address (differs from `config.listen` when that asked for port 0).
    pub(crate) local_addr: SocketAddr,
    /// Webhooks and the event stream.
    pub(crate) notices: Arc<crate::notices::Notices>,
    /// Cancelled when the server stops: long polls answer at once instead of holding the
    /// shutdown up.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}
