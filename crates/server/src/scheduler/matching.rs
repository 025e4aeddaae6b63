//! Matching a job to a worker: what the job needs (from its analysis and final config) and
//! which of a worker's Blenders fits. Pure: no store, no clock.

use orchard_domain::{RenderConfig, WorkerCapabilities};
use orchard_store::Job;

/// What a job needs from a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirements {
    /// The file's Blender version (major, minor): workers need at least this.
    pub(crate) min_version: (u32, u32),
    /// Cycles denoising with OpenImageDenoise.
    pub(crate) oidn: bool,
    /// An EEVEE engine.
    pub(crate) eevee: bool,
    /// A Cycles GPU backend (`CUDA`, `OPTIX`, …); OptiX denoising needs `OPTIX`.
    pub(crate) gpu_backend: Option<String>,
    /// GiB of RAM.
    pub(crate) ram_gib: Option<u32>,
}

impl Requirements {
    /// A job's requirements, from its analysis and final config.
    pub(crate) fn of(job: &Job) -> Requirements {
        let min_version = job
            .analysis
            .as_ref()
            .map_or((0, 0), |it| (u32::from(it.file_version.major), u32::from(it.file_version.minor)));
        match &job.final_config {
            Some(config) => Requirements::of_config(min_version, config),
            None => Requirements { min_version, oidn: false, eevee: false, gpu_backend: None, ram_gib: None },
        }
    }

    /// What opening the job's scene needs (its packaging: no render): a Blender as new as
    /// the file.
    pub(crate) fn to_open(job: &Job) -> Requirements {
        let Requirements { min_version, .. } = Requirements::of(job);
        Requirements { min_version, oidn: false, eevee: false, gpu_backend: None, ram_gib: None }
    }

    fn of_config(min_version: (u32, u32), config: &RenderConfig) -> Requirements {
        let cycles = config.render_engine == "CYCLES";
        // Cycles denoises unless told not to, with OpenImageDenoise unless told otherwise.
        let denoising = cycles && config.denoising_enabled != Some(false);
        let denoiser = config.denoiser_type.as_deref().unwrap_or("OPENIMAGEDENOISE");
        let mut gpu_backend = config.compute_device_type.clone().filter(|it| it != "NONE");
        if denoising && denoiser == "OPTIX" {
            gpu_backend = Some("OPTIX".into());
        }
        Requirements {
            min_version,
            oidn: denoising && denoiser == "OPENIMAGEDENOISE",
            eevee: config.render_engine.starts_with("BLENDER_EEVEE"),
            gpu_backend,
            ram_gib: config.minimum_ram,
        }
    }

    /// The Blender (by version) of `capabilities` that best fits, or why none does.
    /// The oldest fitting version wins: it reads the file most faithfully.
    pub(crate) fn choose(&self, capabilities: &WorkerCapabilities) -> Result<String, String> {
        if let Some(ram) = self.ram_gib
            && capabilities.ram_gib + 0.5 < f64::from(ram)
        {
            return Err(format!("has {:.1} GiB of RAM, the job needs {ram}", capabilities.ram_gib));
        }
        let mut builds: Vec<_> = capabilities.blenders.iter().collect();
        builds.sort_by_key(|it| version_of(&it.version));
        let mut reasons = Vec::new();
        for build in builds {
            let (major, minor) = version_of(&build.version);
            if (major, minor) < self.min_version {
                reasons.push(format!(
                    "Blender {} is older than the file ({}.{})",
                    build.version, self.min_version.0, self.min_version.1
                ));
            } else if self.oidn && !build.oidn {
                reasons.push(format!("Blender {} has no OpenImageDenoise (the scene denoises with it)", build.version));
            } else if self.eevee && !build.eevee {
                reasons.push(format!(
                    "Blender {} cannot render EEVEE here (no GPU; --allow-cpu-eevee allows it)",
                    build.version
                ));
            } else if let Some(backend) = &self.gpu_backend
                && !build.gpu_backends.contains(backend)
            {
                reasons.push(format!("Blender {} has no {backend} device", build.version));
            } else {
                return Ok(build.version.clone());
            }
        }
        Err(reasons.join("; "))
    }
}

pub(super) fn version_of(text: &str) -> (u32, u32) {
    let mut parts = text.split(|it: char| !it.is_ascii_digit()).filter(|it| !it.is_empty());
    let major = parts.next().and_then(|it| it.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|it| it.parse().ok()).unwrap_or(0);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use orchard_domain::BlenderBuild;

    use super::*;

    fn build(version: &str, oidn: bool, eevee: bool, gpus: &[&str]) -> BlenderBuild {
        BlenderBuild {
            version: version.into(),
            oidn,
            eevee,
            gpu_backends: gpus.iter().map(|it| it.to_string()).collect(),
        }
    }

    fn caps(blenders: Vec<BlenderBuild>, ram: f64) -> WorkerCapabilities {
        WorkerCapabilities { blenders, cpu_threads: 8, ram_gib: ram, tags: vec![], ffmpeg: None }
    }

    fn needs(version: (u32, u32)) -> Requirements {
        Requirements { min_version: version, oidn: false, eevee: false, gpu_backend: None, ram_gib: None }
    }

    #[test]
    fn the_oldest_blender_that_reads_the_file_is_chosen() {
        let worker = caps(
            vec![build("5.0.1", true, true, &[]), build("4.5.3", true, true, &[]), build("3.4.1", false, false, &[])],
            32.0,
        );
        assert_eq!(needs((3, 4)).choose(&worker), Ok("3.4.1".into()));
        assert_eq!(needs((4, 2)).choose(&worker), Ok("4.5.3".into()));
        assert!(needs((5, 1)).choose(&worker).unwrap_err().contains("older than the file"));
    }

    #[test]
    fn each_capability_is_required_where_the_job_needs_it() {
        let debian = caps(vec![build("3.4.1", false, false, &[])], 16.0);
        let gpu = caps(vec![build("4.5.3", true, true, &["CUDA", "OPTIX"])], 64.0);
        let cases = [
            (Requirements { oidn: true, ..needs((3, 4)) }, "OpenImageDenoise"),
            (Requirements { eevee: true, ..needs((3, 4)) }, "EEVEE"),
            (Requirements { gpu_backend: Some("OPTIX".into()), ..needs((3, 4)) }, "OPTIX"),
            (Requirements { ram_gib: Some(32), ..needs((3, 4)) }, "RAM"),
        ];
        for (requirements, word) in cases {
            let reason = requirements.choose(&debian).unwrap_err();
            assert!(reason.contains(word), "{word}: {reason}");
            assert_eq!(requirements.choose(&gpu), Ok("4.5.3".into()));
        }
    }
}
