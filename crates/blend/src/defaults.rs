//! What Blender itself does with values a file does not settle, per Blender version.
//!
//! The tables in `src/defaults/` are written by `fixtures/blender_defaults.py` running inside each
//! supported Blender (never typed by hand):
//!
//! - `cycles_*.json`: a scene's `cycles` ID-property group stores only the settings that were ever
//!   set; an absent key means "the add-on default of the Blender that saved the file". Every
//!   `scene.cycles` property with its type and default, and for enums the integers the add-on stores.
//! - `color_*.json`: a file names its view transform and look; Blender replaces a name its colour
//!   configuration does not know (or a look that does not go with the view) when it opens the file.
//!   Per display, the views in order and the looks accepted with each.
//!
//! A file uses the table of its own version, or of the nearest one (of two as near, the older).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

/// The generated tables, each with the version (`major * 100 + minor`) it was generated with, oldest
/// first. Adding a Blender version is adding its two JSON files here; a test checks that each
/// version given here is the one its table records.
const CYCLES: &[(u16, &str)] = &[
    (304, include_str!("defaults/cycles_3_4.json")),
    (405, include_str!("defaults/cycles_4_5.json")),
    (500, include_str!("defaults/cycles_5_0.json")),
];
const COLOR: &[(u16, &str)] = &[
    (304, include_str!("defaults/color_3_4.json")),
    (405, include_str!("defaults/color_4_5.json")),
    (500, include_str!("defaults/color_5_0.json")),
];

/// The defaults of one Blender version.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CyclesTable {
    /// The file version that Blender writes (`major.minor.subversion`).
    pub file_version: TableVersion,
    /// Every scene-level Cycles setting, by its Python name.
    pub properties: BTreeMap<String, Property>,
}

/// The version a table was generated with.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct TableVersion {
    /// 3 for Blender 3.4.
    pub major: u16,
    /// 4 for Blender 3.4.
    pub minor: u16,
}

impl TableVersion {
    /// `major * 100 + minor`, as in the file header.
    pub(crate) fn number(self) -> u16 {
        self.major.saturating_mul(100).saturating_add(self.minor)
    }
}

/// One setting: its default and (enums) the stored integer of each identifier. The tables also
/// record each setting's RNA `type`, for people reading them.
#[derive(Debug, Deserialize)]
pub(crate) struct Property {
    /// The default; for an enum, its stored integer.
    pub default: Value,
    /// Enum identifiers and the integers stored for them.
    #[serde(default)]
    pub items: BTreeMap<String, i64>,
}

impl CyclesTable {
    /// The default of an integer, boolean or enum setting, as the integer a file would store.
    pub(crate) fn default_int(&self, key: &str) -> Option<i64> {
        let prop = self.properties.get(key)?;
        match &prop.default {
            Value::Bool(b) => Some(i64::from(*b)),
            v => v.as_i64(),
        }
    }

    /// The identifier of a stored enum integer (`denoiser` 4 → `OPENIMAGEDENOISE`).
    pub(crate) fn enum_identifier(&self, key: &str, stored: i64) -> Option<&str> {
        let prop = self.properties.get(key)?;
        prop.items.iter().find(|(_, v)| **v == stored).map(|(k, _)| k.as_str())
    }
}

/// The colour-management names one Blender accepts.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ColorTable {
    /// The file version that Blender writes.
    pub file_version: TableVersion,
    /// Displays by name.
    pub displays: BTreeMap<String, Display>,
    /// The display used when a file names one this Blender does not have.
    pub default_display: String,
}

/// One display device of the colour configuration.
#[derive(Debug, Deserialize)]
pub(crate) struct Display {
    /// Its view transforms, the default first.
    pub views: Vec<String>,
    /// Per view, the looks Blender accepts with it (`None` always among them).
    pub looks: BTreeMap<String, Vec<String>>,
}

impl ColorTable {
    /// The view transform and look Blender uses for the stored names: a view the display does not
    /// have becomes the display's first, a look the view does not accept becomes `None`.
    pub(crate) fn validate(&self, display: &str, view: &str, look: &str) -> (String, String) {
        let Some(d) = self.displays.get(display).or_else(|| self.displays.get(&self.default_display)) else {
            return (view.to_string(), look.to_string());
        };
        let view = if d.views.iter().any(|v| v == view) { view } else { d.views.first().map_or(view, String::as_str) };
        let accepted = d.looks.get(view).is_some_and(|looks| looks.iter().any(|l| l == look));
        (view.to_string(), if accepted { look.to_string() } else { "None".to_string() })
    }
}

/// The index of the table whose version is nearest to `version` (`major * 100 + minor`); of two as
/// near, the older. A 4.2 file gets 4.5's table rather than 3.4's: its add-on and colour
/// configuration are 4.x.
fn nearest(sources: &[(u16, &str)], version: u16) -> Option<usize> {
    (0..sources.len()).min_by_key(|&i| sources.get(i).map(|&(v, _)| (v.abs_diff(version), v)))
}

