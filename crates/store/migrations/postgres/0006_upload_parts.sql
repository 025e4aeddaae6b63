-- The number of parts a multipart upload declared (NULL: one PUT), so that completing it
-- can require every one of them.
alter table uploads add column parts bigint;
