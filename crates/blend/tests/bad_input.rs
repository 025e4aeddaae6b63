//! Input that is not a readable `.blend` gets the specific error; other wrappers of a good file
//! read like the original.

mod common;

use std::io::Write;

use orchard_blend::{AnalyzeError, AnalyzeOptions, Compression, analyze_bytes, analyze_path};

use common::{fixture, fixture_bytes};

const MIB: u64 = 1024 * 1024;

fn legacy_header() -> Vec<u8> {
    b"BLENDER-v304".to_vec()
}

/// A legacy 8-byte-pointer block header: code, len, old, sdna, nr.
fn block_header(code: &[u8; 4], len: i32) -> Vec<u8> {
    let mut out = code.to_vec();
    out.extend(len.to_le_bytes());
    out.extend(0x1000u64.to_le_bytes());
    out.extend(0i32.to_le_bytes());
    out.extend(1i32.to_le_bytes());
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap_or_else(|e| panic!("{e}"));
    enc.finish().unwrap_or_else(|e| panic!("{e}"))
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn unreadable_bytes_get_the_specific_error() {
    type Check = fn(&AnalyzeError) -> bool;
    let with = |mut a: Vec<u8>, b: &[u8]| {
        a.extend_from_slice(b);
        a
    };
    let cases: Vec<(&str, Vec<u8>, u64, Check)> = vec![
        ("an empty file is not a blend file", Vec::new(), 2048 * MIB, |e| matches!(e, AnalyzeError::NotBlend)),
        ("text is not a blend file", b"hello, world".to_vec(), 2048 * MIB, |e| matches!(e, AnalyzeError::NotBlend)),
        ("BLENDER alone is truncated", b"BLENDER".to_vec(), 2048 * MIB, |e| {
            matches!(e, AnalyzeError::Truncated { .. })
        }),
        (
            "BLENDER followed by junk is a newer or unknown format",
            b"BLENDER junk junk junk".to_vec(),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::UnknownFormat { .. }) && e.to_string().contains("newer or unknown format"),
        ),
        (
            "a 17-byte header of another format version is newer or unknown",
            b"BLENDER17-02v0600".to_vec(),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::UnknownFormat { .. }),
        ),
        ("a header without blocks is truncated", legacy_header(), 2048 * MIB, |e| {
            matches!(e, AnalyzeError::Truncated { .. })
        }),
        ("a header and a partial block header is truncated", with(legacy_header(), b"SC\0\0\x10"), 2048 * MIB, |e| {
            matches!(e, AnalyzeError::Truncated { .. })
        }),
        (
            "a file ending right after ENDB without DNA is corrupt",
            with(legacy_header(), &block_header(b"ENDB", 0)),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::Corrupt { .. }),
        ),
        (
            "a block claiming a negative length is corrupt",
            with(legacy_header(), &block_header(b"SC\0\0", -5)),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::Corrupt { .. }),
        ),
        (
            "a block longer than the file is truncated",
            with(legacy_header(), &block_header(b"SC\0\0", 1_000_000)),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::Truncated { .. }),
        ),
        (
            "gzip magic followed by junk does not decompress",
            b"\x1f\x8b junk that is not deflate".to_vec(),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::Decompress { format: "gzip", .. }),
        ),
        (
            "zstd magic followed by junk does not decompress",
            b"\x28\xb5\x2f\xfd junk that is not zstd".to_vec(),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::Decompress { format: "zstd", .. }),
        ),
        (
            "a zstd stream inflating beyond the cap is too large",
            zstd(&vec![0; 4 * MIB as usize]),
            MIB,
            |e| matches!(e, AnalyzeError::TooLarge { limit } if *limit == MIB),
        ),
        ("a gzip stream inflating beyond the cap is too large", gzip(&vec![0; 4 * MIB as usize]), MIB, |e| {
            matches!(e, AnalyzeError::TooLarge { .. })
        }),
        (
            "an uncompressed file over the cap is too large",
            fixture_bytes("v3_4/cube_uncompressed.blend"),
            100_000,
            |e| matches!(e, AnalyzeError::TooLarge { .. }),
        ),
        ("zip bytes are refused by analyze_bytes", fixture_bytes("v3_4/project.zip"), 2048 * MIB, |e| {
            matches!(e, AnalyzeError::ZipInMemory)
        }),
    ];
    for (sentence, bytes, cap, check) in cases {
        let res = analyze_bytes(&bytes, "input.blend", &AnalyzeOptions { max_decompressed_bytes: cap });
        match res {
            Err(ref e) if check(e) => {
                assert!(!e.to_string().is_empty(), "{sentence}: empty message")
            }
            other => panic!("{sentence}: got {other:?}"),
        }
    }
}

#[test]
fn a_gzip_wrapped_blend_reads_like_the_original() {
    let raw = fixture_bytes("v3_4/cube_uncompressed.blend");
    let opts = AnalyzeOptions::default();
    let plain = analyze_bytes(&raw, "cube.blend", &opts).unwrap_or_else(|e| panic!("{e}"));
    let gz = analyze_bytes(&gzip(&raw), "cube.blend", &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gz.compression, Compression::Gzip);
    assert_eq!(gz.scenes, plain.scenes);
}

