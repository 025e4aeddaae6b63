//! `.zip` projects: a main `.blend` and the files it refers to, checked before anything is trusted.
//!
//! An uploaded archive is hostile until proven otherwise: entry names may climb out of the
//! extraction directory (`../`, `/etc/...`, `C:\...`), entries may be symbolic links, and an entry
//! may declare a small size and inflate to gigabytes. [`ZipProject::open`] checks the central
//! directory; reading and extracting inflate the data themselves so the actual sizes are enforced
//! byte by byte, whatever the archive claims.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use zip::{CompressionMethod, ZipArchive};

use crate::analysis::analyze_blend_bytes;
use crate::dependencies::{MainBlend, Project};
use crate::error::AnalyzeError;
use crate::model::Analysis;
use crate::{AnalyzeOptions, hash_file};

/// Most entries a project archive may hold.
pub const MAX_ENTRIES: u64 = 10_000;

/// One file or directory of the archive, already checked.
#[derive(Debug, Clone)]
struct Entry {
    /// Index in the archive's central directory.
    index: usize,
    /// The name as stored, for error messages.
    raw_name: String,
    /// `/`-separated segments without `.`, empty segments or `..`.
    name: String,
    is_dir: bool,
    declared_size: u64,
    crc32: u32,
    method: CompressionMethod,
}

/// A `.zip` project whose central directory passed the safety checks, with its main `.blend` chosen.
#[derive(Debug)]
pub struct ZipProject {
    path: PathBuf,
    main_file: String,
    entries: Vec<Entry>,
    /// Normalised names of the file entries, for dependency lookups.
    files: HashSet<String>,
    /// Every directory the archive holds, named or implied by a file's path (caches are directories).
    dirs: HashSet<String>,
    /// Cap on all entries' uncompressed bytes together.
    limit: u64,
}

impl ZipProject {
    /// Open and check a zip: rejects zip-slip (`..`, absolute paths, drive letters), symlinks, too
    /// many entries (cap 10_000), declared or actual uncompressed size over a cap; chooses the main
    /// .blend: the shallowest, then alphabetical (or `main_file` if Some).
    pub fn open(path: &Path, main_file: Option<&str>, opts: &AnalyzeOptions) -> Result<ZipProject, AnalyzeError> {
        let limit = opts.max_decompressed_bytes;
        // The zip reader loads the whole central directory; refuse an absurd entry count before
        // it allocates for millions of entries.
        if let Some(count) = declared_entry_count(path)?
            && count > MAX_ENTRIES
        {
            return Err(AnalyzeError::ZipTooManyEntries { count, limit: MAX_ENTRIES });
        }
        let archive = open_archive(path)?;
        let count = archive.len() as u64;
        if count > MAX_ENTRIES {
            return Err(AnalyzeError::ZipTooManyEntries { count, limit: MAX_ENTRIES });
        }
        if archive.has_duplicate_names() {
            // The reader keeps one entry per name, so which name was repeated is not known here.
            return Err(AnalyzeError::ZipInvalid { reason: "two entries have the same name".into() });
        }
        let mut entries = Vec::with_capacity(archive.len());
        let mut names = HashSet::new();
        let mut declared_total: u64 = 0;
        for index in 0..archive.len() {
            let entry = archive.by_index_data(index).map_err(zip_invalid)?;
            let raw_name = entry.name().map_err(zip_invalid)?.into_owned();
            let name = safe_name(&raw_name)?;
            if entry.is_symlink() {
                return Err(AnalyzeError::ZipSymlink { entry: raw_name });
            }
            let is_dir = entry.is_dir();
            if !is_dir {
                if entry.encrypted() {
                    return Err(AnalyzeError::ZipUnsupportedEntry {
                        entry: raw_name,
                        reason: "it is encrypted".into(),
                    });
                }
                let method = entry.compression();
                if !matches!(method, CompressionMethod::Stored | CompressionMethod::Deflated) {
                    return Err(AnalyzeError::ZipUnsupportedEntry {
                        entry: raw_name,
                        reason: format!("compression method {method:?} is not supported (use Deflate or Store)"),
                    });
                }
                declared_total = declared_total.saturating_add(entry.size());
                if declared_total > limit {
                    return Err(AnalyzeError::ZipBomb {
                        detail: format!("its entries declare more than {limit} bytes together"),
                        limit,
                    });
                }
            }
            if !name.is_empty() && !names.insert((name.clone(), is_dir)) {
                return Err(AnalyzeError::ZipDuplicateEntry { entry: raw_name });
            }
            entries.push(Entry {
                index,
                raw_name,
                name,
                is_dir,
                declared_size: entry.size(),
                crc32: entry.crc32(),
                method: entry.compression(),
            });
        }
        let files: HashSet<String> = entries.iter().filter(|e| !e.is_dir).map(|e| e.name.clone()).collect();
        let mut dirs = HashSet::new();
        for e in &entries {
            let mut name = e.name.as_str();
            if e.is_dir && !name.is_empty() {
                dirs.insert(name.to_string());
            }
            while let Some((parent, _)) = name.rsplit_once('/') {
                if !dirs.insert(parent.to_string()) {
                    break;
                }
                name = parent;
            }
        }
        let main_file = choose_main(&entries, &files, main_file)?;
        Ok(ZipProject { path: path.to_path_buf(), main_file, entries, files, dirs, limit })
    }

