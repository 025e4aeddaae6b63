-- A job's rendering frames are counted from its running tasks when read, no longer kept on the
-- job's row: every claim updated that row, so claims of a busy job queued on its row lock
-- behind each other and behind every completion. The count reads `tasks_queue`.
alter table jobs drop column frames_rendering;
-- Lease expiry reads the running tasks through `tasks_queue` too (there are as many as busy
-- workers). `tasks_leases` cost every claim, completion and heartbeat an index entry, and the
-- planner, seeing few running tasks, chose it for the count above and then walked every
-- running task of the farm for each job it read (bench/scale.py).
drop index tasks_leases;
-- Jobs by status, in the order claims and the finalizer read them. It held `updated_at`, which
-- every completion changes, so no update of a rendering job's counters could be HOT: each left
-- a new entry in every index of jobs, which claims then stepped over.
drop index jobs_by_status;
create index jobs_by_status on jobs (status, created_at);
-- Room on each page for the new versions of a busy job's row (HOT updates).
alter table jobs set (fillfactor = 90);
