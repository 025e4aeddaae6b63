//! Every fixture's analysis agrees with Blender's own reading of the file (`<name>.truth.json`,
//! written by `fixtures/make_fixtures.py` inside Blender).

mod common;

use orchard_blend::{Analysis, AnalyzeOptions, Compression, SceneInfo, WarningCode, analyze_path};
use serde_json::Value;

use common::fixture;

/// (blend or zip, truth file, expected compression).
const FIXTURES: &[(&str, &str, Compression)] = &[
    ("cube.blend", "cube.truth.json", Compression::Zstd),
    ("cube_uncompressed.blend", "cube_uncompressed.truth.json", Compression::None),
    ("multi_scene.blend", "multi_scene.truth.json", Compression::Zstd),
    ("no_camera.blend", "no_camera.truth.json", Compression::Zstd),
    ("denoise_oidn.blend", "denoise_oidn.truth.json", Compression::Zstd),
    ("exr.blend", "exr.truth.json", Compression::Zstd),
    ("deps.blend", "deps.truth.json", Compression::Zstd),
    ("project.zip", "project.truth.json", Compression::Zstd),
];

fn truth(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"))
}

fn analyze(name: &str) -> Analysis {
    analyze_path(&fixture(name), name, &AnalyzeOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Blender 3.4's RNA cannot name OpenImageDenoise in a build without it, so the truth records the
/// stored integer; `null` means the add-on default, OpenImageDenoise.
fn denoiser_from_truth(stored: &Value) -> Option<&'static str> {
    match stored.as_i64() {
        None | Some(4) => Some("OPENIMAGEDENOISE"),
        Some(2) => Some("OPTIX"),
        Some(_) => None,
    }
}

fn compare_scene(file: &str, got: &SceneInfo, want: &Value, diffs: &mut Vec<String>) {
    let rc = &got.render_config;
    let os = &rc.output_settings;
    let checks: Vec<(&str, Value, Value)> = vec![
        ("name", got.name.clone().into(), want["name"].clone()),
        ("engine", rc.render_engine.clone().into(), want["engine"].clone()),
        ("resolution", serde_json::json!(rc.resolution), want["resolution"].clone()),
        ("resolutionPercentage", rc.resolution_percentage.into(), want["resolutionPercentage"].clone()),
        ("frameStart", got.frame_start.into(), want["frameStart"].clone()),
        ("frameEnd", got.frame_end.into(), want["frameEnd"].clone()),
        ("frameStep", got.frame_step.into(), want["frameStep"].clone()),
        ("outputFormat", rc.output_format.clone().into(), want["outputFormat"].clone()),
        ("colorMode", serde_json::json!(os.color_mode), want["colorMode"].clone()),
        ("colorDepth", serde_json::json!(os.color_depth), want["colorDepth"].clone()),
        ("exrCodec", serde_json::json!(os.exr_codec), want["exrCodec"].clone()),
        ("compression", os.compression.into(), want["compression"].clone()),
        ("quality", os.quality.into(), want["quality"].clone()),
        ("samples", serde_json::json!(rc.sample_count), want["samples"].clone()),
        ("useDenoising", rc.denoising_enabled.into(), want["useDenoising"].clone()),
        (
            "denoiser",
            serde_json::json!(rc.denoiser_type),
            serde_json::json!(denoiser_from_truth(&want["storedDenoiser"])),
        ),
        ("device", rc.device.clone().into(), want["device"].clone()),
        ("camera", serde_json::json!(got.camera), want["camera"].clone()),
        ("outputPath", got.output_path.clone().into(), want["outputPath"].clone()),
        ("viewTransform", rc.view_transform.clone().into(), want["viewTransform"].clone()),
        ("look", rc.look.clone().into(), want["look"].clone()),
        ("viewLayers", serde_json::to_value(&got.view_layers).unwrap_or_default(), want["viewLayers"].clone()),
    ];
    for (field, g, w) in checks {
        if g != w {
            diffs.push(format!("{file}: scene {:?} {field}: reader {g}, Blender {w}", got.name));
        }
    }
    let want_fps = want["fps"].as_f64().unwrap_or(f64::NAN);
    if (got.fps - want_fps).abs() > 1e-6 {
        diffs.push(format!("{file}: scene {:?} fps: reader {}, Blender {want_fps}", got.name, got.fps));
    }
}

#[test]
fn every_fixture_reads_the_same_as_blender_reads_it() {
    let mut diffs = Vec::new();
    for &(file, truth_file, compression) in FIXTURES {
        let got = analyze(file);
        let want = truth(truth_file);
        if got.compression != compression {
            diffs.push(format!("{file}: compression {:?}, expected {compression:?}", got.compression));
        }
        if Some(want["activeScene"].as_str().unwrap_or("")) != got.active_scene.as_deref() {
            diffs.push(format!("{file}: active scene {:?}, Blender {}", got.active_scene, want["activeScene"]));
        }
        if got.blender_version != want["blenderVersion"].as_str().unwrap_or("") {
            diffs.push(format!("{file}: blender version {}, Blender {}", got.blender_version, want["blenderVersion"]));
        }
        let fv = &got.file_version;
        if serde_json::json!([fv.major, fv.minor, fv.subversion]) != want["fileVersion"] {
            diffs.push(format!("{file}: file version {fv:?}, Blender {}", want["fileVersion"]));
        }
        let want_scenes = want["scenes"].as_array().cloned().unwrap_or_default();
        if got.scenes.len() != want_scenes.len() {
            diffs.push(format!("{file}: {} scenes, Blender {}", got.scenes.len(), want_scenes.len()));
        }
        for (g, w) in got.scenes.iter().zip(&want_scenes) {
            compare_scene(file, g, w, &mut diffs);
        }
    }
    assert!(diffs.is_empty(), "the reader disagrees with Blender:\n{}", diffs.join("\n"));
}

#[test]
fn the_active_scene_follows_glob_curscene_not_file_order() {
    let a = analyze("multi_scene.blend");
    let names: Vec<&str> = a.scenes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["A_Cycles", "B_Eevee", "C_Workbench"]);
    assert_eq!(a.active_scene.as_deref(), Some("B_Eevee"));
}

