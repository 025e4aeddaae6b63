-- A job's rendering frames are counted from its running tasks when read, no longer kept on the
-- job's row: every claim updated that row, so on PostgreSQL the claims of a busy job queued on
-- its row lock behind each other and behind every completion.
alter table jobs drop column frames_rendering;
-- The count reads only this (bench/scale.py: without it the planner may walk every running
-- task of the farm through `tasks_leases` for each job it reads).
create index tasks_running on tasks (job_id) include (n_frames) where status = 'running';
