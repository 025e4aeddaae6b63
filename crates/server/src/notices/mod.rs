//! Telling the outside world what happened to jobs: signed webhook deliveries
//! ([`delivery`]) and the event stream ([`stream`]), both read from the durable event log the
//! store writes with each status change (an outbox: no crash between the change and the send
//! loses an event). Webhook secrets are sealed ([`secrets`]).

pub(crate) mod delivery;
pub(crate) mod secrets;
pub(crate) mod stream;

use tokio::sync::Notify;

/// This server's part: the secrets key, the delivery loop's wake-up, the broadcast.
pub(crate) struct Notices {
    pub(crate) secrets: secrets::SecretsKey,
    pub(crate) delivery_wakeup: Notify,
    pub(crate) broadcast: stream::Broadcast,
}

impl Notices {
    pub(crate) fn new(secrets: secrets::SecretsKey, last_event: i64) -> Notices {
        Notices { secrets, delivery_wakeup: Notify::new(), broadcast: stream::Broadcast::new(last_event) }
    }

    /// A job's status changed on this server: deliver and broadcast now, not at the next poll.
    pub(crate) fn wake(&self) {
        self.delivery_wakeup.notify_one();
        self.broadcast.wakeup.notify_one();
    }
}
