//! Render configurations.
//!
//! [`RequestedConfig`] is what a client sent as `requestedRenderConfig`: every field checked,
//! and an error names the field (`outputSettings.colorDepth`). [`RenderConfig`] is the
//! `finalConfig`: the active scene's detected settings overlaid with the request, then
//! checked as a whole (a depth the format cannot store is refused before any worker runs).
//!
//! Their JSON form *is* the Renderjuice contract's `RenderConfig` shape, which is why these
//! two types, alone in this crate, are serde types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::frames::{FrameError, FrameSet};

/// Output formats a render may write, as Blender names them. `FFMPEG` (video) is refused:
/// a farm renders frames; a video is a transform of them.
pub const OUTPUT_FORMATS: &[&str] = &[
    "PNG",
    "JPEG",
    "OPEN_EXR",
    "OPEN_EXR_MULTILAYER",
    "TIFF",
    "BMP",
    "TARGA",
    "TARGA_RAW",
    "IRIS",
    "CINEON",
    "DPX",
    "JPEG2000",
    "HDR",
    "WEBP",
];
/// Render engines Orchard schedules.
pub const RENDER_ENGINES: &[&str] = &["CYCLES", "BLENDER_EEVEE", "BLENDER_EEVEE_NEXT", "BLENDER_WORKBENCH"];
pub(crate) const COMPUTE_DEVICE_TYPES: &[&str] = &["NONE", "CUDA", "OPTIX", "HIP", "ONEAPI", "METAL"];
pub(crate) const DENOISERS: &[&str] = &["OPTIX", "OPENIMAGEDENOISE"];
pub(crate) const COLOR_MODES: &[&str] = &["BW", "RGB", "RGBA"];
pub(crate) const COLOR_DEPTHS: &[&str] = &["8", "10", "12", "16", "32"];
pub(crate) const EXR_CODECS: &[&str] = &["NONE", "PXR24", "ZIP", "PIZ", "RLE", "ZIPS", "B44", "B44A", "DWAA", "DWAB"];
pub(crate) const TIFF_CODECS: &[&str] = &["NONE", "DEFLATE", "LZW", "PACKBITS"];
pub(crate) const PRESETS: &[&str] = &["default", "aces"];
pub(crate) const COMPOSITOR_DEVICES: &[&str] = &["CPU", "GPU"];
/// The whole-number fields of a `requestedRenderConfig` and their inclusive ranges: the
/// parser and the OpenAPI schema read this one table.
pub(crate) const INTEGER_FIELDS: &[(&str, u32, u32)] = &[
    ("gpuCount", 1, 16),
    ("sampleCount", 1, 16_777_216),
    ("resolutionPercentage", 1, 32_767),
    ("fps", 1, 1000),
    ("tileSize", 8, 8192),
    ("minimumRam", 1, 4096),
    ("chunkSize", 1, 1000),
    ("priority", PRIORITIES.0, PRIORITIES.1),
];
/// A job's priority: higher goes first.
pub const PRIORITIES: (u32, u32) = (0, 100);
/// `resolution`'s sides, in pixels.
pub(crate) const RESOLUTION_SIDE: (u32, u32) = (4, 65_536);
/// `outputSettings.compression` and `.quality`.
pub(crate) const PERCENT: (u32, u32) = (0, 100);
/// Longest `notes`, in characters.
pub(crate) const MAX_NOTES: usize = 10_000;
/// Every field a `requestedRenderConfig` may have.
pub(crate) const REQUESTED_FIELDS: &[&str] = &[
    "colorManagementPreset",
    "frameRanges",
    "notes",
    "renderEngine",
    "compositorDevice",
    "computeDeviceType",
    "gpuCount",
    "sampleCount",
    "denoisingEnabled",
    "denoiserType",
    "resolution",
    "resolutionPercentage",
    "outputFormat",
    "fps",
    "useTiling",
    "tileSize",
    "outputSettings",
    "minimumRam",
    "chunkSize",
    "priority",
    "failOnBlank",
    "video",
];
/// Every field `outputSettings` may have.
pub(crate) const OUTPUT_SETTINGS_FIELDS: &[&str] =
    &["colorMode", "colorDepth", "exrCodec", "tiffCodec", "compression", "quality"];
