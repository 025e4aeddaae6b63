//! Telling the outside world what happened to jobs: signed webhook deliveries
//! ([`delivery`]) and the event stream ([`stream`]), both read from the durable event log the
//! store writes with each status change (an outbox: no crash between the change and the send
//! loses an event). Webhook secrets are sealed ([`secrets`]).

pub(crate) mod delivery;
pub(crate) mod secrets;
pub(crate) mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Notify;
use tracing::warn;
use uuid::Uuid;

use crate::clock::now_ms;
use orchard_store::Store;

/// A job's progress goes into the event stream at most this often (per server): a client sees
/// frames arrive without the log growing with every frame of a busy farm.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// This server's part: the secrets key, the delivery loop's wake-up, the broadcast.
pub(crate) struct Notices {
    pub(crate) secrets: secrets::SecretsKey,
    pub(crate) delivery_wakeup: Notify,
    pub(crate) broadcast: stream::Broadcast,
    /// When each job's progress was last recorded here.
    progress: Mutex<HashMap<Uuid, Instant>>,
}

impl Notices {
    pub(crate) fn new(secrets: secrets::SecretsKey, last_event: i64) -> Notices {
        Notices {
            secrets,
            delivery_wakeup: Notify::new(),
            broadcast: stream::Broadcast::new(last_event),
            progress: Mutex::default(),
        }
    }

    /// Frames of `job_id` were stored: its counters go into the event stream, unless they did
    /// less than [`PROGRESS_EVERY`] ago (the job's last frames always do: `last`).
    pub(crate) fn frames_done(self: &Arc<Self>, store: &Arc<dyn Store>, job_id: Uuid, last_frames: bool) {
        {
            let mut last = self.progress.lock().unwrap_or_else(|it| it.into_inner());
            let now = Instant::now();
            if !last_frames && last.get(&job_id).is_some_and(|at| now.duration_since(*at) < PROGRESS_EVERY) {
                return;
            }
            last.insert(job_id, now);
            last.retain(|_, at| now.duration_since(*at) < PROGRESS_EVERY * 120);
        }
        let (store, notices) = (store.clone(), self.clone());
        tokio::spawn(async move {
            let Ok(Some(job)) = store.get_job_internal(job_id).await else { return };
            let progress = crate::counters::progress(&job);
            let data = json!({
                "framesDone": progress.frames_done,
                "framesTotal": progress.frames_total,
                "framesRendering": progress.frames_rendering,
                "percent": progress.percent,
                "etaSeconds": progress.eta_seconds,
            });
            match store.record_event(job_id, "progress", Some(&data.to_string()), now_ms()).await {
                Ok(_) => notices.broadcast.wakeup.notify_one(),
                Err(error) => warn!(%error, "recording progress failed"),
            }
        });
    }

    /// A job's status changed on this server: deliver and broadcast now, not at the next poll.
    pub(crate) fn wake(&self) {
        self.delivery_wakeup.notify_one();
        self.broadcast.wakeup.notify_one();
    }
}
