//! A packaging task: a job's video. The frames come down through their signed URLs; one
//! Blender opens the scene to mix its sound down (once, for the whole range: a chunked render
//! never has it) and, for EXR or 16-bit frames, to convert them through the scene's view
//! transform; ffmpeg encodes; the video is checked, uploaded and described.

use std::path::{Path, PathBuf};

use anyhow::Context;
use orchard_api::{Assignment, PackagingAssignment};
use orchard_domain::RenderConfig;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::blender::{DriverEvent, Invocation, RunningBlender};
use crate::video::{self, Encode};
use crate::{Coordinator, LeaseStatus, Worker};

/// How a packaging task ended.
pub(crate) enum Packaged {
    /// Delivered.
    Done,
    /// The lease went to another worker (or the job was canceled).
    Lost,
    /// The worker is shutting down.
    Shutdown,
}

impl<C: Coordinator> Worker<C> {
    /// Makes, checks and delivers a job's video; a failure is reported to the farm.
    pub(crate) async fn package(
        &self,
        assignment: &Assignment,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Packaged> {
        let scratch = self.config.work_dir.join("tasks").join(format!("{}-{}", assignment.task_id, assignment.attempt));
        let made = self.make_video(assignment, &scratch, shutdown).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        match made {
            Ok(outcome) => Ok(outcome),
            Err(error) => {
                let message = format!("{error:#}");
                self.coordinator.fail(assignment, &message, None).await?;
                Err(error)
            }
        }
    }

    async fn make_video(
        &self,
        assignment: &Assignment,
        scratch: &Path,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Packaged> {
        let packaging = assignment.packaging.as_ref().context("not a packaging task")?;
        let ffmpeg = self.config.ffmpeg.as_deref().context("this worker has no ffmpeg")?;
        if packaging.frames.is_empty() {
            anyhow::bail!("the job has no frames to make a video of");
        }
        let config: RenderConfig =
            serde_json::from_value(assignment.config.clone()).context("the job's render config does not parse")?;
        let _keepalive = self.keep_lease(assignment).drop_guard();
        let (inputs, prepared) = (scratch.join("in"), scratch.join("prepared"));
        for folder in [&inputs, &prepared] {
            tokio::fs::create_dir_all(folder).await.with_context(|| format!("creating {}", folder.display()))?;
        }
        let mut frames = Vec::with_capacity(packaging.frames.len());
        for (index, source) in packaging.frames.iter().enumerate() {
            if shutdown.is_cancelled() {
                return Ok(Packaged::Shutdown);
            }
            let extension = extension_of(&source.file_name);
            let local = inputs.join(format!("f_{:06}.{extension}", index + 1));
            self.coordinator
                .download(&source.url, &local)
                .await
                .with_context(|| format!("downloading frame {}", source.frame))?;
            frames.push((source.frame, local));
        }
        let extension = extension_of(&packaging.frames[0].file_name);
        // 8-bit PNG and JPEG go to ffmpeg as they are; anything else is linear or deep.
        let as_they_are = matches!(extension.as_str(), "jpg" | "jpeg")
            || (extension == "png" && config.output_settings.color_depth.as_deref() != Some("16"));
        // Blender opens the scene only for what it alone can do: mix sound down, convert frames.
        let prepared_by_blender = if packaging.sound || !as_they_are {
            match self.prepare(assignment, packaging, &frames, &prepared, !as_they_are, shutdown).await? {
                Some(prepared) => prepared,
                None => return Ok(Packaged::Shutdown),
            }
        } else {
            Prepared { audio: None }
        };
        let (folder, extension) =
            if as_they_are { (inputs.as_path(), extension) } else { (prepared.as_path(), "png".into()) };
        let output = scratch.join(&packaging.file_name);
        let input = Encode {
            folder,
            extension: &extension,
            count: frames.len(),
            fps: packaging.fps,
            audio: prepared_by_blender.audio.as_deref(),
            threads: self.config.threads,
        };
        let mut info = video::encode(ffmpeg, &input, &output).await?;
        info.file_name = packaging.file_name.clone();
        match self.coordinator.deliver_video(assignment, &output, info).await? {
            LeaseStatus::Held => Ok(Packaged::Done),
            LeaseStatus::Lost => Ok(Packaged::Lost),
        }
    }

    /// One Blender on the scene: the sound mixed down, and the frames converted when `convert`.
    /// `None` at shutdown.
    async fn prepare(
        &self,
        assignment: &Assignment,
        packaging: &PackagingAssignment,
        frames: &[(i32, PathBuf)],
        out_dir: &Path,
        convert: bool,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<Prepared>> {
        let scene = self.scene_file(assignment).await?;
        let (_, blender) = self.blender_for(assignment)?;
        let task_file = out_dir.join("task.json");
        let listed: Vec<_> = frames.iter().map(|(frame, path)| json!({"frame": frame, "path": path})).collect();
        let task = json!({
            "mode": "package",
            "frames": listed,
            "outputDir": out_dir,
            "scene": assignment.scene.scene_name,
            "convert": convert,
            "fps": packaging.fps,
        });
        tokio::fs::write(&task_file, task.to_string()).await.context("writing the task file")?;
        let invocation = Invocation {
            blender: &blender,
            scene: Some(&scene),
            driver: &self.driver,
            task: task_file.as_os_str(),
            threads: self.config.threads,
            temp_dir: Some(&self.temp_dir),
        };
        let mut running = RunningBlender::spawn(&invocation)
            .with_context(|| format!("could not start Blender at {}", blender.display()))?;
        let mut prepared = None;
        loop {
            tokio::select! {
                event = running.next_event() => match event {
                    Some(DriverEvent::Packaged { audio, frames: converted }) => {
                        if convert && converted.len() != frames.len() {
                            anyhow::bail!("Blender converted {} of {} frames", converted.len(), frames.len());
                        }
                        prepared = Some(Prepared { audio: audio.map(PathBuf::from) });
                    }
                    Some(DriverEvent::Error { message }) => {
                        running.kill().await;
                        anyhow::bail!("{message}\n--- Blender log ---\n{}", running.log_tail());
                    }
                    Some(DriverEvent::Done) | None => break,
                    Some(_) => {}
                },
                _ = shutdown.cancelled() => {
                    running.kill().await;
                    return Ok(None);
                }
            }
        }
        if tokio::time::timeout(std::time::Duration::from_secs(30), running.wait()).await.is_err() {
            running.kill().await;
        }
        prepared
            .map(Some)
            .with_context(|| format!("Blender stopped before the video's inputs were ready\n{}", running.log_tail()))
    }
}

/// What Blender prepared.
struct Prepared {
    /// The sound, when the scene has any.
    audio: Option<PathBuf>,
}

/// A frame file's extension, lowercase (`png` when it has none).
fn extension_of(file_name: &str) -> String {
    Path::new(file_name)
        .extension()
        .map(|it| it.to_string_lossy().to_ascii_lowercase())
        .filter(|it| it.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "png".into())
}
