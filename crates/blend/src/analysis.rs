//! The analysis object (orchard.md §5) and how it is read out of a parsed file.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::compression::Compression;
use crate::cycles::{self, CyclesSettings, Denoiser};
use crate::error::AnalyzeError;
use crate::read::{BlendFile, MAX_LIST_ITEMS, StructView, id_name, is_linked};

/// Most scenes a file may have. Real files have a handful; the cap bounds the size of the
/// analysis a hostile file can produce.
pub const MAX_SCENES: usize = 10_000;

/// Newest file version this reader was checked against (Blender 5.0). Newer files are still read,
/// with a `newer_file_format` warning, because their layout is described by their own DNA.
pub const NEWEST_KNOWN_VERSION: u16 = 500;

/// What Orchard knows about a `.blend` file (or the main `.blend` of a `.zip` project) without
/// running Blender. Serialises to exactly the `analysis` object of the spec (orchard.md §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// Set by the server when it stores the analysis; the reader leaves it `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The user's name for the uploaded file.
    pub file_name: String,
    /// Size in bytes of the uploaded file as stored (compressed, or the whole `.zip`).
    pub file_size: u64,
    /// Hex SHA-256 of the uploaded file's bytes.
    pub sha256: String,
    /// Wrapper of the `.blend` data.
    pub compression: Compression,
    /// The Blender version that saved the file, `"3.4"`.
    pub blender_version: String,
    /// The version in full, with the sub-version from `GLOB`.
    pub file_version: FileVersion,
    /// Oldest Blender meant to open the file (`GLOB.minversion`), `"3.3"`; `None` if not recorded.
    pub min_blender_version: Option<String>,
    /// The scene Blender renders by default: the one `GLOB.curscene` points at, else the first.
    pub active_scene: Option<String>,
    /// Every local scene, in file order.
    pub scenes: Vec<SceneInfo>,
    /// External files the scene refers to.
    pub dependencies: Vec<Dependency>,
    /// Things a person should know before rendering.
    pub warnings: Vec<Warning>,
    /// How long the analysis took, in milliseconds.
    pub duration_ms: u64,
}

/// `major.minor` plus the sub-version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileVersion {
    /// 3 for Blender 3.4.
    pub major: u16,
    /// 4 for Blender 3.4.
    pub minor: u16,
    /// `GLOB.subversion` (6 for Debian's 3.4.1); 0 when the file has no `GLOB`.
    pub subversion: u16,
}

/// One scene's render-relevant settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SceneInfo {
    /// The scene name, without the `SC` prefix.
    pub name: String,
    /// `r.sfra`.
    pub frame_start: i32,
    /// `r.efra`.
    pub frame_end: i32,
    /// `r.frame_step`.
    pub frame_step: i32,
    /// The active camera object's name; `None` when the scene has none.
    pub camera: Option<String>,
    /// `r.frs_sec / r.frs_sec_base`.
    pub fps: f64,
    /// Render settings, named as in Renderjuice's request.
    pub render_config: RenderConfig,
    /// `r.pic`: `//` is relative to the `.blend`, `#` is frame-number padding.
    pub output_path: String,
    /// The scene's view layers.
    pub view_layers: Vec<ViewLayerInfo>,
}

/// Render settings of a scene, with Blender identifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderConfig {
    /// `CYCLES`, `BLENDER_EEVEE`, `BLENDER_EEVEE_NEXT`, `BLENDER_WORKBENCH` or an add-on engine id.
    pub render_engine: String,
    /// `[r.xsch, r.ysch]` before the percentage is applied.
    pub resolution: [i32; 2],
    /// `r.size`.
    pub resolution_percentage: i32,
    /// Blender's `file_format` identifier (`PNG`, `OPEN_EXR_MULTILAYER`, ...).
    pub output_format: String,
    /// Per-format settings.
    pub output_settings: OutputSettings,
    /// Cycles `samples` for Cycles, EEVEE `taa_render_samples` for EEVEE, `None` otherwise.
    pub sample_count: Option<i32>,
    /// Cycles `use_denoising`.
    pub denoising_enabled: bool,
    /// Cycles `denoiser`: `OPENIMAGEDENOISE`, `OPTIX`, or `None` for a value this reader does not know.
    pub denoiser_type: Option<String>,
    /// Cycles `device`: `CPU` or `GPU`.
    pub device: String,
    /// `view_settings.view_transform` (`Filmic`, `AgX`, `Standard`, ...).
    pub view_transform: String,
    /// `view_settings.look`.
    pub look: String,
}

