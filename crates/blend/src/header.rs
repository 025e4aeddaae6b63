//! The file header: pointer size, byte order, file version and which block-header layout follows.
//!
//! Two layouts exist. The legacy one (every Blender before 5.0) is 12 bytes, `BLENDER`, `_`/`-`
//! for 4/8-byte pointers, `v`/`V` for little/big endian and three version digits. Blender 5.0 writes
//! format 1 by default: 17 bytes, `BLENDER17-01v0500`, always 8-byte pointers and little endian, and
//! 32-byte block headers whose fields come in a different order.

use crate::error::AnalyzeError;

/// Byte order of every number in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endian {
    /// `v` in the header; every file written on x86 and ARM.
    Little,
    /// `V` in the header; old PowerPC/SPARC files. Blender 5.0 no longer reads them.
    Big,
}

impl Endian {
    /// Reads `N` bytes at `off` in this byte order, normalised to little endian; `None` past the end.
    fn bytes<const N: usize>(self, data: &[u8], off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        let mut out: [u8; N] = data.get(off..end)?.try_into().ok()?;
        if self == Endian::Big {
            out.reverse();
        }
        Some(out)
    }

    /// A `u16` at `off`.
    pub(crate) fn u16(self, data: &[u8], off: usize) -> Option<u16> {
        self.bytes(data, off).map(u16::from_le_bytes)
    }

    /// An `i16` at `off`.
    pub(crate) fn i16(self, data: &[u8], off: usize) -> Option<i16> {
        self.bytes(data, off).map(i16::from_le_bytes)
    }

    /// A `u32` at `off`.
    pub(crate) fn u32(self, data: &[u8], off: usize) -> Option<u32> {
        self.bytes(data, off).map(u32::from_le_bytes)
    }

    /// An `i32` at `off`.
    pub(crate) fn i32(self, data: &[u8], off: usize) -> Option<i32> {
        self.bytes(data, off).map(i32::from_le_bytes)
    }

    /// A `u64` at `off`.
    pub(crate) fn u64(self, data: &[u8], off: usize) -> Option<u64> {
        self.bytes(data, off).map(u64::from_le_bytes)
    }

    /// An `i64` at `off`.
    pub(crate) fn i64(self, data: &[u8], off: usize) -> Option<i64> {
        self.bytes(data, off).map(i64::from_le_bytes)
    }

    /// An `f32` at `off`.
    pub(crate) fn f32(self, data: &[u8], off: usize) -> Option<f32> {
        self.bytes(data, off).map(f32::from_le_bytes)
    }

    /// An `f64` at `off`.
    pub(crate) fn f64(self, data: &[u8], off: usize) -> Option<f64> {
        self.bytes(data, off).map(f64::from_le_bytes)
    }
}

/// Which block-header layout the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockLayout {
    /// `code, len:i32, old:u32, sdna:i32, nr:i32`: 20 bytes.
    Legacy4,
    /// `code, len:i32, old:u64, sdna:i32, nr:i32`: 24 bytes.
    Legacy8,
    /// `code, sdna:i32, old:u64, len:i64, nr:i64`: 32 bytes (format 1, Blender 5.0+).
    Large8,
}

impl BlockLayout {
    /// Size of one block header in bytes.
    pub(crate) fn header_len(self) -> usize {
        match self {
            BlockLayout::Legacy4 => 20,
            BlockLayout::Legacy8 => 24,
            BlockLayout::Large8 => 32,
        }
    }
}

/// What the file header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// 4 or 8.
    pub pointer_size: usize,
    /// Byte order of the rest of the file.
    pub endian: Endian,
    /// `major * 100 + minor`, e.g. 304 for Blender 3.4 or 500 for 5.0.
    pub version: u16,
    /// Block-header layout that follows the header.
    pub layout: BlockLayout,
    /// Length of the file header itself; the first block header starts here.
    pub len: usize,
}