    /// The main `.blend`'s path inside the archive (normalised, `/`-separated).
    pub fn main_file(&self) -> &str {
        &self.main_file
    }

    /// Extract every entry under `dir` with the same checks (actual sizes enforced while writing).
    /// Returns the path of the main .blend on disk.
    ///
    /// `dir` should be a fresh directory. On error it may hold part of the project (never more
    /// than the entries declare, never outside `dir`); the caller removes it.
    pub fn extract_to(&self, dir: &Path) -> Result<PathBuf, AnalyzeError> {
        let mut archive = open_archive(&self.path)?;
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AnalyzeError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut budget = self.limit;
        for entry in &self.entries {
            if entry.name.is_empty() {
                continue;
            }
            let target = dir.join(&entry.name);
            // A link already on disk (e.g. left in a reused directory) would redirect the write.
            if fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(AnalyzeError::ZipSymlink { entry: entry.raw_name.clone() });
            }
            if entry.is_dir {
                fs::create_dir_all(&target).map_err(io_err(&target))?;
                continue;
            }
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            let mut out = io::BufWriter::new(File::create(&target).map_err(io_err(&target))?);
            let written = inflate_entry(&mut archive, entry, budget, self.limit, &mut out, &target)?;
            out.flush().map_err(io_err(&target))?;
            budget = budget.saturating_sub(written);
        }
        Ok(dir.join(&self.main_file))
    }

    /// Analyse the main `.blend`, resolving its relative dependencies inside the archive.
    /// `file_name` is the user's name for the archive; size and hash are the archive's, and
    /// [`Analysis::main_file`] is [`ZipProject::main_file`].
    pub fn analyze(&self, file_name: &str, opts: &AnalyzeOptions) -> Result<Analysis, AnalyzeError> {
        let start = Instant::now();
        let bytes = self.read_main()?;
        let (main_dir, main_name) = self.main_file.rsplit_once('/').unwrap_or(("", &self.main_file));
        let main = MainBlend { project: self, dir: main_dir, name: main_name };
        // The archive is hashed from disk on a second thread while its main file is analysed.
        let (analysis, hashed) = std::thread::scope(|scope| {
            let hasher = scope.spawn(|| hash_file(&self.path));
            let analysis = analyze_blend_bytes(&bytes, main, opts);
            (analysis, hasher.join().unwrap_or_else(|_| hash_file(&self.path)))
        });
        let mut analysis = analysis?;
        let (size, sha256) = hashed?;
        analysis.main_file = Some(self.main_file.clone());
        analysis.file_name = file_name.to_string();
        analysis.file_size = size;
        analysis.sha256 = sha256;
        analysis.duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(analysis)
    }

    /// The main `.blend`'s bytes, inflated under the same checks as extraction.
    fn read_main(&self) -> Result<Vec<u8>, AnalyzeError> {
        if !self.files.contains(&self.main_file) {
            return Err(AnalyzeError::ZipMainFileNotFound { name: self.main_file.clone() });
        }
        self.read_entry(&self.main_file)
    }

    /// A file entry's bytes (a linked library, say), inflated under the same checks as extraction.
    pub(crate) fn read_entry(&self, name: &str) -> Result<Vec<u8>, AnalyzeError> {
        let entry = self
            .entries
            .iter()
            .find(|e| !e.is_dir && e.name == name)
            .ok_or_else(|| AnalyzeError::ZipInvalid { reason: format!("it has no file entry {name:?}") })?;
        let mut archive = open_archive(&self.path)?;
        let mut out = Vec::new();
        inflate_entry(&mut archive, entry, self.limit, self.limit, &mut out, &self.path)?;
        Ok(out)
    }
}