/// Largest output side in pixels after the percentage is applied (Blender's own limit is 65536).
pub const MAX_OUTPUT_SIDE: u64 = 65_536;

/// A refused configuration: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    /// The field's path, such as `outputSettings.colorDepth`.
    pub field: String,
    /// What is wrong with it, for a person.
    pub reason: String,
}

impl ConfigError {
    fn new(field: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError { field: field.to_string(), reason: reason.into() }
    }
}

/// Image output settings, by the Renderjuice field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputSettings {
    /// `BW`, `RGB` or `RGBA`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_mode: Option<String>,
    /// `"8"`, `"10"`, `"12"`, `"16"` or `"32"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_depth: Option<String>,
    /// OpenEXR codec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exr_codec: Option<String>,
    /// TIFF codec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiff_codec: Option<String>,
    /// PNG compression, 0–100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<u32>,
    /// JPEG/WebP quality, 0–100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<u32>,
}

/// A checked `requestedRenderConfig`: every field optional but `colorManagementPreset`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedConfig {
    /// `default` or `aces`. (Defaulted only when reading detected settings, which have none.)
    #[serde(default)]
    pub color_management_preset: String,
    /// Frame range strings; their union is rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_ranges: Option<Vec<String>>,
    /// Free text for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Blender engine identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render_engine: Option<String>,
    /// Compositor device, `CPU` or `GPU`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compositor_device: Option<String>,
    /// Cycles GPU backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_device_type: Option<String>,
    /// GPUs per task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_count: Option<u32>,
    /// Samples of the scene's engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_count: Option<u32>,
    /// Cycles denoising.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denoising_enabled: Option<bool>,
    /// Cycles denoiser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denoiser_type: Option<String>,
    /// `[width, height]` in pixels, before the percentage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<[u32; 2]>,
    /// Percentage applied to `resolution`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_percentage: Option<u32>,
    /// Blender `file_format` identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// Frames per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Cycles auto tiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_tiling: Option<bool>,
    /// Cycles tile size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tile_size: Option<u32>,
    /// Image settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_settings: Option<OutputSettings>,
    /// Least RAM a worker needs, in GiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_ram: Option<u32>,
    /// Orchard extension: frames per task (default: chosen from the frame count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u32>,
    /// Orchard extension: the job's priority, 0–100 (50 unless set; `PATCH /jobs/{id}` changes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Orchard extension: a frame that is one colour only fails its attempt (it is retried
    /// elsewhere, and fails the job as any failing frame does) instead of being flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on_blank: Option<bool>,
    /// Orchard extension: an H.264 MP4 of the frames (`transforms.video`), made during
    /// `finalizing` by a worker with ffmpeg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<bool>,
}

/// The `finalConfig`: what every task of a job renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderConfig {
    /// `default` or `aces`.
    pub color_management_preset: String,
    /// The frames, as the shortest range strings.
    pub frame_ranges: Vec<String>,
    /// Free text for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Blender engine identifier.
    pub render_engine: String,
    /// Compositor device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compositor_device: Option<String>,
    /// Cycles GPU backend; absent or `NONE` renders on the CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_device_type: Option<String>,
    /// GPUs per task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_count: Option<u32>,
    /// Samples of the engine; absent for Workbench.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_count: Option<u32>,
    /// Cycles denoising.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denoising_enabled: Option<bool>,
    /// Cycles denoiser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denoiser_type: Option<String>,
    /// `[width, height]` before the percentage.
    pub resolution: [u32; 2],
    /// Percentage applied to `resolution`.
    pub resolution_percentage: u32,
    /// Blender `file_format` identifier.
    pub output_format: String,
    /// Frames per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Cycles auto tiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_tiling: Option<bool>,
    /// Cycles tile size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tile_size: Option<u32>,
    /// Image settings.
    pub output_settings: OutputSettings,
    /// Least RAM a worker needs, in GiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_ram: Option<u32>,
    /// Orchard extension: frames per task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u32>,
    /// Orchard: the scene's own name for its frames (`shot_####`, from its output path), which
    /// they keep; absent when the output path names a folder only (frames are `0001.png`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_name: Option<String>,
    /// Orchard extension: a frame of one colour only fails its attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on_blank: Option<bool>,
    /// Orchard extension: the job delivers a video of its frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<bool>,
}

