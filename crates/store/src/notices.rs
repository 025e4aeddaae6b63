//! What happened to jobs, kept for whoever listens: [`NoticeStore`], the durable event log
//! (an outbox: each event is written by the transaction of the status change that causes
//! it, see [`record_notice`]), the workspaces' webhook endpoints, and the deliveries of events
//! to them (claimed like tasks: one server delivers each, whatever number run).

use async_trait::async_trait;
use uuid::Uuid;

use crate::{AttemptRecord, DeliveryInfo, DeliveryOutcome, DueDelivery, EventRecord, Result, WebhookRecord};

/// Events, webhooks and deliveries.
#[async_trait]
pub trait NoticeStore: Send + Sync {
    /// Records a new endpoint.
    async fn create_webhook(&self, webhook: &WebhookRecord) -> Result<()>;
    /// A workspace's endpoints (removed ones left out), oldest first.
    async fn list_webhooks(&self, workspace_id: Uuid) -> Result<Vec<WebhookRecord>>;
    /// One of a workspace's endpoints, unless removed.
    async fn get_webhook(&self, workspace_id: Uuid, id: Uuid) -> Result<Option<WebhookRecord>>;
    /// Removes an endpoint (its pending deliveries die); false if there is none.
    async fn delete_webhook(&self, workspace_id: Uuid, id: Uuid, now: i64) -> Result<bool>;
    /// Replaces an endpoint's sealed secret; false if there is no such endpoint.
    async fn reseal_webhook(&self, workspace_id: Uuid, id: Uuid, nonce: &str, sealed: &str) -> Result<bool>;
    /// Events after `after` (a sequence number), oldest first, at most `limit`: of one
    /// workspace, or of all with `None`.
    async fn events_after(&self, workspace_id: Option<Uuid>, after: i64, limit: u32) -> Result<Vec<EventRecord>>;
    /// The newest event's sequence number (0 without any).
    async fn last_event_seq(&self) -> Result<i64>;
    /// Records an event that is no status change (`progress`, `preview`) for the event stream:
    /// `data` is what it says (JSON). Nothing is delivered to webhooks. `false` if the job is gone.
    async fn record_event(&self, job_id: Uuid, kind: &str, data: Option<&str>, now: i64) -> Result<bool>;
    /// Forgets the progress and preview events recorded before `before` (status changes stay:
    /// deliveries refer to them); how many.
    async fn prune_events(&self, before: i64) -> Result<u64>;
    /// Leases up to `limit` deliveries due at `now` until `lease_until`: no other server takes
    /// them meanwhile.
    async fn claim_deliveries(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<DueDelivery>>;
    /// Records an attempt at a leased delivery and what follows; false if the lease was lost.
    async fn finish_delivery(
        &self,
        delivery: &DueDelivery,
        attempt: &AttemptRecord,
        outcome: DeliveryOutcome,
    ) -> Result<bool>;
    /// An endpoint's most recent deliveries, newest first, with their attempts.
    async fn list_deliveries(&self, webhook_id: Uuid, limit: u32) -> Result<Vec<DeliveryInfo>>;
    /// Sends a delivery's event to its endpoint again, as a new delivery due now; its id, or
    /// `None` if the endpoint has no such delivery.
    async fn redeliver(&self, webhook_id: Uuid, delivery_id: Uuid, now: i64) -> Result<Option<Uuid>>;
}

/// Inside a write transaction `$tx` that just moved job `$job` (a `String` id) to `$status`:
/// records the event that status gives, if any, and a pending delivery of it to every
/// endpoint of the job's workspace that asked for it. Expands in a dialect's context
/// (`sqlx::query` on `&mut *$tx`), in a function returning `Result`.
macro_rules! record_notice {
    ($tx:expr, $job:expr, $status:expr, $now:expr) => {
        if let Some(notice) = orchard_domain::Notice::for_status($status) {
            let seq: i64 = sqlx::query_scalar(
                "insert into events (workspace_id, job_id, type, status, at)
                 select workspace_id, id, $2, $3, $4 from jobs where id = $1 returning seq",
            )
            .bind(&$job)
            .bind(notice.name())
            .bind($status.as_str())
            .bind($now)
            .fetch_one(&mut *$tx)
            .await?;
            let hooks: Vec<(String, String)> = sqlx::query_as(
                "select id, events from webhooks
                 where workspace_id = (select workspace_id from jobs where id = $1) and deleted_at is null",
            )
            .bind(&$job)
            .fetch_all(&mut *$tx)
            .await?;
            for (hook, events) in hooks {
                let wanted: Vec<String> = $crate::rows::json(&events, "webhooks", "events")?;
                if !wanted.iter().any(|it| it == notice.name()) {
                    continue;
                }
                sqlx::query(
                    "insert into deliveries (id, webhook_id, event_seq, state, attempts, next_at, leased_until, created_at)
                     values ($1, $2, $3, 'pending', 0, $4, 0, $4)",
                )
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(hook)
                .bind(seq)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
            }
        }
    };
}

pub(crate) use record_notice;

/// The columns of a webhook read as `w`, named for `webhook_of`.
macro_rules! webhook_columns {
    () => {
        "w.id as w_id, w.workspace_id as w_workspace, w.url as w_url, w.events as w_events, \
         w.secret_nonce as w_nonce, w.secret_sealed as w_sealed, w.created_at as w_created, \
         w.deleted_at as w_deleted"
    };
}

/// The columns of an event read as `e`, named for `event_of`.
macro_rules! event_columns {
    () => {
        "e.seq as e_seq, e.workspace_id as e_workspace, e.job_id as e_job, e.type as e_type, \
         e.status as e_status, e.data as e_data, e.at as e_at"
    };
}

pub(crate) use {event_columns, webhook_columns};

/// `impl NoticeStore for $store`, both dialects; `skip_locked` is the clause that lets
/// concurrent claimers pass over each other's rows (empty on SQLite, whose writes are serial).
macro_rules! notice_store {
    ($store:ty, skip_locked = $skip_locked:literal) => {
        const _: () = {
            use sqlx::Row as _;
            use uuid::Uuid;

            use $crate::rows::{json, to_json, uuid};
            use $crate::{
                AttemptRecord, DeliveryInfo, DeliveryOutcome, DueDelivery, EventRecord, NoticeStore, Result,
                WebhookRecord,
            };


            fn webhook_of(row: &<$store as $crate::Dialect>::Row) -> Result<WebhookRecord> {
                Ok(WebhookRecord {
                    id: uuid(&row.try_get::<String, _>("w_id")?, "webhooks", "id")?,
                    workspace_id: uuid(&row.try_get::<String, _>("w_workspace")?, "webhooks", "workspace_id")?,
                    url: row.try_get("w_url")?,
                    events: json(&row.try_get::<String, _>("w_events")?, "webhooks", "events")?,
                    secret_nonce: row.try_get("w_nonce")?,
                    secret_sealed: row.try_get("w_sealed")?,
                    created_at: row.try_get("w_created")?,
                    deleted_at: row.try_get("w_deleted")?,
                })
            }

            fn event_of(row: &<$store as $crate::Dialect>::Row) -> Result<EventRecord> {
                Ok(EventRecord {
                    seq: row.try_get("e_seq")?,
                    workspace_id: uuid(&row.try_get::<String, _>("e_workspace")?, "events", "workspace_id")?,
                    job_id: uuid(&row.try_get::<String, _>("e_job")?, "events", "job_id")?,
                    kind: row.try_get("e_type")?,
                    status: row.try_get("e_status")?,
                    data: row.try_get("e_data")?,
                    at: row.try_get("e_at")?,
                })
            }

            #[async_trait::async_trait]
            impl NoticeStore for $store {
                async fn create_webhook(&self, webhook: &WebhookRecord) -> Result<()> {
                    sqlx::query(
                        "insert into webhooks (id, workspace_id, url, events, secret_nonce, secret_sealed, created_at)
                         values ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(webhook.id.to_string())
                    .bind(webhook.workspace_id.to_string())
                    .bind(&webhook.url)
                    .bind(to_json(&webhook.events, "webhooks", "events")?)
                    .bind(&webhook.secret_nonce)
                    .bind(&webhook.secret_sealed)
                    .bind(webhook.created_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn list_webhooks(&self, workspace_id: Uuid) -> Result<Vec<WebhookRecord>> {
                    let rows = sqlx::query(concat!("select ", $crate::notices::webhook_columns!(), " from webhooks w where w.workspace_id = $1 and w.deleted_at is null
                         order by w.created_at, w.id"))
                    .bind(workspace_id.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(webhook_of).collect()
                }

                async fn get_webhook(&self, workspace_id: Uuid, id: Uuid) -> Result<Option<WebhookRecord>> {
                    let row = sqlx::query(concat!("select ", $crate::notices::webhook_columns!(), " from webhooks w where w.id = $1 and w.workspace_id = $2 and w.deleted_at is null"))
                    .bind(id.to_string())
                    .bind(workspace_id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                    row.as_ref().map(webhook_of).transpose()
                }

                async fn delete_webhook(&self, workspace_id: Uuid, id: Uuid, now: i64) -> Result<bool> {
                    let mut tx = self.write().await?;
                    let done = sqlx::query(
                        "update webhooks set deleted_at = $1 where id = $2 and workspace_id = $3 and deleted_at is null",
                    )
                    .bind(now)
                    .bind(id.to_string())
                    .bind(workspace_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "update deliveries set state = 'dead', finished_at = $1 where webhook_id = $2 and state = 'pending'",
                    )
                    .bind(now)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn reseal_webhook(&self, workspace_id: Uuid, id: Uuid, nonce: &str, sealed: &str) -> Result<bool> {
                    let done = sqlx::query(
                        "update webhooks set secret_nonce = $1, secret_sealed = $2
                         where id = $3 and workspace_id = $4 and deleted_at is null",
                    )
                    .bind(nonce)
                    .bind(sealed)
                    .bind(id.to_string())
                    .bind(workspace_id.to_string())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn events_after(
                    &self,
                    workspace_id: Option<Uuid>,
                    after: i64,
                    limit: u32,
                ) -> Result<Vec<EventRecord>> {
                    let rows = sqlx::query(concat!("select ", $crate::notices::event_columns!(), " from events e where e.seq > $1 and ($2 is null or e.workspace_id = $2)
                         order by e.seq limit $3"))
                    .bind(after)
                    .bind(workspace_id.map(|it| it.to_string()))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(event_of).collect()
                }

                async fn last_event_seq(&self) -> Result<i64> {
                    let seq: Option<i64> =
                        sqlx::query_scalar("select max(seq) from events").fetch_one(&self.pool).await?;
                    Ok(seq.unwrap_or(0))
                }

                async fn record_event(&self, job_id: Uuid, kind: &str, data: Option<&str>, now: i64) -> Result<bool> {
                    let done = sqlx::query(
                        "insert into events (workspace_id, job_id, type, status, data, at)
                         select workspace_id, id, $2, status, $3, $4 from jobs where id = $1",
                    )
                    .bind(job_id.to_string())
                    .bind(kind)
                    .bind(data)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn prune_events(&self, before: i64) -> Result<u64> {
                    let done = sqlx::query("delete from events where at < $1 and type in ('progress', 'preview')")
                        .bind(before)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                }

                async fn claim_deliveries(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<DueDelivery>> {
                    let mut tx = self.write().await?;
                    let ids: Vec<String> = sqlx::query_scalar(concat!(
                        "update deliveries set leased_until = $2 where id in (
                            select id from deliveries where state = 'pending' and next_at <= $1 and leased_until < $1
                            order by next_at limit $3",
                        $skip_locked,
                        ") returning id"
                    ))
                    .bind(now)
                    .bind(lease_until)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut due = Vec::with_capacity(ids.len());
                    for id in ids {
                        let row = sqlx::query(concat!("select d.id, d.attempts, d.created_at, d.leased_until, ", $crate::notices::webhook_columns!(), ", ", $crate::notices::event_columns!(), "
                             from deliveries d join webhooks w on w.id = d.webhook_id
                             join events e on e.seq = d.event_seq where d.id = $1"))
                        .bind(&id)
                        .fetch_one(&mut *tx)
                        .await?;
                        due.push(DueDelivery {
                            id: uuid(&id, "deliveries", "id")?,
                            attempts: row.try_get("attempts")?,
                            created_at: row.try_get("created_at")?,
                            leased_until: row.try_get("leased_until")?,
                            webhook: webhook_of(&row)?,
                            event: event_of(&row)?,
                        });
                    }
                    tx.commit().await?;
                    Ok(due)
                }

                async fn finish_delivery(
                    &self,
                    delivery: &DueDelivery,
                    attempt: &AttemptRecord,
                    outcome: DeliveryOutcome,
                ) -> Result<bool> {
                    let (state, next_at, finished_at) = match outcome {
                        DeliveryOutcome::Delivered => ("delivered", attempt.at, Some(attempt.at)),
                        DeliveryOutcome::Retry { at } => ("pending", at, None),
                        DeliveryOutcome::Dead => ("dead", attempt.at, Some(attempt.at)),
                    };
                    let mut tx = self.write().await?;
                    // Fenced by the lease: a server whose lease ran out records nothing.
                    let done = sqlx::query(
                        "update deliveries set state = $1, attempts = attempts + 1, next_at = $2, leased_until = 0,
                            finished_at = $3, last_status = $4
                         where id = $5 and leased_until = $6 and state = 'pending'",
                    )
                    .bind(state)
                    .bind(next_at)
                    .bind(finished_at)
                    .bind(attempt.status_code)
                    .bind(delivery.id.to_string())
                    .bind(delivery.leased_until)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    sqlx::query(
                        "insert into delivery_attempts (delivery_id, attempt, at, status_code, latency_ms, error, response)
                         values ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(delivery.id.to_string())
                    .bind(attempt.attempt)
                    .bind(attempt.at)
                    .bind(attempt.status_code)
                    .bind(attempt.latency_ms)
                    .bind(&attempt.error)
                    .bind(&attempt.response)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn list_deliveries(&self, webhook_id: Uuid, limit: u32) -> Result<Vec<DeliveryInfo>> {
                    let rows = sqlx::query(concat!("select d.id, d.state, d.attempts, d.next_at, d.created_at, d.finished_at, d.last_status, ", $crate::notices::event_columns!(), "
                         from deliveries d join events e on e.seq = d.event_seq
                         where d.webhook_id = $1 order by d.created_at desc, d.id desc limit $2"))
                    .bind(webhook_id.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for row in rows {
                        let id: String = row.try_get("id")?;
                        let tries = sqlx::query(
                            "select attempt, at, status_code, latency_ms, error, response from delivery_attempts
                             where delivery_id = $1 order by attempt",
                        )
                        .bind(&id)
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(|it| {
                            Ok(AttemptRecord {
                                attempt: it.try_get("attempt")?,
                                at: it.try_get("at")?,
                                status_code: it.try_get("status_code")?,
                                latency_ms: it.try_get("latency_ms")?,
                                error: it.try_get("error")?,
                                response: it.try_get("response")?,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                        out.push(DeliveryInfo {
                            id: uuid(&id, "deliveries", "id")?,
                            state: row.try_get("state")?,
                            attempts: row.try_get("attempts")?,
                            next_at: row.try_get("next_at")?,
                            created_at: row.try_get("created_at")?,
                            finished_at: row.try_get("finished_at")?,
                            last_status: row.try_get("last_status")?,
                            event: event_of(&row)?,
                            tries,
                        });
                    }
                    Ok(out)
                }

                async fn redeliver(&self, webhook_id: Uuid, delivery_id: Uuid, now: i64) -> Result<Option<Uuid>> {
                    let id = Uuid::new_v4();
                    let done = sqlx::query(
                        "insert into deliveries (id, webhook_id, event_seq, state, attempts, next_at, leased_until, created_at)
                         select $1, d.webhook_id, d.event_seq, 'pending', 0, $2, 0, $2 from deliveries d
                         join webhooks w on w.id = d.webhook_id
                         where d.id = $3 and d.webhook_id = $4 and w.deleted_at is null",
                    )
                    .bind(id.to_string())
                    .bind(now)
                    .bind(delivery_id.to_string())
                    .bind(webhook_id.to_string())
                    .execute(&self.pool)
                    .await?;
                    Ok((done.rows_affected() == 1).then_some(id))
                }
            }
        };
    };
}

pub(crate) use notice_store;
