//! Damaged input never panics the reader: every call returns `Ok` or `Err`.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use orchard_blend::{AnalyzeOptions, analyze_bytes};

use common::{XorShift, block_offsets, fixture_bytes};

/// Small cap: damaged lengths must hit the limit quickly rather than allocate.
fn opts() -> AnalyzeOptions {
    AnalyzeOptions { max_decompressed_bytes: 8 * 1024 * 1024 }
}

/// Whether analysing `bytes` panicked (rather than returning `Ok` or `Err`).
fn panicked(bytes: &[u8]) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        let _ = analyze_bytes(bytes, "damaged.blend", &opts());
    }))
    .is_err()
}

#[test]
fn truncating_at_every_block_boundary_never_panics() {
    // Blender 3.4 in depth (inside headers too); 4.5 and the 5.0 layout at every boundary.
    for (name, deep) in [
        ("v3_4/cube_uncompressed.blend", true),
        ("v4_5/cube_uncompressed.blend", false),
        ("v5_0/cube_uncompressed.blend", false),
    ] {
        let data = fixture_bytes(name);
        let offsets = block_offsets(&data);
        assert!(offsets.len() > 100, "{name}: expected a real file, found {} blocks", offsets.len());
        let within: &[usize] = if deep { &[0, 4, 24] } else { &[0] };
        let cuts = offsets.iter().flat_map(|&o| within.iter().map(move |d| o + d)).chain(0..20);
        let failed: Vec<usize> = cuts.filter(|&cut| panicked(&data[..cut.min(data.len())])).collect();
        assert!(failed.is_empty(), "{name}: panicked when cut at {failed:?}");
    }
}

#[test]
fn truncating_at_random_offsets_never_panics() {
    let mut rng = XorShift(0x0A5C_4A4D_0000_0001);
    let mut failed = Vec::new();
    for name in [
        "v3_4/cube_uncompressed.blend",
        "v3_4/cube.blend",
        "v4_5/cube_uncompressed.blend",
        "v5_0/cube_uncompressed.blend",
    ] {
        let data = fixture_bytes(name);
        for _ in 0..100 {
            let cut = rng.below(data.len());
            if panicked(&data[..cut]) {
                failed.push(format!("{name} cut at {cut}"));
            }
        }
    }
    assert!(failed.is_empty(), "panicked: {failed:?}");
}

#[test]
fn flipping_random_bytes_never_panics() {
    for name in ["v3_4/cube_uncompressed.blend", "v5_0/cube_uncompressed.blend"] {
        flip_bytes_of(name);
    }
}

fn flip_bytes_of(name: &str) {
    let data = fixture_bytes(name);
    let offsets = block_offsets(&data);
    // Aim half the flips at the structures the reader interprets most (DNA, scene, globals),
    // where a random flip is likeliest to reach a length, an index or a pointer.
    let interesting: Vec<(usize, usize)> = offsets
        .windows(2)
        .filter(|w| matches!(&data[w[0]..w[0] + 4], b"DNA1" | b"SC\0\0" | b"GLOB"))
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(interesting.len() >= 3, "expected DNA1, SC and GLOB blocks");
    let mut rng = XorShift(0xB1E4_D000_0000_0002);
    let mut failed = Vec::new();
    // Each flip is made in place and undone after the call, so no copy of the file is needed.
    let mut bytes = data;
    for i in 0..300 {
        let at = if i % 2 == 0 {
            rng.below(bytes.len())
        } else {
            let (start, end) = interesting[rng.below(interesting.len())];
            start + rng.below(end - start)
        };
        let mask = (rng.next_u64() % 255 + 1) as u8;
        bytes[at] ^= mask;
        if panicked(&bytes) {
            failed.push(format!("{name}: flip {mask:#04x} at {at}"));
        }
        bytes[at] ^= mask;
    }
    // Flips in the zstd file exercise the decompressor's error path.
    let mut compressed = fixture_bytes("v3_4/cube.blend");
    for _ in 0..50 {
        let at = rng.below(compressed.len());
        compressed[at] ^= 0x5A;
        if panicked(&compressed) {
            failed.push(format!("zstd flip at {at}"));
        }
        compressed[at] ^= 0x5A;
    }
    assert!(failed.is_empty(), "panicked: {failed:?}");
}
