//! The Blender add-on (`addon/orchard/`, Python), embedded in the binary and served as
//! `/addon.zip`: one zip that installs both ways — a legacy add-on (Blender 3.4 to 5.0: the
//! top folder `orchard/` with its `bl_info`) and a 4.2+ extension (the same folder holds
//! `blender_manifest.toml`). Its bytes depend on the sources alone (fixed times, fixed order).

use std::io::Write;
use std::sync::OnceLock;

/// The package's files, as they go in the zip (`orchard/…`). A test holds this list to the
/// folder.
const FILES: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../../../addon/orchard/__init__.py")),
    ("background.py", include_str!("../../../addon/orchard/background.py")),
    ("blender_manifest.toml", include_str!("../../../addon/orchard/blender_manifest.toml")),
    ("client.py", include_str!("../../../addon/orchard/client.py")),
    ("jobs.py", include_str!("../../../addon/orchard/jobs.py")),
    ("ops.py", include_str!("../../../addon/orchard/ops.py")),
    ("pack.py", include_str!("../../../addon/orchard/pack.py")),
    ("prefs.py", include_str!("../../../addon/orchard/prefs.py")),
    ("props.py", include_str!("../../../addon/orchard/props.py")),
    ("ui.py", include_str!("../../../addon/orchard/ui.py")),
];

/// The add-on's zip, made once.
pub fn zip() -> &'static [u8] {
    static ZIP: OnceLock<Vec<u8>> = OnceLock::new();
    ZIP.get_or_init(|| build().unwrap_or_else(|e| panic!("the embedded add-on does not zip: {e}")))
}

fn build() -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (name, text) in FILES {
        zip.start_file(format!("orchard/{name}"), options)?;
        zip.write_all(text.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zip_holds_every_file_of_the_add_on_folder() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../addon/orchard");
        let mut on_disk: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|it| it.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|it| !it.starts_with('.') && it != "__pycache__" && !it.ends_with(".pyc"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = FILES.iter().map(|(name, _)| *name).collect();
        assert_eq!(embedded, on_disk, "a file added to addon/orchard/ must be added to FILES");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip())).unwrap();
        assert_eq!(archive.len(), FILES.len());
        let mut manifest = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("orchard/blender_manifest.toml").unwrap(), &mut manifest)
            .unwrap();
        assert!(manifest.contains("id = \"orchard\""));
        assert_eq!(zip(), build().unwrap(), "the same bytes every time");
    }
}
