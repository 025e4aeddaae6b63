//! Webhook deliveries: claimed like tasks (any number of servers, each delivery sent by one),
//! POSTed with Renderjuice's signature, retried on a schedule for more than a day.
//!
//! Schedule (`RETRY_SCHEDULE`, in multiples of `--webhook-first-retry`, 10 s by default):
//! after a failed attempt the next comes 1, 3, 6, 12, 30, 60, 180, 360, 720, 1440 and then
//! every 2160 units later (10 s, 30 s, 1 min, 2 min, 5 min, 10 min, 30 min, 1 h, 2 h, 4 h,
//! then every 6 h), each ±20 % at random so that a recovering receiver is not hit by every
//! retry at once; once `GIVE_UP_AFTER` units (25 h by default) have passed since the event
//! the delivery is dead. A non-2xx answer or no answer within 7 s is a failure; redirects
//! are not followed; at most 1 KiB of the answer is read and kept.
//!
//! Targets are checked when the request is made, after DNS resolution (a name that later
//! resolves inward is refused too): loopback, private, link-local, shared, multicast and other
//! non-public addresses are refused unless `--webhooks-allow-private`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use orchard_domain::Notice;
use orchard_store::{AttemptRecord, DeliveryOutcome, DueDelivery};
use rand::Rng;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::secrets::signature;
use crate::clock::{iso8601, now_ms};
use crate::state::AppState;

