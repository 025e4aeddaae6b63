//! What a worker's Blender can do, and how fast this machine renders.
//!
//! The probe asks Blender itself (build options, Cycles devices). The speed factor renders a
//! bundled reference scene and compares with the reference machine; it is cached per
//! Blender in the worker's directory, since it only changes with the hardware or the build.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use orchard_api::BlenderBuild;
use orchard_domain::capabilities::SPEED_FACTORS;
use serde_json::json;

use crate::blender::{DriverEvent, Invocation, RunningBlender};

/// The reference scene: the bundled example.
const REFERENCE_SCENE: &[u8] = include_bytes!("../../../examples/cube.blend");
/// Median seconds per reference frame (after the first) on the reference machine (2-core x86-64
/// development box, Debian's Blender 3.4, two threads); a worker twice as fast gets factor 2.
const REFERENCE_SECONDS: f64 = 0.38;
/// Reference frames rendered: the first is not timed, the median of the others counts.
const REFERENCE_FRAMES: i32 = 6;
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

/// A measured speed: the factor and how much the reference frames' times varied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed {
    /// Speed relative to the reference machine.
    pub factor: f64,
    /// Half the range of the frames' times kept, relative (0.05: ±5 %); `None` when not measured.
    pub spread: Option<f64>,
}

/// This machine's speed relative to the reference, measured once per Blender and cached in
/// `work_dir`. The reference frames render one after another in one Blender; the first (which
/// loads kernels) is not timed, the median of the others counts, outliers dropped. Workers on
/// one machine measure one at a time (a lock in the system's temporary folder): measured
/// together, each sees the other's load, and two identical workers measured 1.42 and 3.02.
pub async fn speed_factor(
    blender: &Path,
    build: &BlenderBuild,
    driver: &Path,
    work_dir: &Path,
    threads: Option<u32>,
) -> anyhow::Result<Speed> {
    let cache = work_dir.join(format!("speed-{}.json", cache_key(blender, build)));
    let cached = || -> Option<Speed> {
        let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cache).ok()?).ok()?;
        Some(Speed { factor: value["speedFactor"].as_f64()?, spread: Some(value["speedSpread"].as_f64()?) })
    };
    if let Some(speed) = cached() {
        return Ok(speed);
    }
    let _turn = tokio::task::spawn_blocking(machine_turn).await??;
    // Another worker sharing this folder may have measured while this one waited.
    if let Some(speed) = cached() {
        return Ok(speed);
    }
    let dir = tempfile::tempdir_in(work_dir)?;
    let scene = dir.path().join("reference.blend");
    std::fs::write(&scene, REFERENCE_SCENE)?;
    let task = dir.path().join("task.json");
    let frames: Vec<i32> = (1..=REFERENCE_FRAMES).collect();
    let config = json!({
        "colorManagementPreset": "default", "frameRanges": [format!("1-{REFERENCE_FRAMES}")], "renderEngine": "CYCLES",
        "resolution": [256, 192], "resolutionPercentage": 100, "sampleCount": 64, "denoisingEnabled": false,
        "outputFormat": "PNG", "outputSettings": {"colorMode": "RGBA", "colorDepth": "8"}
    });
    let body = json!({"frames": frames, "outputDir": dir.path(), "config": config});
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
        let mut seconds = Vec::new();
        while let Some(event) = running.next_event().await {
            match event {
                DriverEvent::Frame { seconds: s, .. } => seconds.push(s),
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
    let estimate = orchard_domain::speed::robust(seconds.get(1..).unwrap_or_default())
        .context("the reference render timed no frame")?;
    let factor = (REFERENCE_SECONDS / estimate.value * 1000.0).round() / 1000.0;
    let factor = factor.clamp(*SPEED_FACTORS.start(), *SPEED_FACTORS.end());
    let speed = Speed { factor, spread: Some((estimate.spread * 1000.0).round() / 1000.0) };
    let record = json!({"speedFactor": speed.factor, "speedSpread": speed.spread, "frameSeconds": seconds,
        "dropped": estimate.dropped});
    let _ = std::fs::write(&cache, record.to_string());
    Ok(speed)
}

/// This machine's turn to measure: an exclusive lock, held until dropped.
fn machine_turn() -> anyhow::Result<Flock<std::fs::File>> {
    let path = std::env::temp_dir().join("orchard-speed-measure.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow::anyhow!("locking {}: {errno}", path.display()))
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