/// Lookups inside the archive, by normalised entry name (`/`-separated, no `..`).
impl Project for ZipProject {
    fn has_file(&self, path: &str) -> bool {
        self.files.contains(path)
    }

    /// A directory entry, or the parent of one.
    fn has_dir(&self, path: &str) -> bool {
        self.dirs.contains(path)
    }

    /// The archive's own limit, that of the options it was opened with, applies.
    fn read_library(&self, path: &str, _limit: u64) -> Result<Vec<u8>, AnalyzeError> {
        self.read_entry(path)
    }
}

fn open_archive(path: &Path) -> Result<ZipArchive<BufReader<File>>, AnalyzeError> {
    let file = File::open(path).map_err(|source| AnalyzeError::Io { path: path.to_path_buf(), source })?;
    ZipArchive::new(BufReader::new(file)).map_err(zip_invalid)
}

/// The entry count the end-of-central-directory record declares (its zip64 form when the classic
/// field is saturated); `None` when the record cannot be found, which the zip reader then reports.
fn declared_entry_count(path: &Path) -> Result<Option<u64>, AnalyzeError> {
    use std::io::{Seek, SeekFrom};
    let io_err = |source| AnalyzeError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    // The record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
    let tail_len = len.min(22 + 65_535);
    let tail_start = len - tail_len;
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(tail_start))
        .and_then(|_| (&mut file).take(tail_len).read_to_end(&mut tail))
        .map_err(io_err)?;
    let Some(eocd) = (0..tail.len().saturating_sub(21)).rev().find(|&i| tail.get(i..i + 4) == Some(b"PK\x05\x06"))
    else {
        return Ok(None);
    };
    let le16 = |b: &[u8], at: usize| b.get(at..).and_then(|x| x.first_chunk::<2>()).map(|x| u16::from_le_bytes(*x));
    let le64 = |b: &[u8], at: usize| b.get(at..at + 8).and_then(|x| x.try_into().ok()).map(u64::from_le_bytes);
    let Some(count) = le16(&tail, eocd + 10) else {
        return Ok(None);
    };
    if count != u16::MAX {
        return Ok(Some(u64::from(count)));
    }
    // Zip64: a 20-byte locator just before the record gives the zip64 record's offset, whose
    // total entry count is a u64 at +32.
    let Some(locator) = eocd.checked_sub(20) else {
        return Ok(None);
    };
    if tail.get(locator..locator + 4) != Some(b"PK\x06\x07") {
        return Ok(None);
    }
    let Some(record_at) = le64(&tail, locator + 8) else {
        return Ok(None);
    };
    let mut record = Vec::new();
    file.seek(SeekFrom::Start(record_at))
        .and_then(|_| (&mut file).take(56).read_to_end(&mut record))
        .map_err(io_err)?;
    if record.get(..4) != Some(b"PK\x06\x06") {
        return Ok(None);
    }
    Ok(le64(&record, 32))
}

fn zip_invalid(e: zip::result::ZipError) -> AnalyzeError {
    AnalyzeError::ZipInvalid { reason: e.to_string() }
}

