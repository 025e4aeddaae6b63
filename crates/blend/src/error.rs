//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

/// Why a `.blend` file or a `.zip` project could not be analysed.
///
/// Every variant is a property of the input (or of the disk it sits on), never of a bug in the
/// reader: the messages are written for the person who uploaded the file.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The data starts neither with `BLENDER` nor with a gzip or zstd signature.
    #[error("not a .blend file: it starts neither with BLENDER nor with a gzip or zstd signature")]
    NotBlend,

    /// The data starts with `BLENDER` but the rest of the header is not a layout this reader knows.
    #[error(
        "the .blend header {header:?} is a newer or unknown format; it may come from a Blender \
         release this reader does not support yet"
    )]
    UnknownFormat {
        /// The header bytes as text (non-ASCII bytes escaped).
        header: String,
    },

    /// A structure runs past the end of the data.
    #[error("the .blend file is truncated: {what} at byte {offset} runs past the end of the data")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset in the decompressed data where it starts.
        offset: u64,
    },

    /// The decompressed data (or the file itself) is larger than the configured cap.
    #[error("the .blend data is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The cap, `AnalyzeOptions::max_decompressed_bytes`.
        limit: u64,
    },

    /// The gzip or zstd stream is damaged.
    #[error("the {format} compressed .blend data could not be decompressed: {source}")]
    Decompress {
        /// `gzip` or `zstd`.
        format: &'static str,
        /// The decoder's own message.
        #[source]
        source: io::Error,
    },

    /// The data is structurally inconsistent (bad lengths, a broken DNA block, ...).
    #[error("the .blend file is corrupt: {what}")]
    Corrupt {
        /// What is wrong, in words.
        what: String,
    },

    /// The file could not be read from disk.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// Raw `.zip` bytes were given to [`crate::analyze_bytes`], which only reads `.blend` data.
    #[error("this is a .zip archive: zip projects are analysed from a file on disk")]
    ZipInMemory,

    /// The archive is not a readable zip file.
    #[error("not a readable zip archive: {reason}")]
    ZipInvalid {
        /// The zip reader's message.
        reason: String,
    },

    /// An entry would be written outside the extraction directory.
    #[error("the zip entry {entry:?} points outside the project (\"..\", an absolute path or a drive letter)")]
    ZipSlip {
        /// The entry's name as stored in the archive.
        entry: String,
    },

    /// An entry is a symbolic link; links could point anywhere on the render node.
    #[error("the zip entry {entry:?} is a symbolic link, which projects may not contain")]
    ZipSymlink {
        /// The entry's name as stored in the archive.
        entry: String,
    },

    /// The archive declares, or actually inflates to, more than the cap.
    #[error("the zip archive is too large once uncompressed: {detail} (limit {limit} bytes)")]
    ZipBomb {
        /// Which entry, or the archive as a whole, and how it was noticed.
        detail: String,
        /// The cap, `AnalyzeOptions::max_decompressed_bytes`.
        limit: u64,
    },

    /// The archive has more entries than a project may have.
    #[error("the zip archive has {count} entries; a project may have at most {limit}")]
    ZipTooManyEntries {
        /// Entries in the central directory.
        count: u64,
        /// The cap.
        limit: u64,
    },

    /// Two entries have the same name, so which one wins would be arbitrary.
    #[error("the zip archive holds {entry:?} more than once")]
    ZipDuplicateEntry {
        /// The duplicated name.
        entry: String,
    },

    /// An entry is encrypted or uses a compression method this reader cannot inflate.
    #[error("the zip entry {entry:?} cannot be read: {reason}")]
    ZipUnsupportedEntry {
        /// The entry's name.
        entry: String,
        /// Encrypted, or which compression method.
        reason: String,
    },

    /// An entry's data does not match its checksum or is otherwise damaged.
    #[error("the zip entry {entry:?} is damaged: {reason}")]
    ZipCorruptEntry {
        /// The entry's name.
        entry: String,
        /// What the check found.
        reason: String,
    },

    /// The archive contains no `.blend` file.
    #[error("the zip archive contains no .blend file")]
    ZipNoBlend,

    /// The requested main file is not in the archive (or is not a `.blend`).
    #[error("the main file {name:?} is not a .blend file in the zip archive")]
    ZipMainFileNotFound {
        /// The name that was asked for.
        name: String,
    },
}

impl AnalyzeError {
    /// Shorthand for [`AnalyzeError::Corrupt`].
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        AnalyzeError::Corrupt { what: what.into() }
    }

    /// Shorthand for [`AnalyzeError::Truncated`].
    pub(crate) fn truncated(what: &'static str, offset: usize) -> Self {
        AnalyzeError::Truncated { what, offset: offset as u64 }
    }
}
