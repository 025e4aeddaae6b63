-- Orchard's schema, PostgreSQL dialect: the same tables and columns as migrations/sqlite.
-- Times are unix milliseconds (bigint), ids are uuid text, JSON is text; integers the store
-- reads as i64 are bigint, floats are double precision (SQLite's `real` is 8 bytes too).

create table settings (
    name text primary key,
    value text not null
);

create table workspaces (
    id text primary key,
    name text not null unique,
    created_at bigint not null
);

create table users (
    id text primary key,
    workspace_id text not null references workspaces(id),
    name text not null,
    created_at bigint not null,
    unique (workspace_id, name)
);

-- Keys are stored as the sha256 of the whole key: they are 190-bit random tokens, so a fast
-- hash is as safe as a slow one and lets every request look a key up by index.
create table api_keys (
    id text primary key,
    key_hash text not null unique,
    prefix text not null,
    workspace_id text not null references workspaces(id),
    user_id text not null references users(id),
    created_at bigint not null,
    revoked_at bigint
);

create table uploads (
    slug text primary key,
    workspace_id text not null references workspaces(id),
    user_id text not null references users(id),
    file_name text not null,
    file_type text not null check (file_type in ('blend', 'zip')),
    object_key text not null,
    expires_at bigint not null,
    created_at bigint not null,
    uploaded_at bigint,
    size bigint,
    sha256 text
);

create table jobs (
    id text primary key,
    workspace_id text not null references workspaces(id),
    user_id text not null references users(id),
    upload_slug text not null unique references uploads(slug),
    file_name text not null,
    file_type text not null,
    object_key text not null,
    file_size bigint not null,
    -- The main .blend inside a .zip, when the client named one.
    main_file text,
    status text not null check (status in ('created', 'validating', 'validated', 'booting', 'rendering',
        'finalizing', 'completed', 'failed', 'canceled', 'suspended', 'debugging')),
    created_at bigint not null,
    updated_at bigint not null,
    failed_name text,
    failed_type text,
    failed_message text,
    requested_config text,
    final_config text,
    analysis text,
    analysis_id text,
    preview_key text,
    frames_zip_key text,
    normalized_seconds double precision not null default 0,
    -- Counters are maintained by the statements that change tasks, never recounted on read.
    frames_total bigint not null default 0,
    frames_done bigint not null default 0,
    frames_rendering bigint not null default 0,
    frames_failed bigint not null default 0,
    render_started_at bigint
);
create index jobs_by_workspace on jobs (workspace_id, created_at desc);
create index jobs_by_status on jobs (status, updated_at);

create table tasks (
    id text primary key,
    job_id text not null references jobs(id),
    seq bigint not null,
    frames text not null,
    n_frames bigint not null,
    status text not null check (status in ('queued', 'running', 'completed', 'failed', 'canceled')),
    -- The fencing token: every call from a worker names the attempt it holds.
    attempt bigint not null default 0,
    failures bigint not null default 0,
    worker_id text,
    lease_expires_at bigint,
    started_at bigint,
    finished_at bigint,
    render_seconds double precision,
    last_error text,
    unique (job_id, seq)
);
create index tasks_queue on tasks (status, job_id, seq);
create index tasks_leases on tasks (status, lease_expires_at);

create table outputs (
    id text primary key,
    job_id text not null references jobs(id),
    task_id text not null references tasks(id),
    kind text not null check (kind in ('frame', 'composite')),
    frame integer,
    file_name text not null,
    object_key text not null,
    size bigint not null,
    created_at bigint not null,
    -- Each frame is stored once, whatever a retried task does.
    unique (job_id, kind, file_name)
);
create index outputs_by_job on outputs (job_id, kind, frame);