/// The entry's name as safe relative segments, or why it is not safe.
fn safe_name(raw: &str) -> Result<String, AnalyzeError> {
    let slip = || AnalyzeError::ZipSlip { entry: raw.to_string() };
    let name = raw.replace('\\', "/");
    let drive = matches!(name.as_bytes(), [l, b':', ..] if l.is_ascii_alphabetic());
    if name.starts_with('/') || drive || name.contains('\0') {
        return Err(slip());
    }
    let mut parts = Vec::new();
    for seg in name.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(slip()),
            // A colon inside a segment is a drive or an NTFS stream on Windows workers.
            s if s.contains(':') => return Err(slip()),
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

/// The main file: the one asked for, or the shallowest `.blend`, then the first alphabetically.
fn choose_main(entries: &[Entry], files: &HashSet<String>, wanted: Option<&str>) -> Result<String, AnalyzeError> {
    if let Some(wanted) = wanted {
        let not_found = || AnalyzeError::ZipMainFileNotFound { name: wanted.to_string() };
        let name = safe_name(wanted).map_err(|_| not_found())?;
        if is_blend(&name) && files.contains(&name) {
            return Ok(name);
        }
        return Err(not_found());
    }
    entries
        .iter()
        .filter(|e| !e.is_dir && is_blend(&e.name))
        .map(|e| (e.name.split('/').count(), e.name.as_str()))
        .min()
        .map(|(_, name)| name.to_string())
        .ok_or(AnalyzeError::ZipNoBlend)
}

/// A `.blend` that is not macOS resource-fork debris (`__MACOSX/`, `._name.blend`).
fn is_blend(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    name.to_ascii_lowercase().ends_with(".blend") && !file.starts_with("._") && !name.starts_with("__MACOSX/")
}

/// Inflates one entry into `out`, refusing more bytes than it declares or than `budget`, and
/// checking its CRC. Returns the bytes written.
fn inflate_entry<R: Read + io::Seek>(
    archive: &mut ZipArchive<R>,
    entry: &Entry,
    budget: u64,
    limit: u64,
    out: &mut impl Write,
    out_path: &Path,
) -> Result<u64, AnalyzeError> {
    let corrupt = |reason: String| AnalyzeError::ZipCorruptEntry { entry: entry.raw_name.clone(), reason };
    // The raw (still compressed) stream: inflating it here rather than through the zip reader lets
    // the byte count be checked against the declaration as it grows.
    let raw = archive.by_index_raw(entry.index).map_err(zip_invalid)?;
    let mut reader: Box<dyn Read + '_> = match entry.method {
        CompressionMethod::Stored => Box::new(raw),
        CompressionMethod::Deflated => Box::new(flate2::read::DeflateDecoder::new(raw)),
        other => {
            return Err(AnalyzeError::ZipUnsupportedEntry {
                entry: entry.raw_name.clone(),
                reason: format!("compression method {other:?} is not supported"),
            });
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    let mut crc = Crc32::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(format!("its data cannot be inflated: {e}"))),
        };
        total = total.saturating_add(n as u64);
        if total > entry.declared_size {
            return Err(AnalyzeError::ZipBomb {
                detail: format!(
                    "the entry {:?} inflates to more than the {} bytes it declares",
                    entry.raw_name, entry.declared_size
                ),
                limit,
            });
        }
        if total > budget {
            return Err(AnalyzeError::ZipBomb { detail: "the entries inflate beyond the limit".into(), limit });
        }
        let chunk = buf.get(..n).unwrap_or(&[]);
        crc.update(chunk);
        out.write_all(chunk).map_err(|source| AnalyzeError::Io { path: out_path.to_path_buf(), source })?;
    }
    if total != entry.declared_size {
        return Err(corrupt(format!("it holds {total} bytes but declares {}", entry.declared_size)));
    }
    if crc.finish() != entry.crc32 {
        return Err(corrupt("its checksum does not match".into()));
    }
    Ok(total)
}

/// CRC-32 (IEEE, as zip uses), because the entries are inflated here rather than by the zip reader.
struct Crc32 {
    state: u32,
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    fn new() -> Crc32 {
        Crc32 { state: 0xFFFF_FFFF }
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let idx = usize::from((self.state as u8) ^ b);
            self.state = CRC_TABLE.get(idx).copied().unwrap_or(0) ^ (self.state >> 8);
        }
    }

    fn finish(&self) -> u32 {
        !self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let mut crc = Crc32::new();
        crc.update(b"123456789");
        assert_eq!(crc.finish(), 0xCBF4_3926);
    }

    #[test]
    fn entry_names_that_leave_the_directory_are_zip_slip() {
        for raw in ["../evil.blend", "a/../../evil", "/etc/passwd", "C:/evil.blend", "c:evil", "a\\..\\..\\x", "a/b:c"]
        {
            assert!(matches!(safe_name(raw), Err(AnalyzeError::ZipSlip { .. })), "{raw}");
        }
        assert_eq!(safe_name("./shot//main.blend").ok().as_deref(), Some("shot/main.blend"));
    }
}
