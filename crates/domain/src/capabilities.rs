//! What a worker can render, as it reports it when it registers. The scheduler matches jobs
//! against this; the worker protocol carries it as it is.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One Blender a worker offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
}
