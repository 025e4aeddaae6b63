//! The webhook delivery duty (notices::delivery has its rules and its client): claims due
//! deliveries, builds each event's body, signs and POSTs it, records the attempt and what
//! follows. Runs on every server; each delivery is sent by the one that leased it.

use std::net::IpAddr;
use std::time::Instant;

use futures::StreamExt;
use orchard_domain::Notice;
use orchard_store::{AttemptRecord, DeliveryOutcome, DueDelivery};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::clock::{iso8601, now_ms};
use crate::notices::delivery::{
    BATCH, FRAME_URL_TTL, GIVE_UP_AFTER, LEASE, POLL, RESPONSE_KEPT, TIMEOUT, client, is_public, retry_delay,
};
use crate::notices::secrets::signature;
use crate::state::AppState;

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
