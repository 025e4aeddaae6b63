-- A retry clears a job's failures for the blocklist (the workers that failed it may try again)
-- but keeps them: they are the job's history of attempts.
alter table task_failures add column cleared integer not null default 0;
