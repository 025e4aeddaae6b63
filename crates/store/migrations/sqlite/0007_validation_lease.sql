-- Until when the server validating a job owns the validation: a job left validating by a
-- server that was killed is taken up again by another once this has passed.
alter table jobs add column validating_until integer;