/// Each table is parsed the first time a file of its version asks for it (a command-line analysis
/// reads one file: parsing all six tables would be most of its work). The tables are part of the
/// build and a test checks that each one parses, so `None` never happens in practice.
///
/// A table whose recorded version is not the one it is listed with is refused, so a mislabelled
/// table can never be used for the wrong files.
fn parsed<T: for<'de> Deserialize<'de> + Versioned>(
    cells: &'static [OnceLock<Option<T>>],
    sources: &[(u16, &str)],
    idx: usize,
) -> Option<&'static T> {
    let &(version, source) = sources.get(idx)?;
    let parse = || serde_json::from_str::<T>(source).ok().filter(|t| t.version() == version);
    cells.get(idx)?.get_or_init(parse).as_ref()
}

/// A table that records the Blender version it was generated with.
trait Versioned {
    fn version(&self) -> u16;
}

impl Versioned for CyclesTable {
    fn version(&self) -> u16 {
        self.file_version.number()
    }
}

impl Versioned for ColorTable {
    fn version(&self) -> u16 {
        self.file_version.number()
    }
}

static CYCLES_PARSED: [OnceLock<Option<CyclesTable>>; CYCLES.len()] = [const { OnceLock::new() }; CYCLES.len()];
static COLOR_PARSED: [OnceLock<Option<ColorTable>>; COLOR.len()] = [const { OnceLock::new() }; COLOR.len()];

/// The Cycles table for a file saved by `version` (`major * 100 + minor`).
pub(crate) fn for_version(version: u16) -> Option<&'static CyclesTable> {
    parsed(&CYCLES_PARSED, CYCLES, nearest(CYCLES, version)?)
}

/// The colour table for a file saved by `version` (`major * 100 + minor`).
pub(crate) fn color_for_version(version: u16) -> Option<&'static ColorTable> {
    parsed(&COLOR_PARSED, COLOR, nearest(COLOR, version)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_table_parses_and_has_the_settings_the_analysis_reads() {
        for (i, &(v, _)) in COLOR.iter().enumerate() {
            let table =
                parsed(&COLOR_PARSED, COLOR, i).unwrap_or_else(|| panic!("{v}: the colour table does not parse"));
            assert_eq!(table.file_version.number(), v, "the colour table listed as {v}");
        }
        assert!(CYCLES.windows(2).all(|w| w[0].0 < w[1].0) && COLOR.windows(2).all(|w| w[0].0 < w[1].0));
        for (i, &(v, _)) in CYCLES.iter().enumerate() {
            let table =
                parsed(&CYCLES_PARSED, CYCLES, i).unwrap_or_else(|| panic!("{v}: the Cycles table does not parse"));
            assert_eq!(table.file_version.number(), v, "the Cycles table listed as {v}");
            for key in ["samples", "use_denoising", "denoiser", "device"] {
                assert!(table.default_int(key).is_some(), "{v}: no default for {key}");
            }
            assert_eq!(table.enum_identifier("denoiser", 4), Some("OPENIMAGEDENOISE"), "{v}");
            assert_eq!(table.enum_identifier("denoiser", 2), Some("OPTIX"), "{v}");
            assert_eq!(table.enum_identifier("device", 1), Some("GPU"), "{v}");
        }
    }

    #[test]
    fn a_file_uses_the_table_of_its_version_or_the_nearest_one() {
        let version_of = |v: u16| for_version(v).map(|t| t.file_version.number());
        assert_eq!(version_of(304), Some(304));
        assert_eq!(version_of(306), Some(304));
        assert_eq!(version_of(402), Some(405));
        assert_eq!(version_of(405), Some(405));
        assert_eq!(version_of(500), Some(500));
        assert_eq!(version_of(502), Some(500));
        assert_eq!(version_of(279), Some(304));
    }

    #[test]
    fn unknown_colour_names_fall_back_as_blender_does_on_load() {
        let t = |v: u16| color_for_version(v).map(|t| t.validate("sRGB", "Filmic", "Filmic - Base Contrast"));
        // A look 2.80 had and 3.x dropped becomes None; the view is kept.
        assert_eq!(t(304), Some(("Filmic".into(), "None".into())));
        // 2.7x's "Default" view is the display's first, Standard.
        let old = color_for_version(279).map(|t| t.validate("sRGB", "Default", "None"));
        assert_eq!(old, Some(("Standard".into(), "None".into())));
        // From 4.x a look belongs to a view: AgX's look does not go with Standard.
        let agx = color_for_version(405).map(|t| t.validate("sRGB", "Standard", "AgX - Punchy"));
        assert_eq!(agx, Some(("Standard".into(), "None".into())));
        let unknown_display = color_for_version(500).map(|t| t.validate("Nope", "AgX", "AgX - Punchy"));
        assert_eq!(unknown_display, Some(("AgX".into(), "AgX - Punchy".into())));
    }

    #[test]
    fn defaults_differ_between_versions_where_blender_changed_them() {
        // Cycles switched its default sampling pattern (1 in 3.4, 5 from 4.x on).
        let pattern = |v: u16| for_version(v).and_then(|t| t.default_int("sampling_pattern"));
        assert_eq!(pattern(304), Some(1));
        assert_eq!(pattern(405), Some(5));
    }
}
