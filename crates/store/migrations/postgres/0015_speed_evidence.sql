-- A worker's factor as its reference renders measured it, and how much their frames varied
-- (null: set by its operator); speed_factor, the one used, starts there and moves with the
-- evidence of jobs it shared with other workers (speed_observations of them so far).
alter table workers add column speed_measured double precision;
alter table workers add column speed_spread double precision;
alter table workers add column speed_observations bigint not null default 0;
update workers set speed_measured = speed_factor;
