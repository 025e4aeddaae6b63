//! Orchard extensions: webhook endpoints (`/webhooks`, the operations in `ops::webhooks`) and
//! the event stream (`GET /events`, `notices::stream`).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use orchard_api::{CreateWebhookRequest, Delivery, DeliveryList, ErrorBody, Webhook, WebhookList};
use serde::Deserialize;

use crate::error::Error;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::keys::Caller;
use crate::notices::stream;
use crate::ops::webhooks as ops;
use crate::state::AppState;

/// Comment lines on a quiet stream: proxies and this server's idle timeout keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Add a webhook endpoint for the key's workspace. The answer's `secret` signs every
/// delivery (`X-Renderjuice-Signature`); it is shown only here and on rotate-secret.
#[utoipa::path(post, path = "/api/external/v1/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    responses((status = 201, description = "added, with its secret", body = Webhook),
              (status = 400, description = "a URL that is not public http(s), no or unknown events, too many webhooks", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWebhookRequest>,
) -> Result<Response, Error> {
    Ok((StatusCode::CREATED, Json(ops::create(&state, &caller, body).await?)).into_response())
}

/// The workspace's webhook endpoints (without their secrets).
#[utoipa::path(get, path = "/api/external/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "the result", body = WebhookList)),
    security(("bearer" = [])))]
pub(crate) async fn list_webhooks(State(state): State<AppState>, caller: Caller) -> Result<Json<WebhookList>, Error> {
    Ok(Json(WebhookList { webhooks: ops::list(&state, &caller).await? }))
}

/// Remove a webhook endpoint: nothing more is sent to it (pending retries stop).
#[utoipa::path(delete, path = "/api/external/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204, description = "removed"), (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, Error> {
    ops::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret for a webhook endpoint, in the answer; the old one no longer signs.
#[utoipa::path(post, path = "/api/external/v1/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "the endpoint with its new secret", body = Webhook),
              (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Webhook>, Error> {
    Ok(Json(ops::rotate(&state, &caller, &id).await?))
}

/// A webhook endpoint's delivery log: the most recent deliveries, each attempt's time, status
/// code, latency and the answer's first bytes.
#[utoipa::path(get, path = "/api/external/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "the result", body = DeliveryList),
              (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeliveryList>, Error> {
    Ok(Json(DeliveryList { deliveries: ops::deliveries(&state, &caller, &id).await? }))
}

/// Send a delivery's event to its endpoint again, now, as a new delivery (its own id).
#[utoipa::path(post, path = "/api/external/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver", tag = "webhooks",
    params(("id" = String, Path), ("deliveryId" = String, Path)),
    responses((status = 202, description = "queued", body = Delivery),
              (status = 404, description = "unknown, or another workspace's", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, delivery_id)): ApiPath<(String, String)>,
) -> Result<Response, Error> {
    let delivery = ops::redeliver(&state, &caller, &id, &delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}

/// `?lastEventId=N` of the event stream, for clients that cannot set headers.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventsQuery {
    /// Resume after this event (as the `Last-Event-ID` header does; the header wins).
    last_event_id: Option<i64>,
}

/// Server-Sent Events of the workspace's jobs (every workspace's for an admin key): each
/// event's `id` is its place in the log and its `data` is JSON with `type` (`onRenderComplete`,
/// `onRenderFail`, `onValidated`, `onRenderStart`, `onRenderCancel`, `onRenderSuspend`;
/// `progress`, with `framesDone`, `framesTotal`, `framesRendering`, `percent`, `etaSeconds`, at
/// most twice a second per job; `preview`, a new preview image), `jobId`, `workspaceId`,
/// `status` and `at`. A client that reconnects with `Last-Event-ID` gets everything after it,
/// nothing twice; without it, what happens from now on. A comment line every 15 s keeps it open.
#[utoipa::path(get, path = "/api/external/v1/events", tag = "webhooks", params(EventsQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "resume after this event")),
    responses((status = 200, description = "the stream", content_type = "text/event-stream", body = String),
              (status = 400, description = "a Last-Event-ID that is not a number", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, Error> {
    let header = headers.get("last-event-id").map(|it| it.to_str().ok().and_then(|it| it.trim().parse::<i64>().ok()));
    let last_seen = match header {
        Some(Some(id)) => Some(id),
        Some(None) => return Err(Error::invalid("invalid_last_event_id", "Last-Event-ID must be an event's number")),
        None => query.last_event_id,
    };
    let workspace = (!caller.admin).then_some(caller.workspace_id);
    let subscribers = state.metrics.event_subscribers.clone();
    subscribers.inc();
    // Counted while the client is connected: the guard goes with the stream.
    let guard = Subscribed(subscribers);
    let stream =
        stream::subscribe(state.store.clone(), state.notices.clone(), workspace, last_seen).map(move |event| {
            let _ = &guard;
            event
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

struct Subscribed(prometheus_client::metrics::gauge::Gauge);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.dec();
    }
}
