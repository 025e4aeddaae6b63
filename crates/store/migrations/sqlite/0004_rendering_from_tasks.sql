-- A job's rendering frames are counted from its running tasks when read, no longer kept on the
-- job's row: every claim updated that row, so claims and completions of a busy job all wrote it.
-- The count reads `tasks_queue (status, job_id, seq)`.
alter table jobs drop column frames_rendering;
-- Lease expiry reads the running tasks through `tasks_queue` too (there are as many as busy
-- workers); `tasks_leases` cost every claim, completion and heartbeat an index entry.
drop index tasks_leases;
-- Jobs by status, in the order claims and the finalizer read them. It held `updated_at`, which
-- every completion changes: each one rewrote an index entry that nothing reads by.
drop index jobs_by_status;
create index jobs_by_status on jobs (status, created_at);
