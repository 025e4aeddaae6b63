//! The worker's loop: claim, render, report.
//!
//! A task of the job whose scene is already loaded goes to the same Blender (a warm
//! session): the driver reads the next frames from stdin, so Blender's start-up and the
//! scene load are paid once per job, not once per task. A crash ends the session; the next
//! task starts a fresh one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use orchard_api::{Assignment, ClaimNext};
use orchard_domain::RenderConfig;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::blender::{DRIVER, DriverEvent, Invocation, RunningBlender};
use crate::outputs::check_frame;
use crate::packaging::Packaged;
use crate::{Beat, Coordinator, Delivery, LeaseStatus, RenderedComposite, RenderedFrame};

/// How long Blender may take to exit once it has said it is done.
const EXIT_WAIT: Duration = Duration::from_secs(30);

/// A worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Stable id, reported with every claim.
    pub id: String,
    /// The Blenders offered: (version as the probe reported it, executable).
    pub blenders: Vec<(String, PathBuf)>,
    /// Scene cache and task scratch space.
    pub work_dir: PathBuf,
    /// Render threads; `None` for every core.
    pub threads: Option<u32>,
    /// Heartbeat period while Blender runs; cancel reaches Blender within about this long.
    pub heartbeat_every: Duration,
    /// A task that finishes no frame for this long is declared hung and killed.
    pub hang_timeout: Duration,
    /// Keep Blender open between tasks of the same job.
    pub warm_sessions: bool,
    /// Close a warm session after this long without a task for it.
    pub warm_idle: Duration,
    /// Bytes the scene cache may hold; the scenes used longest ago go past it.
    pub cache_bytes: u64,
    /// The ffmpeg that makes jobs' videos; `None`: this worker makes none.
    pub ffmpeg: Option<PathBuf>,
}

/// A worker bound to a coordinator.
pub struct Worker<C: Coordinator> {
    pub(crate) coordinator: Arc<C>,
    pub(crate) config: WorkerConfig,
    pub(crate) driver: PathBuf,
    pub(crate) temp_dir: PathBuf,
}

/// A Blender kept open with a job's scene loaded.
struct Session {
    job_id: String,
    blender: PathBuf,
    running: RunningBlender,
    idle_since: Instant,
    /// The scene renders a cropped border: its frames have no fixed size to check.
    cropped: bool,
}

/// How one task ended.
enum Outcome {
    /// With the next task when the completion claimed one.
    Completed(Option<Box<Assignment>>),
    Failed(String),
    Lost,
    Shutdown,
}

impl<C: Coordinator> Worker<C> {
    /// A worker that asks `coordinator` for work.
    pub fn new(coordinator: Arc<C>, config: WorkerConfig) -> Worker<C> {
        let driver = config.work_dir.join("orchard_driver.py");
        let temp_dir = config.work_dir.join("tmp");
        Worker { coordinator, config, driver, temp_dir }
    }

    /// Writes the driver where Blender can read it.
    pub async fn install_driver(work_dir: &Path) -> anyhow::Result<PathBuf> {
        tokio::fs::create_dir_all(work_dir).await.with_context(|| format!("creating {}", work_dir.display()))?;
        let driver = work_dir.join("orchard_driver.py");
        tokio::fs::write(&driver, DRIVER).await.with_context(|| format!("writing {}", driver.display()))?;
        Ok(driver)
    }

