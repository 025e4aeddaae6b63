//! The worker's loop: claim, render, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use orchard_api::Assignment;
use orchard_domain::RenderConfig;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::blender::{DRIVER, DriverEvent, Invocation, RunningBlender};
use crate::outputs::check_frame;
use crate::{Coordinator, LeaseStatus, RenderedFrame};

/// A worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Stable id, reported with every claim.
    pub id: String,
    /// The Blender executable.
    pub blender: PathBuf,
    /// Scene cache and task scratch space.
    pub work_dir: PathBuf,
    /// Render threads; `None` for every core.
    pub threads: Option<u32>,
    /// Wait between claims when there is no work.
    pub idle_poll: Duration,
    /// Heartbeat period while Blender runs; cancel reaches Blender within about this long.
    pub heartbeat_every: Duration,
}

/// A worker bound to a coordinator.
pub struct Worker<C: Coordinator> {
    coordinator: Arc<C>,
    config: WorkerConfig,
}

/// How one task ended, for the log.
enum Outcome {
    Completed,
    Failed(String),
    Lost,
    Shutdown,
}

impl<C: Coordinator> Worker<C> {
    /// A worker that asks `coordinator` for work.
    pub fn new(coordinator: Arc<C>, config: WorkerConfig) -> Worker<C> {
        Worker { coordinator, config }
    }

