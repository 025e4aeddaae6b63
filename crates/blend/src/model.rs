//! The analysis object of the spec (orchard.md §5), as serde types: what a `.blend` says about
//! its scenes, the files it needs and what a person should know before rendering.
//!
//! These types know nothing of reading; `analysis` fills them in from a parsed file. Their JSON
//! is the contract: field names and shapes change only with the spec.

use serde::{Deserialize, Serialize};

/// EEVEE's identifier: `BLENDER_EEVEE` up to 4.1 and again from 5.0, `BLENDER_EEVEE_NEXT` in 4.2–4.5.
pub(crate) const EEVEE_ENGINES: &[&str] = &["BLENDER_EEVEE", "BLENDER_EEVEE_NEXT"];

/// What Orchard knows about a `.blend` file (or the main `.blend` of a `.zip` project) without
/// running Blender. Serialises to exactly the `analysis` object of the spec (orchard.md §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// Set by the server when it stores the analysis; the reader leaves it `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// For a `.zip` project, the main `.blend`'s path inside the archive (normalised,
    /// `/`-separated, what `ZipProject::main_file` returns);
    /// `None` for a plain `.blend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_file: Option<String>,
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
    /// External files the file refers to, and those its linked libraries refer to when the
    /// project holds them.
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
    pub render_config: DetectedRenderConfig,
    /// `r.pic` (`\` turned into `/` as Blender does on load): `//` is relative to the `.blend`, `#`
    /// is frame-number padding.
    pub output_path: String,
    /// The scene's view layers.
    pub view_layers: Vec<ViewLayerInfo>,
}

/// Render settings of a scene as the file says them, with Blender identifiers (serialised as
/// `renderConfig`). What a job finally renders with is `orchard-domain`'s `RenderConfig`: these
/// settings overlaid with the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectedRenderConfig {
    /// `CYCLES`, `BLENDER_EEVEE`, `BLENDER_EEVEE_NEXT`, `BLENDER_WORKBENCH` or an add-on engine id.
    pub render_engine: String,
    /// `[r.xsch, r.ysch]` before the percentage is applied.
    pub resolution: [i32; 2],
    /// `r.size`.
    pub resolution_percentage: i32,
    /// Blender's `file_format` identifier (`PNG`, `OPEN_EXR_MULTILAYER`, ...).
    pub output_format: String,
    /// Per-format settings.
    pub output_settings: DetectedOutputSettings,
    /// Cycles `samples` for Cycles, EEVEE `taa_render_samples` for EEVEE, `None` otherwise.
    pub sample_count: Option<i32>,
    /// Cycles `use_denoising`.
    pub denoising_enabled: bool,
    /// Cycles `denoiser`: `OPENIMAGEDENOISE`, `OPTIX`, or `None` for a stored value the saving
    /// Blender's add-on does not know.
    pub denoiser_type: Option<String>,
    /// Cycles `device`: `CPU` or `GPU`.
    pub device: String,
    /// `view_settings.view_transform` (`Filmic`, `AgX`, `Standard`, ...), as Blender uses it: a
    /// name its colour configuration lacks becomes the display's default view.
    pub view_transform: String,
    /// `view_settings.look`, as Blender uses it: one the view does not accept becomes `None`.
    pub look: String,
}

/// `r.im_format` as the file says it, with Blender identifiers (serialised as `outputSettings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectedOutputSettings {
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
    /// The path as stored, with `\` separators turned into `/` as Blender does on load (`//` =
    /// relative to the `.blend` that stores it: the main file, or [`Dependency::library`] for data
    /// of a linked library).
    pub path: String,
    /// Whether the farm can supply it.
    pub status: DependencyStatus,
    /// For a dependency of a linked library (found by opening the library), that library's path
    /// relative to the main file (`//lib/props.blend`); `None` for the main file's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
}

/// Kinds of external references (what Blender Asset Tracer v1 follows, plus texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyKind {
    /// A linked `.blend` library (`LI` block).
    Library,
    /// An image, image sequence, movie or UDIM set (`IM` block).
    Image,
    /// A sound (`SO` block).
    Sound,
    /// A font file (`VF` block; Blender's `<builtin>` font is not one).
    Font,
    /// A movie clip for tracking or compositing (`MC` block).
    MovieClip,
    /// An Alembic or USD cache (`CF` block).
    CacheFile,
    /// An OpenVDB volume (`VO` block).
    Volume,
    /// An external text or script (`TX` block, when not kept in the file).
    Text,
    /// A sequencer image or movie strip's file.
    Strip,
    /// A mesh cache modifier's `.mdd` / `.pc2` file.
    MeshCache,
    /// A point cache stored on disk (cloth, soft body, particles, dynamic paint): a directory.
    PointCache,
    /// A fluid domain's cache directory.
    FluidCache,
    /// An IES light profile of an IES texture node in external mode.
    IesProfile,
    /// An OSL shader of a script node in external mode (`.osl` or `.oso`).
    OslScript,
    /// A baked Ocean modifier's cache directory.
    OceanCache,
    /// A geometry-nodes bake (bake or simulation node) read from disk: a directory.
    GeometryNodesBake,
    /// Multires displacement saved to an external file (`.btx`).
    MeshDisplacement,
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
    /// A linked library is in the project but could not be read.
    UnreadableLibrary,
    /// The active scene has no camera: Blender renders nothing.
    NoCamera,
    /// The active scene renders with EEVEE, which needs a GPU worker (it crawls on a CPU).
    EeveeNeedsGpu,
    /// The active scene denoises with OpenImageDenoise: only workers whose Blender has OIDN can run it.
    NeedsOidn,
    /// The file was saved by a Blender newer than the newest format this reader was checked against.
    NewerFileFormat,
    /// The file has no local scene.
    NoScene,
    /// The file carries Python (text blocks that run when it opens, scripted driver expressions),
    /// which never runs on the farm: Blender runs there with Python scripts disabled.
    PythonCode,
}

/// How the `.blend` data was stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain `BLENDER...` bytes.
    None,
    /// gzip, written by Blender before 3.0 when "Compress" was on.
    Gzip,
    /// zstd (Blender 3.0 and later), in Blender's multi-frame seekable layout.
    Zstd,
}
