//! What a worker can render, as it reports it when it registers. The scheduler matches jobs
//! against this; the worker protocol carries it as it is.

use serde::{Deserialize, Serialize};

/// Speed factors a worker may report: a thousandth to a thousand times the reference machine.
/// Beyond that the number is a mistake, and it multiplies into what clients are billed.
pub const SPEED_FACTORS: std::ops::RangeInclusive<f64> = 0.001..=1000.0;
/// The largest spread of reference timings a worker may report (relative: 100 × the median).
pub const MAX_SPEED_SPREAD: f64 = 100.0;
/// Characters of a worker's id, name, tag or backend name.
pub const MAX_WORKER_TEXT: usize = 100;
/// Blenders, backends or tags a worker may list.
pub const MAX_WORKER_LIST: usize = 64;
/// CPU threads a worker may report.
pub const MAX_CPU_THREADS: u32 = 65_536;
/// GiB of RAM a worker may report.
pub const MAX_RAM_GIB: f64 = 1_048_576.0;

/// One Blender a worker offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlenderBuild {
    /// `bpy.app.version_string`, such as `3.4.1`.
    pub version: String,
    /// Built with OpenImageDenoise.
    pub oidn: bool,
    /// Can render EEVEE (a GPU, or the operator allowed software rendering).
    pub eevee: bool,
    /// Cycles GPU backends with at least one device (`CUDA`, `OPTIX`, `HIP`, `ONEAPI`, `METAL`).
    pub gpu_backends: Vec<String>,
}

/// What a worker can render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerCapabilities {
    /// The Blenders it offers.
    pub blenders: Vec<BlenderBuild>,
    /// CPU threads.
    pub cpu_threads: u32,
    /// Memory, in GiB.
    pub ram_gib: f64,
    /// Free-form tags set by the operator.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The version of the `ffmpeg` it can run (`5.1.6`): it can make a job's video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffmpeg: Option<String>,
}
