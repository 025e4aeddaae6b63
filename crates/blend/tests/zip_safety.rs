//! Hostile `.zip` projects are refused with the specific error, before anything is written.

mod common;

use std::io::{Cursor, Write};
use std::path::PathBuf;

use orchard_blend::{AnalyzeError, AnalyzeOptions, MAX_ENTRIES, ZipProject, analyze_path};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use common::{fixture_bytes, scratch_dir};

/// One entry of an archive built for a test.
enum Item<'a> {
    File(&'a str, Vec<u8>),
    Symlink(&'a str, &'a str),
}

fn build_zip(items: Vec<Item<'_>>) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for item in items {
        match item {
            Item::File(name, data) => {
                w.start_file(name, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
                w.write_all(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            Item::Symlink(name, target) => {
                w.add_symlink(name, target, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
    w.finish().unwrap_or_else(|e| panic!("{e}")).into_inner()
}

/// Rewrites every declared uncompressed size (local headers and central directory) to `size`,
/// so the data inflates to more than the archive admits: the classic zip bomb disguise.
fn lie_about_sizes(mut zip: Vec<u8>, size: u32) -> Vec<u8> {
    let mut i = 0;
    while i + 4 <= zip.len() {
        let field = match &zip[i..i + 4] {
            b"PK\x03\x04" => Some(i + 22),
            b"PK\x01\x02" => Some(i + 24),
            _ => None,
        };
        if let Some(at) = field {
            zip[at..at + 4].copy_from_slice(&size.to_le_bytes());
        }
        i += 1;
    }
    zip
}

fn write(dir: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_dir(dir).join("project.zip");
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn blend() -> Vec<u8> {
    fixture_bytes("v3_4/cube.blend")
}

const MIB: u64 = 1024 * 1024;

#[test]
fn hostile_archives_are_refused_when_opened_with_the_specific_error() {
    type Check = fn(&AnalyzeError) -> bool;
    let cases: Vec<(&str, Vec<u8>, u64, Check)> = vec![
        (
            "an entry climbing out with ../ is zip slip",
            build_zip(vec![Item::File("main.blend", blend()), Item::File("../evil.blend", b"x".to_vec())]),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::ZipSlip { entry } if entry == "../evil.blend"),
        ),
        (
            "an absolute entry path is zip slip",
            build_zip(vec![Item::File("/tmp/evil.blend", blend())]),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::ZipSlip { .. }),
        ),
        (
            "a drive-letter entry path is zip slip",
            build_zip(vec![Item::File("C:/evil.blend", blend())]),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::ZipSlip { .. }),
        ),
        (
            "a backslash path climbing out is zip slip",
            build_zip(vec![Item::File("shot\\..\\..\\evil.blend", blend())]),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::ZipSlip { .. }),
        ),
        (
            "a symbolic link entry is refused",
            build_zip(vec![Item::File("main.blend", blend()), Item::Symlink("tex.png", "/etc/passwd")]),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::ZipSymlink { entry } if entry == "tex.png"),
        ),
        (
            "entries declaring more than the cap are a bomb",
            build_zip(vec![Item::File("main.blend", blend()), Item::File("big.bin", vec![0; 3 * MIB as usize])]),
            2 * MIB,
            |e| matches!(e, AnalyzeError::ZipBomb { .. }),
        ),
        (
            "an archive without a .blend has nothing to render",
            build_zip(vec![Item::File("textures/wood.png", b"png".to_vec())]),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::ZipNoBlend),
        ),
        (
            "bytes that are not a zip are an invalid archive",
            b"PK\x03\x04 but not really a zip".to_vec(),
            2048 * MIB,
            |e| matches!(e, AnalyzeError::ZipInvalid { .. }),
        ),
    ];
    for (i, (sentence, bytes, cap, check)) in cases.into_iter().enumerate() {
        let path = write(&format!("hostile_{i}"), &bytes);
        let opts = AnalyzeOptions { max_decompressed_bytes: cap };
        let res = ZipProject::open(&path, None, &opts);
        match res {
            Err(ref e) if check(e) => {}
            other => panic!("{sentence}: got {other:?}"),
        }
        // analyze_path refuses it the same way.
        let res = analyze_path(&path, "project.zip", &opts);
        assert!(matches!(res, Err(ref e) if check(e)), "{sentence} (analyze_path): got {res:?}");
    }
}

#[test]
fn more_entries_than_the_cap_are_refused() {
    let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("f{i}.txt")).collect();
    let mut items: Vec<Item<'_>> = names.iter().map(|n| Item::File(n, Vec::new())).collect();
    items.push(Item::File("main.blend", blend()));
    let path = write("too_many_entries", &build_zip(items));
    let res = ZipProject::open(&path, None, &AnalyzeOptions::default());
    assert!(
        matches!(res, Err(AnalyzeError::ZipTooManyEntries { count, limit }) if count == MAX_ENTRIES + 2 && limit == MAX_ENTRIES),
        "{res:?}"
    );
}

#[test]
fn an_entry_inflating_beyond_its_declared_size_is_a_bomb_when_read_or_extracted() {
    // 3 MiB of zeros deflate to a few KiB, and the archive claims 100 bytes.
    let zip = lie_about_sizes(build_zip(vec![Item::File("bomb.blend", vec![0; 3 * MIB as usize])]), 100);
    let path = write("lying_bomb", &zip);
    let opts = AnalyzeOptions { max_decompressed_bytes: MIB };
    let project = ZipProject::open(&path, None, &opts).unwrap_or_else(|e| panic!("the declaration looks fine: {e}"));
    let dir = scratch_dir("lying_bomb_out");
    let res = project.extract_to(&dir);
    assert!(matches!(res, Err(AnalyzeError::ZipBomb { .. })), "extract: {res:?}");
    let written = std::fs::metadata(dir.join("bomb.blend")).map(|m| m.len()).unwrap_or(0);
    assert!(written <= 100, "extraction stopped at the declared size, wrote {written}");
    let res = analyze_path(&path, "project.zip", &opts);
    assert!(matches!(res, Err(AnalyzeError::ZipBomb { .. })), "analyze: {res:?}");
}

#[test]
fn the_shallowest_blend_is_the_main_file_then_the_first_alphabetically() {
    let zip = build_zip(vec![
        Item::File("deep/er/a.blend", blend()),
        Item::File("shot/z.blend", blend()),
        Item::File("shot/b.blend", blend()),
        Item::File("__MACOSX/._top.blend", b"resource fork".to_vec()),
        Item::File("notes.txt", b"hi".to_vec()),
    ]);
    let path = write("main_choice", &zip);
    let project = ZipProject::open(&path, None, &AnalyzeOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(project.main_file(), "shot/b.blend");
}

#[test]
fn extraction_writes_every_entry_under_the_directory() {
    let zip = build_zip(vec![
        Item::File("./shot/main.blend", blend()),
        Item::File("shot/textures/wood.png", b"png".to_vec()),
    ]);
    let path = write("extract_all", &zip);
    let project = ZipProject::open(&path, None, &AnalyzeOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let dir = scratch_dir("extract_all_out");
    let main = project.extract_to(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(main, dir.join("shot/main.blend"));
    assert_eq!(std::fs::read(&main).ok(), Some(blend()));
    assert_eq!(std::fs::read(dir.join("shot/textures/wood.png")).ok(), Some(b"png".to_vec()));
}
