//! Path arithmetic on the paths a `.blend` stores: Blender's `//` (relative to the `.blend`),
//! Windows separators, absolute paths, and where a relative path lands in a project.
//!
//! A project location is a list of `/`-free segments from the project's root (the `.blend`'s
//! directory on disk, or the root of a `.zip`); a path that climbs above that root has none.
//! Nothing here touches the file system.

/// A stored path as Blender on Linux reads it: Windows separators become `/` when a file is loaded.
pub(crate) fn blender_path(stored: &str) -> String {
    stored.replace('\\', "/")
}

/// Where a stored path points.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// Absolute (Unix, Windows drive or UNC).
    Absolute,
    /// Relative to the `.blend`'s directory: its `/`-separated segments, `.` and empty ones
    /// dropped, `..` kept for [`normalize`].
    Relative(Vec<String>),
}

/// Whether a stored path is absolute or relative to its `.blend`, and its segments if relative.
pub(crate) fn locate(path: &str) -> Location {
    // A UNC path (`\\\\server\\share`) would look like Blender's `//` once separators are unified.
    if path.starts_with("\\\\") {
        return Location::Absolute;
    }
    let path = path.replace('\\', "/");
    let rel = if let Some(rest) = path.strip_prefix("//") {
        rest
    } else if path.starts_with('/') || is_drive_path(&path) {
        return Location::Absolute;
    } else {
        // Blender resolves a bare relative path against its working directory; the closest
        // meaning on a farm is the directory of the .blend.
        path.as_str()
    };
    Location::Relative(segments(rel))
}

/// `base` joined with `rel`, `..` applied; `None` when it climbs above the root of `base`.
pub(crate) fn normalize(base: &[String], rel: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = base.to_vec();
    for seg in rel {
        if seg == ".." {
            out.pop()?;
        } else {
            out.push(seg.clone());
        }
    }
    Some(out)
}

/// A `/`-separated path's segments, without empty ones and `.`.
pub(crate) fn segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty() && *s != ".").map(str::to_string).collect()
}

/// A project location as a path relative to a directory of the project, Blender's way:
/// `//lib/x.blend`, `//../libs/x.blend`.
pub(crate) fn relative_to(dir: &[String], location: &[String]) -> String {
    let common = dir.iter().zip(location).take_while(|(a, b)| a == b).count();
    let ups = dir.len().saturating_sub(common);
    let mut parts: Vec<&str> = vec![".."; ups];
    parts.extend(location.iter().skip(common).map(String::as_str));
    format!("//{}", parts.join("/"))
}

/// `shot.blend` → `shot`.
pub(crate) fn stem_of(name: &str) -> String {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".blend") { file.get(..file.len() - 6).unwrap_or(file).to_string() } else { file.to_string() }
}

/// A UDIM tile's file: `<UDIM>` is the tile number (1001, 1002, ...), `<UVTILE>` its `u<col>_v<row>`
/// form (1001 is `u1_v1`, 1012 is `u2_v2`).
pub(crate) fn tile_path(path: &str, tile: i64) -> String {
    let index = tile - 1001;
    let uv = format!("u{}_v{}", index.rem_euclid(10) + 1, index.div_euclid(10) + 1);
    path.replace("<UDIM>", &tile.to_string()).replace("<UVTILE>", &uv)
}

fn is_drive_path(path: &str) -> bool {
    let b = path.as_bytes();
    matches!(b, [letter, b':', ..] if letter.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_paths_are_classified_as_absolute_relative_or_escaping() {
        let rel = |s: &[&str]| Location::Relative(s.iter().map(|p| p.to_string()).collect());
        let cases = [
            ("//textures/wood.png", rel(&["textures", "wood.png"])),
            ("//./a/../b.png", rel(&["a", "..", "b.png"])),
            ("//textures\\wood.png", rel(&["textures", "wood.png"])),
            ("//../outside.png", rel(&["..", "outside.png"])),
            ("/abs/x.png", Location::Absolute),
            ("C:\\tex\\x.png", Location::Absolute),
            ("\\\\server\\share\\x.png", Location::Absolute),
            ("plain.png", rel(&["plain.png"])),
        ];
        for (path, want) in cases {
            assert_eq!(locate(path), want, "{path}");
        }
    }

    #[test]
    fn paths_climbing_above_the_project_root_do_not_normalise() {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(normalize(&s(&["shot"]), &s(&["..", "tex", "a.png"])), Some(s(&["tex", "a.png"])));
        assert_eq!(normalize(&s(&["shot"]), &s(&["..", "..", "a.png"])), None);
        assert_eq!(normalize(&[], &s(&["..", "a.png"])), None);
    }

    #[test]
    fn a_location_is_named_relative_to_a_directory_blenders_way() {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(relative_to(&s(&["shot"]), &s(&["shot", "lib", "x.blend"])), "//lib/x.blend");
        assert_eq!(relative_to(&s(&["shot"]), &s(&["libs", "x.blend"])), "//../libs/x.blend");
        assert_eq!(relative_to(&[], &s(&["x.blend"])), "//x.blend");
    }

    #[test]
    fn udim_tiles_name_their_files_by_number_or_by_uv() {
        assert_eq!(tile_path("t/<UDIM>.png", 1002), "t/1002.png");
        assert_eq!(tile_path("t/<UVTILE>.png", 1001), "t/u1_v1.png");
        assert_eq!(tile_path("t/<UVTILE>.png", 1012), "t/u2_v2.png");
    }

    #[test]
    fn a_blend_files_stem_drops_the_extension_whatever_its_case() {
        assert_eq!(stem_of("shot/main.blend"), "main");
        assert_eq!(stem_of("A.BLEND"), "A");
        assert_eq!(stem_of("noext"), "noext");
    }
}
