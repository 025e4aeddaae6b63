//! How many frames a task holds. Pure.

use crate::policy::{MAX_ADAPTED_CHUNK, TARGET_TASK_SECONDS};

pub(crate) use crate::policy::first_chunk_size;

/// Frames per task from a measured frame time, keeping at least two tasks per connected
/// worker so that every worker has work.
pub(crate) fn adapted_chunk(seconds_per_frame: f64, remaining_frames: usize, n_workers: usize) -> usize {
    let by_time = (TARGET_TASK_SECONDS / seconds_per_frame.max(0.001)).ceil() as usize;
    let by_parallelism = remaining_frames.div_ceil(2 * n_workers.max(1));
    by_time.min(by_parallelism).clamp(1, MAX_ADAPTED_CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_frame_times_size_tasks_to_about_thirty_seconds_while_every_worker_has_work() {
        assert_eq!(adapted_chunk(0.5, 1000, 2), 50, "fast frames: capped at 50");
        assert_eq!(adapted_chunk(3.0, 1000, 2), 10);
        assert_eq!(adapted_chunk(3.0, 40, 4), 5, "40 frames for 4 workers: 8 tasks");
        assert_eq!(adapted_chunk(120.0, 1000, 2), 1, "slow frames: one per task");
    }

    #[test]
    fn chunks_stay_between_one_and_twenty_frames() {
        assert_eq!(first_chunk_size(1), 1);
        assert_eq!(first_chunk_size(3), 1);
        assert_eq!(first_chunk_size(80), 10);
        assert_eq!(first_chunk_size(10_000), 20);
    }
}
