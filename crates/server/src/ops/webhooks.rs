//! A workspace's webhook endpoints: add (the secret is shown once), list, remove, rotate the
//! secret, read the delivery log, redeliver. Deliveries themselves are `notices::delivery`'s.

use orchard_api::{CreateWebhookRequest, Delivery, DeliveryAttempt, Webhook};
use orchard_domain::Notice;
use orchard_store::{DeliveryInfo, WebhookRecord};
use uuid::Uuid;

use crate::clock::{iso8601, now_ms};
use crate::error::{Error, Result};
use crate::keys::Caller;
use crate::notices::delivery::is_public;
use crate::state::AppState;

/// Most endpoints a workspace may have.
pub(crate) const MAX_WEBHOOKS: usize = 20;
/// Longest webhook URL.
pub(crate) const MAX_URL: usize = 2048;
/// Deliveries a log shows.
const LOG_LENGTH: u32 = 100;

/// Adds an endpoint; the answer carries its secret, the only time it is shown.
pub(crate) async fn create(state: &AppState, caller: &Caller, body: CreateWebhookRequest) -> Result<Webhook> {
    let url = checked_url(&body.url, state.config.webhooks_allow_private)?;
    if body.events.is_empty() {
        return Err(Error::field("invalid_events", "events", "name at least one event"));
    }
    let mut events: Vec<Notice> = Vec::new();
    for event in body.events {
        if !events.contains(&event) {
            events.push(event);
        }
    }
    if state.store.list_webhooks(caller.workspace_id).await?.len() >= MAX_WEBHOOKS {
        let reason = format!("a workspace has at most {MAX_WEBHOOKS} webhooks: remove one first");
        return Err(Error::invalid("too_many_webhooks", reason));
    }
    let id = Uuid::now_v7();
    let (secret, nonce, sealed) = state.notices.secrets.new_secret(id);
    let record = WebhookRecord {
        id,
        workspace_id: caller.workspace_id,
        url,
        events: events.iter().map(|it| it.name().to_string()).collect(),
        secret_nonce: nonce,
        secret_sealed: sealed,
        created_at: now_ms(),
        deleted_at: None,
    };
    state.store.create_webhook(&record).await?;
    Ok(Webhook { secret: Some(secret), ..wire(&record) })
}

/// The workspace's endpoints, without their secrets.
pub(crate) async fn list(state: &AppState, caller: &Caller) -> Result<Vec<Webhook>> {
    Ok(state.store.list_webhooks(caller.workspace_id).await?.iter().map(wire).collect())
}

/// Removes an endpoint: nothing more is sent to it.
pub(crate) async fn delete(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    let id = webhook_id(id)?;
    if !state.store.delete_webhook(caller.workspace_id, id, now_ms()).await? {
        return Err(Error::NotFound("webhook"));
    }
    Ok(())
}

/// A new secret for an endpoint, shown in the answer; the old one signs nothing from now on.
pub(crate) async fn rotate(state: &AppState, caller: &Caller, id: &str) -> Result<Webhook> {
    let record = owned(state, caller, id).await?;
    let (secret, nonce, sealed) = state.notices.secrets.new_secret(record.id);
    if !state.store.reseal_webhook(caller.workspace_id, record.id, &nonce, &sealed).await? {
        return Err(Error::NotFound("webhook"));
    }
    Ok(Webhook { secret: Some(secret), ..wire(&record) })
}

/// An endpoint's most recent deliveries, with every attempt.
pub(crate) async fn deliveries(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<Delivery>> {
    let record = owned(state, caller, id).await?;
    Ok(state.store.list_deliveries(record.id, LOG_LENGTH).await?.iter().map(delivery).collect())
}

/// Sends a delivery's event again, as a new delivery due now.
pub(crate) async fn redeliver(state: &AppState, caller: &Caller, id: &str, delivery_id: &str) -> Result<Delivery> {
    let record = owned(state, caller, id).await?;
    let delivery_id = Uuid::parse_str(delivery_id).map_err(|_| Error::NotFound("delivery"))?;
    let new = state.store.redeliver(record.id, delivery_id, now_ms()).await?.ok_or(Error::NotFound("delivery"))?;
    state.notices.wake();
    let log = state.store.list_deliveries(record.id, LOG_LENGTH).await?;
    log.iter().find(|it| it.id == new).map(delivery).ok_or(Error::NotFound("delivery"))
}

async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookRecord> {
    state.store.get_webhook(caller.workspace_id, webhook_id(id)?).await?.ok_or(Error::NotFound("webhook"))
}

fn webhook_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::NotFound("webhook"))
}

/// The URL as it will be called: `http`/`https`, a host, no credentials, within bounds; an
/// address literal only if public (unless private targets are allowed). Names are checked
/// again at each delivery, after they resolve.
pub(crate) fn checked_url(url: &str, allow_private: bool) -> Result<String> {
    let refuse = |reason: String| Error::field("invalid_url", "url", reason);
    if url.is_empty() || url.chars().count() > MAX_URL {
        return Err(refuse(format!("must be 1 to {MAX_URL} characters")));
    }
    let parsed = url::Url::parse(url).map_err(|error| refuse(format!("{url:?} is not a URL: {error}")))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(refuse(format!("must be https:// (or http://), not {}://", parsed.scheme())));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse("must not carry a user or password: the signature says who sends".into()));
    }
    let ip = match parsed.host() {
        None => return Err(refuse("has no host".into())),
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = ip
        && !allow_private
        && !is_public(ip)
    {
        return Err(refuse(format!(
            "{ip} is a private or local address: this server sends webhooks only to public ones \
             (its operator allows others with --webhooks-allow-private)"
        )));
    }
    Ok(parsed.to_string())
}

fn wire(record: &WebhookRecord) -> Webhook {
    Webhook {
        id: record.id.to_string(),
        url: record.url.clone(),
        events: record.events.iter().filter_map(|it| Notice::parse(it)).collect(),
        secret: None,
        created_at: iso8601(record.created_at),
    }
}

fn delivery(info: &DeliveryInfo) -> Delivery {
    Delivery {
        id: info.id.to_string(),
        event: info.event.kind.clone(),
        job_id: info.event.job_id.to_string(),
        state: info.state.clone(),
        created_at: iso8601(info.created_at),
        next_attempt_at: (info.state == "pending").then(|| iso8601(info.next_at)),
        finished_at: info.finished_at.map(iso8601),
        attempts: info
            .tries
            .iter()
            .map(|it| DeliveryAttempt {
                attempt: it.attempt,
                at: iso8601(it.at),
                status_code: it.status_code,
                latency_ms: it.latency_ms,
                error: it.error.clone(),
                response: it.response.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::checked_url;

    #[test]
    fn urls_are_public_http_without_credentials() {
        assert!(checked_url("https://hooks.example.com/orchard", false).is_ok());
        for bad in [
            "",
            "ftp://x.example.com",
            "https://user:pw@x.example.com",
            "not a url",
            "http://127.0.0.1:9000/",
            "http://[::1]/",
            "http://10.0.0.5/",
            "http://169.254.169.254/latest",
        ] {
            assert!(checked_url(bad, false).is_err(), "{bad}");
        }
        assert!(checked_url("http://127.0.0.1:9000/", true).is_ok(), "allowed by the operator");
        assert!(checked_url(&format!("https://x.example.com/{}", "a".repeat(2100)), false).is_err());
    }
}