/// `r.im_format`, with Blender identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputSettings {
    /// `BW`, `RGB` or `RGBA`; `None` for a value this reader does not know.
    pub color_mode: Option<String>,
    /// Bits per channel, `"8"` to `"32"`; `None` for a value this reader does not know.
    pub color_depth: Option<String>,
    /// OpenEXR codec (`ZIP`, `PIZ`, `DWAA`, ...), as stored even for other formats.
    pub exr_codec: Option<String>,
    /// PNG compression, 0–100.
    pub compression: i32,
    /// JPEG (and similar) quality, 0–100.
    pub quality: i32,
}

/// A view layer and whether it is rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewLayerInfo {
    /// The layer's name.
    pub name: String,
    /// `flag & VIEW_LAYER_RENDER`.
    pub use_for_render: bool,
}

/// An external file the scene refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// What refers to it.
    pub kind: DependencyKind,
    /// The path exactly as stored in the file (`//` = relative to the `.blend`).
    pub path: String,
    /// Whether the farm can supply it.
    pub status: DependencyStatus,
}

/// Kinds of external references the analysis follows so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyKind {
    /// A linked `.blend` library (`LI` block).
    Library,
    /// An image, image sequence, movie or UDIM set (`IM` block).
    Image,
}

/// Whether a dependency will be there when the file renders on the farm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyStatus {
    /// Found beside the `.blend` (in the project or the file's directory).
    Present,
    /// Relative to the `.blend`, but not there.
    Missing,
    /// Stored inside the `.blend` itself.
    Packed,
    /// An absolute path, or a relative one that climbs out of the project: not shipped with it.
    OutsideProject,
}

/// Something a person should know before rendering; not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    /// Stable machine-readable code.
    pub code: WarningCode,
    /// The same, for a person.
    pub message: String,
    /// The path concerned, for dependency warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Warning codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// A relative dependency is not where the file expects it.
    MissingDependency,
    /// A dependency uses an absolute path, which will not exist on render nodes.
    AbsolutePath,
    /// A relative dependency climbs out of the project (`//../`).
    OutsideProject,
    /// The active scene has no camera: Blender renders nothing.
    NoCamera,
    /// The active scene denoises with OpenImageDenoise: only workers whose Blender has OIDN can run it.
    NeedsOidn,
    /// The file was saved by a Blender newer than the newest format this reader was checked against.
    NewerFileFormat,
    /// The file has no local scene.
    NoScene,
}

/// Where relative (`//`) dependency paths are looked up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resolver<'a> {
    /// A `.blend` on disk: relative to its directory.
    Dir(&'a Path),
    /// The main `.blend` of a zip: relative to its directory inside the archive.
    Archive {
        /// Directory of the main file inside the archive, `""` at the root.
        main_dir: &'a str,
        /// Every file entry's normalised name.
        entries: &'a HashSet<String>,
    },
    /// Bytes with no location: nothing relative can be found.
    Detached,
}