#[test]
fn every_zstd_frame_is_read_including_after_a_leading_skippable_frame() {
    let raw = fixture_bytes("v3_4/cube_uncompressed.blend");
    let opts = AnalyzeOptions::default();
    let plain = analyze_bytes(&raw, "cube.blend", &opts).unwrap_or_else(|e| panic!("{e}"));
    // A skippable frame (magic 0x184D2A50, 4-byte length, payload), then three independent frames,
    // as seekable-zstd writers produce (Blender puts its seek table last instead).
    let mut multi = Vec::new();
    multi.extend(0x184D_2A50u32.to_le_bytes());
    multi.extend(4u32.to_le_bytes());
    multi.extend(b"seek");
    let third = raw.len() / 3;
    for chunk in [&raw[..third], &raw[third..2 * third], &raw[2 * third..]] {
        multi.extend(zstd(chunk));
    }
    let got = analyze_bytes(&multi, "cube.blend", &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.compression, Compression::Zstd);
    assert_eq!(got.scenes, plain.scenes);
}

/// `raw` with an 8 MiB `DATA` block before `ENDB` (legacy 8-byte layout), so that its zstd form is
/// large enough to be decompressed on several threads.
fn padded_to_eight_mib(raw: &[u8]) -> Vec<u8> {
    let endb = raw.len() - 24;
    assert_eq!(&raw[endb..endb + 4], b"ENDB");
    let mut out = raw[..endb].to_vec();
    let len: i32 = 8 * 1024 * 1024;
    out.extend(b"DATA");
    out.extend(len.to_le_bytes());
    out.extend(0x0DD5_EED0_0000_0001u64.to_le_bytes());
    out.extend(0i32.to_le_bytes());
    out.extend(1i32.to_le_bytes());
    out.extend((0..len).map(|i| (i % 251) as u8));
    out.extend(&raw[endb..]);
    out
}

/// Blender's seekable zstd: 1 MiB frames, then a skippable frame holding the seek table.
/// `lie` adds to the decompressed size the table declares for the second frame.
fn seekable(raw: &[u8], lie: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut table = Vec::new();
    for (i, chunk) in raw.chunks(1024 * 1024).enumerate() {
        let frame = zstd(chunk);
        table.extend((frame.len() as u32).to_le_bytes());
        table.extend((chunk.len() as u32 + if i == 1 { lie } else { 0 }).to_le_bytes());
        out.extend(frame);
    }
    let n = raw.chunks(1024 * 1024).count() as u32;
    table.extend(n.to_le_bytes());
    table.push(0);
    table.extend(0x8F92_EAB1u32.to_le_bytes());
    out.extend(0x184D_2A5Eu32.to_le_bytes());
    out.extend((table.len() as u32).to_le_bytes());
    out.extend(table);
    out
}

#[test]
fn a_large_seekable_zstd_file_decompressed_frame_by_frame_reads_like_the_original() {
    let raw = padded_to_eight_mib(&fixture_bytes("v3_4/cube_uncompressed.blend"));
    let opts = AnalyzeOptions::default();
    let plain = analyze_bytes(&raw, "cube.blend", &opts).unwrap_or_else(|e| panic!("{e}"));
    let got = analyze_bytes(&seekable(&raw, 0), "cube.blend", &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.compression, Compression::Zstd);
    assert_eq!((got.scenes, got.dependencies), (plain.scenes, plain.dependencies));
    // A seek table that lies about a frame's size is a decompression error, not a short read.
    let res = analyze_bytes(&seekable(&raw, 1), "cube.blend", &opts);
    assert!(matches!(res, Err(AnalyzeError::Decompress { format: "zstd", .. })), "{res:?}");
    // The cap holds on this path too.
    let small = AnalyzeOptions { max_decompressed_bytes: 4 * 1024 * 1024 };
    let res = analyze_bytes(&seekable(&raw, 0), "cube.blend", &small);
    assert!(matches!(res, Err(AnalyzeError::TooLarge { .. })), "{res:?}");
}

#[test]
fn a_large_file_on_disk_is_hashed_and_read_alike_plain_or_compressed() {
    use sha2::Digest;
    let raw = padded_to_eight_mib(&fixture_bytes("v3_4/cube_uncompressed.blend"));
    let dir = common::scratch_dir("large_on_disk");
    let opts = AnalyzeOptions::default();
    let mut scenes = Vec::new();
    for (name, bytes) in [("plain.blend", raw.clone()), ("seekable.blend", seekable(&raw, 0))] {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let a = analyze_path(&path, name, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.file_size, bytes.len() as u64, "{name}");
        assert_eq!(a.sha256, hex::encode(sha2::Sha256::digest(&bytes)), "{name}");
        scenes.push(a.scenes);
    }
    assert_eq!(scenes[0], scenes[1]);
}

#[test]
fn a_file_that_does_not_exist_is_an_io_error_naming_it() {
    let path = fixture("no_such_file.blend");
    let res = analyze_path(&path, "no_such_file.blend", &AnalyzeOptions::default());
    assert!(
        matches!(&res, Err(e @ AnalyzeError::Io { .. }) if e.to_string().contains("no_such_file.blend")),
        "{res:?}"
    );
}

#[test]
fn analyze_path_refuses_a_file_over_the_cap_before_reading_it() {
    let res = analyze_path(&fixture("v3_4/cube.blend"), "cube.blend", &AnalyzeOptions { max_decompressed_bytes: 1000 });
    assert!(matches!(res, Err(AnalyzeError::TooLarge { limit: 1000 })), "{res:?}");
}
