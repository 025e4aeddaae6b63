-- Scheduling that shares: a job's priority (0–100, 50 unless set), and each workspace's share
-- of the farm when several wait (1 each unless an operator says otherwise).
alter table jobs add column priority bigint not null default 50;
alter table workspaces add column share double precision not null default 1;
