//! Orchard's render-node agent.
//!
//! A worker asks a [`Coordinator`] for work, fetches the scene once per content hash, runs
//! Blender headless through the Orchard driver (`driver/orchard_driver.py`, embedded in the
//! binary), heartbeats while Blender runs, checks every output, and hands the frames back.
//!
//! - [`agent`]: the claim → render → report loop.
//! - [`cache`]: the scene cache, kept within its size (least recently used scenes go).
//! - [`blender`]: one Blender process: command line, structured progress, killing its
//!   process group.
//! - [`outputs`]: checks that a frame exists, decodes, and has the expected size.
//! - [`probe`]: what a Blender can do, and this machine's speed factor.
//! - [`remote`]: the worker protocol over HTTP ([`remote::HttpCoordinator`]).
//! - [`video`]: ffmpeg: encoding a job's video and checking it; `packaging` runs the task.
//!
//! The agent talks to the farm only through [`Coordinator`]; `orchard worker` and
//! `orchard up`'s local workers both use [`remote::HttpCoordinator`].

pub mod agent;
pub mod blender;
pub mod cache;
pub mod install;
pub mod node;
pub mod outputs;
mod packaging;
pub mod probe;
pub mod remote;
pub mod video;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use orchard_api::{Assignment, ClaimNext};

pub use agent::{Worker, WorkerConfig};

/// Whether the worker still holds its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Go on.
    Held,
    /// Stop now: the job was canceled or the task went to another worker.
    Lost,
}

/// A frame rendered, checked, and waiting on local disk.
#[derive(Debug, Clone)]
pub struct RenderedFrame {
    /// Frame number.
    pub frame: i32,
    /// Where it is.
    pub path: PathBuf,
    /// The name it is delivered under (`0001.png`).
    pub file_name: String,
    /// Its view, for a multiview render's file per view; empty otherwise.
    pub view: String,
}

/// A task's rendered frames, checked, and how they were made.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The frames, in the task's order.
    pub frames: Vec<RenderedFrame>,
    /// Seconds Blender spent on them.
    pub render_seconds: f64,
    /// The Blender that rendered them.
    pub blender_version: String,
    /// Blender's output not sent yet.
    pub log: Option<String>,
    /// What the compositor's File Output nodes wrote, checked.
    pub composites: Vec<RenderedComposite>,
    /// The frames whose every pixel is one colour.
    pub blank: Vec<i32>,
    /// The frames with NaN or infinite samples (EXR).
    pub non_finite: Vec<i32>,
}

/// A file a compositor File Output node wrote, checked and waiting on local disk.
#[derive(Debug, Clone)]
pub struct RenderedComposite {
    /// The frame it belongs to.
    pub frame: i32,
    /// The node's name.
    pub node: String,
    /// Where it is.
    pub path: PathBuf,
    /// Where the node wrote it, relative to its base path.
    pub relative_path: String,
    /// The name it is delivered under: plain, unique in the job.
    pub file_name: String,
    /// Its view (multiview renders); empty otherwise.
    pub view: String,
}

/// What a heartbeat tells the farm about a running task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Beat {
    /// Frames of the task finished.
    pub frames_done: usize,
    /// How far the frame being rendered is (0–1), when Blender said.
    pub frame_progress: Option<f64>,
    /// Blender's output since the last report.
    pub log: Option<String>,
}

/// What a worker needs from the farm.
#[async_trait]
pub trait Coordinator: Send + Sync + 'static {
    /// The next task for `worker_id`, if any; tasks of `prefer_job` (loaded in a warm
    /// session) first. May wait a while for work to appear.
    async fn claim(&self, worker_id: &str, prefer_job: Option<&str>) -> anyhow::Result<Option<Assignment>>;
    /// Writes the assignment's scene file to `dest`.
    async fn fetch_scene(&self, assignment: &Assignment, dest: &Path) -> anyhow::Result<()>;
    /// Extends the lease, saying how far the task is, with Blender's output since the last call.
    async fn heartbeat(&self, assignment: &Assignment, beat: &Beat) -> anyhow::Result<LeaseStatus>;
    /// Delivers every frame of the task; with `claim_next`, also claims the worker's next task
    /// in the same call (without waiting for work).
    async fn complete(
        &self,
        assignment: &Assignment,
        delivery: Delivery,
        claim_next: Option<ClaimNext>,
    ) -> anyhow::Result<(LeaseStatus, Option<Assignment>)>;
    /// Reports a failed attempt with the reason and Blender's log tail (and the output not sent yet).
    async fn fail(&self, assignment: &Assignment, error: &str, log: Option<String>) -> anyhow::Result<()>;
    /// Writes what the signed URL `url` serves (a frame a packaging task reads) to `dest`.
    async fn download(&self, url: &str, dest: &Path) -> anyhow::Result<()>;
    /// Uploads a packaging task's video at `path` and says what it is.
    async fn deliver_video(
        &self,
        assignment: &Assignment,
        path: &Path,
        video: orchard_api::VideoInfo,
    ) -> anyhow::Result<LeaseStatus>;
}
