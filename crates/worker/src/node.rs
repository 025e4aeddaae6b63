//! A render node from start to finish: probe the Blenders, measure the speed factor,
//! register with the server, then run the agent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orchard_api::{RegisterRequest, WorkerCapabilities};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::agent::{Worker, WorkerConfig};
use crate::probe;
use crate::remote::HttpCoordinator;

/// Everything `orchard worker` takes.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The server's root URL.
    pub server: String,
    /// A worker token (`OW-…`).
    pub token: String,
    /// Blender executables to offer.
    pub blenders: Vec<PathBuf>,
    /// Scene cache, scratch space, and the worker's id.
    pub work_dir: PathBuf,
    /// Name for people (default: the host name).
    pub name: Option<String>,
    /// Render threads (default: every core).
    pub threads: Option<u32>,
    /// A task that finishes no frame for this long is killed as hung.
    pub hang_timeout: Duration,
    /// Keep Blender open between tasks of one job.
    pub warm_sessions: bool,
    /// Offer EEVEE without a GPU (software rendering; slow).
    pub allow_cpu_eevee: bool,
    /// RAM to advertise, in GiB (default: the machine's).
    pub ram_gib: Option<f64>,
    /// Operator tags.
    pub tags: Vec<String>,
    /// Speed factor to report instead of measuring one.
    pub speed_factor: Option<f64>,
    /// Bytes the scene cache may hold.
    pub cache_bytes: u64,
    /// The ffmpeg to make videos with; `None`: make none.
    pub ffmpeg: Option<PathBuf>,
}

/// Probes, registers and runs until `shutdown`.
pub async fn run_node(options: NodeOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.work_dir).with_context(|| format!("creating {}", options.work_dir.display()))?;
    let work_dir = std::path::absolute(&options.work_dir)?;
    let driver = Worker::<HttpCoordinator>::install_driver(&work_dir).await?;
    let worker_id = worker_id(&work_dir)?;
    let mut builds = Vec::new();
    let mut blenders = Vec::new();
    for path in &options.blenders {
        let build = probe::probe(path, &driver, options.allow_cpu_eevee).await?;
        info!(blender = %path.display(), version = %build.version, oidn = build.oidn, gpus = ?build.gpu_backends, "Blender found");
        blenders.push((build.version.clone(), path.clone()));
        builds.push(build);
    }
    let (Some(first_path), Some(first_build)) = (options.blenders.first(), builds.first()) else {
        anyhow::bail!("a worker needs at least one Blender");
    };
    let speed = match options.speed_factor {
        // Set by the operator: no measurement to have varied.
        Some(factor) => probe::Speed { factor, spread: None },
        None => probe::speed_factor(first_path, first_build, &driver, &work_dir, options.threads).await?,
    };
    info!(speed_factor = speed.factor, spread = ?speed.spread, "speed measured");
    let ffmpeg = match &options.ffmpeg {
        Some(path) => crate::video::ffmpeg_version(path).await.map(|version| (path.clone(), version)),
        None => None,
    };
    match &ffmpeg {
        Some((path, version)) => info!(ffmpeg = %path.display(), %version, "ffmpeg found: this worker makes videos"),
        None => info!("no ffmpeg: this worker makes no videos"),
    }
    let capabilities = WorkerCapabilities {
        blenders: builds,
        cpu_threads: std::thread::available_parallelism().map(|it| it.get() as u32).unwrap_or(1),
        ram_gib: options.ram_gib.unwrap_or_else(machine_ram_gib),
        tags: options.tags.clone(),
        ffmpeg: ffmpeg.as_ref().map(|(_, version)| version.clone()),
    };
    let name = options.name.clone().unwrap_or_else(host_name);
    let request = RegisterRequest {
        worker_id: worker_id.clone(),
        name,
        capabilities,
        speed_factor: speed.factor,
        speed_spread: speed.spread,
    };
    let (coordinator, registered) = HttpCoordinator::register(&options.server, &options.token, &request).await?;
    info!(worker = %worker_id, server = %options.server, "registered");
    let config = WorkerConfig {
        id: worker_id,
        blenders,
        work_dir,
        threads: options.threads,
        heartbeat_every: Duration::from_secs(registered.heartbeat_seconds.max(1)),
        hang_timeout: options.hang_timeout,
        warm_sessions: options.warm_sessions,
        warm_idle: Duration::from_secs(30),
        cache_bytes: options.cache_bytes,
        ffmpeg: ffmpeg.map(|(path, _)| path),
    };
    Worker::new(Arc::new(coordinator), config).run(shutdown).await
}

/// The worker's id, kept in its directory so that a restarted worker is the same worker.
fn worker_id(work_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = work_dir.join("worker-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

fn machine_ram_gib() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname").map(|it| it.trim().to_string()).unwrap_or_else(|_| "worker".into())
}
