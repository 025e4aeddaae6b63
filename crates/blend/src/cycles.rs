//! Cycles render settings: what the scene's `cycles` ID-property group stores, filled in with the
//! add-on defaults of the Blender version that saved the file ([`crate::defaults`]).

use crate::defaults;
use crate::idprop::{self, IdValue};
use crate::read::{MAX_LIST_ITEMS, StructView};

/// The Cycles settings of one scene that the analysis reports, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CyclesSettings {
    /// `samples`.
    pub samples: i64,
    /// `use_denoising`.
    pub use_denoising: bool,
    /// `denoiser` identifier (`OPENIMAGEDENOISE`, `OPTIX`); `None` for a stored integer the
    /// add-on of that version does not know (e.g. 1, the NLM denoiser that 3.0 removed).
    pub denoiser: Option<String>,
    /// `device` identifier, `CPU` or `GPU`.
    pub device: String,
}

/// Reads a scene's Cycles settings as the Blender that opens the file sees them.
///
/// The `cycles` group lives under `ID.system_properties` from 5.0 on (where `ID.properties` is an
/// empty group) and under `ID.properties` before; `system_properties` exists but is null in 4.5.
/// Files older than 3.0.26 also get what Blender's versioning does to them on load (see
/// [`versioned`]): their unset values are not today's defaults.
pub(crate) fn read(scene: &StructView<'_>, version: u16, subversion: u16) -> CyclesSettings {
    let table = defaults::for_version(version);
    let default = |key: &str| table.and_then(|t| t.default_int(key));
    let stored = stored_group(scene.sub("id").as_ref(), &["system_properties", "properties"]);
    let value = |key: &str| stored.as_deref().and_then(|g| idprop::child(g, key)).and_then(IdValue::as_int);
    let mut raw = Stored {
        samples: value("samples"),
        use_denoising: value("use_denoising"),
        denoiser: value("denoiser"),
        device: value("device"),
        use_square_samples: value("use_square_samples"),
    };
    if stored.is_some() {
        raw = versioned(raw, (version, subversion), || view_layer_denoising(scene));
    } else {
        raw = versioned_unset(raw, (version, subversion));
    }
    let int = |v: Option<i64>, key: &str| v.or_else(|| default(key));
    let identifier = |key: &str, v: Option<i64>| v.and_then(|v| table?.enum_identifier(key, v)).map(str::to_string);
    CyclesSettings {
        // The add-on's own defaults when a table is missing (never, in a correct build).
        samples: int(raw.samples, "samples").unwrap_or(4096),
        use_denoising: int(raw.use_denoising, "use_denoising").is_none_or(|v| v != 0),
        denoiser: identifier("denoiser", int(raw.denoiser, "denoiser")),
        device: identifier("device", int(raw.device, "device")).unwrap_or_else(|| "CPU".to_string()),
    }
}

/// The values a file stores (`None`: not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    samples: Option<i64>,
    use_denoising: Option<i64>,
    denoiser: Option<i64>,
    device: Option<i64>,
    use_square_samples: Option<i64>,
}

/// `(major * 100 + minor, subversion)`, compared as Blender compares `bpy.data.version`.
type Version = (u16, u16);

/// Cycles' `denoiser` numbers: NLM (removed in 3.0), OptiX, OpenImageDenoise.
const DENOISER_NLM: i64 = 1;
const DENOISER_OPTIX: i64 = 2;
const DENOISER_OIDN: i64 = 4;

/// What Blender does to an old file's stored Cycles settings when it opens it, for the settings
/// the analysis reports. From Blender 3.4–5.0's `versioning_cycles.cc` (C, before 2.90.5: the
/// denoiser moved from view layers to the scene) and the add-on's `version_update.py` (Python, up to
/// 3.0.25: new defaults that old files must not pick up, the removal of square samples), and the
/// NLM denoiser's removal in 3.0 (such files open with OpenImageDenoise).
///
/// `view_layers` gives whether any view layer had (OptiX) denoising on, for files before 2.90.5.
fn versioned(mut s: Stored, file: Version, view_layers: impl FnOnce() -> (bool, bool)) -> Stored {
    if file < (290, 5) {
        let (use_denoising, use_optix) = view_layers();
        s.denoiser = Some(if use_optix { DENOISER_OPTIX } else { DENOISER_NLM });
        s.use_denoising = Some(i64::from(use_denoising));
    }
    if s.denoiser == Some(DENOISER_NLM) {
        s.denoiser = Some(DENOISER_OIDN);
    }
    versioned_unset(s, file)
}

