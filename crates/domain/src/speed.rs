//! Speed factors: how fast a worker renders relative to the reference machine, estimated so
//! that one disturbed measurement does not decide what every job on the worker is billed.

use crate::capabilities::SPEED_FACTORS;

/// A robust estimate from repeated samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The median of the samples kept.
    pub value: f64,
    /// Half the range of the samples kept, relative to `value` (0.05: ±5 %).
    pub spread: f64,
    /// Samples kept.
    pub kept: usize,
    /// Samples dropped as outliers.
    pub dropped: usize,
}

/// Samples further than this many scaled median absolute deviations from the median are
/// outliers (3 is the usual cut: a normal sample lands beyond it 0.3 % of the time).
const OUTLIER_MADS: f64 = 3.0;
/// MAD × this estimates the standard deviation of normal samples.
const MAD_TO_SIGMA: f64 = 1.4826;
/// However tight the samples, a sample within this fraction of the median is never an outlier
/// (timings of identical frames differ by a few percent for no reason worth dropping).
const MIN_OUTLIER_DISTANCE: f64 = 0.10;

/// The median of `samples` after dropping outliers (finite, positive samples only); `None`
/// without any.
pub fn robust(samples: &[f64]) -> Option<Estimate> {
    let mut good: Vec<f64> = samples.iter().copied().filter(|it| it.is_finite() && *it > 0.0).collect();
    if good.is_empty() {
        return None;
    }
    good.sort_by(f64::total_cmp);
    let center = median(&good);
    let mut deviations: Vec<f64> = good.iter().map(|it| (it - center).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let cut = (OUTLIER_MADS * MAD_TO_SIGMA * median(&deviations)).max(MIN_OUTLIER_DISTANCE * center);
    let kept: Vec<f64> = good.iter().copied().filter(|it| (it - center).abs() <= cut).collect();
    let value = median(&kept);
    let (low, high) = (kept[0], kept[kept.len() - 1]);
    Some(Estimate { value, spread: (high - low) / 2.0 / value, kept: kept.len(), dropped: samples.len() - kept.len() })
}

/// The median of sorted, non-empty `values`.
fn median(values: &[f64]) -> f64 {
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// How far one job's evidence moves a worker's factor: a geometric step of this fraction
/// towards what the job implies, so a few jobs settle it and no single job decides it.
pub const OBSERVATION_WEIGHT: f64 = 0.3;

/// What one job may claim: at most this many times faster or slower than the factor now.
const MAX_JOB_RATIO: f64 = 2.0;

/// A worker's factor after one more job: `current` moved towards `implied` (a geometric step,
/// as factors are ratios; a job claiming more than [`MAX_JOB_RATIO`] counts as claiming that),
/// within [`SPEED_FACTORS`].
pub fn refined(current: f64, implied: f64) -> f64 {
    if !(current.is_finite() && implied.is_finite() && current > 0.0 && implied > 0.0) {
        return current;
    }
    let implied = implied.clamp(current / MAX_JOB_RATIO, current * MAX_JOB_RATIO);
    let moved = (current.ln() * (1.0 - OBSERVATION_WEIGHT) + implied.ln() * OBSERVATION_WEIGHT).exp();
    let moved = moved.clamp(*SPEED_FACTORS.start(), *SPEED_FACTORS.end());
    (moved * 1000.0).round() / 1000.0
}

/// One finished task, as a job's evidence about its workers' speeds.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTiming {
    /// The worker that rendered it.
    pub worker: String,
    /// Seconds Blender spent per frame.
    pub seconds_per_frame: f64,
    /// The worker's factor now.
    pub factor: f64,
}

/// What a job's tasks imply about the factor of each worker that rendered some: the job's
/// reference seconds per frame (the robust median over its tasks of seconds × factor) over the
/// worker's own seconds per frame (robust median over its tasks). Only jobs that two or more
/// workers rendered say anything (alone, a worker is only compared with itself).
pub fn implied_factors(tasks: &[TaskTiming]) -> Vec<(String, f64)> {
    let mut workers: Vec<&str> = tasks.iter().map(|it| it.worker.as_str()).collect();
    workers.sort_unstable();
    workers.dedup();
    if workers.len() < 2 {
        return Vec::new();
    }
    let normalized: Vec<f64> = tasks.iter().map(|it| it.seconds_per_frame * it.factor).collect();
    let Some(reference) = robust(&normalized) else { return Vec::new() };
    workers
        .into_iter()
        .filter_map(|worker| {
            let own: Vec<f64> = tasks.iter().filter(|it| it.worker == worker).map(|it| it.seconds_per_frame).collect();
            let own = robust(&own)?;
            Some((worker.to_string(), reference.value / own.value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outlier_does_not_move_the_estimate() {
        let estimate = robust(&[1.0, 1.02, 0.98, 1.01, 3.5]).unwrap();
        assert_eq!((estimate.value, estimate.kept, estimate.dropped), (1.005, 4, 1));
        assert!((estimate.spread - 0.04 / 2.0 / 1.005).abs() < 1e-9, "{estimate:?}");
        // Close samples are all kept, however tight the rest.
        assert_eq!(robust(&[1.0, 1.0, 1.0, 1.05]).unwrap().kept, 4);
        assert_eq!(robust(&[f64::NAN, -1.0, 0.0]), None);
        assert_eq!(robust(&[2.0]).unwrap(), Estimate { value: 2.0, spread: 0.0, kept: 1, dropped: 0 });
    }

    #[test]
    fn a_job_shared_by_two_workers_says_how_they_compare() {
        let task = |worker: &str, seconds_per_frame: f64, factor: f64| TaskTiming {
            worker: worker.into(),
            seconds_per_frame,
            factor,
        };
        // Both measured 1.0, but b takes twice as long per frame (and once hit a hiccup).
        let tasks = [
            task("a", 1.0, 1.0),
            task("a", 1.0, 1.0),
            task("b", 2.0, 1.0),
            task("b", 2.0, 1.0),
            task("b", 9.0, 1.0),
            task("a", 1.1, 1.0),
        ];
        let implied = implied_factors(&tasks);
        let factor = |name: &str| implied.iter().find(|it| it.0 == name).unwrap().1;
        assert!(factor("a") / factor("b") > 1.9 && factor("a") / factor("b") < 2.2, "{implied:?}");
        assert!(implied_factors(&tasks[..2]).is_empty(), "one worker alone says nothing");
        // Each job moves a factor part of the way; several settle it.
        let mut b = 1.0;
        for _ in 0..10 {
            b = refined(b, 0.5);
        }
        assert!((b - 0.5).abs() < 0.02, "{b}");
        assert_eq!(refined(1.0, f64::NAN), 1.0);
        assert_eq!(refined(1.0, 1e9), 1.231, "a wild job counts as one twice as fast");
        assert_eq!(refined(999.0, 1e9), 1000.0, "never past the bounds");
    }
}
