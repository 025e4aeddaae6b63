//! Cycles render settings: what the scene's `cycles` ID-property group stores, filled in with the
//! add-on defaults of the Blender version that saved the file.

use crate::idprop::{self, IdValue};
use crate::read::StructView;

/// Cycles' `denoiser` enum, by the integers the add-on stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denoiser {
    /// 2.
    Optix,
    /// 4.
    OpenImageDenoise,
}

impl Denoiser {
    fn from_stored(v: i64) -> Option<Denoiser> {
        match v {
            2 => Some(Denoiser::Optix),
            4 => Some(Denoiser::OpenImageDenoise),
            _ => None,
        }
    }

    /// The Blender identifier.
    pub fn identifier(self) -> &'static str {
        match self {
            Denoiser::Optix => "OPTIX",
            Denoiser::OpenImageDenoise => "OPENIMAGEDENOISE",
        }
    }
}

/// Cycles settings of one scene, defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CyclesSettings {
    /// `samples`.
    pub samples: i64,
    /// `use_denoising`.
    pub use_denoising: bool,
    /// `denoiser`; `None` for a stored value this reader does not know (e.g. 1, the NLM denoiser
    /// that 3.0 removed).
    pub denoiser: Option<Denoiser>,
    /// `device`: `true` for GPU (1), `false` for CPU (0).
    pub gpu: bool,
}

/// Add-on defaults, keyed by the first file version (`major * 100 + minor`) they apply to.
///
/// Measured in the `cycles/properties.py` of Blender 3.4 and 5.0 (identical for these settings);
/// files older than 3.0 get the 3.x values, which is not verified. Issue 3 will generate this table
/// from every supported Blender instead of keeping it by hand.
const DEFAULTS: &[(u16, CyclesSettings)] = &[(
    0,
    CyclesSettings { samples: 4096, use_denoising: true, denoiser: Some(Denoiser::OpenImageDenoise), gpu: false },
)];

/// The defaults that apply to a file saved by `version`.
pub fn defaults_for(version: u16) -> CyclesSettings {
    DEFAULTS
        .iter()
        .rev()
        .find(|(from, _)| *from <= version)
        .or(DEFAULTS.first())
        .map(|(_, d)| *d)
        // DEFAULTS is a non-empty constant, so this is never reached; it keeps the function total.
        .unwrap_or(CyclesSettings { samples: 4096, use_denoising: true, denoiser: None, gpu: false })
}

/// Reads a scene's Cycles settings.
///
/// The `cycles` group lives under `ID.system_properties` from 5.0 on (where `ID.properties` is an
/// empty group) and under `ID.properties` before; `system_properties` exists but is null in 4.5.
pub fn read(scene: &StructView<'_>, version: u16) -> CyclesSettings {
    let mut out = defaults_for(version);
    let Some(id) = scene.sub("id") else {
        return out;
    };
    let file = scene.file();
    let group = ["system_properties", "properties"].iter().find_map(|field| {
        let ptr = id.ptr(field).filter(|&p| p != 0)?;
        let root = idprop::read_tree(file, ptr)?;
        let cycles = idprop::child(root.value.as_group()?, "cycles")?;
        Some(cycles.as_group()?.to_vec())
    });
    let Some(group) = group else {
        return out;
    };
    let int = |key: &str| idprop::child(&group, key).and_then(IdValue::as_int);
    if let Some(v) = int("samples") {
        out.samples = v;
    }
    if let Some(v) = int("use_denoising") {
        out.use_denoising = v != 0;
    }
    if let Some(v) = int("denoiser") {
        out.denoiser = Denoiser::from_stored(v);
    }
    if let Some(v) = int("device") {
        out.gpu = v == 1;
    }
    out
}