impl Header {
    /// Parses the header at the start of the (decompressed) data.
    pub(crate) fn parse(data: &[u8]) -> Result<Header, AnalyzeError> {
        if !data.starts_with(b"BLENDER") {
            return Err(AnalyzeError::NotBlend);
        }
        let unknown = || AnalyzeError::UnknownFormat { header: printable(data.get(..17).unwrap_or(data)) };
        match data.get(7) {
            Some(b'_' | b'-') => {
                let head: [u8; 12] =
                    data.get(..12).and_then(|h| h.try_into().ok()).ok_or(AnalyzeError::truncated("file header", 0))?;
                let [.., ptr, order, d0, d1, d2] = head;
                let pointer_size = if ptr == b'_' { 4 } else { 8 };
                let endian = match order {
                    b'v' => Endian::Little,
                    b'V' => Endian::Big,
                    _ => return Err(unknown()),
                };
                let version = digits(&[d0, d1, d2]).ok_or_else(unknown)?;
                let layout = if pointer_size == 4 { BlockLayout::Legacy4 } else { BlockLayout::Legacy8 };
                Ok(Header { pointer_size, endian, version, layout, len: 12 })
            }
            Some(b'0'..=b'9') => {
                let head: [u8; 17] =
                    data.get(..17).and_then(|h| h.try_into().ok()).ok_or(AnalyzeError::truncated("file header", 0))?;
                // Only the one combination Blender writes is known: header size 17, 8-byte
                // pointers, format version 01, little endian. Anything else is a future format.
                let [_, _, _, _, _, _, _, h0, h1, dash, f0, f1, order, d0, d1, d2, d3] = head;
                if [h0, h1, dash, f0, f1, order] != *b"17-01v" {
                    return Err(unknown());
                }
                let version = digits(&[d0, d1, d2, d3]).ok_or_else(unknown)?;
                Ok(Header { pointer_size: 8, endian: Endian::Little, version, layout: BlockLayout::Large8, len: 17 })
            }
            Some(_) => Err(unknown()),
            None => Err(AnalyzeError::truncated("file header", 0)),
        }
    }

    /// Major version, e.g. 3 for Blender 3.4.
    pub(crate) fn major(&self) -> u16 {
        self.version / 100
    }

    /// Minor version, e.g. 4 for Blender 3.4.
    pub(crate) fn minor(&self) -> u16 {
        self.version % 100
    }
}

/// ASCII digits to a number; `None` for anything else.
fn digits(bytes: &[u8]) -> Option<u16> {
    bytes.iter().try_fold(0u16, |acc, &b| {
        if b.is_ascii_digit() { acc.checked_mul(10)?.checked_add(u16::from(b - b'0')) } else { None }
    })
}

/// The header bytes for an error message, with anything unprintable escaped.
fn printable(bytes: &[u8]) -> String {
    bytes.iter().flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_every_known_layout_parse() {
        let cases: &[(&[u8], usize, Endian, u16, BlockLayout)] = &[
            (b"BLENDER-v304", 8, Endian::Little, 304, BlockLayout::Legacy8),
            (b"BLENDER_v280", 4, Endian::Little, 280, BlockLayout::Legacy4),
            (b"BLENDER-V249", 8, Endian::Big, 249, BlockLayout::Legacy8),
            (b"BLENDER17-01v0500", 8, Endian::Little, 500, BlockLayout::Large8),
            (b"BLENDER17-01v0502", 8, Endian::Little, 502, BlockLayout::Large8),
        ];
        for (bytes, ptr, endian, version, layout) in cases {
            let h = Header::parse(bytes).unwrap_or_else(|e| panic!("{bytes:?}: {e}"));
            assert_eq!((h.pointer_size, h.endian, h.version, h.layout), (*ptr, *endian, *version, *layout));
        }
    }

    #[test]
    fn unknown_headers_after_blender_say_newer_or_unknown_format() {
        for bytes in [&b"BLENDER18-01v0600"[..], b"BLENDER17-02v0600", b"BLENDER-x304", b"BLENDERXYZ", b"BLENDER-v3a4"]
        {
            assert!(matches!(Header::parse(bytes), Err(AnalyzeError::UnknownFormat { .. })), "{bytes:?}");
        }
    }
}
