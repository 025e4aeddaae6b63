-- Frames finished lately (the farm's throughput, `GET /usage`): completed tasks by when.
create index tasks_completed_by_time on tasks (finished_at) where status = 'completed';