/// Everything that comes from the `.blend` bytes themselves; the caller adds the file's name,
/// size, hash and the time taken.
pub(crate) fn analyze_file(
    file: &BlendFile<'_>,
    compression: Compression,
    resolver: Resolver<'_>,
) -> Result<Analysis, AnalyzeError> {
    let header = file.header;
    let version = header.version;
    let glob = file.blocks.with_code(b"GLOB").next().and_then(|b| file.view_block_as(b, "FileGlobal"));
    let subversion = glob.and_then(|g| g.int("subversion")).and_then(|v| u16::try_from(v).ok()).unwrap_or(0);
    let min_blender_version =
        glob.and_then(|g| g.int("minversion")).filter(|&v| v > 0).map(|v| format!("{}.{}", v / 100, v % 100));

    let mut scenes = Vec::new();
    let mut active_scene = None;
    let curscene = glob.and_then(|g| g.ptr("curscene")).unwrap_or(0);
    for block in file.blocks.with_code(b"SC\0\0") {
        let Some(scene) = file.view_block_as(block, "Scene") else {
            continue;
        };
        if is_linked(&scene) {
            continue;
        }
        if scenes.len() >= MAX_SCENES {
            return Err(AnalyzeError::corrupt(format!("it holds more than {MAX_SCENES} scenes")));
        }
        let info = scene_info(&scene, version);
        if curscene != 0 && block.old == curscene {
            active_scene = Some(info.name.clone());
        }
        scenes.push(info);
    }
    if active_scene.is_none() {
        active_scene = scenes.first().map(|s| s.name.clone());
    }

    let dependencies = dependencies(file, resolver);
    let mut warnings = Vec::new();
    dependency_warnings(&dependencies, &mut warnings);
    scene_warnings(scenes.iter().find(|s| Some(&s.name) == active_scene.as_ref()), &mut warnings);
    if version > NEWEST_KNOWN_VERSION {
        warnings.push(Warning {
            code: WarningCode::NewerFileFormat,
            message: format!(
                "the file was saved by Blender {}.{}, newer than the newest format this reader was checked \
                 against ({}.{}); check the detected settings",
                header.major(),
                header.minor(),
                NEWEST_KNOWN_VERSION / 100,
                NEWEST_KNOWN_VERSION % 100
            ),
            path: None,
        });
    }

    Ok(Analysis {
        id: None,
        file_name: String::new(),
        file_size: 0,
        sha256: String::new(),
        compression,
        blender_version: format!("{}.{}", header.major(), header.minor()),
        file_version: FileVersion { major: header.major(), minor: header.minor(), subversion },
        min_blender_version,
        active_scene,
        scenes,
        dependencies,
        warnings,
        duration_ms: 0,
    })
}

fn int32(v: Option<i64>, default: i32) -> i32 {
    v.and_then(|v| i32::try_from(v).ok()).unwrap_or(default)
}

