//! The outer wrapper of a `.blend` file: none, gzip or zstd, told apart by the first bytes.

use std::borrow::Cow;
use std::io::Read;

use crate::error::AnalyzeError;
use crate::model::Compression;

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
pub(crate) fn decompress(data: &[u8], limit: u64) -> Result<(Compression, Cow<'_, [u8]>), AnalyzeError> {
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
            let out = read_capped(decoder, limit, gzip_size_hint(data), "gzip")?;
            Ok((kind, Cow::Owned(out)))
        }
        Compression::Zstd => {
            if let Some(out) = zstd_frames_in_place(data, limit)? {
                return Ok((kind, Cow::Owned(out)));
            }
            // The streaming decoder continues across frames (and skips skippable ones) until the
            // input ends; stopping after the first frame would silently truncate Blender's files.
            let decoder = zstd::stream::read::Decoder::new(data)
                .map_err(|source| AnalyzeError::Decompress { format: "zstd", source })?;
            let out = read_capped(decoder, limit, zstd_seek_table(data).map(|t| t.total), "zstd")?;
            Ok((kind, Cow::Owned(out)))
        }
    }
}

/// Below this, one thread decompresses faster than several start.
const PARALLEL_MIN_BYTES: u64 = 8 * 1024 * 1024;
/// Most threads used to decompress one file.
const MAX_THREADS: usize = 8;
/// Largest decompressed/compressed ratio a seek table is believed for (Blender's files: 4–10).
const MAX_TRUSTED_RATIO: u64 = 100;

/// Blender writes zstd in the seekable format: independent frames, listed with their sizes in a
/// seek table at the end. Such a file is decompressed frame by frame straight into its place in the
/// output (no window buffer to copy out of, no buffer cleared before it is written): on several
/// threads for a large file, on this one for a small one, where starting threads would cost more
/// than they save. Returns `None` (the caller streams instead) when there is no usable seek table;
/// a frame that does not decompress to the size the table declares is an error, as the streaming
/// decoder would also fail on it.
fn zstd_frames_in_place(data: &[u8], limit: u64) -> Result<Option<Vec<u8>>, AnalyzeError> {
    let Some(table) = zstd_seek_table(data) else {
        return Ok(None);
    };
    // A table claiming far more than any real file inflates to is not trusted with an allocation
    // up front; the streaming decoder then finds out what the frames really hold, under the cap.
    let plausible = table.total <= (data.len() as u64).saturating_mul(MAX_TRUSTED_RATIO);
    if !plausible {
        return Ok(None);
    }
    if table.total > limit {
        return Err(AnalyzeError::TooLarge { limit });
    }
    let total = usize::try_from(table.total).map_err(|_| AnalyzeError::TooLarge { limit })?;
    // Zeroed by the allocator (fresh pages), so this costs nothing until written.
    let mut out = vec![0u8; total];
    // Cut input and output into per-frame pieces.
    let mut jobs: Vec<(&[u8], &mut [u8])> = Vec::with_capacity(table.frames.len());
    let (mut input, mut output) = (data, out.as_mut_slice());
    for &(compressed, decompressed) in &table.frames {
        let (src, rest_in) = input.split_at_checked(compressed).ok_or_else(bad_table)?;
        let (dst, rest_out) = output.split_at_mut_checked(decompressed).ok_or_else(bad_table)?;
        jobs.push((src, dst));
        (input, output) = (rest_in, rest_out);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
    if table.total < PARALLEL_MIN_BYTES || jobs.len() < 2 || threads < 2 {
        decompress_frames(jobs)?;
        return Ok(Some(out));
    }
    // Deal the frames out to threads in contiguous runs.
    let per_thread = jobs.len().div_ceil(threads);
    let results: Vec<Result<(), AnalyzeError>> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        while !jobs.is_empty() {
            let run: Vec<(&[u8], &mut [u8])> = jobs.drain(..per_thread.min(jobs.len())).collect();
            handles.push(scope.spawn(move || decompress_frames(run)));
        }
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(bad_table()))).collect()
    });
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(Some(out))
}

fn decompress_frames(frames: Vec<(&[u8], &mut [u8])>) -> Result<(), AnalyzeError> {
    let zstd_err = |source| AnalyzeError::Decompress { format: "zstd", source };
    let mut decoder = zstd::bulk::Decompressor::new().map_err(zstd_err)?;
    for (src, dst) in frames {
        let n = decoder.decompress_to_buffer(src, dst).map_err(zstd_err)?;
        if n != dst.len() {
            return Err(bad_table());
        }
    }
    Ok(())
}

fn bad_table() -> AnalyzeError {
    AnalyzeError::Decompress {
        format: "zstd",
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the frames do not match the seek table"),
    }
}

/// Blender's zstd seek table: each data frame's compressed and decompressed size, in order.
struct SeekTable {
    frames: Vec<(usize, usize)>,
    /// The decompressed sizes summed.
    total: u64,
}

/// The seek table in the skippable frame that ends the file: magic `0x184D2A5E`, the frame's
/// length, entries of `compressed: u32, decompressed: u32` (plus a `u32` checksum when the
/// descriptor's top bit is set), then `frames: u32, descriptor: u8` and the magic `0x8F92EAB1`.
/// `None` unless the table accounts for every byte of the file before it.
fn zstd_seek_table(data: &[u8]) -> Option<SeekTable> {
    let le32 = |at: usize| data.get(at..at.checked_add(4)?).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let footer = data.len().checked_sub(9)?;
    if le32(footer + 5)? != 0x8F92_EAB1 {
        return None;
    }
    let n = usize::try_from(le32(footer)?).ok()?;
    let entry = if data.get(footer + 4)? & 0x80 != 0 { 12 } else { 8 };
    let entries = footer.checked_sub(n.checked_mul(entry)?)?;
    let frame_start = entries.checked_sub(8)?;
    if le32(frame_start)? != 0x184D_2A5E {
        return None;
    }
    let mut frames = Vec::with_capacity(n.min(data.len() / 8));
    let (mut compressed_sum, mut total) = (0usize, 0u64);
    for i in 0..n {
        let at = entries + i * entry;
        let (c, d) = (usize::try_from(le32(at)?).ok()?, usize::try_from(le32(at + 4)?).ok()?);
        compressed_sum = compressed_sum.checked_add(c)?;
        total = total.checked_add(d as u64)?;
        frames.push((c, d));
    }
    (compressed_sum == frame_start).then_some(SeekTable { frames, total })
}

/// gzip's trailer holds the last member's size modulo 2^32: a hint for the first allocation.
fn gzip_size_hint(data: &[u8]) -> Option<u64> {
    let tail = data.len().checked_sub(4)?;
    data.get(tail..).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes).map(u64::from)
}

/// Reads everything, refusing more than `limit` bytes. `hint` (what the container claims) sizes the
/// buffer up front, so a well-formed file is read without the buffer doubling; a false claim only
/// costs regrowth, never more than the limit allows.
fn read_capped(
    reader: impl Read,
    limit: u64,
    hint: Option<u64>,
    format: &'static str,
) -> Result<Vec<u8>, AnalyzeError> {
    let first = hint.unwrap_or(0).min(limit.saturating_add(1));
    let mut out = Vec::with_capacity(usize::try_from(first).unwrap_or(0));
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| AnalyzeError::Decompress { format, source })?;
    if out.len() as u64 > limit {
        return Err(AnalyzeError::TooLarge { limit });
    }
    Ok(out)
}
