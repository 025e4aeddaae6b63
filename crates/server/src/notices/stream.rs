//! The event stream (`GET /events`): one pump per server reads the event log in order and
//! broadcasts it; each subscriber filters its workspace's events, after first reading from the
//! log what it missed since its `Last-Event-ID`.
//!
//! The log's sequence numbers are handed out at insert and committed in any order on
//! PostgreSQL: the pump waits at a gap (an event still committing) for up to `GAP_WAIT` before
//! passing it (a rolled-back insert leaves a gap for good), so that a resumed stream never
//! skips an event that committed late.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::response::sse::Event;
use futures::Stream;
use orchard_store::{EventRecord, Store};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tracing::warn;
use uuid::Uuid;

use crate::clock::{iso8601, now_ms};

/// How long the pump waits for a missing sequence number before it passes it.
const GAP_WAIT: Duration = Duration::from_secs(2);
/// Polls of the log when nothing wakes the pump (other servers' events).
const POLL: Duration = Duration::from_millis(250);
/// Events read from the log at once.
const PAGE: u32 = 500;
/// Progress and preview events are kept this long (a client resuming later gets the status
/// changes, and the job's counters from the API).
const PROGRESS_KEPT: Duration = Duration::from_secs(24 * 3600);
/// How often old progress events are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Events a slow subscriber may fall behind before it reads from the log instead.
const CAPACITY: usize = 4096;

/// This server's view of the event log.
pub(crate) struct Broadcast {
    sender: broadcast::Sender<Arc<EventRecord>>,
    /// The last sequence number broadcast: everything up to it is in order.
    cursor: AtomicI64,
    pub(crate) wakeup: Notify,
}

impl Broadcast {
    /// Starting after `last`, the newest event when the server starts.
    pub(crate) fn new(last: i64) -> Broadcast {
        Broadcast { sender: broadcast::channel(CAPACITY).0, cursor: AtomicI64::new(last), wakeup: Notify::new() }
    }
}

/// Reads the log in order and broadcasts it, until `shutdown`.
pub(crate) async fn pump(store: Arc<dyn Store>, notices: Arc<super::Notices>, shutdown: CancellationToken) {
    let broadcast = &notices.broadcast;
    let mut cursor = broadcast.cursor.load(Ordering::Acquire);
    let mut pruned = std::time::Instant::now();
    loop {
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = std::time::Instant::now();
            let before = now_ms() - PROGRESS_KEPT.as_millis() as i64;
            if let Err(error) = store.prune_events(before).await {
                warn!(%error, "pruning old progress events failed");
            }
        }
        match store.events_after(None, cursor, PAGE).await {
            Ok(events) => {
                for event in events {
                    let waited_enough = now_ms() - event.at >= GAP_WAIT.as_millis() as i64;
                    if event.seq != cursor + 1 && !waited_enough {
                        break;
                    }
                    cursor = event.seq;
                    broadcast.cursor.store(cursor, Ordering::Release);
                    let _ = broadcast.sender.send(Arc::new(event));
                }
            }
            Err(error) => warn!(%error, "reading the event log failed"),
        }
        tokio::select! {
            _ = broadcast.wakeup.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// A subscriber's stream: its workspace's events (every workspace's for `None`) after
/// `last_seen` (from now on without it), as SSE events with their sequence number as `id`.
pub(crate) fn subscribe(
    store: Arc<dyn Store>,
    notices: Arc<super::Notices>,
    workspace: Option<Uuid>,
    last_seen: Option<i64>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let receiver = notices.broadcast.sender.subscribe();
    let now = notices.broadcast.cursor.load(Ordering::Acquire);
    let subscriber = Subscriber {
        store,
        notices,
        workspace,
        receiver,
        last: last_seen.unwrap_or(now),
        backlog: VecDeque::new(),
        catch_up: last_seen.is_some(),
    };
    futures::stream::unfold(subscriber, |mut subscriber| async move {
        let event = subscriber.next().await?;
        Some((Ok(sse_event(&event)), subscriber))
    })
}

struct Subscriber {
    store: Arc<dyn Store>,
    notices: Arc<super::Notices>,
    workspace: Option<Uuid>,
    receiver: broadcast::Receiver<Arc<EventRecord>>,
    /// The last sequence number sent (or skipped as another workspace's).
    last: i64,
    backlog: VecDeque<EventRecord>,
    /// Read from the log up to the pump's cursor before listening to it.
    catch_up: bool,
}

impl Subscriber {
    async fn next(&mut self) -> Option<EventRecord> {
        loop {
            if self.catch_up {
                self.read_log().await;
            }
            if let Some(event) = self.backlog.pop_front() {
                self.last = event.seq;
                return Some(event);
            }
            match self.receiver.recv().await {
                Ok(event) if event.seq > self.last => {
                    self.last = event.seq;
                    if self.workspace.is_none_or(|it| it == event.workspace_id) {
                        return Some((*event).clone());
                    }
                }
                Ok(_) => {}
                // Fell behind the broadcast: the log has what was missed.
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The workspace's events after `last` up to the pump's cursor, into the backlog.
    async fn read_log(&mut self) {
        let upto = self.notices.broadcast.cursor.load(Ordering::Acquire);
        let mut after = self.last;
        loop {
            let page = match self.store.events_after(self.workspace, after, PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    warn!(%error, "reading the event log for a subscriber failed");
                    break;
                }
            };
            let full = page.len() == PAGE as usize;
            for event in page {
                if event.seq > upto {
                    self.catch_up = false;
                    return;
                }
                after = event.seq;
                self.backlog.push_back(event);
            }
            if !full {
                break;
            }
        }
        self.catch_up = false;
        // What the broadcast still holds up to `upto` is skipped by sequence number.
        if self.backlog.is_empty() {
            self.last = self.last.max(upto);
        }
    }
}

/// The SSE form of an event: `id:` its sequence number, `data:` JSON with `type` and `jobId`.
fn sse_event(event: &EventRecord) -> Event {
    let mut data = json!({
        "type": event.kind,
        "jobId": event.job_id.to_string(),
        "workspaceId": event.workspace_id.to_string(),
        "status": event.status,
        "at": iso8601(event.at),
    });
    // A progress event's counters, beside the rest.
    if let Some(Value::Object(extra)) = event.data.as_deref().and_then(|it| serde_json::from_str(it).ok())
        && let Value::Object(fields) = &mut data
    {
        fields.extend(extra);
    }
    Event::default().id(event.seq.to_string()).data(data.to_string())
}
