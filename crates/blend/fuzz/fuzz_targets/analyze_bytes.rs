//! Any bytes through the whole `.blend` pipeline: compression detection, gzip/zstd, header, block
//! index, DNA, scenes, ID properties, dependencies. The reader must return `Ok` or `Err`, never
//! panic, and never allocate beyond its cap (libFuzzer's `-rss_limit_mb` enforces the latter).

#![no_main]

use libfuzzer_sys::fuzz_target;
use orchard_blend::{AnalyzeOptions, analyze_bytes};

fuzz_target!(|data: &[u8]| {
    let opts = AnalyzeOptions { max_decompressed_bytes: 64 * 1024 * 1024 };
    let _ = analyze_bytes(data, "fuzz.blend", &opts);
});
