-- A job's rendering frames are counted from its running tasks when read, no longer kept on the
-- job's row: every claim updated that row, so claims and completions of a busy job all wrote it.
alter table jobs drop column frames_rendering;
-- The count reads only this index.
create index tasks_running on tasks (job_id, n_frames) where status = 'running';