fn scene_info(scene: &StructView<'_>, version: u16) -> SceneInfo {
    let name = id_name(scene).unwrap_or_default();
    let r = scene.sub("r");
    let ri = |field: &str, default: i32| int32(r.and_then(|r| r.int(field)), default);
    // Defaults below are Blender's own, for fields an old or damaged file lacks.
    let frs_sec = f64::from(ri("frs_sec", 24));
    let base = r.and_then(|r| r.float("frs_sec_base")).filter(|b| b.is_finite() && *b > 0.0).unwrap_or(1.0);
    let fps = if (frs_sec / base).is_finite() { frs_sec / base } else { frs_sec };
    let camera = scene
        .ptr("camera")
        .filter(|&p| p != 0)
        .and_then(|p| scene.file().deref_as(p, "Object"))
        .and_then(|ob| id_name(&ob));
    let engine = r.and_then(|r| r.string("engine")).unwrap_or_default();
    let cycles = cycles::read(scene, version);
    let sample_count = match engine.as_str() {
        "CYCLES" => i32::try_from(cycles.samples).ok(),
        "BLENDER_EEVEE" | "BLENDER_EEVEE_NEXT" => {
            scene.sub("eevee").and_then(|e| e.int("taa_render_samples")).and_then(|v| i32::try_from(v).ok())
        }
        _ => None,
    };
    let view = scene.sub("view_settings");
    let im = r.and_then(|r| r.sub("im_format"));
    let view_layers = scene
        .list("view_layers", "ViewLayer", MAX_LIST_ITEMS)
        .iter()
        .map(|vl| ViewLayerInfo {
            name: vl.string("name").unwrap_or_default(),
            // VIEW_LAYER_RENDER = 1 << 0.
            use_for_render: vl.int("flag").is_some_and(|f| f & 1 != 0),
        })
        .collect();
    SceneInfo {
        name,
        frame_start: ri("sfra", 1),
        frame_end: ri("efra", 250),
        frame_step: ri("frame_step", 1),
        camera,
        fps,
        render_config: RenderConfig {
            render_engine: engine,
            resolution: [ri("xsch", 1920), ri("ysch", 1080)],
            resolution_percentage: ri("size", 100),
            output_format: output_format(im.as_ref()),
            output_settings: output_settings(im.as_ref()),
            sample_count,
            denoising_enabled: cycles.use_denoising,
            denoiser_type: cycles.denoiser.map(|d| d.identifier().to_string()),
            device: device(&cycles).to_string(),
            view_transform: view.and_then(|v| v.string("view_transform")).unwrap_or_default(),
            look: view.and_then(|v| v.string("look")).unwrap_or_default(),
        },
        output_path: r.and_then(|r| r.string("pic")).unwrap_or_default(),
        view_layers,
    }
}

fn device(cycles: &CyclesSettings) -> &'static str {
    if cycles.gpu { "GPU" } else { "CPU" }
}

/// `r.im_format.imtype` (and 5.x `media_type`) to Blender's `file_format` identifier.
fn output_format(im: Option<&StructView<'_>>) -> String {
    let Some(im) = im else {
        return "PNG".to_string();
    };
    // 5.x splits "what kind of output" into media_type; MULTI_LAYER_IMAGE (1) is the multilayer EXR.
    if im.int("media_type") == Some(1) {
        return "OPEN_EXR_MULTILAYER".to_string();
    }
    let imtype = im.int("imtype").unwrap_or(17);
    let id = match imtype {
        0 => "TARGA",
        1 => "IRIS",
        4 => "JPEG",
        14 => "TARGA_RAW",
        15 => "AVI_RAW",
        16 => "AVI_JPEG",
        17 => "PNG",
        20 => "BMP",
        21 => "HDR",
        22 => "TIFF",
        23 => "OPEN_EXR",
        24 => "FFMPEG",
        26 => "CINEON",
        27 => "DPX",
        28 => "OPEN_EXR_MULTILAYER",
        29 => "DDS",
        30 => "JPEG2000",
        34 => "PSD",
        35 => "WEBP",
        37 => "AVIF",
        other => return format!("UNKNOWN_{other}"),
    };
    id.to_string()
}

fn output_settings(im: Option<&StructView<'_>>) -> OutputSettings {
    let int = |f: &str| im.and_then(|im| im.int(f));
    let color_mode = match int("planes") {
        Some(8) => Some("BW"),
        Some(24) => Some("RGB"),
        Some(32) => Some("RGBA"),
        _ => None,
    };
    let color_depth = match int("depth") {
        Some(1) => Some("1"),
        Some(2) => Some("8"),
        Some(4) => Some("10"),
        Some(8) => Some("12"),
        Some(16) => Some("16"),
        Some(32) => Some("24"),
        Some(64) => Some("32"),
        _ => None,
    };
    // The low bits hold the codec; Blender masks with OPENEXR_CODEC_MASK (0xF).
    let exr_codec = match int("exr_codec").map(|c| c & 0xF) {
        Some(0) => Some("NONE"),
        Some(1) => Some("PXR24"),
        Some(2) => Some("ZIP"),
        Some(3) => Some("PIZ"),
        Some(4) => Some("RLE"),
        Some(5) => Some("ZIPS"),
        Some(6) => Some("B44"),
        Some(7) => Some("B44A"),
        Some(8) => Some("DWAA"),
        Some(9) => Some("DWAB"),
        Some(10) => Some("HTJ2K"),
        _ => None,
    };
    OutputSettings {
        color_mode: color_mode.map(str::to_string),
        color_depth: color_depth.map(str::to_string),
        exr_codec: exr_codec.map(str::to_string),
        compression: int32(int("compress"), 15),
        quality: int32(int("quality"), 90),
    }
}