/// The add-on's `version_update.py` part, which runs whether or not the scene had a `cycles` group
/// (reading `scene.cycles` creates it).
fn versioned_unset(mut s: Stored, file: Version) -> Stored {
    if file <= (276, 8) && s.samples.is_none() {
        s.samples = Some(10);
    }
    if file <= (300, 25) {
        if s.samples.is_none() {
            s.samples = Some(128);
        }
        if s.use_denoising.is_none() {
            s.use_denoising = Some(0);
        }
        if s.use_square_samples.is_some_and(|v| v != 0) {
            s.samples = s.samples.map(|n| n.saturating_mul(n));
        }
    }
    s
}

/// Whether any view layer of a pre-2.90.5 file had denoising, and OptiX denoising, on.
fn view_layer_denoising(scene: &StructView<'_>) -> (bool, bool) {
    let (mut denoise, mut optix) = (false, false);
    for layer in scene.list("view_layers", "ViewLayer", MAX_LIST_ITEMS) {
        let Some(group) = stored_group(Some(&layer), &["id_properties"]) else {
            continue;
        };
        let on = |key: &str| idprop::child(&group, key).and_then(IdValue::as_int).is_some_and(|v| v != 0);
        denoise |= on("use_denoising");
        optix |= on("use_optix_denoising");
    }
    (denoise, optix)
}

/// The children of the `cycles` group under the first of `fields` (ID-property pointers of `owner`)
/// that holds one.
fn stored_group(owner: Option<&StructView<'_>>, fields: &[&str]) -> Option<Vec<idprop::IdProperty>> {
    let owner = owner?;
    let file = owner.file();
    fields.iter().find_map(|field| {
        let ptr = owner.ptr(field).filter(|&p| p != 0)?;
        let root = idprop::read_tree(file, ptr)?;
        let cycles = idprop::child(root.value.as_group()?, "cycles")?;
        Some(cycles.as_group()?.to_vec())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Stored =
        Stored { samples: None, use_denoising: None, denoiser: None, device: None, use_square_samples: None };

    #[test]
    fn files_from_3_0_26_on_keep_their_unset_values_unset() {
        assert_eq!(versioned(NONE, (300, 26), || (true, true)), NONE);
        assert_eq!(versioned(NONE, (405, 92), || (true, true)), NONE);
    }

    #[test]
    fn older_files_get_the_defaults_they_were_made_with() {
        let old = versioned(NONE, (293, 18), || (false, false));
        assert_eq!((old.samples, old.use_denoising), (Some(128), Some(0)));
        let older = versioned(NONE, (276, 8), || (false, false));
        assert_eq!(older.samples, Some(10));
        let squared =
            versioned(Stored { samples: Some(12), use_square_samples: Some(1), ..NONE }, (279, 0), || (false, false));
        assert_eq!(squared.samples, Some(144));
    }

    #[test]
    fn the_denoiser_moves_from_view_layers_and_nlm_becomes_openimagedenoise() {
        let optix = versioned(NONE, (280, 75), || (true, true));
        assert_eq!((optix.denoiser, optix.use_denoising), (Some(DENOISER_OPTIX), Some(1)));
        let nlm = versioned(NONE, (280, 75), || (true, false));
        assert_eq!((nlm.denoiser, nlm.use_denoising), (Some(DENOISER_OIDN), Some(1)));
        let stored_nlm = versioned(Stored { denoiser: Some(DENOISER_NLM), ..NONE }, (293, 0), || (false, false));
        assert_eq!(stored_nlm.denoiser, Some(DENOISER_OIDN));
    }
}
