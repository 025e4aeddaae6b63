//! Helpers shared by the integration tests.

#![allow(dead_code)] // Each test binary uses a different subset.

pub(crate) mod truth;

use std::path::{Path, PathBuf};

/// A committed fixture, by file name.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A fixture's bytes.
pub(crate) fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("reading fixture {name}: {e}"))
}

/// A fresh, empty directory for one test under cargo's per-target temporary directory.
pub(crate) fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("orchard-blend").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// A tiny deterministic xorshift64 generator: reproducible "random" offsets without a rand crate.
pub(crate) struct XorShift(pub u64);

impl XorShift {
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Offsets of every block header in an uncompressed little-endian file, `ENDB` included: the
/// legacy layout with 8-byte pointers (12-byte file header, 24-byte block headers, `len` at +4) or
/// Blender 5.0's (17-byte file header, 32-byte block headers, `len` an i64 at +16).
pub(crate) fn block_offsets(data: &[u8]) -> Vec<usize> {
    let large = data.get(7).is_some_and(u8::is_ascii_digit);
    let (mut pos, head) = if large { (17, 32) } else { (12, 24) };
    let mut out = Vec::new();
    while pos + head <= data.len() {
        out.push(pos);
        if &data[pos..pos + 4] == b"ENDB" {
            break;
        }
        let len = if large {
            i64::from_le_bytes(
                data[pos + 16..pos + 24]
                    .try_into()
                    .unwrap_or_else(|_| panic!("the block header at {pos} is cut short")),
            ) as usize
        } else {
            i32::from_le_bytes(
                data[pos + 4..pos + 8].try_into().unwrap_or_else(|_| panic!("the block header at {pos} is cut short")),
            ) as usize
        };
        pos += head + len;
    }
    out
}
