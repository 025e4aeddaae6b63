-- Jobs per workspace, kept by job creation (jobs are never deleted): `GET /jobs`'s total
-- without a status filter. Counting rows grew with a workspace's history (bench/scale.py:
-- 100k jobs, 21–33 ms on PostgreSQL, a sequential scan; about 5 ms on SQLite).
create table workspace_job_counts (
    workspace_id text primary key,
    jobs bigint not null default 0
);
insert into workspace_job_counts (workspace_id, jobs) select workspace_id, count(*) from jobs group by workspace_id;