/// The name pattern of a scene's frames from its output path (`//out/shot_####` → `shot_####`):
/// the last part, with anything but `A–Z a–z 0–9 . _ - #` made `_`, no leading dot, at most
/// 150 characters; `None` when the path names a folder (`/tmp/`, `//renders/`).
pub fn output_name(output_path: &str) -> Option<String> {
    let last = output_path.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last
        .chars()
        .map(|it| if it.is_ascii_alphanumeric() || matches!(it, '.' | '_' | '-' | '#') { it } else { '_' })
        .take(150)
        .collect();
    // A leading dot would make a hidden file (and a name of dots a path step).
    let clean = clean.trim_start_matches('.').to_string();
    (!clean.is_empty()).then_some(clean)
}

impl RequestedConfig {
    /// Checks a `requestedRenderConfig` value. Unknown fields are refused so that a typo is
    /// not silently ignored.
    pub fn parse(value: &Value) -> Result<RequestedConfig, ConfigError> {
        const ROOT: &str = "requestedRenderConfig";
        let object = match value {
            Value::Object(object) => object,
            Value::Null => return Err(ConfigError::new(ROOT, "is required")),
            _ => return Err(ConfigError::new(ROOT, "must be an object")),
        };
        if object.is_empty() {
            return Err(ConfigError::new(ROOT, "must not be empty: colorManagementPreset is required"));
        }
        let fields = Fields { object, prefix: "" };
        fields.refuse_unknown(REQUESTED_FIELDS)?;
        let color_management_preset = fields
            .enum_str("colorManagementPreset", PRESETS)?
            .ok_or_else(|| ConfigError::new("colorManagementPreset", "is required (\"default\" or \"aces\")"))?;
        let frame_ranges = match object.get("frameRanges") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut ranges = Vec::with_capacity(items.len());
                for (idx, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => ranges.push(s.clone()),
                        _ => {
                            return Err(ConfigError::new(
                                &format!("frameRanges[{idx}]"),
                                "must be a string such as \"1-250\"",
                            ));
                        }
                    }
                }
                FrameSet::parse(&ranges).map_err(|e: FrameError| ConfigError::new("frameRanges", e.to_string()))?;
                Some(ranges)
            }
            Some(_) => return Err(ConfigError::new("frameRanges", "must be an array of strings such as [\"1-250\"]")),
        };
        let notes = fields.string("notes", MAX_NOTES)?;
        let resolution = match object.get("resolution") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.len() == 2 => {
                let mut out = [0u32; 2];
                for (idx, item) in items.iter().enumerate() {
                    out[idx] = integer_in(item, &format!("resolution[{idx}]"), RESOLUTION_SIDE.0, RESOLUTION_SIDE.1)?;
                }
                Some(out)
            }
            Some(_) => return Err(ConfigError::new("resolution", "must be [width, height] in pixels")),
        };
        let output_settings = match object.get("outputSettings") {
            None | Some(Value::Null) => None,
            Some(Value::Object(inner)) => {
                let fields = Fields { object: inner, prefix: "outputSettings." };
                fields.refuse_unknown(OUTPUT_SETTINGS_FIELDS)?;
                Some(OutputSettings {
                    color_mode: fields.enum_str("colorMode", COLOR_MODES)?,
                    color_depth: fields.enum_str("colorDepth", COLOR_DEPTHS)?,
                    exr_codec: fields.enum_str("exrCodec", EXR_CODECS)?,
                    tiff_codec: fields.enum_str("tiffCodec", TIFF_CODECS)?,
                    compression: fields.percent("compression")?,
                    quality: fields.percent("quality")?,
                })
            }
            Some(_) => return Err(ConfigError::new("outputSettings", "must be an object")),
        };
        if let Some(Value::String(format)) = object.get("outputFormat")
            && format == "FFMPEG"
        {
            return Err(ConfigError::new(
                "outputFormat",
                "video (FFMPEG) output is not supported: render image frames",
            ));
        }
        Ok(RequestedConfig {
            color_management_preset,
            frame_ranges,
            notes,
            render_engine: fields.enum_str("renderEngine", RENDER_ENGINES)?,
            compositor_device: fields.enum_str("compositorDevice", COMPOSITOR_DEVICES)?,
            compute_device_type: fields.enum_str("computeDeviceType", COMPUTE_DEVICE_TYPES)?,
            gpu_count: fields.integer("gpuCount")?,
            sample_count: fields.integer("sampleCount")?,
            denoising_enabled: fields.boolean("denoisingEnabled")?,
            denoiser_type: fields.enum_str("denoiserType", DENOISERS)?,
            resolution,
            resolution_percentage: fields.integer("resolutionPercentage")?,
            output_format: fields.enum_str("outputFormat", OUTPUT_FORMATS)?,
            fps: fields.integer("fps")?.map(f64::from),
            use_tiling: fields.boolean("useTiling")?,
            tile_size: fields.integer("tileSize")?,
            output_settings,
            minimum_ram: fields.integer("minimumRam")?,
            chunk_size: fields.integer("chunkSize")?,
            priority: fields.integer("priority")?,
            fail_on_blank: fields.boolean("failOnBlank")?,
            video: fields.boolean("video")?,
        })
    }
}

