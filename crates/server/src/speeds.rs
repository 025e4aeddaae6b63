//! Speed factors refined by the jobs workers share (`orchard_domain::speed` has the rules):
//! when a job completes, each worker that rendered some of it is compared with the others.

use orchard_domain::TaskStatus;
use orchard_domain::speed::{TaskTiming, implied_factors, refined};
use orchard_store::Task;
use tracing::info;

use crate::error::Result;
use crate::state::AppState;

/// Refines the speed factors of the workers that rendered a completed job's tasks, from how
/// their times per frame compare (`orchard_domain::speed`): jobs rendered by two or more
/// workers only, each moving a factor part of the way.
pub(crate) async fn refine(state: &AppState, tasks: &[Task]) -> Result<()> {
    let mut factors: std::collections::HashMap<String, Option<f64>> = std::collections::HashMap::new();
    let mut timings = Vec::new();
    for task in tasks.iter().filter(|it| it.status == TaskStatus::Completed) {
        let (Some(worker), Some(seconds)) = (&task.worker_id, task.render_seconds) else { continue };
        let frames = task.frames.len();
        if frames == 0 || seconds <= 0.0 {
            continue;
        }
        if !factors.contains_key(worker) {
            let factor = state.store.get_worker(worker).await?.map(|it| it.speed_factor);
            factors.insert(worker.clone(), factor);
        }
        let Some(Some(factor)) = factors.get(worker) else { continue };
        timings.push(TaskTiming {
            worker: worker.clone(),
            seconds_per_frame: seconds / frames as f64,
            factor: *factor,
        });
    }
    for (worker, implied) in implied_factors(&timings) {
        let Some(Some(current)) = factors.get(&worker) else { continue };
        let factor = refined(*current, implied);
        state.store.refine_speed(&worker, factor).await?;
        state.presence.speed_refined(&worker, factor);
        info!(worker = %worker, from = current, to = factor, implied, "speed factor refined");
    }
    Ok(())
}
