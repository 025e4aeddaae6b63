//! Whether a job can progress: which connected worker can take it, and if none, why. The
//! verdict is applied by `lifecycle`, the one place that changes a job's status.

use orchard_domain::JobStatus;
use orchard_store::Job;

use super::Scheduler;
use super::matching::Requirements;
use crate::error::Result;
use crate::policy::BLOCKLIST_AFTER;

/// What a review of a job found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not booting or rendering: nothing to say.
    Idle,
    /// A connected worker can take it.
    Progressing,
    /// It waits, and this is why.
    Waiting(String),
    /// Every capable worker is blocklisted from it: it fails, with this message.
    Fail(String),
}

impl Scheduler {
    /// Reviews `job` against the connected workers.
    pub(crate) async fn review(&self, job: &Job) -> Result<Verdict> {
        if !matches!(job.status, JobStatus::Booting | JobStatus::Rendering) {
            return Ok(Verdict::Idle);
        }
        let workers = self.connected_workers().await?;
        if workers.is_empty() {
            return Ok(Verdict::Waiting("no worker is connected: start `orchard worker` (or `orchard up`)".into()));
        }
        let requirements = Requirements::of(job);
        let failures = self.store.job_failures_by_worker(job.id).await?;
        let mut capable = 0;
        let mut reasons = Vec::new();
        for worker in &workers {
            match requirements.choose(&worker.capabilities) {
                Ok(_) => {
                    capable += 1;
                    if !failures.iter().any(|(id, n)| id == &worker.id && *n >= BLOCKLIST_AFTER) {
                        return Ok(Verdict::Progressing);
                    }
                }
                Err(reason) => reasons.push(format!("{}: {reason}", worker.name)),
            }
        }
        if capable > 0 {
            let last = self.store.last_job_failure(job.id).await?.unwrap_or_default();
            return Ok(Verdict::Fail(format!(
                "every worker that can render this job failed it {BLOCKLIST_AFTER} times; last error: {last}"
            )));
        }
        Ok(Verdict::Waiting(format!("no connected worker can render this job: {}", reasons.join("; "))))
    }
}