impl RenderConfig {
    /// The final config: `detected` (the active scene's settings) overlaid with `requested`,
    /// with the frames defaulting to `scene_frames`. The result is checked as a whole.
    pub fn overlay(
        detected: &RequestedConfig,
        requested: &RequestedConfig,
        scene_frames: &FrameSet,
    ) -> Result<RenderConfig, ConfigError> {
        fn pick<T: Clone>(requested: &Option<T>, detected: &Option<T>) -> Option<T> {
            requested.clone().or_else(|| detected.clone())
        }
        let detected_out = detected.output_settings.clone().unwrap_or_default();
        let requested_out = requested.output_settings.clone().unwrap_or_default();
        let output_settings = OutputSettings {
            color_mode: pick(&requested_out.color_mode, &detected_out.color_mode),
            color_depth: pick(&requested_out.color_depth, &detected_out.color_depth),
            exr_codec: pick(&requested_out.exr_codec, &detected_out.exr_codec),
            tiff_codec: pick(&requested_out.tiff_codec, &detected_out.tiff_codec),
            compression: pick(&requested_out.compression, &detected_out.compression),
            quality: pick(&requested_out.quality, &detected_out.quality),
        };
        let frames = match &requested.frame_ranges {
            Some(ranges) => FrameSet::parse(ranges).map_err(|e| ConfigError::new("frameRanges", e.to_string()))?,
            None => scene_frames.clone(),
        };
        let config = RenderConfig {
            color_management_preset: requested.color_management_preset.clone(),
            frame_ranges: frames.to_ranges(),
            notes: requested.notes.clone(),
            render_engine: pick(&requested.render_engine, &detected.render_engine).ok_or_else(|| {
                ConfigError::new("renderEngine", "the scene has no engine Orchard can render; set renderEngine")
            })?,
            compositor_device: pick(&requested.compositor_device, &detected.compositor_device),
            compute_device_type: pick(&requested.compute_device_type, &detected.compute_device_type),
            gpu_count: pick(&requested.gpu_count, &detected.gpu_count),
            sample_count: pick(&requested.sample_count, &detected.sample_count),
            denoising_enabled: pick(&requested.denoising_enabled, &detected.denoising_enabled),
            denoiser_type: pick(&requested.denoiser_type, &detected.denoiser_type),
            resolution: pick(&requested.resolution, &detected.resolution)
                .ok_or_else(|| ConfigError::new("resolution", "the scene has no resolution; set resolution"))?,
            resolution_percentage: pick(&requested.resolution_percentage, &detected.resolution_percentage)
                .unwrap_or(100),
            output_format: pick(&requested.output_format, &detected.output_format).ok_or_else(|| {
                ConfigError::new(
                    "outputFormat",
                    "the scene's output format cannot be rendered to frames; set outputFormat",
                )
            })?,
            fps: pick(&requested.fps, &detected.fps),
            use_tiling: pick(&requested.use_tiling, &detected.use_tiling),
            tile_size: pick(&requested.tile_size, &detected.tile_size),
            output_settings,
            minimum_ram: pick(&requested.minimum_ram, &detected.minimum_ram),
            chunk_size: requested.chunk_size,
            output_name: None,
            fail_on_blank: requested.fail_on_blank,
            video: requested.video,
        };
        config.check()?;
        Ok(config)
    }

