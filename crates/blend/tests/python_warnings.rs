//! Python a file carries is named in a `python_code` warning: text blocks set to run when the file
//! opens, and drivers with scripted expressions. The files are made by real Blender 3.4
//! (`fixtures/make_python_fixtures.py`, see `fixtures/README.md`).

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use orchard_blend::{AnalyzeOptions, Warning, WarningCode, analyze_bytes, analyze_path};

use common::{XorShift, block_offsets, fixture, fixture_bytes};

fn python_warnings(name: &str) -> Vec<Warning> {
    let path = fixture(&format!("python/{name}"));
    let a = analyze_path(&path, name, &AnalyzeOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(a.scenes.len(), 1, "{name}");
    a.warnings.into_iter().filter(|w| w.code == WarningCode::PythonCode).collect()
}

#[test]
fn a_text_block_registered_to_run_on_load_is_named() {
    let warnings = python_warnings("text_module.blend");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let message = &warnings[0].message;
    assert!(message.contains("\"setup.py\""), "{message}");
    assert!(message.contains("the text block "), "{message}");
    // A text block that is not a module is not Python that runs.
    assert!(!message.contains("notes.txt"), "{message}");
    assert_eq!(warnings[0].path, None);
}

#[test]
fn a_driver_with_a_scripted_expression_is_named_with_its_owner_and_expression() {
    let warnings = python_warnings("driver.blend");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let message = &warnings[0].message;
    assert!(message.contains("\"Cube\" (frame * 0.1 + 1)"), "{message}");
    // The cube's other driver averages its variables: no expression, no Python.
    assert!(message.starts_with("the file has a driver with a scripted"), "{message}");
}

#[test]
fn a_file_without_python_has_no_python_warning() {
    assert_eq!(python_warnings("plain.blend"), Vec::new());
}

#[test]
fn the_warning_code_serialises_as_python_code() {
    let warnings = python_warnings("driver.blend");
    let v = serde_json::to_value(&warnings[0]).unwrap_or_default();
    assert_eq!(v["code"], "python_code");
    assert!(v.get("path").is_none(), "{v}");
}

#[test]
fn flipping_bytes_of_texts_drivers_and_their_data_never_panics() {
    let opts = AnalyzeOptions { max_decompressed_bytes: 8 * 1024 * 1024 };
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut failed = Vec::new();
    for name in ["python/text_module.blend", "python/driver.blend"] {
        let mut bytes = zstd::stream::decode_all(fixture_bytes(name).as_slice())
            .unwrap_or_else(|e| panic!("{name}: decompressing: {e}"));
        // The text and object blocks, and the small DATA blocks (AnimData, FCurve, ChannelDriver)
        // the walk follows from them.
        let offsets = block_offsets(&bytes);
        let aimed: Vec<(usize, usize)> = offsets
            .windows(2)
            .filter(|w| match &bytes[w[0]..w[0] + 4] {
                b"TX\0\0" | b"OB\0\0" => true,
                b"DATA" => w[1] - w[0] <= 24 + 512,
                _ => false,
            })
            .map(|w| (w[0], w[1]))
            .collect();
        assert!(aimed.len() > 3, "{name}: expected TX or OB blocks");
        for _ in 0..300 {
            let (start, end) = aimed[rng.below(aimed.len())];
            let at = start + rng.below(end - start);
            let mask = (rng.next_u64() % 255 + 1) as u8;
            bytes[at] ^= mask;
            let result = catch_unwind(AssertUnwindSafe(|| analyze_bytes(&bytes, "damaged.blend", &opts).is_ok()));
            if result.is_err() {
                failed.push(format!("{name}: flip {mask:#04x} at {at}"));
            }
            bytes[at] ^= mask;
        }
    }
    assert!(failed.is_empty(), "panicked: {failed:?}");
}
