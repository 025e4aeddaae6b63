//! Any bytes as an uploaded `.zip` project: the central-directory checks (zip-slip, symlinks,
//! bombs, entry count), choosing the main file, and analysing it with dependencies resolved and
//! libraries read inside the archive.

#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use orchard_blend::{AnalyzeOptions, ZipProject};

fuzz_target!(|data: &[u8]| {
    // The project API reads archives from disk; a per-process file in the temporary directory
    // (a tmpfs on most systems) keeps that cheap.
    let path = std::env::temp_dir().join(format!("orchard-fuzz-{}.zip", std::process::id()));
    let Ok(mut file) = std::fs::File::create(&path) else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    drop(file);
    let opts = AnalyzeOptions { max_decompressed_bytes: 64 * 1024 * 1024 };
    if let Ok(project) = ZipProject::open(&path, None, &opts) {
        let _ = project.analyze("fuzz.zip", &opts);
    }
});