    /// The frames this config renders.
    pub fn frames(&self) -> Result<FrameSet, FrameError> {
        FrameSet::parse(&self.frame_ranges)
    }

    /// The size of each output image: resolution × percentage, rounded down as Blender does.
    pub fn output_size(&self) -> (u32, u32) {
        let scale = |side: u32| ((u64::from(side) * u64::from(self.resolution_percentage)) / 100).max(1) as u32;
        (scale(self.resolution[0]), scale(self.resolution[1]))
    }

    /// The file name Blender gives `frame`: the output name's last run of `#` becomes the frame
    /// number padded to its length, and without `#` four digits are appended (`0001` alone
    /// without an output name), then the format's extension.
    pub fn frame_file_name(&self, frame: i32) -> String {
        let extension = self.extension();
        let Some(name) = &self.output_name else { return format!("{frame:04}.{extension}") };
        let number = |width: usize| {
            if frame < 0 {
                format!("-{:0width$}", -i64::from(frame), width = width.saturating_sub(1))
            } else {
                format!("{frame:0width$}")
            }
        };
        let stem = match name.rfind('#') {
            Some(end) => {
                let start = name[..=end].trim_end_matches('#').len();
                format!("{}{}{}", &name[..start], number(end + 1 - start), &name[end + 1..])
            }
            None => format!("{name}{}", number(4)),
        };
        format!("{stem}.{extension}")
    }