    /// Runs until `shutdown` is canceled. A task in progress is abandoned then: its lease
    /// expires and another worker takes it.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        Self::install_driver(&self.config.work_dir).await?;
        // Whatever a killed Blender left behind last time goes now.
        let _ = tokio::fs::remove_dir_all(&self.temp_dir).await;
        tokio::fs::create_dir_all(&self.temp_dir)
            .await
            .with_context(|| format!("creating {}", self.temp_dir.display()))?;
        info!(worker = %self.config.id, "worker started");
        let mut session: Option<Session> = None;
        // The task claimed along with the last completion.
        let mut next: Option<Assignment> = None;
        while !shutdown.is_cancelled() {
            if let Some(open) = &session
                && open.idle_since.elapsed() > self.config.warm_idle
                && let Some(mut closed) = session.take()
            {
                closed.running.kill().await;
            }
            let prefer = session.as_ref().map(|it| it.job_id.clone());
            let claimed = match next.take() {
                Some(task) => Ok(Some(task)),
                None => tokio::select! {
                    claimed = self.coordinator.claim(&self.config.id, prefer.as_deref()) => claimed,
                    _ = shutdown.cancelled() => break,
                },
            };
            match claimed {
                Ok(Some(assignment)) if assignment.packaging.is_some() => {
                    let task_id = assignment.task_id.clone();
                    match self.package(&assignment, &shutdown).await {
                        Ok(Packaged::Done) => info!(task = %task_id, job = %assignment.job_id, "video made"),
                        Ok(Packaged::Lost) => info!(task = %task_id, "video stopped: reassigned or canceled"),
                        Ok(Packaged::Shutdown) => info!(task = %task_id, "video abandoned at shutdown"),
                        Err(error) => warn!(task = %task_id, error = format!("{error:#}"), "video failed"),
                    }
                }
                Ok(Some(assignment)) => {
                    let task_id = assignment.task_id.clone();
                    match self.run_task(&assignment, &mut session, &shutdown).await {
                        Outcome::Completed(following) => {
                            info!(task = %task_id, "task completed");
                            next = following.map(|it| *it);
                        }
                        Outcome::Failed(error) => warn!(task = %task_id, %error, "task failed"),
                        Outcome::Lost => info!(task = %task_id, "task stopped: canceled or reassigned"),
                        Outcome::Shutdown => info!(task = %task_id, "task abandoned at shutdown"),
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    warn!(error = format!("{error:#}"), "claim failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        if let Some(mut open) = session.take() {
            open.running.kill().await;
        }
        Ok(())
    }

    async fn run_task(
        &self,
        assignment: &Assignment,
        session: &mut Option<Session>,
        shutdown: &CancellationToken,
    ) -> Outcome {
        let scratch = self.config.work_dir.join("tasks").join(format!("{}-{}", assignment.task_id, assignment.attempt));
        let outcome = match self.render(assignment, session, &scratch, shutdown).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Failed(format!("{error:#}")),
        };
        let mut log = None;
        if !matches!(outcome, Outcome::Completed(_)) {
            // A failed, lost or abandoned task leaves its Blender in an unknown state.
            if let Some(mut open) = session.take() {
                open.running.kill().await;
                log = open.running.take_log();
            }
        }
        if let Outcome::Failed(error) = &outcome
            && let Err(report) = self.coordinator.fail(assignment, error, log).await
        {
            warn!(error = format!("{report:#}"), "could not report a failed task");
        }
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        outcome
    }

    /// The Blender for the task: (its version, its executable).
    pub(crate) fn blender_for(&self, assignment: &Assignment) -> anyhow::Result<(String, PathBuf)> {
        let chosen = match &assignment.blender_version {
            Some(version) => self.config.blenders.iter().find(|(it, _)| it == version),
            None => self.config.blenders.first(),
        };
        chosen.cloned().context("this worker has no Blender of the version the task needs")
    }

    async fn render(
        &self,
        assignment: &Assignment,
        session: &mut Option<Session>,
        scratch: &Path,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Outcome> {
        let config: RenderConfig =
            serde_json::from_value(assignment.config.clone()).context("the task's render config does not parse")?;
        let (version, blender) = self.blender_for(assignment)?;
        let out_dir = scratch.join("out");
        tokio::fs::create_dir_all(&out_dir).await.with_context(|| format!("creating {}", out_dir.display()))?;

        let reuse = session.as_ref().is_some_and(|it| it.job_id == assignment.job_id && it.blender == blender);
        if !reuse && let Some(mut old) = session.take() {
            old.running.kill().await;
        }
        if reuse && let Some(open) = session.as_mut() {
            open.running.clear_log();
            let command = json!({"frames": assignment.frames, "outputDir": out_dir});
            if open.running.send_line(&command.to_string()).await.is_err() {
                // The session died while idle; start afresh.
                if let Some(mut dead) = session.take() {
                    dead.running.kill().await;
                }
            }
        }
        if session.is_none() {
            let scene = self.scene_file(assignment).await?;
            let task_file = scratch.join("task.json");
            let task = json!({
                "frames": assignment.frames,
                "outputDir": out_dir,
                "scene": assignment.scene.scene_name,
                "config": assignment.config,
                "warm": self.config.warm_sessions,
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
            let running = RunningBlender::spawn(&invocation)
                .with_context(|| format!("could not start Blender at {}", blender.display()))?;
            *session = Some(Session {
                job_id: assignment.job_id.clone(),
                blender: blender.clone(),
                running,
                idle_since: Instant::now(),
                cropped: false,
            });
        }
        let Some(open) = session.as_mut() else {
            anyhow::bail!("no Blender session");
        };

        let started = Instant::now();
        let mut frames: Vec<RenderedFrame> = Vec::new();
        // Blender's time on the frames themselves: starting Blender and loading the scene are
        // booting, which `normalizedSeconds` does not count (nor do speed comparisons).
        let mut frame_seconds = 0.0;
        let mut composites: Vec<RenderedComposite> = Vec::new();
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_every);
        heartbeat.tick().await;
        let mut last_progress = tokio::time::Instant::now();
        let finished = loop {
            let hang_at = last_progress + self.config.hang_timeout;
            tokio::select! {
                event = open.running.next_event() => match event {
                    Some(DriverEvent::Frame { frame, path, seconds, composites: written, views }) => {
                        last_progress = tokio::time::Instant::now();
                        frame_seconds += seconds.max(0.0);
                        for (index, file) in written.into_iter().enumerate() {
                            let file_name = composite_name(frame, index, &file.relative_path);
                            composites.push(RenderedComposite {
                                frame,
                                node: file.node,
                                path: PathBuf::from(file.path),
                                relative_path: file.relative_path,
                                file_name,
                                view: file.view,
                            });
                        }
                        // A multiview render writes a file per view; the frame is each of them.
                        let files = match views.is_empty() {
                            true => vec![(String::new(), path)],
                            false => views.into_iter().map(|it| (it.view, it.path)).collect(),
                        };
                        for (view, path) in files {
                            let path = PathBuf::from(path);
                            let file_name =
                                path.file_name().map(|it| it.to_string_lossy().into_owned()).unwrap_or_default();
                            frames.push(RenderedFrame { frame, path, file_name, view });
                        }
                    }
                    Some(DriverEvent::Error { message }) => {
                        return Ok(Outcome::Failed(format!("{message}\n--- Blender log ---\n{}", open.running.log_tail())));
                    }
                    Some(DriverEvent::Done) => break true,
                    Some(DriverEvent::Started { cropped, .. }) => open.cropped = cropped,
                    Some(DriverEvent::Capabilities { .. } | DriverEvent::Packaged { .. }) => {}
                    None => break false,
                },
                _ = heartbeat.tick() => {
                    let beat = Beat {
                        frames_done: frames.len(),
                        frame_progress: open.running.frame_progress(),
                        log: open.running.take_log(),
                    };
                    match self.coordinator.heartbeat(assignment, &beat).await {
                        Ok(LeaseStatus::Held) => {}
                        Ok(LeaseStatus::Lost) => return Ok(Outcome::Lost),
                        Err(error) => {
                            warn!(error = format!("{error:#}"), "heartbeat failed; rendering on");
                            if let Some(log) = beat.log {
                                open.running.restore_log(log);
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(hang_at) => {
                    return Ok(Outcome::Failed(format!(
                        "Blender hung: no frame finished for {} s\n--- Blender log ---\n{}",
                        self.config.hang_timeout.as_secs(),
                        open.running.log_tail()
                    )));
                }
                _ = shutdown.cancelled() => return Ok(Outcome::Shutdown),
            }
        };
        let render_seconds = if frame_seconds > 0.0 { frame_seconds } else { started.elapsed().as_secs_f64() };
        // Checking and uploading big frames takes time too: keep the lease alive until the
        // server has them.
        let _keepalive = self.keep_lease(assignment).drop_guard();
        if !finished {
            let status = match tokio::time::timeout(EXIT_WAIT, open.running.wait()).await {
                Ok(status) => status.context("waiting for Blender")?,
                Err(_) => {
                    open.running.kill().await;
                    return Ok(Outcome::Failed("Blender closed its output but did not exit".into()));
                }
            };
            let how = match status.code() {
                Some(0) => "Blender exited before finishing the task".to_string(),
                Some(code) => format!("Blender exited with status {code}"),
                None => "Blender crashed (killed by a signal)".to_string(),
            };
            return Ok(Outcome::Failed(format!("{how}\n--- Blender log ---\n{}", open.running.log_tail())));
        }
        if !self.config.warm_sessions && tokio::time::timeout(EXIT_WAIT, open.running.wait()).await.is_err() {
            // The frames are written; a Blender that hangs on exit is not the task's problem.
            open.running.kill().await;
        }
        open.idle_since = Instant::now();
        let expected = (!open.cropped).then(|| config.output_size());
        let mut blank = Vec::new();
        let mut non_finite = Vec::new();
        for frame in &assignment.frames {
            if !frames.iter().any(|it| it.frame == *frame) {
                return Ok(Outcome::Failed(format!(
                    "frame {frame} was not rendered\n--- Blender log ---\n{}",
                    open.running.log_tail()
                )));
            }
            // Every view's file is checked; a frame is blank when one of its views is.
            for rendered in frames.iter().filter(|it| it.frame == *frame) {
                match check_frame(*frame, &rendered.path, expected) {
                    Ok(checked) if checked.blank && config.fail_on_blank == Some(true) => {
                        return Ok(Outcome::Failed(format!(
                            "frame {frame} is blank: every pixel is one colour (the job has failOnBlank)"
                        )));
                    }
                    Ok(checked) => {
                        if checked.blank && !blank.contains(frame) {
                            blank.push(*frame);
                        }
                        if checked.non_finite > 0 && !non_finite.contains(frame) {
                            warn!(frame, samples = checked.non_finite, "NaN or infinite samples in the frame");
                            non_finite.push(*frame);
                        }
                    }
                    Err(error) => return Ok(Outcome::Failed(error.to_string())),
                }
            }
        }
        // Compositor files are checked like frames, but for their size: a node may write any.
        for composite in &composites {
            if let Err(error) = check_frame(composite.frame, &composite.path, None) {
                return Ok(Outcome::Failed(format!("compositor node {:?}: {error}", composite.node)));
            }
        }
        let log = open.running.take_log();
        if !self.config.warm_sessions {
            *session = None;
        }
        // Ask for the next task in the same call, the loaded job's first.
        let claim_next =
            (!shutdown.is_cancelled()).then(|| ClaimNext { prefer_job: session.as_ref().map(|it| it.job_id.clone()) });
        let delivery =
            Delivery { frames, render_seconds, blender_version: version, log, composites, blank, non_finite };
        match self.coordinator.complete(assignment, delivery, claim_next).await? {
            (LeaseStatus::Held, next) => Ok(Outcome::Completed(next.map(Box::new))),
            (LeaseStatus::Lost, _) => Ok(Outcome::Lost),
        }
    }

    /// Heartbeats in the background until the returned token is canceled.
    pub(crate) fn keep_lease(&self, assignment: &Assignment) -> CancellationToken {
        let stop = CancellationToken::new();
        let (coordinator, assignment, every, token) =
            (self.coordinator.clone(), assignment.clone(), self.config.heartbeat_every, stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {
                        let beat = Beat { frames_done: assignment.frames.len(), ..Beat::default() };
                        if let Ok(LeaseStatus::Lost) = coordinator.heartbeat(&assignment, &beat).await {
                            return;
                        }
                    }
                    _ = token.cancelled() => return,
                }
            }
        });
        stop
    }

    /// The scene on local disk, fetched once per content hash (a zip is extracted once).
    pub(crate) async fn scene_file(&self, assignment: &Assignment) -> anyhow::Result<PathBuf> {
        let scene = &assignment.scene;
        let hash = &scene.sha256;
        if hash.len() != 64 || !hash.bytes().all(|it| it.is_ascii_hexdigit()) {
            anyhow::bail!("the scene's sha256 {hash:?} is not a sha256");
        }
        let dir = self.config.work_dir.join("scenes").join(hash);
        let file_name = if scene.file_type == "zip" { "scene.zip" } else { "scene.blend" };
        let file = dir.join(file_name);
        if dir.exists() {
            crate::cache::touch(&dir);
        }
        if !file.exists() {
            tokio::fs::create_dir_all(&dir).await?;
            let partial = dir.join(format!("{file_name}.partial-{}", uuid::Uuid::new_v4()));
            self.coordinator.fetch_scene(assignment, &partial).await.context("fetching the scene")?;
            // The cache is keyed by content: a damaged download must not stay under that key.
            let check = partial.clone();
            let actual = tokio::task::spawn_blocking(move || sha256_of(&check)).await??;
            if actual != hash.to_ascii_lowercase() {
                let _ = tokio::fs::remove_file(&partial).await;
                anyhow::bail!("the downloaded scene is damaged (sha256 {actual}, expected {hash})");
            }
            tokio::fs::rename(&partial, &file).await?;
            crate::cache::touch(&dir);
            // A new scene: the cache may have grown past its size.
            let (root, limit, keep) = (self.config.work_dir.join("scenes"), self.config.cache_bytes, dir.clone());
            let removed = tokio::task::spawn_blocking(move || crate::cache::trim(&root, limit, &keep)).await?;
            if !removed.is_empty() {
                info!(scenes = removed.len(), "scene cache trimmed to its size");
            }
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
        let _ = tokio::fs::remove_dir_all(&project).await;
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

/// The plain, job-unique name a compositor file is delivered under: its frame, its place among
/// the frame's files, and its own name with anything but `A–Z a–z 0–9 . _ -` made `_`.
fn composite_name(frame: i32, index: usize, relative_path: &str) -> String {
    let own = relative_path.rsplit('/').next().unwrap_or(relative_path);
    let clean: String = own
        .chars()
        .map(|it| if it.is_ascii_alphanumeric() || matches!(it, '.' | '_' | '-') { it } else { '_' })
        .collect();
    let name = format!("c{frame}-{index}-{clean}");
    name.chars().take(orchard_api::limits::MAX_OUTPUT_FILE_NAME).collect()
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut hasher = sha2::Sha256::new();
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}
