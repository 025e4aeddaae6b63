-- A job's packaging task: the video of its frames, made by a worker with ffmpeg while the job
-- is finalizing (servers never do heavy CPU work). Claimed like a task, with a lease; a lease
-- that ran out is taken over by the next claim. One per job; a retry forgets it.
create table packaging (
    id text primary key,
    job_id text not null unique references jobs(id),
    status text not null,
    attempt bigint not null default 0,
    worker_id text,
    lease_until bigint not null default 0,
    failures bigint not null default 0,
    error text,
    -- What the worker made (JSON: the checked video description and its object key).
    result text,
    created_at bigint not null,
    updated_at bigint not null
);
create index packaging_due on packaging (created_at) where status in ('queued', 'running');