    /// The file extension Blender gives this format.
    pub fn extension(&self) -> &'static str {
        match self.output_format.as_str() {
            "PNG" => "png",
            "JPEG" => "jpg",
            "OPEN_EXR" | "OPEN_EXR_MULTILAYER" => "exr",
            "TIFF" => "tif",
            "BMP" => "bmp",
            "TARGA" | "TARGA_RAW" => "tga",
            "IRIS" => "rgb",
            "CINEON" => "cin",
            "DPX" => "dpx",
            "JPEG2000" => "jp2",
            "HDR" => "hdr",
            "WEBP" => "webp",
            _ => "img",
        }
    }

    /// Cross-field rules: what the chosen format can store.
    fn check(&self) -> Result<(), ConfigError> {
        let (width, height) = self.output_size();
        if u64::from(width) > MAX_OUTPUT_SIDE || u64::from(height) > MAX_OUTPUT_SIDE {
            return Err(ConfigError::new(
                "resolutionPercentage",
                format!("the output would be {width}×{height}; each side must be at most {MAX_OUTPUT_SIDE}"),
            ));
        }
        if !OUTPUT_FORMATS.contains(&self.output_format.as_str()) {
            return Err(ConfigError::new(
                "outputFormat",
                format!("{} cannot be rendered to frames", self.output_format),
            ));
        }
        if !RENDER_ENGINES.contains(&self.render_engine.as_str()) {
            return Err(ConfigError::new(
                "renderEngine",
                format!("{} is not an engine Orchard renders", self.render_engine),
            ));
        }
        let depths: &[&str] = match self.output_format.as_str() {
            "PNG" | "TIFF" => &["8", "16"],
            "OPEN_EXR" | "OPEN_EXR_MULTILAYER" => &["16", "32"],
            "JPEG2000" => &["8", "12", "16"],
            "DPX" => &["8", "10", "12", "16"],
            "HDR" => &["32"],
            "CINEON" => &["10"],
            _ => &["8"],
        };
        if let Some(depth) = &self.output_settings.color_depth
            && !depths.contains(&depth.as_str())
        {
            return Err(ConfigError::new(
                "outputSettings.colorDepth",
                format!("{} stores depths {}, not {depth}", self.output_format, depths.join(", ")),
            ));
        }
        let no_alpha = ["JPEG", "BMP", "CINEON", "HDR", "DPX"];
        if self.output_settings.color_mode.as_deref() == Some("RGBA") && no_alpha.contains(&self.output_format.as_str())
        {
            return Err(ConfigError::new(
                "outputSettings.colorMode",
                format!("{} cannot store alpha; use RGB or BW", self.output_format),
            ));
        }
        Ok(())
    }
}

struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: &'static str,
}

impl Fields<'_> {
    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn refuse_unknown(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.object.keys().find(|key| !known.contains(&key.as_str())) {
            Some(key) => Err(ConfigError::new(&self.path(key), "is not a render config field")),
            None => Ok(()),
        }
    }

    fn enum_str(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, ConfigError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
            Some(_) => Err(ConfigError::new(&self.path(name), format!("must be one of {}", quoted(allowed)))),
        }
    }

    fn string(&self, name: &str, max_chars: usize) -> Result<Option<String>, ConfigError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max_chars => Ok(Some(s.clone())),
            Some(Value::String(_)) => {
                Err(ConfigError::new(&self.path(name), format!("must be at most {max_chars} characters")))
            }
            Some(_) => Err(ConfigError::new(&self.path(name), "must be a string")),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ConfigError::new(&self.path(name), "must be true or false")),
        }
    }

    /// A field of [`INTEGER_FIELDS`], within its range.
    fn integer(&self, name: &str) -> Result<Option<u32>, ConfigError> {
        let (min, max) = INTEGER_FIELDS
            .iter()
            .find(|(field, ..)| *field == name)
            .map_or((0, u32::MAX), |(_, min, max)| (*min, *max));
        self.integer_within(name, min, max)
    }

    fn percent(&self, name: &str) -> Result<Option<u32>, ConfigError> {
        self.integer_within(name, PERCENT.0, PERCENT.1)
    }

    fn integer_within(&self, name: &str, min: u32, max: u32) -> Result<Option<u32>, ConfigError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => integer_in(value, &self.path(name), min, max).map(Some),
        }
    }
}

fn integer_in(value: &Value, field: &str, min: u32, max: u32) -> Result<u32, ConfigError> {
    let reason = || ConfigError::new(field, format!("must be a whole number from {min} to {max}"));
    let number = value.as_f64().ok_or_else(reason)?;
    if number.fract() != 0.0 || number < f64::from(min) || number > f64::from(max) {
        return Err(reason());
    }
    Ok(number as u32)
}

fn quoted(allowed: &[&str]) -> String {
    allowed.iter().map(|it| format!("\"{it}\"")).collect::<Vec<_>>().join(", ")
}

