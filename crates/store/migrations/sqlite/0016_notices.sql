-- Webhook endpoints of a workspace. The secret is sealed (XOR with a keystream derived from
-- the server's secrets key, outside the database, and a nonce): a dump alone does not hold it.
create table webhooks (
    id text primary key,
    workspace_id text not null references workspaces(id),
    url text not null,
    events text not null,
    secret_nonce text not null,
    secret_sealed text not null,
    created_at integer not null,
    deleted_at integer
);
create index webhooks_by_workspace on webhooks (workspace_id, created_at);

-- The durable log of what happened to jobs: status changes written in the transaction of the
-- change (an outbox), fanned out to webhook deliveries; progress and previews, throttled, for
-- the event stream only.
create table events (
    seq integer primary key autoincrement,
    workspace_id text not null,
    job_id text not null,
    type text not null,
    status text not null,
    -- What a progress or preview event says (JSON); none for status changes.
    data text,
    at integer not null
);
create index events_by_workspace on events (workspace_id, seq);

-- One event to one endpoint: pending until a 2xx, retried on a schedule, dead after a day.
create table deliveries (
    id text primary key,
    webhook_id text not null references webhooks(id),
    event_seq integer not null references events(seq),
    state text not null,
    attempts integer not null default 0,
    next_at integer not null,
    leased_until integer not null default 0,
    created_at integer not null,
    finished_at integer,
    last_status integer
);
create index deliveries_due on deliveries (state, next_at);
create index deliveries_by_webhook on deliveries (webhook_id, created_at);

create table delivery_attempts (
    delivery_id text not null references deliveries(id),
    attempt integer not null,
    at integer not null,
    status_code integer,
    latency_ms integer not null,
    error text,
    response text,
    primary key (delivery_id, attempt)
);
