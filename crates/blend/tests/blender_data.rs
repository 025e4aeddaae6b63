//! Every `.blend` that Debian's `blender-data` package ships (Blender 2.78–2.82 files: gzip and
//! plain, app templates, an add-on's material libraries) reads without panicking, with sane values,
//! and the same as Debian's Blender 3.4 reads it (truth in `tests/fixtures/blender_data/`, written by
//! `make_fixtures.py --truth-of`).
//!
//! The files are not committed: the test lists them with `dpkg -L blender-data`. Without the package
//! it passes with a note, unless `ORCHARD_REQUIRE_E2E=1` (as in CI), where a missing package fails.

mod common;

use std::path::PathBuf;
use std::process::Command;

use orchard_blend::{AnalyzeOptions, analyze_path};
use serde_json::Value;

use common::fixture;
use common::truth::{Tally, compare, truth_files};

/// The package's `.blend` files, or why there are none.
fn package_blends() -> Result<Vec<PathBuf>, String> {
    let out = Command::new("dpkg").args(["-L", "blender-data"]).output().map_err(|e| format!("dpkg: {e}"))?;
    if !out.status.success() {
        return Err("the blender-data package is not installed".into());
    }
    let files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(".blend"))
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    if files.is_empty() {
        return Err("blender-data lists no .blend file".into());
    }
    Ok(files)
}

fn required() -> bool {
    std::env::var("ORCHARD_REQUIRE_E2E").is_ok_and(|v| v == "1")
}

#[test]
fn every_blend_of_debians_blender_data_reads_sanely_and_as_blender_reads_it() {
    let files = match package_blends() {
        Ok(files) => files,
        Err(why) if !required() => {
            eprintln!("skipped: {why} (set ORCHARD_REQUIRE_E2E=1 to make this a failure)");
            return;
        }
        Err(why) => panic!("ORCHARD_REQUIRE_E2E=1 but {why}"),
    };
    let mut insane = Vec::new();
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Reading must never panic; an Err would be a reader bug on a real file, so it fails too.
        let a =
            analyze_path(path, &name, &AnalyzeOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ok = !a.scenes.is_empty()
            && a.active_scene.as_ref().is_some_and(|n| a.scenes.iter().any(|s| &s.name == n))
            && a.file_version.major >= 2
            && a.scenes.iter().all(|s| {
                let rc = &s.render_config;
                rc.resolution.iter().all(|&r| (1..=65_536).contains(&r))
                    && (1..=10_000).contains(&rc.resolution_percentage)
                    && s.fps.is_finite()
                    && s.fps > 0.0
                    && s.frame_end >= s.frame_start
                    && s.frame_step >= 1
                    && !rc.render_engine.is_empty()
                    && !rc.output_format.starts_with("UNKNOWN")
            });
        if !ok {
            insane.push(format!("{}: {}", path.display(), serde_json::to_string(&a).unwrap_or_default()));
        }
    }
    assert!(insane.is_empty(), "implausible values:\n{}", insane.join("\n"));

    // Blender's own reading, for the files the truth was recorded from.
    let mut tally = Tally::default();
    for truth in truth_files(&fixture("blender_data")) {
        let text = std::fs::read_to_string(&truth).unwrap_or_else(|e| panic!("{e}"));
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let source = PathBuf::from(v["source"].as_str().unwrap_or(""));
        if files.contains(&source) {
            compare(&truth, Some(&source), &mut tally);
        }
    }
    eprintln!("{}", tally.summary("blender-data"));
    assert_eq!(tally.files, files.len(), "every packaged file has a recorded truth");
    assert!(tally.diffs.is_empty(), "the reader disagrees with Blender 3.4:\n{}", tally.diffs.join("\n"));
}
