-- Frames with NaN or infinite samples (EXR), flagged like blank ones (frame_flags, flag
-- 'non_finite'); the job keeps their count for its reads.
alter table jobs add column frames_non_finite integer not null default 0;
