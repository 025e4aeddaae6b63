-- Frames a running task has finished, as its worker's heartbeats say: progress within a task
-- (a task of many frames, or a long one, does not look stuck until it completes).
alter table tasks add column frames_done bigint not null default 0;
