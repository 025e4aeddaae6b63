//! Every committed fixture's analysis agrees with Blender's own reading of the file, field by field.
//!
//! `fixtures/make_fixtures.py` ran inside Debian's Blender 3.4 and PyPI bpy 4.5 and 5.0 and wrote,
//! beside each file, `<name>.truth.json`: the analysis object as Blender reads the saved file back.
//! This test analyses every file with [`analyze_path`] and compares every field of that object
//! (dependencies and warnings as sets, since their order is the reader's own), per version.

mod common;

use std::path::Path;

use orchard_blend::{AnalyzeOptions, Compression, WarningCode, analyze_path};

use common::fixture;
use common::truth::{Tally, compare, truth_files};

/// Blender versions with a committed corpus, and the newest file version seen in each.
const VERSIONS: &[&str] = &["v3_4", "v4_5", "v5_0"];

#[test]
fn every_fixture_of_every_blender_version_reads_the_same_as_blender_reads_it() {
    let mut summary = Vec::new();
    let mut all_diffs = Vec::new();
    // `older`: files of Blender 2.80–4.2 from the `blend` crate, read by the oldest Blender here
    // that opens them (3.4, or 4.5 for 4.2), so Blender's versioning of old files is checked too.
    for folder in VERSIONS.iter().chain(&["older"]) {
        let mut tally = Tally::default();
        for truth in truth_files(&fixture(folder)) {
            compare(&truth, None, &mut tally);
        }
        let least = if *folder == "older" { 4 } else { 10 };
        assert!(tally.files >= least, "{folder}: only {} fixtures found", tally.files);
        summary.push(tally.summary(folder));
        all_diffs.extend(tally.diffs);
    }
    eprintln!("{}", summary.join("\n"));
    assert!(
        all_diffs.is_empty(),
        "{}\nthe reader disagrees with Blender:\n{}",
        summary.join("\n"),
        all_diffs.join("\n")
    );
}

fn analyze(name: &str) -> orchard_blend::Analysis {
    analyze_path(&fixture(name), name.rsplit('/').next().unwrap_or(name), &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_corpus_covers_what_the_reader_must_tell_apart() {
    for version in VERSIONS {
        let formats = analyze(&format!("{version}/formats.blend"));
        let n_formats =
            formats.scenes.iter().map(|s| &s.render_config.output_format).collect::<std::collections::HashSet<_>>();
        assert!(n_formats.len() >= 15, "{version}: only {} output formats", n_formats.len());
        let engines = analyze(&format!("{version}/engines.blend"));
        let names: Vec<&str> = engines.scenes.iter().map(|s| s.render_config.render_engine.as_str()).collect();
        assert_eq!(names.len(), 3, "{version}: {names:?}");
        assert_ne!(engines.active_scene.as_deref(), engines.scenes.first().map(|s| s.name.as_str()), "{version}");
        for (name, compression) in [
            ("cube.blend", Compression::Zstd),
            ("cube_uncompressed.blend", Compression::None),
            ("cube_gzip.blend", Compression::Gzip),
        ] {
            assert_eq!(analyze(&format!("{version}/{name}")).compression, compression, "{version}/{name}");
        }
    }
    // EEVEE's identifier is version-specific.
    let eevee = |v: &str| {
        analyze(&format!("{v}/engines.blend"))
            .scenes
            .iter()
            .find(|s| s.name.starts_with("B_"))
            .map(|s| s.render_config.render_engine.clone())
    };
    assert_eq!(eevee("v3_4").as_deref(), Some("BLENDER_EEVEE"));
    assert_eq!(eevee("v4_5").as_deref(), Some("BLENDER_EEVEE_NEXT"));
    assert_eq!(eevee("v5_0").as_deref(), Some("BLENDER_EEVEE"));
}

#[test]
fn five_zero_multilayer_exr_is_told_by_its_media_type() {
    let a = analyze("v5_0/exr.blend");
    let multi: Vec<&str> = a
        .scenes
        .iter()
        .filter(|s| s.name.starts_with("MULTI_"))
        .map(|s| s.render_config.output_format.as_str())
        .collect();
    assert!(!multi.is_empty());
    assert!(multi.iter().all(|f| *f == "OPEN_EXR_MULTILAYER"), "{multi:?}");
}

#[test]
fn cycles_values_not_stored_in_the_file_take_the_defaults_of_the_saving_version() {
    for version in VERSIONS {
        let a = analyze(&format!("{version}/cycles_defaults.blend"));
        let rc = &a.scenes[0].render_config;
        assert_eq!(
            (rc.sample_count, rc.denoising_enabled, rc.denoiser_type.as_deref(), rc.device.as_str()),
            (Some(4096), true, Some("OPENIMAGEDENOISE"), "CPU"),
            "{version}"
        );
        let codes: Vec<WarningCode> = a.warnings.iter().map(|w| w.code).collect();
        assert!(codes.contains(&WarningCode::NeedsOidn), "{version}: {codes:?}");
    }
}

#[test]
fn a_blender_5_2_file_with_the_17_byte_header_is_read() {
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
    let codes: Vec<WarningCode> = a.warnings.iter().map(|w| w.code).collect();
    assert!(codes.contains(&WarningCode::NewerFileFormat), "{codes:?}");
    assert!(codes.contains(&WarningCode::EeveeNeedsGpu), "{codes:?}");
}

#[test]
fn the_analysis_serialises_to_the_spec_object() {
    let a = analyze("v3_4/cube.blend");
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
    assert_eq!(v["fileSize"], std::fs::metadata(fixture("v3_4/cube.blend")).map(|m| m.len()).unwrap_or(0));
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
    for key in ["colorMode", "colorDepth", "exrCodec", "compression", "quality"] {
        assert!(rc["outputSettings"].get(key).is_some(), "missing outputSettings.{key} in {rc}");
    }
    assert_eq!(v["scenes"][0]["outputPath"], "//renders/frame_####");
    let round_trip: orchard_blend::Analysis =
        serde_json::from_value(v).unwrap_or_else(|e| panic!("deserialising: {e}"));
    assert_eq!(round_trip, a);
}

#[test]
fn the_bundled_example_is_a_small_cycles_scene() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cube.blend");
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
