//! A job's progress counters (`GET /jobs/{id}/progress`, the event stream's `progress`
//! events), from its record: what is done, what is in flight, the ETA.

use orchard_api as api;
use orchard_store::Job;

use crate::clock::now_ms;

/// Frames' worth of progress before an ETA is given: less says too little about the pace.
const MIN_PACE_FRAMES: f64 = 0.05;

/// Progress counters of a job.
pub(crate) fn progress(job: &Job) -> api::Progress {
    let total = job.frames_total.max(0);
    let done = job.frames_done.clamp(0, total);
    let percent = if total > 0 { (done as f64 * 100.0 / total as f64 * 10.0).round() / 10.0 } else { 0.0 };
    let running = job.frames_running_progress.clamp(0.0, job.frames_rendering.max(0) as f64);
    // Frames so far, and how far the ones in flight are, tell the pace (so a job of one long
    // frame has an ETA too); before any of that there is nothing to extrapolate.
    let advanced = done as f64 + running;
    let eta_seconds = match job.render_started_at {
        Some(started) if advanced >= MIN_PACE_FRAMES && done < total => {
            let elapsed = (now_ms() - started).max(0) as f64 / 1000.0;
            Some((elapsed / advanced * (total as f64 - advanced).max(0.0)).round())
        }
        _ if done >= total && total > 0 => Some(0.0),
        _ => None,
    };
    api::Progress {
        job_id: job.id.to_string(),
        status: job.status.as_str().to_string(),
        frames_total: total,
        frames_done: done,
        frames_rendering: job.frames_rendering.max(0),
        frames_failed: job.frames_failed.max(0),
        frames_running_done: job.frames_running_done.clamp(0, job.frames_rendering.max(0)),
        frames_running_progress: (running * 1000.0).round() / 1000.0,
        frames_blank: job.frames_blank.max(0),
        frames_non_finite: job.frames_non_finite.max(0),
        percent,
        eta_seconds,
        normalized_seconds: job.normalized_seconds,
    }
}