#[test]
fn warnings_name_what_the_farm_must_know_per_fixture() {
    // (file, warnings that must be present, warnings that must be absent)
    let cases: &[(&str, &[WarningCode], &[WarningCode])] = &[
        ("cube.blend", &[], &[WarningCode::NoCamera, WarningCode::NeedsOidn, WarningCode::MissingDependency]),
        ("no_camera.blend", &[WarningCode::NoCamera], &[WarningCode::NeedsOidn]),
        ("denoise_oidn.blend", &[WarningCode::NeedsOidn], &[WarningCode::NoCamera]),
        // OptiX denoising does not need OIDN.
        ("exr.blend", &[], &[WarningCode::NeedsOidn]),
        ("deps.blend", &[WarningCode::MissingDependency, WarningCode::AbsolutePath], &[]),
        ("project.zip", &[], &[WarningCode::MissingDependency]),
        ("blend_crate_5_2.blend", &[WarningCode::NewerFileFormat], &[WarningCode::NoCamera]),
    ];
    for &(file, present, absent) in cases {
        let codes: Vec<WarningCode> = analyze(file).warnings.iter().map(|w| w.code).collect();
        for code in present {
            assert!(codes.contains(code), "{file}: expected {code:?} among {codes:?}");
        }
        for code in absent {
            assert!(!codes.contains(code), "{file}: did not expect {code:?} among {codes:?}");
        }
    }
}

#[test]
fn cycles_values_not_stored_in_the_file_take_the_version_defaults() {
    let a = analyze("denoise_oidn.blend");
    let rc = &a.scenes[0].render_config;
    assert_eq!(
        (rc.sample_count, rc.denoising_enabled, rc.denoiser_type.as_deref(), rc.device.as_str()),
        (Some(4096), true, Some("OPENIMAGEDENOISE"), "CPU")
    );
}

#[test]
fn a_blender_5_file_with_the_17_byte_header_is_read() {
    let a = analyze("blend_crate_5_2.blend");
    assert_eq!(a.blender_version, "5.2");
    assert_eq!((a.file_version.major, a.file_version.minor, a.file_version.subversion), (5, 2, 44));
    assert_eq!(a.min_blender_version.as_deref(), Some("4.5"));
    assert_eq!(a.active_scene.as_deref(), Some("Scene"));
    let s = &a.scenes[0];
    assert_eq!(s.render_config.render_engine, "BLENDER_EEVEE");
    assert_eq!(s.render_config.resolution, [1920, 1080]);
    assert_eq!(s.render_config.sample_count, Some(64));
    assert_eq!(s.render_config.view_transform, "AgX");
    assert_eq!(s.camera.as_deref(), Some("Camera"));
}

#[test]
fn the_analysis_serialises_to_the_spec_object() {
    let a = analyze("cube.blend");
    let v = serde_json::to_value(&a).unwrap_or_default();
    for key in [
        "fileName",
        "fileSize",
        "sha256",
        "compression",
        "blenderVersion",
        "fileVersion",
        "minBlenderVersion",
        "activeScene",
        "scenes",
        "dependencies",
        "warnings",
        "durationMs",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert!(v.get("id").is_none(), "id is the server's to set");
    assert_eq!(v["compression"], "zstd");
    assert_eq!(v["fileSize"], std::fs::metadata(fixture("cube.blend")).map(|m| m.len()).unwrap_or(0));
    assert_eq!(v["sha256"].as_str().map(str::len), Some(64));
    let rc = &v["scenes"][0]["renderConfig"];
    for key in [
        "renderEngine",
        "resolution",
        "resolutionPercentage",
        "outputFormat",
        "outputSettings",
        "sampleCount",
        "denoisingEnabled",
        "denoiserType",
        "device",
        "viewTransform",
        "look",
    ] {
        assert!(rc.get(key).is_some(), "missing renderConfig.{key} in {rc}");
    }
    assert_eq!(v["scenes"][0]["outputPath"], "//renders/frame_####");
    let round_trip: Analysis = serde_json::from_value(v).unwrap_or_else(|e| panic!("deserialising: {e}"));
    assert_eq!(round_trip, a);
}

#[test]
fn the_bundled_example_is_the_cube_fixture() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");
    let a = analyze_path(&example, "cube.blend", &AnalyzeOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let s = &a.scenes[0];
    assert_eq!(
        (s.render_config.render_engine.as_str(), s.render_config.resolution, s.frame_start, s.frame_end),
        ("CYCLES", [160, 120], 1, 4)
    );
    assert_eq!(s.render_config.sample_count, Some(8));
    assert!(!s.render_config.denoising_enabled);
    assert_eq!(a.compression, Compression::Zstd);
}
