//! `orchard-blend`: a native reader of Blender `.blend` files and `.zip` projects, and the scene
//! analysis Orchard validates jobs with, in milliseconds and without starting Blender.
//!
//! The reader handles every layout Blender writes: the legacy 12-byte header with 4- or 8-byte
//! pointers in either byte order, the 17-byte header of Blender 5.0+, plain, gzip and multi-frame
//! zstd files. Every struct field is found through the file's own DNA (`DNA1` block), by its
//! on-disk name, never at a hard-coded offset, so files of versions this crate has never seen are
//! still read correctly as long as the fields keep their names.
//!
//! Principal items:
//! - [`analyze_path`] and [`analyze_bytes`] produce an [`Analysis`], the `analysis` object of the
//!   spec (orchard.md §5): scenes with their render settings, external dependencies and warnings.
//! - [`ZipProject`] opens a `.zip` project safely (zip-slip, symlinks, bombs) and extracts it.
//! - [`AnalyzeError`] says, for a person, why a file could not be read.
//!
//! No input makes this crate panic: every offset and length read from a file is checked before it
//! is used, lists are walked with a cap, and sizes after decompression are capped by
//! [`AnalyzeOptions::max_decompressed_bytes`].
//!
//! ```
//! use std::path::Path;
//! use orchard_blend::{AnalyzeOptions, analyze_path};
//!
//! let path = Path::new("tests/fixtures/cube.blend");
//! let analysis = analyze_path(path, "cube.blend", &AnalyzeOptions::default())?;
//! let scene = &analysis.scenes[0];
//! assert_eq!(scene.render_config.render_engine, "CYCLES");
//! assert_eq!(scene.render_config.resolution, [160, 120]);
//! println!("{}", serde_json::to_string_pretty(&analysis)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod analysis;
mod blocks;
mod compression;
mod cycles;
mod error;
mod header;
mod idprop;
mod project;
mod read;
mod sdna;

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};

pub use analysis::{
    Analysis, Dependency, DependencyKind, DependencyStatus, FileVersion, MAX_SCENES, NEWEST_KNOWN_VERSION,
    OutputSettings, RenderConfig, SceneInfo, ViewLayerInfo, Warning, WarningCode,
};
pub use compression::Compression;
pub use error::AnalyzeError;
pub use project::{MAX_ENTRIES, ZipProject};

use analysis::Resolver;

/// Limits applied while analysing untrusted files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzeOptions {
    /// Most bytes a `.blend` may take once decompressed (and most bytes a `.zip` project may
    /// inflate to in total). Guards against decompression bombs; default 2 GiB.
    pub max_decompressed_bytes: u64,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions { max_decompressed_bytes: 2 * 1024 * 1024 * 1024 }
    }
}

/// Analyse a .blend or .zip on disk. `file_name` is the user's name for it (used for fileType/zip
/// detection and reported as fileName).
///
/// A `.zip` is analysed through its main `.blend` (see [`ZipProject::open`]), with relative
/// dependencies looked up inside the archive. A plain `.blend` has its relative dependencies
/// looked up beside it on disk: an upload stored alone will list them as `missing`, which is the
/// truth about what the farm has.
pub fn analyze_path(path: &Path, file_name: &str, opts: &AnalyzeOptions) -> Result<Analysis, AnalyzeError> {
    let start = Instant::now();
    let io_err = |source| AnalyzeError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io_err)?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic).map_err(io_err)?;
    if is_zip(file_name, magic.get(..n).unwrap_or(&[])) {
        return ZipProject::open(path, None, opts)?.analyze(file_name, opts);
    }
    let size = file.metadata().map_err(io_err)?.len();
    // A .blend is held in memory whole; a compressed one larger than the cap cannot fit in it
    // once inflated either.
    if size > opts.max_decompressed_bytes {
        return Err(AnalyzeError::TooLarge { limit: opts.max_decompressed_bytes });
    }
    let mut bytes = Vec::new();
    file.rewind().and_then(|()| file.take(opts.max_decompressed_bytes).read_to_end(&mut bytes)).map_err(io_err)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut analysis = analyze_blend_bytes(&bytes, Resolver::Dir(dir), opts)?;
    finish(&mut analysis, file_name, &bytes, start);
    Ok(analysis)
}

/// Analyse `.blend` bytes (plain, gzip or zstd). There is no directory to look in, so relative
/// dependencies are reported `missing`. `.zip` bytes are refused with
/// [`AnalyzeError::ZipInMemory`]; use [`analyze_path`].
pub fn analyze_bytes(bytes: &[u8], file_name: &str, opts: &AnalyzeOptions) -> Result<Analysis, AnalyzeError> {
    let start = Instant::now();
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Err(AnalyzeError::ZipInMemory);
    }
    let mut analysis = analyze_blend_bytes(bytes, Resolver::Detached, opts)?;
    finish(&mut analysis, file_name, bytes, start);
    Ok(analysis)
}

/// Decompresses, parses and analyses; the caller fills in the file's name, size, hash and time.
pub(crate) fn analyze_blend_bytes(
    bytes: &[u8],
    resolver: Resolver<'_>,
    opts: &AnalyzeOptions,
) -> Result<Analysis, AnalyzeError> {
    let (compression, data) = compression::decompress(bytes, opts.max_decompressed_bytes)?;
    let file = read::BlendFile::parse(&data)?;
    analysis::analyze_file(&file, compression, resolver)
}

fn finish(analysis: &mut Analysis, file_name: &str, bytes: &[u8], start: Instant) {
    analysis.file_name = file_name.to_string();
    analysis.file_size = bytes.len() as u64;
    analysis.sha256 = hex::encode(Sha256::digest(bytes));
    analysis.duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
}

/// Size and hex SHA-256 of a file, read in chunks (archives can be gigabytes).
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String), AnalyzeError> {
    let io_err = |source| AnalyzeError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        hasher.update(buf.get(..n).unwrap_or(&[]));
        size = size.saturating_add(n as u64);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Zip by the user's file name or by the local-header / empty-archive signature.
fn is_zip(file_name: &str, magic: &[u8]) -> bool {
    file_name.to_ascii_lowercase().ends_with(".zip") || magic == b"PK\x03\x04" || magic == b"PK\x05\x06"
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(buf.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
