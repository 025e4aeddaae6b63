//! Render-node settings, shared by `orchard worker`, `orchard up`'s local workers and the
//! embedded farm of `orchard render`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use orchard_worker::node::NodeOptions;

/// Render-node settings, shared by `orchard worker` and the local workers of `orchard up`.
#[derive(Debug, Clone, Args)]
pub(super) struct NodeArgs {
    /// A Blender to offer: an executable, or the Python of a `bpy` install; repeat for several
    /// (default: `blender` on PATH and every `orchard blender install`).
    #[arg(long = "blender", env = "ORCHARD_BLENDER", value_delimiter = ',')]
    pub blenders: Vec<PathBuf>,
    /// Render threads per worker (default: every core).
    #[arg(long, env = "ORCHARD_THREADS")]
    pub threads: Option<u32>,
    /// Seconds without a finished frame after which Blender is declared hung and killed.
    #[arg(long, env = "ORCHARD_HANG_TIMEOUT", default_value_t = 3600)]
    pub hang_timeout: u64,
    /// Start Blender afresh for every task instead of keeping it open between tasks of a job.
    #[arg(long)]
    pub no_warm_sessions: bool,
    /// Offer EEVEE without a GPU (software rendering: very slow).
    #[arg(long)]
    pub allow_cpu_eevee: bool,
    /// RAM to advertise, in GiB (default: the machine's).
    #[arg(long)]
    pub ram_gib: Option<f64>,
    /// Speed factor to report instead of rendering the reference scene.
    #[arg(long)]
    pub speed_factor: Option<f64>,
    /// Operator tags, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// GiB the worker's scene cache may hold; the scenes used longest ago are removed past it.
    #[arg(long, env = "ORCHARD_CACHE_SIZE", default_value_t = 20.0, value_parser = cache_gib)]
    pub cache_size: f64,
    /// The ffmpeg that makes jobs' videos (with its ffprobe beside it); a worker without one
    /// makes none. `none` turns videos off on this worker.
    #[arg(long, env = "ORCHARD_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: String,
}

fn cache_gib(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(gib) if gib.is_finite() && gib > 0.0 => Ok(gib),
        _ => Err(format!("{text:?} is not a size in GiB above 0")),
    }
}

impl NodeArgs {
    /// The Blenders to offer, checked.
    pub(super) fn blenders(&self) -> anyhow::Result<Vec<PathBuf>> {
        if self.blenders.is_empty() {
            let mut found: Vec<PathBuf> = orchard_worker::blender::find(None).into_iter().collect();
            let installed = orchard_worker::install::installed(&orchard_worker::install::root());
            found.extend(installed.into_iter().map(|(_, python)| python));
            if found.is_empty() {
                anyhow::bail!(
                    "no Blender: install one (`apt-get install blender`, or `orchard blender install 4.5`) or pass --blender PATH"
                );
            }
            return Ok(found);
        }
        self.blenders.iter().map(|it| orchard_worker::blender::find(Some(it)).map_err(anyhow::Error::msg)).collect()
    }

    /// Options for a node talking to `server`.
    pub(super) fn options(
        &self,
        server: &str,
        token: &str,
        work_dir: PathBuf,
        name: Option<String>,
    ) -> anyhow::Result<NodeOptions> {
        Ok(NodeOptions {
            server: server.to_string(),
            token: token.to_string(),
            blenders: self.blenders()?,
            work_dir,
            name,
            threads: self.threads,
            hang_timeout: Duration::from_secs(self.hang_timeout.max(1)),
            warm_sessions: !self.no_warm_sessions,
            allow_cpu_eevee: self.allow_cpu_eevee,
            ram_gib: self.ram_gib,
            tags: self.tags.clone(),
            speed_factor: self.speed_factor,
            cache_bytes: (self.cache_size * 1024.0 * 1024.0 * 1024.0) as u64,
            ffmpeg: (self.ffmpeg != "none").then(|| PathBuf::from(&self.ffmpeg)),
        })
    }
}
