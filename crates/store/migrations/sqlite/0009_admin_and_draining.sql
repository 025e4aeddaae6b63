-- Admin keys see and steer the whole farm (every workspace's jobs, all workers); a draining
-- worker takes no new task.
alter table api_keys add column admin integer not null default 0;
alter table workers add column draining integer not null default 0;
