-- Each attempt's Blender output, appended as its worker's heartbeats bring it (live while
-- it runs); the tail is kept when it grows past the cap.
create table task_logs (
    task_id text not null references tasks(id),
    attempt bigint not null,
    job_id text not null references jobs(id),
    worker_id text not null,
    text text not null,
    truncated bigint not null default 0,
    updated_at bigint not null,
    primary key (task_id, attempt)
);
create index task_logs_by_job on task_logs (job_id);

-- How far the frame a running task renders now is (0–1, from its samples).
alter table tasks add column frame_progress double precision not null default 0;
