-- Render nodes: tokens they authenticate with, what they can render, and how each attempt failed.

create table worker_tokens (
    id text primary key,
    -- sha256 of the whole token (192 random bits), as for API keys.
    token_hash text not null unique,
    prefix text not null,
    created_at integer not null,
    revoked_at integer
);

create table workers (
    id text primary key,
    name text not null,
    token_id text not null references worker_tokens(id),
    -- What the worker reported at registration (Blender builds, devices, RAM, tags), as JSON.
    capabilities text not null,
    -- Render speed relative to the reference machine: normalizedSeconds = seconds × factor.
    speed_factor real not null default 1,
    registered_at integer not null,
    last_seen_at integer not null
);
create index workers_seen on workers (last_seen_at);

-- One row per failed attempt: the task's distinct failing workers decide when it fails for
-- good, and a worker's failures on a job decide when it is blocklisted for that job.
create table task_failures (
    id text primary key,
    task_id text not null references tasks(id),
    job_id text not null references jobs(id),
    worker_id text not null,
    attempt integer not null,
    error text not null,
    at integer not null
);
create index task_failures_by_task on task_failures (task_id, worker_id);
create index task_failures_by_job on task_failures (job_id, worker_id);

-- Why a job is not progressing (no registered worker can render it), for people.
alter table jobs add column waiting_reason text;
