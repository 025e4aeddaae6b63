//! Splitting jobs into tasks, and handing tasks to workers.
//!
//! [`LocalCoordinator`] is the worker protocol served in-process: `orchard up`'s workers call
//! it directly. Each method is one worker-protocol call (claim, heartbeat, complete, fail),
//! so serving it over HTTP adds transport, not behaviour.

use std::path::Path;

use anyhow::Context;
use async_trait::async_trait;
use orchard_api::{Assignment, SceneRef};
use orchard_store::{Lease, LeaseState, NewOutput, TaskDone};
use orchard_worker::{Coordinator, LeaseStatus, RenderedFrame};
use tracing::warn;
use uuid::Uuid;

use crate::state::{AppState, now_ms};

/// Attempts a task gets before it fails its job.
pub const MAX_ATTEMPTS: u32 = 3;

/// Frames per task. Blender's start-up (≈1.3 s) is paid once per task, so tasks hold several
/// frames; a job still splits into about 8 tasks so that several workers share it.
pub fn chunk_size(n_frames: usize) -> usize {
    n_frames.div_ceil(8).clamp(1, 20)
}

/// The worker protocol, served in-process.
#[derive(Clone)]
pub struct LocalCoordinator {
    state: AppState,
}

impl LocalCoordinator {
    /// A coordinator over the server's state.
    pub fn new(state: AppState) -> LocalCoordinator {
        LocalCoordinator { state }
    }
}

fn lease_of(assignment: &Assignment) -> anyhow::Result<Lease> {
    Ok(Lease { task_id: Uuid::parse_str(&assignment.task_id)?, attempt: assignment.attempt })
}

fn status_of(state: LeaseState) -> LeaseStatus {
    match state {
        LeaseState::Held => LeaseStatus::Held,
        LeaseState::Lost => LeaseStatus::Lost,
    }
}

#[async_trait]
impl Coordinator for LocalCoordinator {
    async fn claim(&self, worker_id: &str) -> anyhow::Result<Option<Assignment>> {
        let lease_ms = self.state.config.lease_ttl.as_millis() as i64;
        let Some(task) = self.state.store.claim_task(worker_id, lease_ms, now_ms()).await? else {
            return Ok(None);
        };
        let analysis = task.analysis.unwrap_or_default();
        let text = |key: &str| analysis[key].as_str().map(str::to_string);
        Ok(Some(Assignment {
            task_id: task.lease.task_id.to_string(),
            attempt: task.lease.attempt,
            job_id: task.job_id.to_string(),
            frames: task.frames.frames().to_vec(),
            scene: SceneRef {
                file_name: task.file_name,
                file_type: task.file_type,
                sha256: text("sha256").unwrap_or_default(),
                main_file: text("mainFile"),
                scene_name: text("activeScene"),
            },
            config: task.final_config,
        }))
    }

    async fn fetch_scene(&self, assignment: &Assignment, dest: &Path) -> anyhow::Result<()> {
        let job_id = Uuid::parse_str(&assignment.job_id)?;
        let job = self.state.store.get_job_internal(job_id).await?.context("the task's job is gone")?;
        self.state.blobs.get_to_file(&job.object_key, dest).await?;
        Ok(())
    }

    async fn heartbeat(&self, assignment: &Assignment, _frames_done: usize) -> anyhow::Result<LeaseStatus> {
        let lease_ms = self.state.config.lease_ttl.as_millis() as i64;
        let state = self.state.store.heartbeat(&lease_of(assignment)?, lease_ms, now_ms()).await?;
        Ok(status_of(state))
    }

    async fn complete(
        &self,
        assignment: &Assignment,
        frames: Vec<RenderedFrame>,
        render_seconds: f64,
    ) -> anyhow::Result<LeaseStatus> {
        let job_id = Uuid::parse_str(&assignment.job_id)?;
        let mut outputs = Vec::with_capacity(frames.len());
        for frame in &frames {
            let key = format!("jobs/{job_id}/frames/{}", frame.file_name);
            let size = self.state.blobs.put_file(&key, &frame.path).await?;
            outputs.push(NewOutput {
                kind: "frame".into(),
                frame: Some(frame.frame),
                file_name: frame.file_name.clone(),
                object_key: key,
                size: size as i64,
            });
        }
        // Speed factors come with worker registration (a reference render); until a worker
        // has one, it counts as the reference.
        let done = TaskDone { outputs, render_seconds, speed_factor: 1.0 };
        let state = self.state.store.complete_task(&lease_of(assignment)?, done, now_ms()).await?;
        if state == LeaseState::Held {
            if let Some(last) = frames.last() {
                match crate::previews::make_preview(&self.state, job_id, &last.path).await {
                    Ok(Some(key)) => self.state.store.set_preview(job_id, &key, now_ms()).await?,
                    Ok(None) => {}
                    Err(error) => warn!(job = %job_id, error = format!("{error:#}"), "no preview"),
                }
            }
            self.state.finalize_wakeup.notify_one();
        }
        Ok(status_of(state))
    }

    async fn fail(&self, assignment: &Assignment, error: &str) -> anyhow::Result<()> {
        // Keep the tail: that is where Blender says what went wrong.
        let error = tail_chars(error, 4000);
        self.state.store.fail_task(&lease_of(assignment)?, error, MAX_ATTEMPTS, now_ms()).await?;
        Ok(())
    }
}

fn tail_chars(text: &str, max: usize) -> &str {
    let n = text.chars().count();
    if n <= max {
        return text;
    }
    let skip = text.char_indices().nth(n - max).map(|(idx, _)| idx).unwrap_or(0);
    &text[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stay_between_one_and_twenty_frames() {
        assert_eq!(chunk_size(1), 1);
        assert_eq!(chunk_size(3), 1);
        assert_eq!(chunk_size(80), 10);
        assert_eq!(chunk_size(10_000), 20);
    }

    #[test]
    fn failure_messages_keep_their_tail() {
        assert_eq!(tail_chars("abcdef", 3), "def");
        assert_eq!(tail_chars("ab", 3), "ab");
        assert_eq!(tail_chars("ééé", 2), "éé");
    }
}
