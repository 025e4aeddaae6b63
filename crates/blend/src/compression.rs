//! The outer wrapper of a `.blend` file: none, gzip or zstd, told apart by the first bytes.

use std::borrow::Cow;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::error::AnalyzeError;

/// How the `.blend` data was stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain `BLENDER...` bytes.
    None,
    /// gzip, written by Blender before 3.0 when "Compress" was on.
    Gzip,
    /// zstd (Blender 3.0 and later), in Blender's multi-frame seekable layout.
    Zstd,
}

impl Compression {
    /// The wrapper that `data` starts with, or `None` when it is not one we know.
    pub fn detect(data: &[u8]) -> Option<Compression> {
        if data.starts_with(b"BLENDER") {
            Some(Compression::None)
        } else if data.starts_with(&[0x1F, 0x8B]) {
            Some(Compression::Gzip)
        } else if data.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) || is_zstd_skippable(data) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }
}

/// A zstd skippable frame (`0x184D2A5?`, little endian) may come first; Blender's own seekable
/// writer puts the seek table last, but other tools may not, and BAT accepts both.
fn is_zstd_skippable(data: &[u8]) -> bool {
    matches!(data, [b0, 0x2A, 0x4D, 0x18, ..] if b0 & 0xF0 == 0x50)
}

/// Returns the uncompressed `.blend` bytes, refusing more than `limit` of them.
///
/// Reading goes through `take(limit + 1)` so a decompression bomb stops after one byte too many
/// instead of filling memory.
pub fn decompress(data: &[u8], limit: u64) -> Result<(Compression, Cow<'_, [u8]>), AnalyzeError> {
    let kind = Compression::detect(data).ok_or(AnalyzeError::NotBlend)?;
    match kind {
        Compression::None => {
            if data.len() as u64 > limit {
                return Err(AnalyzeError::TooLarge { limit });
            }
            Ok((kind, Cow::Borrowed(data)))
        }
        Compression::Gzip => {
            let decoder = flate2::read::MultiGzDecoder::new(data);
            let out = read_capped(decoder, limit, "gzip")?;
            Ok((kind, Cow::Owned(out)))
        }
        Compression::Zstd => {
            // The streaming decoder continues across frames (and skips skippable ones) until the
            // input ends; stopping after the first frame would silently truncate Blender's files.
            let decoder = zstd::stream::read::Decoder::new(data)
                .map_err(|source| AnalyzeError::Decompress { format: "zstd", source })?;
            let out = read_capped(decoder, limit, "zstd")?;
            Ok((kind, Cow::Owned(out)))
        }
    }
}

fn read_capped(reader: impl Read, limit: u64, format: &'static str) -> Result<Vec<u8>, AnalyzeError> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| AnalyzeError::Decompress { format, source })?;
    if out.len() as u64 > limit {
        return Err(AnalyzeError::TooLarge { limit });
    }
    Ok(out)
}
