-- What a compositor output is beside its file: the path its File Output node wrote it at
-- (relative to the node's base), the node, the view. Keyed like outputs (job, file name).
create table output_details (
    job_id text not null references jobs(id),
    file_name text not null,
    relative_path text not null,
    node_name text not null,
    view text not null default '',
    primary key (job_id, file_name)
);
