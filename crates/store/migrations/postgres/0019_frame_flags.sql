-- Frames a worker found suspicious (`blank`: every pixel one colour), per job and frame; a
-- frame rendered again is judged again. The job keeps their count for its reads.
create table frame_flags (
    job_id text not null references jobs(id),
    frame bigint not null,
    flag text not null,
    primary key (job_id, frame, flag)
);
alter table jobs add column frames_blank bigint not null default 0;