    /// Runs until `shutdown` is canceled. A task in progress is abandoned then: its lease
    /// expires and another worker takes it.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let driver = self.config.work_dir.join("orchard_driver.py");
        tokio::fs::create_dir_all(&self.config.work_dir)
            .await
            .with_context(|| format!("creating {}", self.config.work_dir.display()))?;
        tokio::fs::write(&driver, DRIVER).await.with_context(|| format!("writing {}", driver.display()))?;
        info!(worker = %self.config.id, blender = %self.config.blender.display(), "worker started");
        while !shutdown.is_cancelled() {
            let claimed = self.coordinator.claim(&self.config.id).await;
            match claimed {
                Ok(Some(assignment)) => {
                    let task_id = assignment.task_id.clone();
                    let outcome = self.run_task(&assignment, &driver, &shutdown).await;
                    match outcome {
                        Outcome::Completed => info!(task = %task_id, "task completed"),
                        Outcome::Failed(error) => warn!(task = %task_id, %error, "task failed"),
                        Outcome::Lost => info!(task = %task_id, "task stopped: canceled or reassigned"),
                        Outcome::Shutdown => info!(task = %task_id, "task abandoned at shutdown"),
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.idle_poll) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Err(error) => {
                    warn!(error = format!("{error:#}"), "claim failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.idle_poll * 4) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        Ok(())
    }

    async fn run_task(&self, assignment: &Assignment, driver: &Path, shutdown: &CancellationToken) -> Outcome {
        let scratch = self.config.work_dir.join("tasks").join(format!("{}-{}", assignment.task_id, assignment.attempt));
        let outcome = match self.render(assignment, driver, &scratch, shutdown).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Failed(format!("{error:#}")),
        };
        if let Outcome::Failed(error) = &outcome
            && let Err(report) = self.coordinator.fail(assignment, error).await
        {
            warn!(error = format!("{report:#}"), "could not report a failed task");
        }
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        outcome
    }

    async fn render(
        &self,
        assignment: &Assignment,
        driver: &Path,
        scratch: &Path,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Outcome> {
        let config: RenderConfig =
            serde_json::from_value(assignment.config.clone()).context("the task's render config does not parse")?;
        let scene = self.scene_file(assignment).await?;
        let out_dir = scratch.join("out");
        tokio::fs::create_dir_all(&out_dir).await.with_context(|| format!("creating {}", out_dir.display()))?;
        let task_file = scratch.join("task.json");
        let task = json!({
            "frames": assignment.frames,
            "outputDir": out_dir,
            "scene": assignment.scene.scene_name,
            "config": assignment.config,
        });
        tokio::fs::write(&task_file, task.to_string()).await.context("writing the task file")?;

        let invocation = Invocation {
            blender: &self.config.blender,
            scene: &scene,
            driver,
            task: &task_file,
            threads: self.config.threads,
        };
        let started = Instant::now();
        let mut blender = RunningBlender::spawn(&invocation)
            .with_context(|| format!("could not start Blender at {}", self.config.blender.display()))?;
        let mut frames: Vec<RenderedFrame> = Vec::new();
        let mut driver_error: Option<String> = None;
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_every);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                event = blender.next_event() => match event {
                    Some(DriverEvent::Frame { frame, path, .. }) => {
                        let path = PathBuf::from(path);
                        let file_name = path.file_name().map(|it| it.to_string_lossy().into_owned()).unwrap_or_default();
                        frames.push(RenderedFrame { frame, path, file_name });
                    }
                    Some(DriverEvent::Error { message }) => driver_error = Some(message),
                    Some(DriverEvent::Started { .. } | DriverEvent::Done) => {}
                    None => break,
                },
                _ = heartbeat.tick() => {
                    match self.coordinator.heartbeat(assignment, frames.len()).await {
                        Ok(LeaseStatus::Held) => {}
                        Ok(LeaseStatus::Lost) => {
                            blender.kill().await;
                            return Ok(Outcome::Lost);
                        }
                        Err(error) => warn!(error = format!("{error:#}"), "heartbeat failed; rendering on"),
                    }
                }
                _ = shutdown.cancelled() => {
                    blender.kill().await;
                    return Ok(Outcome::Shutdown);
                }
            }
        }
        let status = blender.wait().await.context("waiting for Blender")?;
        let render_seconds = started.elapsed().as_secs_f64();
        if let Some(message) = driver_error {
            return Ok(Outcome::Failed(format!("{message}\n--- Blender log ---\n{}", blender.log_tail())));
        }
        if !status.success() {
            let how = match status.code() {
                Some(code) => format!("Blender exited with status {code}"),
                None => "Blender was killed by a signal (crash)".to_string(),
            };
            return Ok(Outcome::Failed(format!("{how}\n--- Blender log ---\n{}", blender.log_tail())));
        }
        let expected = config.output_size();
        for frame in &assignment.frames {
            let Some(rendered) = frames.iter().find(|it| it.frame == *frame) else {
                return Ok(Outcome::Failed(format!(
                    "frame {frame} was not rendered\n--- Blender log ---\n{}",
                    blender.log_tail()
                )));
            };
            if let Err(error) = check_frame(*frame, &rendered.path, expected) {
                return Ok(Outcome::Failed(error.to_string()));
            }
        }
        match self.coordinator.complete(assignment, frames, render_seconds).await? {
            LeaseStatus::Held => Ok(Outcome::Completed),
            LeaseStatus::Lost => Ok(Outcome::Lost),
        }
    }

    /// The scene on local disk, fetched once per content hash (a zip is extracted once).
    async fn scene_file(&self, assignment: &Assignment) -> anyhow::Result<PathBuf> {
        let scene = &assignment.scene;
        let hash = &scene.sha256;
        if hash.len() != 64 || !hash.bytes().all(|it| it.is_ascii_hexdigit()) {
            anyhow::bail!("the scene's sha256 {hash:?} is not a sha256");
        }
        let dir = self.config.work_dir.join("scenes").join(hash);
        let file_name = if scene.file_type == "zip" { "scene.zip" } else { "scene.blend" };
        let file = dir.join(file_name);
        if !file.exists() {
            tokio::fs::create_dir_all(&dir).await?;
            let partial = dir.join(format!("{file_name}.partial-{}", uuid::Uuid::new_v4()));
            self.coordinator.fetch_scene(assignment, &partial).await.context("fetching the scene")?;
            tokio::fs::rename(&partial, &file).await?;
        }
        if scene.file_type != "zip" {
            return Ok(file);
        }
        let project = dir.join("project");
        let main_file = scene.main_file.clone();
        let done_marker = dir.join("project.extracted");
        if done_marker.exists() {
            let main = main_file.context("a zip scene needs its main file")?;
            return Ok(project.join(main));
        }
        let extracted = tokio::task::spawn_blocking(move || -> anyhow::Result<PathBuf> {
            let zip = orchard_blend::ZipProject::open(
                &file,
                main_file.as_deref(),
                &orchard_blend::AnalyzeOptions::default(),
            )?;
            Ok(zip.extract_to(&project)?)
        })
        .await??;
        tokio::fs::write(&done_marker, b"").await?;
        Ok(extracted)
    }
}