fn scene_warnings(active: Option<&SceneInfo>, warnings: &mut Vec<Warning>) {
    let Some(scene) = active else {
        warnings.push(Warning {
            code: WarningCode::NoScene,
            message: "the file has no scene to render".to_string(),
            path: None,
        });
        return;
    };
    if scene.camera.is_none() {
        warnings.push(Warning {
            code: WarningCode::NoCamera,
            message: format!("the active scene {:?} has no camera, so Blender cannot render it", scene.name),
            path: None,
        });
    }
    let rc = &scene.render_config;
    if rc.render_engine == "CYCLES"
        && rc.denoising_enabled
        && rc.denoiser_type.as_deref() == Some(Denoiser::OpenImageDenoise.identifier())
    {
        warnings.push(Warning {
            code: WarningCode::NeedsOidn,
            message: format!(
                "the active scene {:?} denoises with OpenImageDenoise; only workers whose Blender was built \
                 with OIDN can render it",
                scene.name
            ),
            path: None,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Dependencies

/// Image sources that read files (`IMA_SRC_*`): FILE 1, SEQUENCE 2, MOVIE 3, TILED 6.
const FILE_IMAGE_SOURCES: &[i64] = &[1, 2, 3, 6];

fn dependencies(file: &BlendFile<'_>, resolver: Resolver<'_>) -> Vec<Dependency> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |kind: DependencyKind, path: String, packed: bool| {
        if path.is_empty() && !packed {
            return;
        }
        let status = if packed { DependencyStatus::Packed } else { resolve(&path, resolver) };
        if seen.insert((kind, path.clone(), status)) {
            out.push(Dependency { kind, path, status });
        }
    };
    for block in file.blocks.with_code(b"LI\0\0") {
        let Some(lib) = file.view_block_as(block, "Library") else {
            continue;
        };
        // On disk the field is still called `name` (runtime name `filepath`).
        let path = lib.string("name").unwrap_or_default();
        push(DependencyKind::Library, path, is_packed(&lib));
    }
    for block in file.blocks.with_code(b"IM\0\0") {
        let Some(image) = file.view_block_as(block, "Image") else {
            continue;
        };
        // A linked image is a placeholder; its path is relative to the library, which is itself
        // listed (and its own dependencies are the library's business).
        if is_linked(&image) {
            continue;
        }
        let source = image.int("source").unwrap_or(0);
        if !FILE_IMAGE_SOURCES.contains(&source) {
            continue;
        }
        let path = image.string("name").unwrap_or_default();
        push(DependencyKind::Image, path, is_packed(&image));
    }
    out
}

/// `packedfile` set, or (5.x) a non-empty `packedfiles` list.
fn is_packed(view: &StructView<'_>) -> bool {
    view.ptr("packedfile").is_some_and(|p| p != 0)
        || view.sub("packedfiles").and_then(|lb| lb.ptr("first")).is_some_and(|p| p != 0)
}

/// Where a stored path points.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    /// Absolute (Unix, Windows drive or UNC).
    Absolute,
    /// Relative to the `.blend`'s directory: its `/`-separated segments, `.` and empty ones
    /// dropped, `..` kept for [`normalize`].
    Relative(Vec<String>),
}

fn locate(path: &str) -> Location {
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
    let parts = rel.split('/').filter(|s| !s.is_empty() && *s != ".").map(str::to_string).collect();
    Location::Relative(parts)
}

/// `base` joined with `rel`, `..` applied; `None` when it climbs above the root of `base`.
fn normalize(base: &[&str], rel: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    for seg in rel {
        if seg == ".." {
            out.pop()?;
        } else {
            out.push(seg.clone());
        }
    }
    Some(out)
}

fn is_drive_path(path: &str) -> bool {
    let b = path.as_bytes();
    matches!(b, [letter, b':', ..] if letter.is_ascii_alphabetic())
}

/// Names a UDIM set is checked by: its first tile. Sequences are checked by the stored frame.
fn first_tile(segment: &str) -> String {
    segment.replace("<UDIM>", "1001").replace("<UVTILE>", "u1_v1")
}

/// The project root is the archive for a zip and the `.blend`'s directory otherwise, so `//../`
/// is fine inside a zip as long as it stays in the archive.
fn resolve(path: &str, resolver: Resolver<'_>) -> DependencyStatus {
    let Location::Relative(rel) = locate(path) else {
        return DependencyStatus::OutsideProject;
    };
    let base: Vec<&str> = match resolver {
        Resolver::Archive { main_dir, .. } => main_dir.split('/').filter(|s| !s.is_empty()).collect(),
        Resolver::Dir(_) | Resolver::Detached => Vec::new(),
    };
    let Some(parts) = normalize(&base, &rel) else {
        return DependencyStatus::OutsideProject;
    };
    if parts.is_empty() {
        return DependencyStatus::Missing;
    }
    let joined = first_tile(&parts.join("/"));
    let found = match resolver {
        Resolver::Dir(dir) => dir.join(&joined).is_file(),
        Resolver::Archive { entries, .. } => entries.contains(&joined),
        Resolver::Detached => false,
    };
    if found { DependencyStatus::Present } else { DependencyStatus::Missing }
}

fn dependency_warnings(deps: &[Dependency], warnings: &mut Vec<Warning>) {
    for dep in deps {
        let what = match dep.kind {
            DependencyKind::Library => "linked library",
            DependencyKind::Image => "image",
        };
        let (code, message) = match (dep.status, locate(&dep.path)) {
            (DependencyStatus::Missing, _) => (
                WarningCode::MissingDependency,
                format!("the {what} {:?} is not in the project; frames will render without it", dep.path),
            ),
            (DependencyStatus::OutsideProject, Location::Absolute) => (
                WarningCode::AbsolutePath,
                format!(
                    "the {what} {:?} has an absolute path, which will not exist on render nodes; make it \
                     relative and include it in the project",
                    dep.path
                ),
            ),
            (DependencyStatus::OutsideProject, _) => (
                WarningCode::OutsideProject,
                format!("the {what} {:?} lies outside the project folder, so it is not uploaded", dep.path),
            ),
            (DependencyStatus::Present | DependencyStatus::Packed, _) => continue,
        };
        warnings.push(Warning { code, message, path: Some(dep.path.clone()) });
    }
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
    fn relative_paths_resolve_inside_an_archive_relative_to_the_main_file() {
        let entries: HashSet<String> = ["shot/textures/wood.png".to_string()].into();
        let archive = Resolver::Archive { main_dir: "shot", entries: &entries };
        assert_eq!(resolve("//textures/wood.png", archive), DependencyStatus::Present);
        assert_eq!(resolve("//textures/oak.png", archive), DependencyStatus::Missing);
        assert_eq!(resolve("//../shot/textures/wood.png", archive), DependencyStatus::Present);
        assert_eq!(resolve("//../../wood.png", archive), DependencyStatus::OutsideProject);
        assert_eq!(resolve("//../wood.png", Resolver::Detached), DependencyStatus::OutsideProject);
        assert_eq!(resolve("//textures/wood.png", Resolver::Detached), DependencyStatus::Missing);
    }
}