/// How long a receiver has to answer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(7);
/// Waits after each failed attempt, in units of the first retry; the last repeats.
pub(crate) const RETRY_SCHEDULE: &[u32] = &[1, 3, 6, 12, 30, 60, 180, 360, 720, 1440, 2160];
/// Units after the event past which a delivery is given up (25 h at 10 s).
pub(crate) const GIVE_UP_AFTER: u32 = 9000;
/// Bytes of an answer kept in the delivery log.
const RESPONSE_KEPT: usize = 1024;
/// Deliveries one server sends at once.
const BATCH: u32 = 16;
/// How long a claimed delivery is this server's: longer than an attempt can take.
const LEASE: Duration = Duration::from_secs(60);
/// Signed frame URLs in `onRenderComplete` live this long: a receiver that was down for a day
/// and gets the event on a late retry can still fetch the frames (S3's longest presigned URL).
pub(crate) const FRAME_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Polls for due deliveries when nothing wakes the loop (another server's events, retries).
const POLL: Duration = Duration::from_secs(1);

/// The HTTP client deliveries go out with.
pub(crate) fn client(allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        // Straight to the target: through a proxy, the checked resolver would not be the one
        // that decides where the request goes.
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .user_agent(concat!("Orchard-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with these settings builds")
}

/// Resolves names as the system does, keeping only addresses a webhook may target.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.iter().copied().filter(|it| allow_private || is_public(it.ip())).collect();
            if allowed.is_empty() {
                let reason = if found.is_empty() {
                    format!("{host} does not resolve")
                } else {
                    format!(
                        "{host} resolves to a private or local address (the server allows it with --webhooks-allow-private)"
                    )
                };
                return Err(reason.into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `ip` is an address on the public internet: not loopback, private, link-local,
/// shared (CGNAT), multicast, unspecified, broadcast, documentation or otherwise reserved.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

/// Sends due deliveries until `shutdown`, woken by new events on this server and polling for
/// the rest.
pub(crate) async fn run(state: AppState, shutdown: CancellationToken) {
    let client = client(state.config.webhooks_allow_private);
    loop {
        let now = now_ms();
        let claimed = state.store.claim_deliveries(now, now + LEASE.as_millis() as i64, BATCH).await;
        let due = match claimed {
            Ok(due) => due,
            Err(error) => {
                warn!(%error, "claiming webhook deliveries failed");
                Vec::new()
            }
        };
        let full = due.len() as u32 == BATCH;
        let sends = due.into_iter().map(|delivery| {
            let span = info_span!("webhook", delivery = %delivery.id, webhook = %delivery.webhook.id,
                job = %delivery.event.job_id, event = %delivery.event.kind);
            send(&state, &client, delivery).instrument(span)
        });
        futures::future::join_all(sends).await;
        if full {
            continue;
        }
        tokio::select! {
            _ = state.notices.delivery_wakeup.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// One attempt at one delivery, recorded with what follows.
async fn send(state: &AppState, client: &reqwest::Client, delivery: DueDelivery) {
    let attempt = delivery.attempts + 1;
    let started = Instant::now();
    let at = now_ms();
    let result = attempt_once(state, client, &delivery).await;
    let latency_ms = started.elapsed().as_millis() as i64;
    let (status_code, error, response) = match &result {
        Ok((status, body)) => (Some(i64::from(*status)), None, Some(body.clone())),
        Err(error) => (None, Some(error.clone()), None),
    };
    let delivered = status_code.is_some_and(|it| (200..300).contains(&it));
    let unit = state.config.webhook_first_retry.as_millis().max(1) as i64;
    let outcome = if delivered {
        DeliveryOutcome::Delivered
    } else if delivery.webhook.deleted_at.is_some() || at - delivery.created_at >= unit * i64::from(GIVE_UP_AFTER) {
        DeliveryOutcome::Dead
    } else {
        DeliveryOutcome::Retry { at: at + retry_delay(attempt, unit) }
    };
    let record = AttemptRecord { attempt, at, status_code, latency_ms, error, response };
    match state.store.finish_delivery(&delivery, &record, outcome).await {
        Ok(true) => {}
        Ok(false) => warn!("the delivery's lease ran out before its attempt was recorded"),
        Err(error) => warn!(%error, "recording a webhook attempt failed"),
    }
    let label = match outcome {
        DeliveryOutcome::Delivered => "delivered",
        DeliveryOutcome::Retry { .. } => "failed",
        DeliveryOutcome::Dead => "dead",
    };
    state.metrics.webhook_deliveries.get_or_create(&crate::metrics::OutcomeLabel { outcome: label }).inc();
    info!(attempt, status = ?record.status_code, error = ?record.error, latency_ms, outcome = label, "webhook attempt");
}

/// Milliseconds before attempt `attempt + 1`, with ±20 % jitter.
fn retry_delay(attempt: i64, unit: i64) -> i64 {
    let index = usize::try_from(attempt - 1).unwrap_or(0).min(RETRY_SCHEDULE.len() - 1);
    let base = unit * i64::from(RETRY_SCHEDULE[index]);
    let jitter = rand::rng().random_range(0.8..1.2);
    (base as f64 * jitter) as i64
}

/// POSTs the event: (status, the answer's first bytes), or why there was no answer.
async fn attempt_once(
    state: &AppState,
    client: &reqwest::Client,
    delivery: &DueDelivery,
) -> Result<(u16, String), String> {
    let hook = &delivery.webhook;
    if hook.deleted_at.is_some() {
        return Err("the webhook was removed".into());
    }
    let url = url::Url::parse(&hook.url).map_err(|error| format!("the URL does not parse: {error}"))?;
    // An address in the URL is never resolved: check it here.
    if let Some(ip) = literal_ip(&url)
        && !state.config.webhooks_allow_private
        && !is_public(ip)
    {
        return Err(format!("{ip} is a private or local address (the server allows it with --webhooks-allow-private)"));
    }
    let secret = state
        .notices
        .secrets
        .open(hook.id, &hook.secret_nonce, &hook.secret_sealed)
        .ok_or("the webhook's secret cannot be opened with this server's secrets key")?;
    let body = serde_json::to_vec(&payload(state, delivery).await).map_err(|error| error.to_string())?;
    let timestamp = now_ms() / 1000;
    let request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Renderjuice-Timestamp", timestamp.to_string())
        .header("X-Renderjuice-Signature", signature(&secret, timestamp, &body))
        .header("X-Orchard-Delivery", delivery.id.to_string())
        .header("X-Orchard-Event", delivery.event.kind.as_str())
        .body(body);
    let response = request.send().await.map_err(|error| describe(&error))?;
    let status = response.status().as_u16();
    let mut kept = Vec::new();
    let mut stream = response.bytes_stream();
    while kept.len() < RESPONSE_KEPT {
        match tokio::time::timeout(TIMEOUT, stream.next()).await {
            Ok(Some(Ok(chunk))) => kept.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_KEPT - kept.len())]),
            _ => break,
        }
    }
    Ok((status, String::from_utf8_lossy(&kept).into_owned()))
}

fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// A transport error, with its causes (the resolver's refusal is one), never the URL.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let mut text = String::from(if error.is_connect() { "could not connect" } else { "request failed" });
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The body of an event, as Renderjuice documents it for its two events; Orchard's own carry
/// the same first fields and the time.
pub(crate) async fn payload(state: &AppState, delivery: &DueDelivery) -> Value {
    let event = &delivery.event;
    let at = iso8601(event.at);
    let mut body = json!({
        "event": event.kind,
        "status": event.status,
        "jobId": event.job_id.to_string(),
        "workspaceId": event.workspace_id.to_string(),
    });
    match Notice::parse(&event.kind) {
        Some(Notice::RenderComplete) => {
            body["completedAt"] = json!(at);
            let frames = frame_urls(state, event.job_id).await;
            if !frames.is_empty() {
                body["outputs"] = json!({"frames": frames});
            }
        }
        Some(Notice::RenderFail) => {
            body["failedAt"] = json!(at);
            // As on the job: `{name, type, message}`.
            body["failedReason"] = match state.store.get_job_internal(event.job_id).await {
                Ok(Some(job)) => job
                    .failed_reason
                    .map_or(Value::Null, |it| json!({"name": it.name, "type": it.kind, "message": it.message})),
                _ => Value::Null,
            };
        }
        _ => body["at"] = json!(at),
    }
    body
}

/// Signed URLs of a job's frames, in frame order (none once the job is deleted).
async fn frame_urls(state: &AppState, job_id: uuid::Uuid) -> Vec<String> {
    let Ok(outputs) = state.store.list_outputs(job_id).await else { return Vec::new() };
    let base = state.public_base();
    let now = now_ms();
    outputs
        .iter()
        .filter(|it| it.kind == "frame")
        .map(|it| crate::urls::signed_file_url_for(state, &base, &it.object_key, now, FRAME_URL_TTL))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_targets() {
        for inward in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(!is_public(inward.parse().unwrap()), "{inward}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn retries_back_off_for_more_than_a_day() {
        let unit = 10_000;
        let mut at = 0i64;
        let mut attempts = 0;
        while at < unit * i64::from(GIVE_UP_AFTER) {
            attempts += 1;
            let delay = retry_delay(attempts, unit);
            let base = unit * i64::from(RETRY_SCHEDULE[(attempts as usize - 1).min(RETRY_SCHEDULE.len() - 1)]);
            assert!(delay >= base * 8 / 10 && delay <= base * 12 / 10, "{attempts}: {delay}");
            at += delay;
        }
        assert!(GIVE_UP_AFTER as i64 * unit >= 24 * 3600 * 1000, "at least a day");
        assert!((12..=20).contains(&attempts), "{attempts} attempts");
    }
}
