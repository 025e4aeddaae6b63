-- When retention removed a finished job's files (outputs, archives, preview, scene copy): the
-- job stays, with isDeletedForClient, and its downloads are empty.
alter table jobs add column outputs_deleted_at bigint;
-- A workspace's own retention, in seconds, over the server's --retention-days (null: the
-- server's; 0: keep forever).
alter table workspaces add column retention_seconds bigint;
