-- The Blender versions that rendered a job (its tasks'), recorded when it completes: a JSON
-- array of version strings.
alter table jobs add column blender_versions text;