/// What the file says, as a request: the base a client's request is laid over. Values a
/// request cannot carry (a negative size in a damaged file) are left out, field by field.
impl From<&orchard_blend::DetectedRenderConfig> for RequestedConfig {
    fn from(detected: &orchard_blend::DetectedRenderConfig) -> RequestedConfig {
        let unsigned = |value: i32| u32::try_from(value).ok();
        let settings = &detected.output_settings;
        RequestedConfig {
            render_engine: Some(detected.render_engine.clone()),
            resolution: match detected.resolution.map(unsigned) {
                [Some(width), Some(height)] => Some([width, height]),
                _ => None,
            },
            resolution_percentage: unsigned(detected.resolution_percentage),
            output_format: Some(detected.output_format.clone()),
            output_settings: Some(OutputSettings {
                color_mode: settings.color_mode.clone(),
                color_depth: settings.color_depth.clone(),
                exr_codec: settings.exr_codec.clone(),
                tiff_codec: None,
                compression: unsigned(settings.compression),
                quality: unsigned(settings.quality),
            }),
            sample_count: detected.sample_count.and_then(unsigned),
            denoising_enabled: Some(detected.denoising_enabled),
            denoiser_type: detected.denoiser_type.clone(),
            ..RequestedConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn frames_keep_the_scenes_own_name_and_padding() {
        assert_eq!(output_name("//out/shot_####").as_deref(), Some("shot_####"));
        assert_eq!(output_name("/tmp/"), None, "a folder");
        assert_eq!(output_name("//renders/my shot é_##"), Some("my_shot___##".into()));
        assert_eq!(output_name("//.."), None);
        assert_eq!(output_name("//.hidden_##").as_deref(), Some("hidden_##"));
        let named = |name: Option<&str>, format: &str| {
            let mut config: RenderConfig = serde_json::from_value(serde_json::json!({
                "colorManagementPreset": "default", "frameRanges": ["1"], "renderEngine": "CYCLES",
                "resolution": [64, 48], "resolutionPercentage": 100, "outputFormat": format, "outputSettings": {}
            }))
            .unwrap();
            config.output_name = name.map(str::to_string);
            config
        };
        assert_eq!(named(None, "PNG").frame_file_name(7), "0007.png");
        assert_eq!(named(Some("shot_####"), "PNG").frame_file_name(7), "shot_0007.png");
        assert_eq!(named(Some("shot_###"), "OPEN_EXR").frame_file_name(12), "shot_012.exr");
        assert_eq!(named(Some("v##_take_#"), "JPEG").frame_file_name(3), "v##_take_3.jpg", "the last run of #");
        assert_eq!(named(Some("shot"), "PNG").frame_file_name(3), "shot0003.png", "four digits appended");
        assert_eq!(named(Some("shot_##"), "PNG").frame_file_name(1234), "shot_1234.png", "wider than the run");
    }

    use serde_json::json;

    use super::*;

    fn detected() -> RequestedConfig {
        RequestedConfig {
            color_management_preset: "default".into(),
            render_engine: Some("CYCLES".into()),
            resolution: Some([1920, 1080]),
            resolution_percentage: Some(50),
            output_format: Some("PNG".into()),
            sample_count: Some(128),
            output_settings: Some(OutputSettings {
                color_mode: Some("RGBA".into()),
                color_depth: Some("8".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (json!(null), "requestedRenderConfig"),
            (json!({}), "requestedRenderConfig"),
            (json!([]), "requestedRenderConfig"),
            (json!({"frameRanges": ["1"]}), "colorManagementPreset"),
            (json!({"colorManagementPreset": "srgb"}), "colorManagementPreset"),
            (json!({"colorManagementPreset": "default", "sampleCount": 0}), "sampleCount"),
            (json!({"colorManagementPreset": "default", "sampleCount": 1.5}), "sampleCount"),
            (json!({"colorManagementPreset": "default", "resolution": [64]}), "resolution"),
            (json!({"colorManagementPreset": "default", "resolution": [64, 2]}), "resolution[1]"),
            (json!({"colorManagementPreset": "default", "renderEngine": "LUXCORE"}), "renderEngine"),
            (json!({"colorManagementPreset": "default", "outputFormat": "GIF"}), "outputFormat"),
            (json!({"colorManagementPreset": "default", "outputFormat": "FFMPEG"}), "outputFormat"),
            (json!({"colorManagementPreset": "default", "frameRanges": ["9-1"]}), "frameRanges"),
            (json!({"colorManagementPreset": "default", "frameRanges": [1]}), "frameRanges[0]"),
            (json!({"colorManagementPreset": "default", "denoisingEnabled": "yes"}), "denoisingEnabled"),
            (
                json!({"colorManagementPreset": "default", "outputSettings": {"colorDepth": 8}}),
                "outputSettings.colorDepth",
            ),
            (json!({"colorManagementPreset": "default", "outputSettings": {"quality": 101}}), "outputSettings.quality"),
            (json!({"colorManagementPreset": "default", "outputSettings": {"gamma": 2}}), "outputSettings.gamma"),
            (json!({"colorManagementPreset": "default", "samples": 4}), "samples"),
            (json!({"colorManagementPreset": "default", "chunkSize": 0}), "chunkSize"),
        ];
        for (input, field) in cases {
            let err = RequestedConfig::parse(&input).unwrap_err();
            assert_eq!(err.field, field, "{input}: {err}");
        }
    }

    #[test]
    fn the_request_overlays_the_detected_settings() {
        let requested = RequestedConfig::parse(&json!({
            "colorManagementPreset": "default",
            "resolution": [64, 48],
            "resolutionPercentage": 100,
            "sampleCount": 2,
            "frameRanges": ["1-3"],
            "outputSettings": {"colorMode": "RGB"}
        }))
        .unwrap();
        let scene = FrameSet::parse(&["1-250"]).unwrap();
        let config = RenderConfig::overlay(&detected(), &requested, &scene).unwrap();
        assert_eq!(config.resolution, [64, 48]);
        assert_eq!(config.output_size(), (64, 48));
        assert_eq!(config.sample_count, Some(2));
        assert_eq!(config.render_engine, "CYCLES");
        assert_eq!(config.output_settings.color_mode.as_deref(), Some("RGB"));
        assert_eq!(config.output_settings.color_depth.as_deref(), Some("8"));
        assert_eq!(config.frame_ranges, vec!["1-3"]);
    }

    #[test]
    fn the_scene_range_is_the_default_frames() {
        let requested = RequestedConfig::parse(&json!({"colorManagementPreset": "default"})).unwrap();
        let scene = FrameSet::from_scene_range(1, 10, 3).unwrap();
        let config = RenderConfig::overlay(&detected(), &requested, &scene).unwrap();
        assert_eq!(config.frames().unwrap().frames(), &[1, 4, 7, 10]);
        assert_eq!(config.output_size(), (960, 540));
    }

    #[test]
    fn formats_refuse_settings_they_cannot_store() {
        let scene = FrameSet::parse(&["1"]).unwrap();
        for (request, field) in [
            (json!({"colorManagementPreset": "default", "outputFormat": "JPEG"}), "outputSettings.colorMode"),
            (
                json!({"colorManagementPreset": "default", "outputSettings": {"colorDepth": "32"}}),
                "outputSettings.colorDepth",
            ),
            (json!({"colorManagementPreset": "default", "resolutionPercentage": 10000}), "resolutionPercentage"),
        ] {
            let requested = RequestedConfig::parse(&request).unwrap();
            let err = RenderConfig::overlay(&detected(), &requested, &scene).unwrap_err();
            assert_eq!(err.field, field, "{request}");
        }
    }
}
