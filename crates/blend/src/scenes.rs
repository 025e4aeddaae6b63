//! A scene's render settings, read through the file's DNA (blend-format.md §1.6).

use crate::model::{DetectedOutputSettings, DetectedRenderConfig, EEVEE_ENGINES, SceneInfo, ViewLayerInfo};
use crate::paths::blender_path;
use crate::read::{MAX_LIST_ITEMS, StructView, id_name};
use crate::{cycles, defaults};

/// Everything the analysis reports about one `SC` block. `version` (`major * 100 + minor`) and
/// `subversion` are the file's, which pick the Cycles defaults and versioning.
pub(crate) fn read(scene: &StructView<'_>, version: u16, subversion: u16) -> SceneInfo {
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
    let cycles = cycles::read(scene, version, subversion);
    let sample_count = match engine.as_str() {
        "CYCLES" => i32::try_from(cycles.samples).ok(),
        e if EEVEE_ENGINES.contains(&e) => {
            scene.sub("eevee").and_then(|e| e.int("taa_render_samples")).and_then(|v| i32::try_from(v).ok())
        }
        _ => None,
    };
    let (view_transform, look) = color_management(scene, version);
    let im = r.and_then(|r| r.sub("im_format"));
    let mut view_layers: Vec<ViewLayerInfo> = scene
        .list("view_layers", "ViewLayer", MAX_LIST_ITEMS)
        .iter()
        .map(|vl| ViewLayerInfo {
            name: vl.string("name").unwrap_or_default(),
            // VIEW_LAYER_RENDER = 1 << 0.
            use_for_render: vl.int("flag").is_some_and(|f| f & 1 != 0),
        })
        .collect();
    // Before 2.80 a scene had render layers (`r.layers`); Blender turns each into a view layer on
    // load, rendered unless the layer was disabled (SCE_LAY_DISABLE = 1 << 17).
    if view_layers.is_empty()
        && let Some(r) = &r
    {
        view_layers = r
            .list("layers", "SceneRenderLayer", MAX_LIST_ITEMS)
            .iter()
            .map(|srl| ViewLayerInfo {
                name: srl.string("name").unwrap_or_default(),
                use_for_render: srl.int("layflag").is_some_and(|f| f & (1 << 17) == 0),
            })
            .collect();
    }
    SceneInfo {
        name,
        frame_start: ri("sfra", 1),
        frame_end: ri("efra", 250),
        frame_step: ri("frame_step", 1),
        camera,
        fps,
        render_config: DetectedRenderConfig {
            render_engine: engine,
            resolution: [ri("xsch", 1920), ri("ysch", 1080)],
            resolution_percentage: ri("size", 100),
            output_format: output_format(im.as_ref()),
            output_settings: output_settings(im.as_ref()),
            sample_count,
            denoising_enabled: cycles.use_denoising,
            denoiser_type: cycles.denoiser,
            device: cycles.device,
            view_transform,
            look,
        },
        output_path: blender_path(&r.and_then(|r| r.string("pic")).unwrap_or_default()),
        view_layers,
    }
}

/// The view transform and look Blender uses: the stored names, checked against the colour
/// configuration of the file's Blender version ([`defaults::ColorTable::validate`]).
fn color_management(scene: &StructView<'_>, version: u16) -> (String, String) {
    let view = scene.sub("view_settings");
    let view_transform = view.and_then(|v| v.string("view_transform")).unwrap_or_default();
    let look = view.and_then(|v| v.string("look")).unwrap_or_default();
    let display = scene.sub("display_settings").and_then(|d| d.string("display_device")).unwrap_or_default();
    match defaults::color_for_version(version) {
        Some(table) => table.validate(&display, &view_transform, &look),
        None => (view_transform, look),
    }
}

fn int32(v: Option<i64>, default: i32) -> i32 {
    v.and_then(|v| i32::try_from(v).ok()).unwrap_or(default)
}

/// `ImageFormatData.media_type` of 5.x: what kind of output, before which format.
const MEDIA_MULTI_LAYER_IMAGE: i64 = 1;

/// `r.im_format.imtype` (and 5.x `media_type`) to Blender's `file_format` identifier.
fn output_format(im: Option<&StructView<'_>>) -> String {
    let Some(im) = im else {
        return "PNG".to_string();
    };
    let imtype = im.int("imtype").unwrap_or(17);
    // 5.x splits "what kind of output" into media_type; a multilayer image is always the
    // multilayer EXR, whichever EXR imtype sits beside it.
    if im.int("media_type") == Some(MEDIA_MULTI_LAYER_IMAGE) && matches!(imtype, 23 | 28) {
        return "OPEN_EXR_MULTILAYER".to_string();
    }
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

fn output_settings(im: Option<&StructView<'_>>) -> DetectedOutputSettings {
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
    DetectedOutputSettings {
        color_mode: color_mode.map(str::to_string),
        color_depth: color_depth.map(str::to_string),
        exr_codec: exr_codec.map(str::to_string),
        compression: int32(int("compress"), 15),
        quality: int32(int("quality"), 90),
    }
}
