-- Measured with 100k jobs (bench/scale.py): `GET /jobs` sorted ties of created_at in a temp
-- b-tree, and `GET /jobs/progress` (status within a workspace) walked every job of the
-- workspace. These indexes answer both from the index alone.
drop index jobs_by_workspace;
create index jobs_by_workspace on jobs (workspace_id, created_at desc, id desc);
create index jobs_by_workspace_status on jobs (workspace_id, status, created_at desc);
