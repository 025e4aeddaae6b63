-- The Blender that rendered a task, as its worker reports at completion: which version
-- rendered which frames of a job.
alter table tasks add column blender_version text;
