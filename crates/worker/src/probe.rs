//! What a worker's Blender can do, and how fast this machine renders.
//!
//! The probe asks Blender itself (build options, Cycles devices). The speed factor renders a
//! bundled reference scene and compares with the reference machine; it is cached per
//! Blender in the worker's directory, since it only changes with the hardware or the build.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use orchard_api::BlenderBuild;
use serde_json::json;

use crate::blender::{DriverEvent, Invocation, RunningBlender};

/// The reference scene: the bundled example.
const REFERENCE_SCENE: &[u8] = include_bytes!("../../../examples/cube.blend");
/// Seconds the reference machine (2-core x86-64 development box, Debian's Blender 3.4, two
/// threads) takes for the reference frames below; a worker twice as fast gets factor 2.
const REFERENCE_SECONDS: f64 = 0.9;
/// Longest a probe or reference render may take.
const PROBE_LIMIT: Duration = Duration::from_secs(300);

/// Asks `blender` for its version and build options. `eevee` is the operator's call: EEVEE
/// runs on any GPU, and on a CPU only where software rendering is allowed.
pub async fn probe(blender: &Path, driver: &Path, allow_cpu_eevee: bool) -> anyhow::Result<BlenderBuild> {
    let invocation = Invocation {
        blender,
        scene: None,
        driver,
        task: std::ffi::OsStr::new("--probe"),
        threads: None,
        temp_dir: None,
    };
    let mut running = RunningBlender::spawn(&invocation).with_context(|| format!("starting {}", blender.display()))?;
    let event = tokio::time::timeout(PROBE_LIMIT, async {
        while let Some(event) = running.next_event().await {
            if let DriverEvent::Capabilities { version, oidn, gpu_backends } = event {
                return Some((version, oidn, gpu_backends));
            }
        }
        None
    })
    .await;
    let _ = running.wait().await;
    let Ok(Some((version, oidn, gpu_backends))) = event else {
        anyhow::bail!("{} did not answer the probe:\n{}", blender.display(), running.log_tail());
    };
    let eevee = allow_cpu_eevee || !gpu_backends.is_empty();
    Ok(BlenderBuild { version, oidn, eevee, gpu_backends })
}

/// This machine's speed relative to the reference, measured once per Blender and cached in
/// `work_dir`.
pub async fn speed_factor(
    blender: &Path,
    build: &BlenderBuild,
    driver: &Path,
    work_dir: &Path,
    threads: Option<u32>,
) -> anyhow::Result<f64> {
    let cache = work_dir.join(format!("speed-{}.json", cache_key(blender, build)));
    if let Ok(text) = std::fs::read_to_string(&cache)
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(factor) = value["speedFactor"].as_f64()
    {
        return Ok(factor);
    }
    let dir = tempfile::tempdir_in(work_dir)?;
    let scene = dir.path().join("reference.blend");
    std::fs::write(&scene, REFERENCE_SCENE)?;
    let task = dir.path().join("task.json");
    let config = json!({
        "colorManagementPreset": "default", "frameRanges": ["1-2"], "renderEngine": "CYCLES",
        "resolution": [96, 72], "resolutionPercentage": 100, "sampleCount": 16, "denoisingEnabled": false,
        "outputFormat": "PNG", "outputSettings": {"colorMode": "RGBA", "colorDepth": "8"}
    });
    let body = json!({"frames": [1, 2], "outputDir": dir.path(), "config": config});
    std::fs::write(&task, body.to_string())?;
    let invocation = Invocation {
        blender,
        scene: Some(&scene),
        driver,
        task: task.as_os_str(),
        threads,
        temp_dir: Some(dir.path()),
    };
    let mut running = RunningBlender::spawn(&invocation)?;
    let measured = tokio::time::timeout(PROBE_LIMIT, async {
        let mut seconds = 0.0;
        while let Some(event) = running.next_event().await {
            match event {
                // The first frame carries kernel loading; the reference includes it too.
                DriverEvent::Frame { seconds: s, .. } => seconds += s,
                DriverEvent::Done => return Some(seconds),
                DriverEvent::Error { .. } => return None,
                _ => {}
            }
        }
        None
    })
    .await;
    let _ = running.wait().await;
    let Ok(Some(seconds)) = measured else {
        anyhow::bail!("the reference render failed:\n{}", running.log_tail());
    };
    let factor = (REFERENCE_SECONDS / seconds.max(0.001) * 100.0).round() / 100.0;
    let _ = std::fs::write(&cache, json!({"speedFactor": factor, "seconds": seconds}).to_string());
    Ok(factor)
}

fn cache_key(blender: &Path, build: &BlenderBuild) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    blender.hash(&mut hasher);
    build.version.hash(&mut hasher);
    if let Ok(meta) = std::fs::metadata(blender) {
        meta.len().hash(&mut hasher);
        meta.modified().ok().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}
